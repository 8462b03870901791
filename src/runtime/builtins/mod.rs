//! Builtin functions, one file per family. `table()` is the one list the resolver
//! binds names against; indices into it are stable for the life of the binary, so
//! a resolved AST means the same thing in every process.

pub mod command;
pub mod core;
pub mod json;
pub mod methods;
pub mod pool;
pub mod process;

use crate::runtime::value::Builtin;
use std::sync::OnceLock;

/// Every builtin, in a fixed order.
pub fn table() -> &'static [&'static Builtin] {
    static TABLE: OnceLock<Vec<&'static Builtin>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let families: &[&'static [Builtin]] = &[
            core::BUILTINS,
            json::BUILTINS,
            process::BUILTINS,
            command::BUILTINS,
            pool::BUILTINS,
        ];
        families.iter().flat_map(|f| f.iter()).collect()
    })
}

/// Looks a builtin up by name.
pub fn lookup(name: &str) -> Option<&'static Builtin> {
    table().iter().copied().find(|b| b.name == name)
}

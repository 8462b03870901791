//! proc: a scripting language for orchestrating real OS processes.
//!
//! The pipeline is `syntax` (text -> AST) -> `resolve` (names -> slots) ->
//! `runtime` (the tree-walking evaluator and its builtins), with `os` as the only
//! module that talks to the kernel. `cli` wires them to the command line and REPL,
//! and `diagnostic` renders every error.
//!
//! Embedding:
//!
//! ```
//! use proc::runtime::{Interp, Outcome};
//! let mut interp = Interp::new("example", vec![]);
//! match interp.run_source("<example>", "let x = 20\nx * 2 + 2") {
//!     Outcome::Value(v) => assert_eq!(format!("{v:?}"), "42"),
//!     _ => panic!("expected a value"),
//! }
//! ```

pub mod cli;
pub mod diagnostic;
pub mod os;
pub mod resolve;
pub mod runtime;
pub mod syntax;

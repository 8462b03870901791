//! proc: a scripting language for orchestrating real OS processes.
//!
//! The pipeline is `syntax` (text -> AST) -> `resolve` (names -> slots) ->
//! `runtime` (the tree-walking evaluator and its builtins), with `os` as the only
//! module that talks to the kernel. `cli` wires them to the command line and REPL.

pub mod cli;
pub mod os;

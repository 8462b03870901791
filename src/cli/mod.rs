//! The command line (SPEC §14): argument parsing, running a script or `-c` code or
//! stdin, `--check`, exit codes, and the REPL.

mod args;
mod repl;
mod run;

pub use run::main;

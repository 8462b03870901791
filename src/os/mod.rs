//! The OS layer: the only place that uses `nix`, `libc` and `os_pipe`.
//!
//! It takes bytes, file descriptors and closures, never interpreter `Value`s, and
//! it never sees the AST.
//!
//! # Fork safety
//!
//! The interpreter is single-threaded whenever it forks: pipes are drained with
//! `poll` on the one thread (as cargo's `read2.rs` does), never by helper threads.
//! Callers flush stdout and stderr before `fork`. A forked child runs its closure
//! and ends with `_exit`: it never unwinds back into the parent's frames.
//!
//! # Ownership of children
//!
//! Every child (a spawned function, a pool worker, an external command) is
//! registered in `process`'s child table and reaped there as soon as it exits;
//! its status is kept until someone asks for it. No other code calls `waitpid`.

pub mod command;
pub mod fdio;
pub mod ipc;
pub mod pool;
pub mod process;
pub mod signal;

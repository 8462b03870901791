//! The frames between the parent and a worker (framing itself is
//! `os::pool`'s). Parent to worker:
//!
//! - `T_FUNC  [u32 id][wire message]`: remember this function under `id`.
//! - `T_FORGET [u32 id]`: drop it.
//! - `T_TASK  [u32 id][u8 mode][wire message: list of items]`: call function
//!   `id` on each item (`MODE_ONE`: the item is the one argument;
//!   `MODE_STAR`: the item is the list of arguments).
//! - `T_STOP`: finish; exit 0.
//!
//! Worker to parent, one per task, in task order:
//!
//! - `R_RESULT [u32 microseconds][u32 n][u32 index]*n [wire message: list]`:
//!   the task's results, item by item; the `n` listed indices failed, and
//!   their entries are the errors.

pub const T_FUNC: u8 = 1;
pub const T_FORGET: u8 = 2;
pub const T_TASK: u8 = 3;
pub const T_STOP: u8 = 4;

pub const R_RESULT: u8 = 1;

pub const MODE_ONE: u8 = 0;
pub const MODE_STAR: u8 = 1;

/// How much a reader asks for at a time.
pub const READ_CHUNK: usize = 64 * 1024;

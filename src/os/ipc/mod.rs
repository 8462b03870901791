//! Cross-process communication primitives over real OS objects: anonymous shared
//! memory (`memfd`), futexes and pipes. Bytes in, bytes out: serialization of
//! values lives in the runtime, which hands this layer `&[u8]` and gets `Vec<u8>`.
//!
//! # What lives where
//!
//! Every primitive keeps its state in a `memfd` segment mapped `MAP_SHARED`
//! (see `segment`): a header page of atomics (futex words, counters) and, for the
//! primitives that hold data, a data region that grows by `ftruncate` + remap.
//! Nothing is ever created under `/dev/shm`; a segment disappears when the last
//! process holding it closes it.
//!
//! - [`Queue`]: a growable ring of length-prefixed messages in shared memory, one
//!   process-shared lock, futex waits. A put has returned once the message is in
//!   shared memory, so it survives its producer's exit.
//! - [`PipeEnd`]: one ring per direction plus a "doorbell" pipe per direction. The
//!   doorbell is only written when the receiver sleeps, and its write end is held by
//!   every copy of the sending end, so its EOF is exactly "every copy of the peer
//!   end is closed".
//! - [`Lock`], [`RLock`], [`Semaphore`], [`Event`], [`Barrier`]: futex words.
//!   Locks hold the owner's thread id (the pid, in the single-threaded
//!   interpreter), so a lock whose holder died is taken over by the next waiter.
//! - [`ValueCell`], [`Array`], [`SharedDict`], [`SharedList`]: shared memory with an
//!   embedded re-entrant lock (for `with v { }`).
//!
//! # Blocking and signals
//!
//! Blocking operations take `block` and `timeout` and return
//! [`IpcError::Interrupted`] promptly once `signal::pending()` is true, so the
//! runtime can run the script's handler and retry with the time left. Fd waits
//! poll `signal::wake_fd()`; futex waits rely on `EINTR` (the interpreter's
//! handlers have no `SA_RESTART`) and never sleep longer than [`SLICE`] at a time.
//!
//! # Handles crossing processes
//!
//! Every primitive can be described as bytes (`describe`) and rebuilt from them
//! (`from_description`) in another process: the same process or a descendant
//! forked after creation finds its own object in a process-global registry; any
//! other process reopens the describer's (or the creator's) descriptors through
//! `/proc/<pid>/fd/<n>`, which needs that process to be alive and still holding
//! the handle when the description is decoded.
//!
//! # Limits
//!
//! - Descriptors: one `memfd` per queue, lock, semaphore, event, barrier, value,
//!   array, dict or list; a pipe end holds one `memfd` and one doorbell pipe end
//!   per direction it uses. On `EMFILE` the soft descriptor limit is raised to
//!   the hard one once.
//! - Memory: an unbounded queue holds whatever is put (it shrinks when it
//!   drains); a pipe direction holds up to 64 MiB unread before sends wait; a
//!   value cell keeps small values inline in its header page.
//! - Lock recovery trusts pids: a dead holder whose pid was reused by then is
//!   not detected. Recovery takes about one [`SLICE`].
//! - Reopening needs `/proc` and the same user as the process reopened from.
//!
//! # Threads
//!
//! The layer starts no threads. Its types are `Send + Sync`, but a process is
//! expected to use them from one thread at a time (lock ownership is per thread).

mod futex;
mod registry;
mod ring;
mod segment;
mod shared;

pub mod channel;
pub mod queue;
pub mod shm;
pub mod sync;

use std::fmt;
use std::io;

pub use channel::{pipe, PipeEnd};
pub use queue::Queue;
pub use shm::{Array, Num, SharedDict, SharedList, ValueCell};
pub use sync::{Barrier, Event, Lock, RLock, Semaphore};

/// The longest single futex sleep: a signal that slips in between the check of
/// `signal::pending()` and the sleep is noticed within this time.
pub const SLICE: std::time::Duration = std::time::Duration::from_millis(50);

/// Why an IPC operation did not complete.
#[derive(Debug)]
pub enum IpcError {
    /// `get`/`recv` found nothing: non-blocking, or the timeout passed.
    Empty,
    /// `put` found a bounded queue full: non-blocking, or the timeout passed.
    Full,
    /// The queue was closed, or every copy of the pipe's other end is closed (or
    /// this end was closed here).
    Closed,
    /// A timed wait (`Queue::join`, `Barrier::wait`) ran out of time.
    Timeout,
    /// A signal the interpreter must handle is pending; run it and retry.
    Interrupted,
    /// Releasing a lock this process (thread) does not hold: a `LockError`.
    NotOwner,
    /// More `task_done` calls than items put: a `ValueError`.
    TooManyTaskDone,
    /// Sending on a read-only pipe end or receiving on a write-only one: a
    /// `ValueError`.
    WrongEnd,
    /// An index outside an array or shared list: an `IndexError`.
    OutOfRange,
    /// The operating system refused (out of memory, descriptors, ...): an `IOError`.
    Io(io::Error),
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpcError::Empty => f.write_str("empty"),
            IpcError::Full => f.write_str("full"),
            IpcError::Closed => f.write_str("closed"),
            IpcError::Timeout => f.write_str("timed out"),
            IpcError::Interrupted => f.write_str("interrupted by a signal"),
            IpcError::NotOwner => f.write_str("release of a lock that is not held"),
            IpcError::TooManyTaskDone => f.write_str("task_done() called too many times"),
            IpcError::WrongEnd => f.write_str("wrong end of a one-way pipe"),
            IpcError::OutOfRange => f.write_str("index out of range"),
            IpcError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for IpcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IpcError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for IpcError {
    fn from(e: io::Error) -> Self {
        IpcError::Io(e)
    }
}

/// Result of an IPC operation.
pub type IpcResult<T> = Result<T, IpcError>;

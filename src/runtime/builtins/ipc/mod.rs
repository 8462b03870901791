//! Queues, pipes, locks and shared memory (SPEC §6–9, §11): the builtins that
//! make them and the handles scripts use, over the OS objects of `os::ipc`.
//!
//! Values cross as `wire` messages (deep copies). Handles cross as their OS
//! object's description (`Object::wire`), rebuilt by [`decode_handle`], so a
//! received handle names the same queue, lock or cell as the sender's.
//!
//! Every blocking call goes through [`wait`]: a signal that interrupts it runs
//! the script's handler (or ends the program on Ctrl-C) and the call goes on
//! with the time it has left. Buffered output is flushed before a call actually
//! sleeps, so what a script printed before it waits is out while it waits.
//!
//! This module never forks and never touches file descriptors itself.

mod channel;
mod shm;
mod sync;

use crate::os::ipc::{IpcError, IpcResult};
use crate::runtime::error::{fail, Res, RtError, Unwind};
use crate::runtime::value::{Builtin, Value};
use crate::runtime::Interp;
use std::time::{Duration, Instant};

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "queue",
        func: channel::queue,
    },
    Builtin {
        name: "pipe",
        func: channel::pipe,
    },
    Builtin {
        name: "lock",
        func: sync::lock,
    },
    Builtin {
        name: "rlock",
        func: sync::rlock,
    },
    Builtin {
        name: "semaphore",
        func: sync::semaphore,
    },
    Builtin {
        name: "event",
        func: sync::event,
    },
    Builtin {
        name: "barrier",
        func: sync::barrier,
    },
    Builtin {
        name: "value",
        func: shm::value,
    },
    Builtin {
        name: "array",
        func: shm::array,
    },
    Builtin {
        name: "shared_dict",
        func: shm::shared_dict,
    },
    Builtin {
        name: "shared_list",
        func: shm::shared_list,
    },
];

/// Rebuilds a handle received from another process (see `wire`).
pub fn decode_handle(ty: &str, bytes: &[u8]) -> Res<Value> {
    let r = match ty {
        "queue" | "pipe" => channel::decode(ty, bytes),
        "lock" | "rlock" | "semaphore" | "event" | "barrier" => sync::decode(ty, bytes),
        "value" | "array" | "shared_dict" | "shared_list" => shm::decode(ty, bytes),
        _ => {
            return fail(
                "TypeError",
                format!("cannot receive a {ty} in this process"),
            )
        }
    };
    match r {
        Ok(Some(v)) => Ok(v),
        Ok(None) => fail(
            "TypeError",
            format!("cannot receive a {ty} in this process"),
        ),
        Err(e) => fail(
            "IOError",
            format!("cannot receive a {ty}: {}", lower(&e.to_string())),
        ),
    }
}

/// A description of an OS object for `Object::wire` (None if it cannot be made).
fn described(d: std::io::Result<Vec<u8>>) -> Option<Vec<u8>> {
    d.ok()
}

/// An OS error as `IOError`, for operations that can only fail that way.
fn io_error(e: impl std::fmt::Display) -> Unwind {
    RtError::new("IOError", lower(&e.to_string())).into()
}

/// The error kinds of SPEC §4 for the outcomes every caller treats alike;
/// callers turn `Empty`, `Full`, `Closed` and `Timeout` into their own
/// messages first.
fn ipc_error(e: IpcError) -> Unwind {
    let (kind, msg) = match e {
        IpcError::Empty => ("Empty", "empty".to_string()),
        IpcError::Full => ("Full", "full".to_string()),
        IpcError::Closed => ("Closed", "closed".to_string()),
        IpcError::Timeout => ("Timeout", "timed out".to_string()),
        IpcError::Interrupted => ("IOError", "interrupted by a signal".to_string()),
        IpcError::NotOwner => ("LockError", "release of a lock that is not held".into()),
        IpcError::TooManyTaskDone => (
            "ValueError",
            "task_done() called more times than items were put".into(),
        ),
        IpcError::WrongEnd => ("ValueError", "wrong end of a one-way pipe".into()),
        IpcError::OutOfRange => ("IndexError", "index out of range".into()),
        IpcError::Io(e) => ("IOError", lower(&e.to_string())),
    };
    RtError::new(kind, msg).into()
}

/// An OS message without Rust's " (os error N)" and with a lowercase start.
fn lower(s: &str) -> String {
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `block` as a bool (anything: its truth).
fn flag(v: Option<Value>, default: bool) -> bool {
    v.map_or(default, |v| v.truthy())
}

/// A `timeout` argument in seconds: nil means none.
fn timeout_arg(func: &str, v: Option<Value>) -> Res<Option<Duration>> {
    let v = match v {
        None | Some(Value::Nil) => return Ok(None),
        Some(v) => v,
    };
    let secs = match v {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
        _ => {
            return fail(
                "TypeError",
                format!(
                    "{func}(): timeout must be a number of seconds or nil, not {}",
                    v.type_name()
                ),
            )
        }
    };
    if secs.is_nan() || secs < 0.0 {
        return fail(
            "ValueError",
            format!(
                "{func}(): timeout must not be negative, got {}",
                crate::runtime::format::display(&v)
            ),
        );
    }
    // Longer than anyone waits: as good as none (and no overflow).
    Ok(Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| d.as_secs() < 1 << 40))
}

/// Seconds for a message: `0.5`, `2`.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 && s < 1e15 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

/// Runs a blocking operation `op(block, time left)` (not blocking: `op(false,
/// Some(0))`). If output is buffered, first tries without blocking (`would_block` tells whether that found nothing
/// to do) and flushes before the real wait. When a signal interrupts the wait,
/// the script's handlers run and the operation goes on with the time left.
fn wait<T>(
    interp: &mut Interp,
    block: bool,
    timeout: Option<Duration>,
    would_block: impl Fn(&IpcResult<T>) -> bool,
    mut op: impl FnMut(bool, Option<Duration>) -> IpcResult<T>,
) -> Res<IpcResult<T>> {
    if !block {
        return Ok(op(false, Some(Duration::ZERO)));
    }
    if interp.out.pending() {
        let r = op(false, Some(Duration::ZERO));
        if !would_block(&r) || timeout == Some(Duration::ZERO) {
            return Ok(r);
        }
        interp.out.flush()?;
    }
    let deadline = timeout.map(|t| Instant::now().checked_add(t));
    loop {
        let left = match deadline {
            None => None,
            Some(None) => timeout,
            Some(Some(d)) => Some(d.saturating_duration_since(Instant::now())),
        };
        match op(true, left) {
            Err(IpcError::Interrupted) => interp.handle_signals()?,
            r => return Ok(r),
        }
    }
}

/// Runs a non-blocking operation that may still be interrupted while it waits
/// for a shared object's internal lock.
fn retry<T>(interp: &mut Interp, mut op: impl FnMut() -> IpcResult<T>) -> Res<T> {
    loop {
        match op() {
            Err(IpcError::Interrupted) => interp.handle_signals()?,
            r => return r.map_err(ipc_error),
        }
    }
}

fn no_method<T>(ty: &str, name: &str) -> Res<T> {
    fail("TypeError", format!("{ty} has no method `{name}`"))
}

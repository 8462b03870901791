//! `lock()`, `rlock()`, `semaphore(n)`, `event()`, `barrier(n)`: futex-based
//! synchronisation shared by processes.

use super::{described, flag, io_error, ipc_error, no_method, secs, timeout_arg, wait};
use crate::os::ipc::{self, IpcError, IpcResult};
use crate::runtime::error::{fail, Res};
use crate::runtime::value::{Args, Object, Value};
use crate::runtime::Interp;
use std::any::Any;
use std::time::Duration;

pub(super) fn decode(ty: &str, bytes: &[u8]) -> std::io::Result<Option<Value>> {
    Ok(Some(match ty {
        "lock" => Value::object(Lock(ipc::Lock::from_description(bytes)?)),
        "rlock" => Value::object(RLock(ipc::RLock::from_description(bytes)?)),
        "semaphore" => Value::object(Semaphore(ipc::Semaphore::from_description(bytes)?)),
        "event" => Value::object(Event(ipc::Event::from_description(bytes)?)),
        "barrier" => Value::object(Barrier(ipc::Barrier::from_description(bytes)?)),
        _ => return Ok(None),
    }))
}

/// `acquire(block = true, timeout = nil)` on anything with a timed acquire:
/// true when taken, false when not blocking and busy, or when the time ran out.
pub(super) fn acquire_call(
    interp: &mut Interp,
    args: Args,
    acquire: impl FnMut(bool, Option<Duration>) -> IpcResult<bool>,
) -> Res<Value> {
    let [block, timeout] = args.bind("acquire", ["block", "timeout"], 0)?;
    let t = timeout_arg("acquire", timeout)?;
    acquire_with(interp, flag(block, true), t, acquire).map(Value::Bool)
}

pub(super) fn acquire_with(
    interp: &mut Interp,
    block: bool,
    t: Option<Duration>,
    acquire: impl FnMut(bool, Option<Duration>) -> IpcResult<bool>,
) -> Res<bool> {
    wait(interp, block, t, |r| matches!(r, Ok(false)), acquire)?.map_err(ipc_error)
}

/// `with x { }` on entry: waits as long as it takes.
pub(super) fn enter_with(
    interp: &mut Interp,
    acquire: impl FnMut(bool, Option<Duration>) -> IpcResult<bool>,
) -> Res<()> {
    acquire_with(interp, true, None, acquire)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// lock, rlock

pub struct Lock(ipc::Lock);

pub(super) fn lock(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("lock", [], 0)?;
    Ok(Value::object(Lock(ipc::Lock::new().map_err(io_error)?)))
}

fn not_held(what: &str) -> crate::runtime::error::Unwind {
    crate::runtime::error::RtError::new(
        "LockError",
        format!("release of {what} that this process does not hold"),
    )
    .into()
}

/// What `lock` and `rlock` share: the same methods, `with` and release errors.
trait LockOps {
    fn acquire(&self, block: bool, timeout: Option<Duration>) -> IpcResult<bool>;
    fn release(&self) -> IpcResult<()>;
    fn locked(&self) -> bool;
}

impl LockOps for ipc::Lock {
    fn acquire(&self, block: bool, timeout: Option<Duration>) -> IpcResult<bool> {
        ipc::Lock::acquire(self, block, timeout)
    }
    fn release(&self) -> IpcResult<()> {
        ipc::Lock::release(self)
    }
    fn locked(&self) -> bool {
        ipc::Lock::locked(self)
    }
}

impl LockOps for ipc::RLock {
    fn acquire(&self, block: bool, timeout: Option<Duration>) -> IpcResult<bool> {
        ipc::RLock::acquire(self, block, timeout)
    }
    fn release(&self) -> IpcResult<()> {
        ipc::RLock::release(self)
    }
    fn locked(&self) -> bool {
        ipc::RLock::locked(self)
    }
}

/// `acquire`, `release` and `locked` of a lock or rlock (`ty` names it).
fn lock_method(
    l: &impl LockOps,
    ty: &str,
    interp: &mut Interp,
    name: &str,
    args: Args,
) -> Res<Value> {
    match name {
        "acquire" => acquire_call(interp, args, |b, t| l.acquire(b, t)),
        "release" => {
            args.bind("release", [], 0)?;
            lock_release(l, ty)?;
            Ok(Value::Nil)
        }
        "locked" => {
            args.bind("locked", [], 0)?;
            Ok(Value::Bool(l.locked()))
        }
        _ => no_method(ty, name),
    }
}

fn lock_release(l: &impl LockOps, ty: &str) -> Res<()> {
    let what = if ty == "rlock" { "an rlock" } else { "a lock" };
    l.release().map_err(|_| not_held(what))
}

impl Object for Lock {
    fn type_name(&self) -> &'static str {
        "lock"
    }

    fn repr(&self) -> String {
        let state = if self.0.locked() {
            "locked"
        } else {
            "unlocked"
        };
        format!("<lock {state}>")
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        lock_method(&self.0, "lock", interp, name, args)
    }

    fn enter(&self, interp: &mut Interp, this: &Value) -> Res<Value> {
        enter_with(interp, |b, t| self.0.acquire(b, t))?;
        Ok(this.clone())
    }

    fn exit(&self, _: &mut Interp) -> Res<()> {
        lock_release(&self.0, "lock")
    }

    fn wire(&self) -> Option<Vec<u8>> {
        described(self.0.describe())
    }
}

pub struct RLock(ipc::RLock);

pub(super) fn rlock(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("rlock", [], 0)?;
    Ok(Value::object(RLock(ipc::RLock::new().map_err(io_error)?)))
}

impl Object for RLock {
    fn type_name(&self) -> &'static str {
        "rlock"
    }

    fn repr(&self) -> String {
        match (self.0.locked(), self.0.depth()) {
            (false, _) => "<rlock unlocked>".into(),
            (true, 0) => "<rlock locked>".into(),
            (true, n) => format!("<rlock locked depth={n}>"),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        lock_method(&self.0, "rlock", interp, name, args)
    }

    fn enter(&self, interp: &mut Interp, this: &Value) -> Res<Value> {
        enter_with(interp, |b, t| self.0.acquire(b, t))?;
        Ok(this.clone())
    }

    fn exit(&self, _: &mut Interp) -> Res<()> {
        lock_release(&self.0, "rlock")
    }

    fn wire(&self) -> Option<Vec<u8>> {
        described(self.0.describe())
    }
}

// ---------------------------------------------------------------------------
// semaphore

pub struct Semaphore(ipc::Semaphore);

pub(super) fn semaphore(_: &mut Interp, args: Args) -> Res<Value> {
    let [n] = args.bind("semaphore", ["value"], 0)?;
    let n = match n {
        None | Some(Value::Nil) => 1,
        Some(Value::Int(n)) if (0..=u32::MAX as i64).contains(&n) => n as u32,
        Some(Value::Int(n)) => {
            return fail(
                "ValueError",
                format!("semaphore(): value must be from 0 to 4294967295, not {n}"),
            )
        }
        Some(v) => {
            return fail(
                "TypeError",
                format!("semaphore(): value must be an int, not {}", v.type_name()),
            )
        }
    };
    Ok(Value::object(Semaphore(
        ipc::Semaphore::new(n).map_err(io_error)?,
    )))
}

impl Semaphore {
    fn release(&self) -> Res<()> {
        match self.0.release() {
            Ok(()) => Ok(()),
            Err(IpcError::Full) => fail("ValueError", "semaphore released too many times"),
            Err(e) => Err(ipc_error(e)),
        }
    }
}

impl Object for Semaphore {
    fn type_name(&self) -> &'static str {
        "semaphore"
    }

    fn repr(&self) -> String {
        format!("<semaphore value={}>", self.0.value())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "acquire" => acquire_call(interp, args, |b, t| self.0.acquire(b, t)),
            "release" => {
                args.bind("release", [], 0)?;
                self.release()?;
                Ok(Value::Nil)
            }
            "value" => {
                args.bind("value", [], 0)?;
                Ok(Value::Int(self.0.value() as i64))
            }
            _ => no_method("semaphore", name),
        }
    }

    fn enter(&self, interp: &mut Interp, this: &Value) -> Res<Value> {
        enter_with(interp, |b, t| self.0.acquire(b, t))?;
        Ok(this.clone())
    }

    fn exit(&self, _: &mut Interp) -> Res<()> {
        self.release()
    }

    fn wire(&self) -> Option<Vec<u8>> {
        described(self.0.describe())
    }
}

// ---------------------------------------------------------------------------
// event

pub struct Event(ipc::Event);

pub(super) fn event(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("event", [], 0)?;
    Ok(Value::object(Event(ipc::Event::new().map_err(io_error)?)))
}

impl Object for Event {
    fn type_name(&self) -> &'static str {
        "event"
    }

    fn repr(&self) -> String {
        let state = if self.0.is_set() { "set" } else { "clear" };
        format!("<event {state}>")
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "set" => {
                args.bind("set", [], 0)?;
                self.0.set();
                Ok(Value::Nil)
            }
            "clear" => {
                args.bind("clear", [], 0)?;
                self.0.clear();
                Ok(Value::Nil)
            }
            "is_set" => {
                args.bind("is_set", [], 0)?;
                Ok(Value::Bool(self.0.is_set()))
            }
            "wait" => {
                let [timeout] = args.bind("wait", ["timeout"], 0)?;
                let t = timeout_arg("wait", timeout)?;
                let ev = &self.0;
                let set = wait(
                    interp,
                    true,
                    t,
                    |r| matches!(r, Ok(false)),
                    |b, left| match b {
                        true => ev.wait(left),
                        false => Ok(ev.is_set()),
                    },
                )?;
                set.map(Value::Bool).map_err(ipc_error)
            }
            _ => no_method("event", name),
        }
    }

    fn wire(&self) -> Option<Vec<u8>> {
        described(self.0.describe())
    }
}

// ---------------------------------------------------------------------------
// barrier

pub struct Barrier(ipc::Barrier);

pub(super) fn barrier(_: &mut Interp, args: Args) -> Res<Value> {
    let [n] = args.bind("barrier", ["parties"], 1)?;
    let n = match n.unwrap_or_default() {
        Value::Int(n) if (1..=u32::MAX as i64).contains(&n) => n as u32,
        Value::Int(n) => {
            return fail(
                "ValueError",
                format!("barrier(): parties must be at least 1, not {n}"),
            )
        }
        v => {
            return fail(
                "TypeError",
                format!("barrier(): parties must be an int, not {}", v.type_name()),
            )
        }
    };
    Ok(Value::object(Barrier(
        ipc::Barrier::new(n).map_err(io_error)?,
    )))
}

impl Object for Barrier {
    fn type_name(&self) -> &'static str {
        "barrier"
    }

    fn repr(&self) -> String {
        format!(
            "<barrier parties={} waiting={}>",
            self.0.parties(),
            self.0.n_waiting()
        )
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn get_field(&self, _: &mut Interp, name: &str) -> Res<Value> {
        match name {
            "parties" => Ok(Value::Int(self.0.parties() as i64)),
            "n_waiting" => Ok(Value::Int(self.0.n_waiting() as i64)),
            _ => fail("TypeError", format!("barrier has no field `{name}`")),
        }
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "wait" => {
                let [timeout] = args.bind("wait", ["timeout"], 0)?;
                let t = timeout_arg("wait", timeout)?;
                let b = &self.0;
                // Arriving cannot be tried without arriving: flush first.
                interp.out.flush()?;
                match wait(interp, true, t, |_| false, |_, left| b.wait(left))? {
                    Ok(i) => Ok(Value::Int(i as i64)),
                    Err(IpcError::Timeout) => fail(
                        "Timeout",
                        format!(
                            "barrier.wait() timed out after {}s ({} of {} waiting)",
                            secs(t.unwrap_or_default()),
                            b.n_waiting() + 1,
                            b.parties()
                        ),
                    ),
                    Err(e) => Err(ipc_error(e)),
                }
            }
            _ => no_method("barrier", name),
        }
    }

    fn wire(&self) -> Option<Vec<u8>> {
        described(self.0.describe())
    }
}

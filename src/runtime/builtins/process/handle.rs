//! The `process` handle in the parent: its result pipe, its exit status,
//! `join`, its fields and methods.
//!
//! The result of a child is complete once the child has exited: everything it
//! wrote is then in the pipe (a child blocked on a full pipe has not exited),
//! so after the exit status is known one non-blocking read gets the rest. EOF
//! alone is not trusted: a grandchild started by `daemonize` may hold the
//! write end. While waiting, the parent reads whatever arrives, so a result
//! larger than the pipe's buffer never deadlocks.

use super::{send_signal, signal_arg};
use crate::os::fdio::{self, Drained};
use crate::os::process::{self as osp, ExitStatus, Pid, WaitError};
use crate::os::signal;
use crate::runtime::builtins::core::seconds;
use crate::runtime::error::{fail, Res};
use crate::runtime::value::{Args, Object, Value};
use crate::runtime::{wire, Interp};
use std::any::Any;
use std::cell::RefCell;
use std::time::{Duration, Instant};

pub struct Process {
    pub pid: Pid,
    pub name: String,
    pub daemon: bool,
    /// The process that spawned it: only that one can wait for it.
    owner: Pid,
    st: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// The result pipe, until EOF or exit.
    reader: Option<fdio::Reader>,
    /// What the child has sent so far.
    buf: Vec<u8>,
    status: Option<ExitStatus>,
    /// The decoded result, kept so that joining twice gives the same value.
    result: Option<Value>,
}

impl Process {
    pub(super) fn new(pid: Pid, name: String, daemon: bool, reader: fdio::Reader) -> Process {
        Process {
            pid,
            name,
            daemon,
            owner: std::process::id() as Pid,
            st: RefCell::new(State {
                reader: Some(reader),
                ..State::default()
            }),
        }
    }

    fn mine(&self) -> bool {
        self.owner == std::process::id() as Pid
    }

    /// Reads what has arrived; closes the pipe at EOF. True while it is open.
    fn pump(&self) -> bool {
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        let Some(r) = st.reader.as_mut() else {
            return false;
        };
        match r.read_available(&mut st.buf) {
            Ok(Drained::Open) => true,
            Ok(Drained::Eof) | Err(_) => {
                st.reader = None;
                false
            }
        }
    }

    /// Records the exit status and takes the rest of the result.
    fn finish(&self, status: ExitStatus) {
        self.pump();
        let mut st = self.st.borrow_mut();
        st.reader = None;
        st.status = Some(status);
    }

    /// If the child has been reaped (by a sweep or a wait), records its status.
    /// True when it has exited. No system call while it runs.
    pub(super) fn collect(&self) -> bool {
        if self.st.borrow().status.is_some() {
            return true;
        }
        match osp::reaped_status(self.pid) {
            Some(st) => {
                self.finish(st);
                true
            }
            None => false,
        }
    }

    /// The exit status, checking (without blocking) whether it has exited.
    fn status(&self) -> Option<ExitStatus> {
        if let Some(st) = self.st.borrow().status {
            return Some(st);
        }
        if !self.mine() {
            return None;
        }
        let st = osp::try_status(self.pid)?;
        self.finish(st);
        Some(st)
    }

    fn alive(&self) -> bool {
        if self.status().is_some() {
            return false;
        }
        if self.mine() {
            return true;
        }
        // A sibling's handle (copied into a child): it exists if a signal 0
        // reaches it.
        osp::kill(self.pid, 0).is_ok()
    }

    /// Waits for the child to exit (`None`: for ever), running signal handlers
    /// meanwhile. False on timeout.
    pub(super) fn wait(&self, interp: &mut Interp, timeout: Option<Duration>) -> Res<bool> {
        if self.status().is_some() {
            return Ok(true);
        }
        if !self.mine() {
            return fail(
                "ProcessError",
                format!(
                    "cannot join {} (pid {}): it is not a child of this process",
                    self.name, self.pid
                ),
            );
        }
        if timeout != Some(Duration::ZERO) {
            // As `sleep` does: what was printed before a wait is seen during it.
            interp.out.flush()?;
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let remaining = match (timeout, deadline) {
                (None, _) => None,
                (Some(_), None) => Some(Duration::MAX),
                (Some(_), Some(d)) => Some(d.saturating_duration_since(Instant::now())),
            };
            let open = self.pump();
            // While the pipe is open, only check (the poll below waits for data
            // or SIGCHLD); once it is closed, wait for the exit itself.
            let wait_for = if open {
                Some(Duration::ZERO)
            } else {
                remaining
            };
            match osp::wait(self.pid, wait_for) {
                Ok(st) => {
                    self.finish(st);
                    return Ok(true);
                }
                Err(WaitError::Interrupted) => {
                    interp.handle_signals()?;
                    continue;
                }
                Err(WaitError::NotAChild) => {
                    self.st.borrow_mut().reader = None;
                    return fail(
                        "ProcessError",
                        format!("lost track of {} (pid {})", self.name, self.pid),
                    );
                }
                Err(WaitError::TimedOut) => {}
            }
            if !open || remaining == Some(Duration::ZERO) {
                return Ok(false);
            }
            if let Some(r) = self.st.borrow().reader.as_ref() {
                r.wait(remaining);
            }
            if signal::pending() {
                interp.handle_signals()?;
            }
        }
    }

    /// The child's return value if it exited 0 (decoded once), else nil.
    fn result(&self, interp: &mut Interp) -> Res<Value> {
        let mut st = self.st.borrow_mut();
        if st.status != Some(ExitStatus::Code(0)) {
            return Ok(Value::Nil);
        }
        if let Some(v) = &st.result {
            return Ok(v.clone());
        }
        let v = if st.buf.is_empty() {
            // Exited 0 without a result (it called `daemonize`).
            Value::Nil
        } else {
            let bytes = std::mem::take(&mut st.buf);
            drop(st);
            let v = wire::decode(interp, &bytes)?;
            st = self.st.borrow_mut();
            v
        };
        st.result = Some(v.clone());
        Ok(v)
    }

    /// `join p` / `p.join(timeout)`: the result, or nil on timeout.
    pub fn join(&self, interp: &mut Interp, timeout: Option<Duration>) -> Res<Value> {
        if self.wait(interp, timeout)? {
            self.result(interp)
        } else {
            Ok(Value::Nil)
        }
    }

    fn state_text(&self) -> String {
        match self.status() {
            None => "running".into(),
            Some(ExitStatus::Code(c)) => format!("exited {c}"),
            Some(ExitStatus::Signal(s)) => format!("killed by {}", signal::name(s)),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.mine() {
            osp::forget(self.pid);
        }
    }
}

impl Object for Process {
    fn type_name(&self) -> &'static str {
        "process"
    }

    fn repr(&self) -> String {
        format!(
            "<process {} pid={}{} {}>",
            self.name,
            self.pid,
            if self.daemon { " daemon" } else { "" },
            self.state_text()
        )
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn get_field(&self, _: &mut Interp, name: &str) -> Res<Value> {
        Ok(match name {
            "pid" => Value::Int(self.pid as i64),
            "name" => Value::str(&self.name),
            "daemon" => Value::Bool(self.daemon),
            "exitcode" => match self.status() {
                Some(st) => Value::Int(st.code() as i64),
                None => Value::Nil,
            },
            _ => {
                return fail(
                    "TypeError",
                    format!("process has no field `{name}` (it has pid, name, daemon, exitcode)"),
                )
            }
        })
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "join" => {
                let [timeout] = args.bind("join", ["timeout"], 0)?;
                let timeout = match timeout {
                    None | Some(Value::Nil) => None,
                    Some(t) => Some(seconds("join", &t)?),
                };
                self.join(interp, timeout)
            }
            "alive" => {
                args.bind("alive", [], 0)?;
                Ok(Value::Bool(self.alive()))
            }
            "terminate" => {
                args.bind("terminate", [], 0)?;
                self.send("terminate", libc::SIGTERM)
            }
            "kill" => {
                args.bind("kill", [], 0)?;
                self.send("kill", libc::SIGKILL)
            }
            "signal" => {
                let [sig] = args.bind("signal", ["sig"], 1)?;
                let sig = signal_arg("signal", &sig.unwrap_or_default())?;
                self.send("signal", sig)
            }
            _ => fail(
                "TypeError",
                format!(
                    "process has no method `{name}` (it has join, alive, terminate, kill, signal)"
                ),
            ),
        }
    }
}

impl Process {
    /// Signals the child; one that has already exited is left alone.
    fn send(&self, func: &str, sig: i32) -> Res<Value> {
        if self.status().is_some() {
            return Ok(Value::Nil);
        }
        match send_signal(func, self.pid, sig) {
            // It exited between the check and the kill.
            Err(_) if !self.alive() => Ok(Value::Nil),
            r => r.map(|_| Value::Nil),
        }
    }
}

/// `join x`: a process, or a list of processes (a list of results).
pub fn join_value(interp: &mut Interp, v: &Value, timeout: Option<Duration>) -> Res<Value> {
    match v {
        Value::List(l) => {
            let items: Vec<Value> = l.borrow().clone();
            let mut out = Vec::with_capacity(items.len());
            for it in &items {
                out.push(join_one(interp, it, timeout)?);
            }
            Ok(Value::list(out))
        }
        other => join_one(interp, other, timeout),
    }
}

fn join_one(interp: &mut Interp, v: &Value, timeout: Option<Duration>) -> Res<Value> {
    match v.downcast::<Process>() {
        Some(p) => p.join(interp, timeout),
        None => fail(
            "TypeError",
            format!(
                "join needs a process or a list of processes, not {}",
                v.type_name()
            ),
        ),
    }
}

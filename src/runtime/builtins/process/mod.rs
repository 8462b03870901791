//! Processes (SPEC §5): `spawn` / `daemon` / `join`, the `process` handle,
//! `exit`, pids, signals, `daemonize`, and what becomes of children when a
//! script (or a child) ends.
//!
//! - `child`: `eval_spawn` and everything that runs in the forked child: the
//!   call, the error report naming the process, the result sent back.
//! - `handle`: the `process` value in the parent: joining (draining the result
//!   pipe while waiting, so a large result never deadlocks), fields, signals.
//!
//! Every child is forked by [`fork_child`], the runtime's one way to fork; the
//! OS layer reaps it as soon as it exits (SIGCHLD -> `sweep`), and
//! [`collect_exited`] then closes its result pipe. This module never calls
//! `waitpid` or `fork` itself.

mod child;
mod handle;

pub use child::eval_spawn;
pub use handle::{join_value, Process};

use crate::os::process::{self as osp, Pid};
use crate::os::signal;
use crate::runtime::error::{fail, Res, RtError, Unwind};
use crate::runtime::value::{Args, Builtin, Value};
use crate::runtime::Interp;
use std::rc::Rc;
use std::time::Duration;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "exit",
        func: exit,
    },
    Builtin {
        name: "getpid",
        func: getpid,
    },
    Builtin {
        name: "getppid",
        func: getppid,
    },
    Builtin {
        name: "kill",
        func: kill,
    },
    Builtin {
        name: "on_signal",
        func: on_signal,
    },
    Builtin {
        name: "daemonize",
        func: daemonize,
    },
];

/// How long daemons (and, on SIGINT/SIGTERM, all children) get between SIGTERM
/// and SIGKILL when a script ends.
const GRACE: Duration = Duration::from_secs(1);

/// The process-related state of one interpreter.
#[derive(Default)]
pub struct ProcState {
    /// Children spawned so far (for their names: "Process-3" in the main
    /// script, "Process-1:2" in Process-1, as Python names them).
    count: u64,
    /// This process is a daemon: it may not have children.
    daemon: bool,
    /// This process's name when it is a spawned child, for error reports.
    name: Option<String>,
    /// Children not yet known to have exited, in spawn order. The end of the
    /// script joins or terminates them, whether or not a handle is left.
    live: Vec<Rc<Process>>,
    /// `live.len()` at which `spawn` next prunes the list.
    prune_at: usize,
    /// In a spawned child, the write end of its result pipe: a grandchild
    /// closes its inherited copy (else the parent would wait for its EOF).
    result_fd: Option<i32>,
}

impl ProcState {
    fn next_name(&mut self) -> String {
        self.count += 1;
        match &self.name {
            None => format!("Process-{}", self.count),
            Some(me) => format!("{me}:{}", self.count),
        }
    }

    /// In a freshly forked child: the parent's children are not its own. Their
    /// handles are leaked, not dropped: dropping would write to (and so copy)
    /// the pages they sit on, for nothing, in every child. Their pipes stay
    /// open but unused (a child cannot join a sibling).
    fn after_fork(&mut self) {
        if let Some(fd) = self.result_fd.take() {
            crate::os::fdio::close_raw(fd);
        }
        std::mem::forget(std::mem::take(&mut self.live));
        self.count = 0;
        self.prune_at = 0;
        self.daemon = false;
    }

    fn add(&mut self, p: Rc<Process>) {
        if self.live.len() >= self.prune_at {
            self.live.retain(|p| !p.collect());
            self.prune_at = (self.live.len() * 2).max(64);
        }
        self.live.push(p);
    }
}

/// Forks a child that runs `body` on the interpreter's copy and ends with the
/// code it returns (after flushing its own output). The parent's buffered output
/// is flushed first so nothing is printed twice. Used by spawn/daemon and the
/// pool's workers. In the child, the parent's children are forgotten. A daemon
/// may not fork (`ProcessError`), as in Python.
///
/// The child ends with `_exit` as soon as `body` returns and `interp.out` is
/// flushed: output must go through `interp.out` or (unbuffered) stderr, never
/// Rust's `print!`, whose buffer is not flushed there.
pub fn fork_child(interp: &mut Interp, body: impl FnOnce(&mut Interp) -> i32) -> Res<Pid> {
    if interp.procs.daemon {
        return fail(
            "ProcessError",
            "a daemon process may not have children of its own",
        );
    }
    interp.out.flush()?;
    match osp::fork_with(|| {
        interp.out.discard();
        interp.procs.after_fork();
        interp.exit_signal = None;
        let code = body(interp);
        let code = match interp.out.flush() {
            Err(Unwind::Exit(n)) if code == 0 => n,
            _ => code,
        };
        // All output went through `interp.out` (now flushed) or unbuffered
        // stderr: nothing is left for `fork_with` to flush.
        osp::exit_child(code)
    }) {
        Ok(pid) => Ok(pid),
        Err(e) => fail("ProcessError", format!("cannot fork: {e}")),
    }
}

/// Called after a sweep reaped children: closes the result pipes of those that
/// have exited (their results stay for `join`) and drops them from the list.
pub fn collect_exited(interp: &mut Interp) {
    interp.procs.live.retain(|p| !p.collect());
}

/// At the end of a script, or of a spawned child's call: daemons are terminated
/// (SIGTERM, SIGKILL after a grace period), then the other children joined.
/// When a signal is ending the program (`interp.exit_signal`), or arrives
/// while this waits, every child is terminated instead. Returns an exit code
/// that overrides the program's when waiting was cut short (by a signal, or an
/// error in a signal handler).
pub fn at_exit(interp: &mut Interp) -> Option<i32> {
    let live = std::mem::take(&mut interp.procs.live);
    let mut code = None;
    // Daemons first, as Python's multiprocessing does at exit: their work has no
    // meaning once the main code is done, so they do not outlive it while the
    // other children are joined.
    let daemons: Vec<Pid> = live
        .iter()
        .filter(|p| p.daemon && !p.collect())
        .map(|p| p.pid)
        .collect();
    if !daemons.is_empty() {
        osp::terminate_all(&daemons, GRACE);
    }
    if interp.exit_signal.is_none() {
        for p in live.iter().filter(|p| !p.daemon) {
            match p.wait(interp, None) {
                Ok(_) => {}
                Err(Unwind::Exit(n)) => {
                    code = Some(n);
                    break;
                }
                Err(Unwind::Error(e)) => {
                    report_error(interp, &e);
                    code = Some(1);
                    break;
                }
                Err(_) => break,
            }
        }
    }
    let running: Vec<Pid> = live
        .iter()
        .filter(|p| !p.collect())
        .map(|p| p.pid)
        .collect();
    if !running.is_empty() {
        osp::terminate_all(&running, GRACE);
        for p in &live {
            p.collect();
        }
    }
    code
}

/// Reports an uncaught error: as the CLI does in the main script, naming the
/// process and its pid in a child (`error[Kind] in Process-1 (pid=4242): ...`).
pub fn report_error(interp: &mut Interp, e: &RtError) {
    let _ = interp.out.flush();
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let mut text = crate::diagnostic::render(&e.kind, &e.message, e.span, color);
    if let Some(name) = &interp.procs.name {
        let tag = format!("error[{}]", e.kind);
        if let Some(i) = text.find(&tag) {
            let who = format!(" in {name} (pid={})", std::process::id());
            text.insert_str(i + tag.len(), &who);
        }
    }
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn exit(_: &mut Interp, args: Args) -> Res<Value> {
    let [code] = args.bind("exit", ["code"], 0)?;
    match code {
        None | Some(Value::Nil) => Err(Unwind::Exit(0)),
        Some(Value::Int(c)) => Err(Unwind::Exit((c & 0xff) as i32)),
        Some(Value::Bool(b)) => Err(Unwind::Exit(b as i32)),
        Some(other) => fail(
            "TypeError",
            format!("exit() needs an int code, not {}", other.type_name()),
        ),
    }
}

fn getpid(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("getpid", [], 0)?;
    Ok(Value::Int(std::process::id() as i64))
}

fn getppid(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("getppid", [], 0)?;
    Ok(Value::Int(std::os::unix::process::parent_id() as i64))
}

/// A signal given as a name ("TERM", "SIGTERM", "usr1") or a number.
pub fn signal_arg(func: &str, v: &Value) -> Res<i32> {
    let found = match v {
        Value::Str(s) => signal::by_name(s),
        Value::Int(n) => i32::try_from(*n)
            .ok()
            .and_then(|n| signal::by_name(&n.to_string())),
        other => {
            return fail(
                "TypeError",
                format!(
                    "{func}(): a signal is a name like \"TERM\" or a number, not {}",
                    other.type_name()
                ),
            )
        }
    };
    match found {
        Some(s) => Ok(s),
        None => fail(
            "ValueError",
            format!(
                "{func}(): unknown signal {}",
                crate::runtime::format::repr(v)
            ),
        ),
    }
}

/// Sends `sig` to `pid`, with the errors a script sees.
pub fn send_signal(func: &str, pid: Pid, sig: i32) -> Res<()> {
    match osp::kill(pid, sig) {
        Ok(()) => Ok(()),
        Err(e) => match e.raw_os_error() {
            Some(libc::ESRCH) => fail(
                "ProcessError",
                format!("{func}(): no process with pid {pid}"),
            ),
            Some(libc::EPERM) => fail(
                "ProcessError",
                format!("{func}(): not allowed to signal pid {pid}"),
            ),
            _ if e.kind() == std::io::ErrorKind::InvalidInput => {
                fail("ValueError", format!("{func}(): {e}"))
            }
            _ => fail("ProcessError", format!("{func}(): {e}")),
        },
    }
}

/// `kill(pid, sig = "TERM")`.
fn kill(_: &mut Interp, args: Args) -> Res<Value> {
    let [pid, sig] = args.bind("kill", ["pid", "sig"], 1)?;
    let pid = match pid {
        Some(Value::Int(p)) if p > 0 && p <= i32::MAX as i64 => p as Pid,
        Some(Value::Int(p)) => return fail("ValueError", format!("kill(): invalid pid {p}")),
        Some(other) => {
            return fail(
                "TypeError",
                format!("kill(): pid must be an int, not {}", other.type_name()),
            )
        }
        None => unreachable!("required"),
    };
    let sig = match sig {
        None | Some(Value::Nil) => libc::SIGTERM,
        Some(v) => signal_arg("kill", &v)?,
    };
    send_signal("kill", pid, sig)?;
    Ok(Value::Nil)
}

/// `on_signal(name, handler)`: `handler(name)` runs between statements when the
/// signal arrives; `nil` removes the handler.
fn on_signal(interp: &mut Interp, args: Args) -> Res<Value> {
    let [sig, handler] = args.bind("on_signal", ["sig", "handler"], 2)?;
    let signo = signal_arg("on_signal", &sig.unwrap_or_default())?;
    match handler.unwrap_or_default() {
        Value::Nil => {
            interp.signal_handlers.remove(&signo);
            signal::unwatch(signo);
        }
        h @ (Value::Func(_) | Value::Builtin(_)) => {
            if let Err(e) = signal::try_watch(signo) {
                return fail("ValueError", format!("on_signal(): {e}"));
            }
            interp.signal_handlers.insert(signo, h);
        }
        other => {
            return fail(
                "TypeError",
                format!(
                    "on_signal(): the handler must be a function or nil, not {}",
                    other.type_name()
                ),
            )
        }
    }
    Ok(Value::Nil)
}

/// `daemonize(pidfile = nil)`: the script goes on in a grandchild in a new
/// session, with the standard streams on /dev/null; this process exits 0.
fn daemonize(interp: &mut Interp, args: Args) -> Res<Value> {
    let [pidfile] = args.bind("daemonize", ["pidfile"], 0)?;
    let path = match pidfile {
        None | Some(Value::Nil) => None,
        Some(Value::Str(s)) => Some(std::path::PathBuf::from(&*s)),
        Some(other) => {
            return fail(
                "TypeError",
                format!(
                    "daemonize(): pidfile must be a str, not {}",
                    other.type_name()
                ),
            )
        }
    };
    interp.out.flush()?;
    match osp::daemonize(path.as_deref()) {
        Ok(()) => {
            // The grandchild: children spawned before are not its own (they
            // die with the original process, by PDEATHSIG).
            interp.procs.after_fork();
            interp.out.discard();
            Ok(Value::Nil)
        }
        Err(e) => fail("ProcessError", format!("daemonize(): {e}")),
    }
}

//! Child processes: fork, the child table, reaping, and waiting with timeouts.
//!
//! PLACEHOLDER IMPLEMENTATION: the signatures below are the contract other modules
//! (command.rs, the runtime) code against; the bodies are minimal and are being
//! replaced by the real design (SIGCHLD self-pipe, sweep, PDEATHSIG, ...).

use std::io;
use std::time::Duration;

pub type Pid = i32;

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl ExitStatus {
    /// The code a script sees: the exit code, or minus the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => -s,
        }
    }
}

/// Why a wait returned without a status.
#[derive(Debug)]
pub enum WaitError {
    /// The timeout passed and the child still runs.
    TimedOut,
    /// A signal the interpreter must handle arrived (see `signal::pending`); the
    /// caller runs handlers and waits again.
    Interrupted,
    /// The pid is not a child of this process (or was already waited for elsewhere).
    NotAChild,
}

/// Forks. The child sets PR_SET_PDEATHSIG, re-checks its parent, runs `child`, and
/// ends with `_exit(code)`; it never returns into the caller. The parent gets the
/// child's pid, already registered in the child table.
pub fn fork_with(child: impl FnOnce() -> i32) -> io::Result<Pid> {
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = child();
            unsafe { libc::_exit(code) }
        }
        pid => {
            register(pid);
            Ok(pid)
        }
    }
}

/// Registers a child started some other way (posix_spawn, a command).
pub fn register(_pid: Pid) {}

/// Reaps every child that has exited, without blocking, keeping the statuses.
pub fn sweep() {}

/// The status of a registered child if it has exited (after a sweep), else None.
pub fn try_status(pid: Pid) -> Option<ExitStatus> {
    let mut st = 0;
    let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
    if r == pid {
        Some(decode(st))
    } else {
        None
    }
}

/// Waits for a registered child to exit. `None` waits for ever. Returns early with
/// `Interrupted` when a signal for the interpreter is pending.
pub fn wait(pid: Pid, timeout: Option<Duration>) -> Result<ExitStatus, WaitError> {
    let _ = timeout;
    let mut st = 0;
    let r = unsafe { libc::waitpid(pid, &mut st, 0) };
    if r == pid {
        Ok(decode(st))
    } else {
        Err(WaitError::NotAChild)
    }
}

fn decode(st: i32) -> ExitStatus {
    if libc::WIFSIGNALED(st) {
        ExitStatus::Signal(libc::WTERMSIG(st))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(st))
    }
}

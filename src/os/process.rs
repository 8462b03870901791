//! Child processes: fork, the child table, reaping, and waiting with timeouts.
//!
//! # The child table
//!
//! Every child (a spawned function, a pool worker, an external command) is
//! registered here. The table maps its pid to "running" or to its exit status once
//! reaped, and keeps that status until the runtime calls [`forget`]. This module is
//! the only caller of `waitpid`, and it only ever waits for a registered pid (never
//! `waitpid(-1)`), so a child started by someone else is never reaped behind their
//! back.
//!
//! Reaping is driven by SIGCHLD: its handler (in `signal`) only raises a flag and
//! wakes the self-pipe; [`sweep_if_signalled`], which the interpreter calls between
//! statements and which every wait here calls when it wakes, then does a
//! `waitpid(pid, WNOHANG)` for each running child. So a child is reaped soon after
//! it exits even if nobody ever waits for it: no zombies.
//!
//! # Process groups
//!
//! Children forked by [`fork_with`] stay in the interpreter's process group: a
//! Ctrl-C at the terminal reaches the whole group, so spawned functions stop with
//! their parent, exactly as the children of a Python `multiprocessing` script do,
//! and the interpreter needs no job control. (Grouping external pipelines, so a
//! timeout can stop one whole, is `command`'s business.)
//!
//! # Orphans
//!
//! A child sets `PR_SET_PDEATHSIG(SIGKILL)` and then re-checks `getppid()`, so it
//! dies with its parent even when the parent is SIGKILLed, and even if the parent
//! died before the `prctl`. PDEATHSIG fires on the death of the parent *thread*:
//! correct here because the interpreter is single-threaded (see `os`).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::os::signal;

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

    /// ADDED. Exited with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// ADDED. Decodes a raw `waitpid` status word.
    pub fn from_raw(st: i32) -> ExitStatus {
        if libc::WIFSIGNALED(st) {
            ExitStatus::Signal(libc::WTERMSIG(st))
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(st))
        }
    }
}

/// ADDED. "exited with code 2", "killed by signal 9 (SIGKILL)" (see
/// `signal::describe`).
impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&signal::describe(*self))
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

#[derive(Clone, Copy, Debug)]
enum Slot {
    /// Not reaped yet. `forgotten`: the runtime no longer wants the status, so the
    /// entry goes as soon as the child is reaped.
    Running {
        forgotten: bool,
    },
    Exited(ExitStatus),
    /// `waitpid` said ECHILD: someone else reaped it, against the rules.
    Lost,
}

/// The child table. The interpreter is single-threaded, but a `Mutex` keeps this
/// sound anyway; it is never held across a `fork` or a blocking call, and the
/// signal handler never touches it.
static TABLE: Mutex<BTreeMap<Pid, Slot>> = Mutex::new(BTreeMap::new());

fn table() -> MutexGuard<'static, BTreeMap<Pid, Slot>> {
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Reap {
    Running,
    Exited(ExitStatus),
    Gone,
}

/// One `waitpid(pid, WNOHANG)`. `pid` must be > 0.
/// How many children this process has reaped, wherever that happened (a sweep
/// between statements, inside `signal::sleep`, a wait): the runtime compares it
/// with the count it last saw to release what it holds for exited children.
static REAPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The number of children reaped so far (see `REAPED`).
pub fn reaped_count() -> u64 {
    REAPED.load(std::sync::atomic::Ordering::Relaxed)
}

fn reap(pid: Pid) -> Reap {
    loop {
        let mut st = 0;
        // SAFETY: a non-blocking wait for one specific pid.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            REAPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Reap::Exited(ExitStatus::from_raw(st));
        }
        if r == 0 {
            return Reap::Running;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Reap::Gone;
        }
    }
}

fn flush_std() {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
}

/// Forks. The child sets PR_SET_PDEATHSIG, re-checks its parent, runs `child`, and
/// ends with `_exit(code)`; it never returns into the caller. The parent gets the
/// child's pid, already registered in the child table.
///
/// In the child, before `child` runs: the child table is emptied (the parent's
/// children are not its own), pending signals are cleared and the signal
/// self-pipe is replaced by a fresh one. A panic in `child` ends it with
/// `_exit(101)` (with `panic = "abort"`, as in release builds, it aborts instead:
/// SIGABRT). Rust's stdout and stderr are flushed before and after.
/// The child stays in the parent's process group (see the module docs).
pub fn fork_with(child: impl FnOnce() -> i32) -> io::Result<Pid> {
    signal::ensure_installed();
    flush_std();
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    // Signals stay blocked across the fork until the child has reset its signal
    // state: one sent to the child at once (`p.terminate()` right after `spawn`)
    // then stays pending in the kernel instead of being recorded by the handler
    // and wiped by `reset_after_fork`.
    let old_mask = block_all_signals();
    // SAFETY: the interpreter is single-threaded when it forks (see `os`), so the
    // child may run arbitrary code; it never returns from `in_child`.
    match unsafe { libc::fork() } {
        -1 => {
            let e = io::Error::last_os_error();
            restore_signals(&old_mask);
            Err(e)
        }
        0 => in_child(parent, &old_mask, child),
        pid => {
            restore_signals(&old_mask);
            register(pid);
            Ok(pid)
        }
    }
}

/// Blocks every signal that can be blocked; returns the previous mask.
fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigfillset/sigprocmask on local sets.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, &mut old);
        old
    }
}

fn restore_signals(mask: &libc::sigset_t) {
    // SAFETY: sets the mask saved by `block_all_signals`.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
}

fn in_child(parent: Pid, old_mask: &libc::sigset_t, child: impl FnOnce() -> i32) -> ! {
    // SAFETY: plain syscalls.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        // The parent died before the prctl took effect: we were reparented and
        // no death signal will ever come.
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    // The parent's children are not ours. Leaked rather than freed: freeing
    // would write to (and so copy) every page the table's nodes sit on.
    std::mem::forget(std::mem::take(&mut *table()));
    signal::reset_after_fork();
    restore_signals(old_mask);
    let code = match panic::catch_unwind(AssertUnwindSafe(child)) {
        Ok(code) => code,
        Err(payload) => {
            // Dropping the payload could panic again; it does not matter here.
            std::mem::forget(payload);
            101
        }
    };
    flush_std();
    // SAFETY: ends this process without running the parent's atexit handlers or
    // unwinding into the frames copied from it.
    unsafe { libc::_exit(code) }
}

/// ADDED. Ends a child forked by [`fork_with`] at once with `_exit(code)`,
/// skipping `fork_with`'s epilogue (the flush of Rust's stdout and stderr):
/// for a child that has written its own output and knows nothing is left in
/// those buffers. Writing to the pages they sit on would copy them, which is
/// most of what a short-lived child costs.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: ends this process without unwinding into frames copied from the
    // parent or running its atexit handlers, as `in_child` does.
    unsafe { libc::_exit(code) }
}

/// Registers a child started some other way (posix_spawn, a command). From then
/// on this module reaps it: its owner must not `waitpid` it (nor use
/// `std::process::Child::wait` on it) but ask `wait`/`try_status`.
///
/// A pid still in the table with an old status (its earlier owner was never
/// `forget`ten and the kernel reused the pid) is overwritten.
pub fn register(pid: Pid) {
    if pid <= 0 {
        return;
    }
    signal::ensure_installed();
    table().insert(pid, Slot::Running { forgotten: false });
}

/// ADDED. Drops the table's entry for `pid`: the runtime no longer needs its
/// status. A child still running is kept until it is reaped (so it never becomes
/// a zombie), then dropped.
pub fn forget(pid: Pid) {
    let mut t = table();
    match t.get_mut(&pid) {
        Some(Slot::Running { forgotten }) => *forgotten = true,
        Some(_) => {
            t.remove(&pid);
        }
        None => {}
    }
}

/// Reaps every child that has exited, without blocking, keeping the statuses.
/// One `waitpid(pid, WNOHANG)` per running registered child.
pub fn sweep() {
    table().retain(|&pid, slot| match *slot {
        Slot::Running { forgotten } => match reap(pid) {
            Reap::Running => true,
            Reap::Exited(st) => {
                *slot = Slot::Exited(st);
                !forgotten
            }
            Reap::Gone => {
                *slot = Slot::Lost;
                !forgotten
            }
        },
        _ => true,
    });
}

/// ADDED. `sweep`, but only if SIGCHLD arrived since the last one: one atomic
/// load otherwise. The interpreter calls it between statements. True when it
/// swept.
pub fn sweep_if_signalled() -> bool {
    if signal::take_child_exited() {
        sweep();
        true
    } else {
        false
    }
}

/// ADDED. The status of `pid` if the table already holds it (reaped by a
/// sweep or a wait): a table lookup, no system call.
pub fn reaped_status(pid: Pid) -> Option<ExitStatus> {
    match table().get(&pid) {
        Some(Slot::Exited(st)) => Some(*st),
        _ => None,
    }
}

/// The status of `pid` now: `Some(Ok)` exited, `Some(Err)` not a child, `None`
/// running. Reaps `pid` if it has exited. A pid that is not registered but is
/// this process's child is adopted (registered) rather than refused.
fn check(pid: Pid) -> Option<Result<ExitStatus, WaitError>> {
    if pid <= 0 {
        return Some(Err(WaitError::NotAChild));
    }
    let mut t = table();
    let forgotten = match t.get(&pid) {
        Some(Slot::Exited(st)) => return Some(Ok(*st)),
        Some(Slot::Lost) => return Some(Err(WaitError::NotAChild)),
        Some(Slot::Running { forgotten }) => Some(*forgotten),
        None => None,
    };
    match reap(pid) {
        Reap::Running => {
            t.entry(pid).or_insert(Slot::Running { forgotten: false });
            None
        }
        Reap::Exited(st) => {
            if forgotten == Some(true) {
                t.remove(&pid);
            } else {
                t.insert(pid, Slot::Exited(st));
            }
            Some(Ok(st))
        }
        Reap::Gone => {
            if forgotten.is_some() {
                t.insert(pid, Slot::Lost);
            }
            Some(Err(WaitError::NotAChild))
        }
    }
}

/// The status of a registered child if it has exited (after a sweep), else None.
/// It checks `pid` itself, so it is exact even before the next sweep.
pub fn try_status(pid: Pid) -> Option<ExitStatus> {
    check(pid).and_then(Result::ok)
}

/// Waits for a registered child to exit. `None` waits for ever. Returns early with
/// `Interrupted` when a signal for the interpreter is pending.
///
/// A child that has exited wins over a pending signal. A zero timeout checks once.
/// While waiting it also reaps any other child that exits.
pub fn wait(pid: Pid, timeout: Option<Duration>) -> Result<ExitStatus, WaitError> {
    signal::ensure_installed();
    // An unrepresentable deadline is as good as none.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let forever = deadline.is_none();
    loop {
        // Drain first, then check: a SIGCHLD after the check leaves a byte that
        // ends the poll below at once.
        signal::drain_wake();
        sweep_if_signalled();
        if let Some(r) = check(pid) {
            return r;
        }
        if signal::pending() {
            return Err(WaitError::Interrupted);
        }
        let remaining = if forever {
            None
        } else {
            let dl = deadline.unwrap_or_else(Instant::now);
            let now = Instant::now();
            if now >= dl {
                return Err(WaitError::TimedOut);
            }
            Some(dl - now)
        };
        signal::wait_wake(remaining);
    }
}

/// ADDED. The registered children that are still running (after a sweep),
/// forgotten ones included.
pub fn children() -> Vec<Pid> {
    sweep();
    table()
        .iter()
        .filter(|(_, s)| matches!(s, Slot::Running { .. }))
        .map(|(&p, _)| p)
        .collect()
}

/// ADDED. Sends `sig` to `pid`. A registered child that has already been reaped
/// is not signalled (the kernel may have given its pid to another process) and
/// `Ok` is returned; a registered child that has exited but is not reaped yet is
/// reaped instead. `pid` must be > 0: process groups and "everyone" (0, -1) are
/// refused with `InvalidInput`. `sig` 0 only checks that the process exists.
pub fn kill(pid: Pid, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid pid {pid}"),
        ));
    }
    // Holding the table lock: an unreaped child's pid cannot be reused under us.
    let mut t = table();
    if let Some(slot) = t.get_mut(&pid) {
        match *slot {
            Slot::Exited(_) | Slot::Lost => return Ok(()),
            Slot::Running { forgotten } => match reap(pid) {
                Reap::Running => {}
                Reap::Exited(st) => {
                    if forgotten {
                        t.remove(&pid);
                    } else {
                        *slot = Slot::Exited(st);
                    }
                    return Ok(());
                }
                Reap::Gone => {
                    *slot = Slot::Lost;
                    return Ok(());
                }
            },
        }
    }
    // SAFETY: kill(2) on a positive pid.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// How long `terminate_all` waits for children to die after SIGKILL (only a
/// process stuck in the kernel, state D, takes longer).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Waits (ignoring pending signals) until none of `pids` is running, or `d` passes.
fn wait_all(pids: &[Pid], d: Duration) {
    let deadline = Instant::now() + d;
    loop {
        signal::drain_wake();
        sweep();
        if !pids.iter().any(|&p| check(p).is_none()) {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        signal::wait_wake(Some(deadline - now));
    }
}

/// ADDED. Stops registered children: SIGTERM (and SIGCONT, so a stopped child
/// sees it) to each running one in `pids`, then SIGKILL to those still running
/// after `grace`; all are reaped. Returns as soon as all have exited. Pending
/// signals do not cut it short. Pids that are not registered are skipped.
/// Returns the status of every pid in `pids` that has exited, in `pids` order.
pub fn terminate_all(pids: &[Pid], grace: Duration) -> Vec<(Pid, ExitStatus)> {
    signal::ensure_installed();
    sweep();
    let running: Vec<Pid> = {
        let t = table();
        pids.iter()
            .copied()
            .filter(|p| matches!(t.get(p), Some(Slot::Running { .. })))
            .collect()
    };
    for &p in &running {
        let _ = kill(p, libc::SIGTERM);
        let _ = kill(p, libc::SIGCONT);
    }
    wait_all(&running, grace);
    let survivors: Vec<Pid> = running
        .iter()
        .copied()
        .filter(|&p| check(p).is_none())
        .collect();
    for &p in &survivors {
        let _ = kill(p, libc::SIGKILL);
    }
    if !survivors.is_empty() {
        wait_all(&survivors, KILL_WAIT);
    }
    pids.iter()
        .filter_map(|&p| try_status(p).map(|st| (p, st)))
        .collect()
}

/// ADDED. Turns this process into a daemon, the Unix way: fork; the child calls
/// `setsid` and forks again; the grandchild (adopted by init, in a new session,
/// with no controlling terminal) is the one that returns `Ok(())` and goes on
/// with the script. The original process and the intermediate child `_exit(0)`;
/// the original waits (briefly) until the grandchild has written `pidfile`, so
/// whoever started the script can read the pid as soon as it returns.
///
/// The grandchild gets an empty child table (children spawned before, which have
/// PDEATHSIG set, die with the original process) and a fresh signal state; its
/// stdin, stdout and stderr go to `/dev/null` after the pidfile is written. The
/// working directory is kept (unlike the classic `chdir("/")`): scripts use
/// relative paths, and the SPEC does not ask for it. The umask is kept too.
///
/// Errors: a failed first fork returns `Err` in the original process; a failed
/// second fork returns `Err` in the intermediate child; a pidfile that cannot be
/// written returns `Err` in the grandchild, with stderr still attached so the
/// error can be seen.
pub fn daemonize(pidfile: Option<&Path>) -> io::Result<()> {
    signal::ensure_installed();
    flush_std();
    // Closed (EOF for the original) when the grandchild is set up or gone.
    let (mut ready_r, ready_w) = os_pipe::pipe()?;
    // SAFETY: single-threaded fork (see `os`).
    match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => {}
        _ => {
            drop(ready_w);
            let mut b = [0u8; 1];
            loop {
                match ready_r.read(&mut b) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    _ => break,
                }
            }
            // SAFETY: leaves without unwinding or running destructors.
            unsafe { libc::_exit(0) }
        }
    }
    drop(ready_r);
    // SAFETY: plain syscalls in a fresh child; setsid cannot fail there (a
    // fresh child is never a process-group leader).
    unsafe { libc::setsid() };
    match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => {}
        // SAFETY: as above.
        _ => unsafe { libc::_exit(0) },
    }
    table().clear();
    signal::reset_after_fork();
    if let Some(path) = pidfile {
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        std::fs::write(path, format!("{me}\n"))?;
    }
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    drop(ready_w);
    Ok(())
}

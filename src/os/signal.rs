//! Signals: the interpreter's handlers, the pending set, and the wake-up fd that
//! every blocking wait polls so a signal interrupts it promptly.
//!
//! # Design
//!
//! The handlers do only async-signal-safe work: they set a bit in a static atomic
//! mask (recording the order in which signals first arrived), raise a flag for
//! SIGCHLD, and write one byte to a non-blocking, `O_CLOEXEC` self-pipe. Everything
//! else (running `on_signal` handlers, reaping children) happens later, on the
//! interpreter's thread, between statements or inside a blocking wait that polls
//! [`wake_fd`].
//!
//! Handlers are installed WITHOUT `SA_RESTART`, so a blocking syscall (a read, a
//! futex wait, `poll`) returns `EINTR` when one runs and its caller can look at
//! [`pending`].
//!
//! SIGCHLD only wakes: it never becomes pending (unless a script watches it).
//! SIGINT, SIGTERM and SIGHUP always become pending, except one that was already
//! ignored when the interpreter started (`nohup`, a background job of a
//! non-interactive shell): it stays ignored, as a shell would leave it, until a
//! script explicitly watches it.
//!
//! This module must never take a lock or allocate inside a handler, and never call
//! `waitpid` (reaping belongs to `process`).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{IntoRawFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::os::process::{self, ExitStatus};

/// Signals 1..=64 each get one bit of a `u64` mask.
const MAX_SIGNO: i32 = 64;

/// Read end and write end of the self-pipe (-1 until `install`).
static WAKE_R: AtomicI32 = AtomicI32::new(-1);
static WAKE_W: AtomicI32 = AtomicI32::new(-1);
/// The pid that created the current self-pipe: a forked child sees another pid
/// and so knows that its inherited pipe is shared with its parent.
static OWNER: AtomicI32 = AtomicI32::new(0);
/// A forked child's inherited copy of its parent's self-pipe, closed when the
/// child makes its own (see `reset_after_fork`).
static STALE_R: AtomicI32 = AtomicI32::new(-1);
static STALE_W: AtomicI32 = AtomicI32::new(-1);

/// Signals that have arrived and not been taken.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// Per signal, the sequence number of its (first, not yet taken) arrival.
static ARRIVAL: [AtomicU64; MAX_SIGNO as usize + 1] =
    [const { AtomicU64::new(0) }; MAX_SIGNO as usize + 1];
static SEQ: AtomicU64 = AtomicU64::new(0);
/// Set by the handler when SIGCHLD arrives; taken by `process::sweep_if_signalled`.
static CHILD_EXITED: AtomicBool = AtomicBool::new(false);

/// Signals that become pending when they arrive.
static WATCHED: AtomicU64 = AtomicU64::new(0);
/// Signals whose disposition is our handler (so `reset_for_exec` knows what to undo).
static CAUGHT: AtomicU64 = AtomicU64::new(0);
/// INT/TERM/HUP found ignored at the first `install`; left ignored.
static INHERITED_IGN: AtomicU64 = AtomicU64::new(0);
static FIRST_INSTALL_DONE: AtomicBool = AtomicBool::new(false);

/// The longest single `poll` a wait makes before re-checking its condition. With
/// the handlers in place every signal wakes the poll at once; the cap only bounds
/// the damage if something (a library, a `SIG_IGN` for SIGCHLD) took our handler.
pub(crate) const MAX_NAP: Duration = Duration::from_secs(1);

fn bit(signo: i32) -> u64 {
    if (1..=MAX_SIGNO).contains(&signo) {
        1u64 << (signo - 1)
    } else {
        0
    }
}

fn signals_in(mask: u64) -> impl Iterator<Item = i32> {
    (1..=MAX_SIGNO).filter(move |&s| mask & bit(s) != 0)
}

extern "C" fn on_signal(signo: libc::c_int) {
    // SAFETY: errno is thread-local; saving and restoring it keeps the
    // interrupted code's view of errno intact.
    let saved_errno = unsafe { *libc::__errno_location() };
    if signo == libc::SIGCHLD {
        CHILD_EXITED.store(true, SeqCst);
    }
    let b = bit(signo);
    if WATCHED.load(SeqCst) & b != 0 {
        if PENDING.load(SeqCst) & b == 0 {
            ARRIVAL[signo as usize].store(SEQ.fetch_add(1, SeqCst) + 1, SeqCst);
        }
        PENDING.fetch_or(b, SeqCst);
    }
    let fd = WAKE_W.load(SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, so a
        // full pipe (EAGAIN) just drops the byte: the reader is awake anyway.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: see above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// Sets our handler for `signo` (no `SA_RESTART`).
fn catch(signo: i32) -> io::Result<()> {
    let flags = if signo == libc::SIGCHLD {
        // Stopped children are not our business (we never wait with WUNTRACED).
        libc::SA_NOCLDSTOP
    } else {
        0
    };
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the
    // handler is an `extern "C" fn(c_int)` doing only async-signal-safe work.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(signo, &sa, ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    CAUGHT.fetch_or(bit(signo), SeqCst);
    Ok(())
}

/// Sets `signo`'s disposition to `SIG_DFL`. Async-signal-safe.
fn set_default(signo: i32) {
    // SAFETY: as in `catch`; sigaction(2) is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(signo, &sa, ptr::null_mut());
    }
}

fn is_ignored(signo: i32) -> bool {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null `act` only queries the current disposition into `old`.
    let r = unsafe { libc::sigaction(signo, ptr::null(), old.as_mut_ptr()) };
    // SAFETY: zero-initialised, and filled in by the kernel when r == 0.
    r == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// A fresh self-pipe: `O_CLOEXEC` from `os_pipe`, both ends made non-blocking.
fn make_pipe() -> io::Result<(RawFd, RawFd)> {
    let (r, w) = os_pipe::pipe()?;
    let (r, w) = (r.into_raw_fd(), w.into_raw_fd());
    for fd in [r, w] {
        // SAFETY: fcntl on descriptors we own.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    Ok((r, w))
}

fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Installs the interpreter's handlers (SIGCHLD, SIGINT, SIGTERM, SIGHUP) and the
/// self-pipe. Called once at start-up, and again in a forked child that needs a
/// fresh self-pipe.
///
/// Idempotent within one process: a second call re-asserts the handlers and keeps
/// the pipe. In a forked child (a different pid from the one that made the pipe)
/// it replaces the inherited pipe, which the parent still uses, with a new one.
/// If no pipe can be made (out of descriptors) waits still work, through `EINTR`,
/// only less promptly.
pub fn install() {
    let me = getpid();
    if OWNER.load(SeqCst) != me {
        if let Ok((r, w)) = make_pipe() {
            // New pipe first, then close the old one: a handler running in
            // between writes to a pipe that is still open.
            let old_r = WAKE_R.swap(r, SeqCst);
            let old_w = WAKE_W.swap(w, SeqCst);
            let stale_r = STALE_R.swap(-1, SeqCst);
            let stale_w = STALE_W.swap(-1, SeqCst);
            for fd in [old_r, old_w, stale_r, stale_w] {
                if fd >= 0 {
                    // SAFETY: the old ends are ours and no longer published.
                    unsafe { libc::close(fd) };
                }
            }
            OWNER.store(me, SeqCst);
        }
    }
    if !FIRST_INSTALL_DONE.swap(true, SeqCst) {
        let mut ign = 0;
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            if is_ignored(s) {
                ign |= bit(s);
            }
        }
        INHERITED_IGN.store(ign, SeqCst);
        let core = bit(libc::SIGINT) | bit(libc::SIGTERM) | bit(libc::SIGHUP);
        WATCHED.fetch_or(core & !ign, SeqCst);
    }
    let _ = catch(libc::SIGCHLD);
    for s in signals_in(WATCHED.load(SeqCst)) {
        let _ = catch(s);
    }
}

/// `install`, unless this process already did. Cheap (one `getpid`).
pub(crate) fn ensure_installed() {
    if OWNER.load(SeqCst) != getpid() {
        install();
    }
}

/// ADDED. For a freshly forked child (called by `process::fork_with` and
/// `process::daemonize`): forgets whatever was pending in the parent, and stops
/// using the parent's self-pipe. Its own pipe is made when it first waits
/// (every wait goes through `ensure_installed`), so a child that never waits
/// (most spawned calls) pays no system call for it. Watched signals stay
/// watched, as dispositions survive `fork`.
pub fn reset_after_fork() {
    // First stop the handler writing into the parent's pipe.
    STALE_W.store(WAKE_W.swap(-1, SeqCst), SeqCst);
    STALE_R.store(WAKE_R.swap(-1, SeqCst), SeqCst);
    OWNER.store(0, SeqCst);
    PENDING.store(0, SeqCst);
    for a in &ARRIVAL {
        a.store(0, SeqCst);
    }
    CHILD_EXITED.store(false, SeqCst);
}

/// ADDED. Restores what an exec'd program expects: `SIG_DFL` for every signal we
/// catch and for SIGPIPE (which Rust's runtime ignores), and an empty signal
/// mask. Signals inherited as ignored stay ignored, as `exec` preserves them.
///
/// Async-signal-safe (only `sigaction`, `sigprocmask` and atomics): meant for the
/// child between `fork` and `exec`.
pub fn reset_for_exec() {
    let caught = CAUGHT.load(SeqCst) | bit(libc::SIGPIPE);
    let mut s = 1;
    while s <= MAX_SIGNO {
        if caught & bit(s) != 0 {
            set_default(s);
        }
        s += 1;
    }
    // SAFETY: sigemptyset/sigprocmask on a local set; both async-signal-safe.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, set.as_ptr(), ptr::null_mut());
    }
}

/// ADDED. Ends this process the way `signo` would have ended it if we had never
/// caught it, so the parent sees "killed by signal N" (`exitcode == -N`). Falls
/// back to `_exit(128 + signo)` for a signal whose default action is to ignore.
/// The caller flushes its output first.
pub fn die_by(signo: i32) -> ! {
    set_default(signo);
    // SAFETY: plain syscalls; `_exit` never returns.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), signo);
        libc::sigprocmask(libc::SIG_UNBLOCK, set.as_ptr(), ptr::null_mut());
        libc::raise(signo);
        libc::_exit(128 + signo)
    }
}

/// True when a signal that the interpreter must act on (a handler registered with
/// `watch`, SIGINT, SIGTERM) has arrived and not yet been taken.
pub fn pending() -> bool {
    PENDING.load(SeqCst) != 0
}

/// Takes the pending signals (signal numbers, oldest first) and clears them.
/// A signal that arrived several times before being taken is listed once.
pub fn take() -> Vec<i32> {
    let mask = PENDING.swap(0, SeqCst);
    let mut v: Vec<(u64, i32)> = signals_in(mask)
        .map(|s| (ARRIVAL[s as usize].load(SeqCst), s))
        .collect();
    v.sort_unstable();
    v.into_iter().map(|(_, s)| s).collect()
}

/// Takes the "SIGCHLD arrived" flag (a plain load when it is not set).
pub(crate) fn take_child_exited() -> bool {
    CHILD_EXITED.load(SeqCst) && CHILD_EXITED.swap(false, SeqCst)
}

/// ADDED. True when SIGCHLD arrived since the last sweep (does not take it).
#[inline]
pub fn child_exited() -> bool {
    CHILD_EXITED.load(SeqCst)
}

/// A descriptor that becomes readable whenever a signal arrives (SIGCHLD included).
/// Blocking waits add it to their `poll` set; `drain_wake` empties it.
///
/// Installs the handlers first if this process has not. It is `O_CLOEXEC` and
/// non-blocking; it changes in a forked child, so do not cache it across a fork.
pub fn wake_fd() -> RawFd {
    ensure_installed();
    WAKE_R.load(SeqCst)
}

/// Empties the wake-up descriptor.
pub fn drain_wake() {
    let fd = WAKE_R.load(SeqCst);
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reading into a local buffer from our non-blocking pipe.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            continue;
        }
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break; // EAGAIN: empty
    }
}

/// Blocks until the wake fd is readable, a handler interrupts the poll, or
/// `timeout` passes (`None`: `MAX_NAP`). Does not drain.
pub(crate) fn wait_wake(timeout: Option<Duration>) {
    let t = timeout.unwrap_or(MAX_NAP).min(MAX_NAP);
    // Round up so a short remaining time does not turn into a busy loop of
    // zero-timeout polls.
    let ms = t.as_nanos().div_ceil(1_000_000) as libc::c_int;
    let mut pfd = libc::pollfd {
        fd: WAKE_R.load(SeqCst),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd (a negative fd is ignored by poll).
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

/// Starts catching `signo` so that it becomes pending instead of taking its
/// default action (for `on_signal`). Errors are ignored; see `try_watch`.
pub fn watch(signo: i32) {
    let _ = try_watch(signo);
}

/// ADDED. `watch`, saying why it could not: SIGKILL and SIGSTOP cannot be
/// caught, and SIGSEGV, SIGBUS, SIGFPE and SIGILL are refused because a handler
/// that returns would turn a real fault (or Rust's stack-overflow guard) into an
/// endless loop.
pub fn try_watch(signo: i32) -> io::Result<()> {
    let refused = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
    ];
    if bit(signo) == 0 || refused.contains(&signo) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot handle {}", name(signo)),
        ));
    }
    ensure_installed();
    WATCHED.fetch_or(bit(signo), SeqCst);
    INHERITED_IGN.fetch_and(!bit(signo), SeqCst);
    catch(signo)
}

/// ADDED. Undoes `watch`: `signo` stops becoming pending. SIGINT, SIGTERM and
/// SIGHUP go back to the interpreter's own handling (pending, which the runtime
/// turns into an exit); SIGCHLD keeps waking; any other signal gets `SIG_DFL`.
pub fn unwatch(signo: i32) {
    let core = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    if core.contains(&signo) {
        return;
    }
    WATCHED.fetch_and(!bit(signo), SeqCst);
    PENDING.fetch_and(!bit(signo), SeqCst);
    if signo != libc::SIGCHLD && bit(signo) != 0 {
        set_default(signo);
        CAUGHT.fetch_and(!bit(signo), SeqCst);
    }
}

/// Sleeps for `d`, returning `Err(())` early if a signal becomes pending or
/// children were reaped (so the caller can release what it holds for them and
/// sleep again for the rest).
///
/// SIGCHLD reaps the exited children at once (so none stays a zombie during a
/// long sleep). A signal already pending on entry returns `Err(())` at once.
#[allow(clippy::result_unit_err)] // the contract other modules code against
pub fn sleep(d: Duration) -> Result<(), ()> {
    ensure_installed();
    let deadline = Instant::now().checked_add(d);
    loop {
        if pending() {
            return Err(());
        }
        let remaining = match deadline {
            Some(dl) => {
                let now = Instant::now();
                if now >= dl {
                    return Ok(());
                }
                Some(dl - now)
            }
            None => None,
        };
        wait_wake(remaining);
        drain_wake();
        let before = process::reaped_count();
        process::sweep_if_signalled();
        if process::reaped_count() != before {
            // Children were reaped: the caller may have resources to release
            // for them (their result pipes), so it gets control back.
            return Err(());
        }
    }
}

/// Standard Linux signals, by number, with their short names.
const NAMES: &[(i32, &str)] = &[
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGILL, "ILL"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGABRT, "ABRT"),
    (libc::SIGBUS, "BUS"),
    (libc::SIGFPE, "FPE"),
    (libc::SIGKILL, "KILL"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGSEGV, "SEGV"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGPIPE, "PIPE"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGSTKFLT, "STKFLT"),
    (libc::SIGCHLD, "CHLD"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGSTOP, "STOP"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGTTIN, "TTIN"),
    (libc::SIGTTOU, "TTOU"),
    (libc::SIGURG, "URG"),
    (libc::SIGXCPU, "XCPU"),
    (libc::SIGXFSZ, "XFSZ"),
    (libc::SIGVTALRM, "VTALRM"),
    (libc::SIGPROF, "PROF"),
    (libc::SIGWINCH, "WINCH"),
    (libc::SIGIO, "IO"),
    (libc::SIGPWR, "PWR"),
    (libc::SIGSYS, "SYS"),
];

/// Other names accepted by `by_name` (as `kill -l` and POSIX know them).
const ALIASES: &[(i32, &str)] = &[
    (libc::SIGABRT, "IOT"),
    (libc::SIGIO, "POLL"),
    (libc::SIGCHLD, "CLD"),
];

/// The signal number for a name: "USR1", "SIGUSR1", "usr1" or "10". Covers the
/// standard Linux signals, their usual aliases (IOT, POLL, CLD) and the real-time
/// signals as `kill -l` names them ("RTMIN", "RTMIN+3", "RTMAX-2"). A number must
/// be a valid signal, or 0 (which `kill` uses to probe for a process).
pub fn by_name(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    if let Ok(n) = upper.parse::<i32>() {
        return (n == 0 || bit(n) != 0 && n <= libc::SIGRTMAX()).then_some(n);
    }
    let n = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(s, _)) = NAMES.iter().chain(ALIASES).find(|(_, nm)| *nm == n) {
        return Some(s);
    }
    let (lo, hi) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let rt = if let Some(rest) = n.strip_prefix("RTMIN") {
        lo + offset(rest, '+')?
    } else if let Some(rest) = n.strip_prefix("RTMAX") {
        hi - offset(rest, '-')?
    } else {
        return None;
    };
    (lo..=hi).contains(&rt).then_some(rt)
}

/// "" -> 0, "+3" (with `sign` '+') -> 3.
fn offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    let digits = rest.strip_prefix(sign)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The short name of a signal ("SIGKILL"), for messages. Real-time signals are
/// named as `kill -l` does ("SIGRTMIN+3", "SIGRTMAX-2"); an unknown number gives
/// "signal N".
pub fn name(signo: i32) -> String {
    if let Some(&(_, n)) = NAMES.iter().find(|(s, _)| *s == signo) {
        return format!("SIG{n}");
    }
    let (lo, hi) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if (lo..=hi).contains(&signo) {
        let k = signo - lo;
        return if k == 0 {
            "SIGRTMIN".into()
        } else if signo == hi {
            "SIGRTMAX".into()
        } else if k <= (hi - lo) / 2 {
            format!("SIGRTMIN+{k}")
        } else {
            format!("SIGRTMAX-{}", hi - signo)
        };
    }
    format!("signal {signo}")
}

/// ADDED. How a child ended, for messages: "exited with code 2", "killed by
/// signal 9 (SIGKILL)".
pub fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(c) => format!("exited with code {c}"),
        ExitStatus::Signal(s) => {
            let n = name(s);
            if n.starts_with("SIG") {
                format!("killed by signal {s} ({n})")
            } else {
                format!("killed by signal {s}")
            }
        }
    }
}

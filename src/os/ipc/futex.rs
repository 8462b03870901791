//! Futex waits and wakes on words in shared memory, deadlines, and the
//! process-shared lock that recovers from a dead holder.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::sync::Once;
use std::time::{Duration, Instant};

use super::{IpcError, SLICE};
use crate::os::signal;

/// How a futex wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken, or the word no longer held the expected value.
    Woken,
    /// The (slice) timeout passed.
    TimedOut,
    /// A signal handler ran (`EINTR`).
    Signal,
}

/// Sleeps while `*word == expected`, at most `timeout`. The word is in a
/// `MAP_SHARED` mapping, so this is a shared (not `FUTEX_PRIVATE`) futex.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Wake {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let tp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; the
    // timespec outlives it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            tp,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if r == 0 {
        return Wake::Woken;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ETIMEDOUT) => Wake::TimedOut,
        Some(libc::EINTR) => Wake::Signal,
        _ => Wake::Woken, // EAGAIN: the value had already changed
    }
}

/// Wakes up to `n` waiters on `word`.
pub(crate) fn wake(word: &AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// When a blocking operation gives up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    pub(crate) fn after(timeout: Option<Duration>) -> Deadline {
        Deadline(timeout.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future)))
    }

    /// Time left (`None`: no deadline); zero once passed.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.0.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The next sleep: at most `max`, and `None` once the deadline has passed.
    pub(crate) fn slice(&self, max: Duration) -> Option<Duration> {
        match self.remaining() {
            None => Some(max),
            Some(r) if r.is_zero() => None,
            Some(r) => Some(r.min(max)),
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 100)
}

thread_local! {
    static TID: Cell<i32> = const { Cell::new(0) };
}

extern "C" fn forget_tid() {
    // Runs in the child after fork(), on the thread that forked, which is now the
    // child's main thread with a new id.
    let _ = TID.try_with(|t| t.set(0));
}

/// This thread's id (the pid in a single-threaded process), cached; the cache is
/// reset in a forked child by a `pthread_atfork` handler.
pub(crate) fn tid() -> i32 {
    static ATFORK: Once = Once::new();
    TID.with(|t| {
        let v = t.get();
        if v != 0 {
            return v;
        }
        ATFORK.call_once(|| {
            // SAFETY: registers a handler that only touches a thread-local Cell.
            unsafe { libc::pthread_atfork(None, None, Some(forget_tid)) };
        });
        // SAFETY: gettid has no preconditions.
        let v = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        t.set(v);
        v
    })
}

/// The process id, uncached (used for descriptions only).
pub(crate) fn pid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Whether a process (or thread) still runs: it exists and is not a zombie. PID
/// reuse is not detected. `thorough` also reads /proc to catch a zombie that is
/// not our child (a zombie child is caught either way, cheaply).
pub(crate) fn alive(id: i32, thorough: bool) -> bool {
    if id <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    if unsafe { libc::kill(id, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return false;
    }
    // An unreaped child still answers kill(); WNOWAIT leaves it for the reaper.
    // SAFETY: waitid into a zeroed local siginfo.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            id as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is valid for a SIGCHLD siginfo; 0 when nothing was found.
    if r == 0 && unsafe { info.si_pid() } == id {
        return false;
    }
    if !thorough {
        return true;
    }
    match std::fs::read(format!("/proc/{id}/stat")) {
        Ok(s) => {
            let state = s
                .iter()
                .rposition(|&b| b == b')')
                .and_then(|i| s.get(i + 2).copied());
            !matches!(state, Some(b'Z') | Some(b'X') | Some(b'x'))
        }
        Err(e) => e.raw_os_error() != Some(libc::ENOENT),
    }
}

fn multi_cpu() -> bool {
    use std::sync::atomic::AtomicU8;
    static MULTI: AtomicU8 = AtomicU8::new(0);
    match MULTI.load(Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let m = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
            MULTI.store(1 + m as u8, Relaxed);
            m
        }
    }
}

/// An adaptive spin before a sleep, one per call site (like glibc's adaptive
/// mutexes): looking at a word again for a moment saves a sleep and a wake-up
/// when another CPU is about to change it, but only wastes time when the other
/// process is not running. The budget grows while spins succeed and halves when
/// one fails, so on a busy or single CPU it shrinks to almost nothing.
pub(crate) struct Spin(AtomicU32);

impl Spin {
    const MIN: u32 = 8;
    const MAX: u32 = 1000;

    pub(crate) const fn new() -> Spin {
        Spin(AtomicU32::new(100))
    }

    /// Spins until `ready()` or the budget runs out; returns `ready()`.
    pub(crate) fn spin(&self, ready: impl Fn() -> bool) -> bool {
        if !multi_cpu() {
            return ready();
        }
        let budget = self.0.load(Relaxed);
        for i in 0..budget {
            if ready() {
                let grown = (budget + budget / 4 + 8).min(Self::MAX);
                if i * 2 > budget {
                    self.0.store(grown, Relaxed);
                }
                return true;
            }
            std::hint::spin_loop();
        }
        self.0.store((budget / 2).max(Self::MIN), Relaxed);
        ready()
    }
}

/// Bit set in a lock word while someone may be sleeping on it.
pub(crate) const WAITERS: u32 = 1 << 31;
/// The owner's thread id in a lock word (pids fit in 22 bits).
pub(crate) const OWNER: u32 = (1 << 30) - 1;

/// A process-shared mutex on one futex word holding its owner's thread id, so a
/// waiter that sleeps through a whole slice can check whether the owner still
/// lives and take the lock over if not.
#[derive(Clone, Copy)]
pub(crate) struct RawLock<'a>(pub(crate) &'a AtomicU32);

impl<'a> RawLock<'a> {
    /// The owner's id, or 0 when free.
    pub(crate) fn owner(&self) -> i32 {
        (self.0.load(Relaxed) & OWNER) as i32
    }

    pub(crate) fn held_by_me(&self) -> bool {
        self.owner() == tid()
    }

    /// Takes the lock. Returns `Ok(false)` when `block` is false and it is held,
    /// or when the deadline passes; `Interrupted` (only if `interruptible`) when a
    /// signal is pending. A holder that died is replaced.
    pub(crate) fn acquire(
        &self,
        block: bool,
        deadline: Deadline,
        interruptible: bool,
    ) -> Result<bool, IpcError> {
        let me = tid() as u32;
        if self.0.compare_exchange(0, me, Acquire, Relaxed).is_ok() {
            return Ok(true);
        }
        if !block {
            return Ok(self.take_if_owner_dead(me, false));
        }
        static SPIN: Spin = Spin::new();
        if SPIN.spin(|| self.0.load(Relaxed) == 0)
            && self.0.compare_exchange(0, me, Acquire, Relaxed).is_ok()
        {
            return Ok(true);
        }
        loop {
            let v = self.0.load(Relaxed);
            if v == 0 {
                // Others may be asleep: keep the bit so our release wakes one.
                if self
                    .0
                    .compare_exchange(0, me | WAITERS, Acquire, Relaxed)
                    .is_ok()
                {
                    return Ok(true);
                }
                continue;
            }
            if v & WAITERS == 0
                && self
                    .0
                    .compare_exchange(v, v | WAITERS, Relaxed, Relaxed)
                    .is_err()
            {
                continue;
            }
            if interruptible && signal::pending() {
                return Err(IpcError::Interrupted);
            }
            let Some(slice) = deadline.slice(SLICE) else {
                return Ok(self.take_if_owner_dead(me, true));
            };
            if wait(self.0, v | WAITERS, Some(slice)) == Wake::TimedOut
                && self.take_if_owner_dead(me, true)
            {
                return Ok(true);
            }
        }
    }

    /// Blocks until the lock is ours; never interrupted, never times out. For the
    /// short internal critical sections of queues, pipes and shared containers.
    pub(crate) fn lock(self) -> Guard<'a> {
        // `acquire` only fails when interruptible.
        let _ = self.acquire(true, Deadline(None), false);
        Guard(self)
    }

    /// Takes over the lock if its owner is dead (see [`alive`] for `thorough`).
    fn take_if_owner_dead(&self, me: u32, thorough: bool) -> bool {
        let v = self.0.load(Relaxed);
        let owner = (v & OWNER) as i32;
        if v == 0 {
            return self.0.compare_exchange(0, me, Acquire, Relaxed).is_ok();
        }
        if owner as u32 == me || alive(owner, thorough) {
            return false;
        }
        // Keep WAITERS: others may be asleep behind the dead owner.
        self.0
            .compare_exchange(v, me | WAITERS, Acquire, Relaxed)
            .is_ok()
    }

    /// Releases a lock this thread holds; `NotOwner` otherwise.
    pub(crate) fn release(&self) -> Result<(), IpcError> {
        if !self.held_by_me() {
            return Err(IpcError::NotOwner);
        }
        self.unlock();
        Ok(())
    }

    fn unlock(&self) {
        if self.0.swap(0, Release) & WAITERS != 0 {
            wake(self.0, 1);
        }
    }

    /// Whether the lock is held by a live process.
    pub(crate) fn locked(&self) -> bool {
        let owner = self.owner();
        owner != 0 && (owner == tid() || alive(owner, false))
    }
}

/// Holds a [`RawLock`] until dropped.
pub(crate) struct Guard<'a>(RawLock<'a>);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// A re-entrant lock: a [`RawLock`] word plus a recursion count that only the
/// owner touches.
#[derive(Clone, Copy)]
pub(crate) struct ReLock<'a> {
    pub(crate) word: &'a AtomicU32,
    pub(crate) count: &'a AtomicU32,
}

impl<'a> ReLock<'a> {
    pub(crate) fn acquire(
        &self,
        block: bool,
        deadline: Deadline,
        interruptible: bool,
    ) -> Result<bool, IpcError> {
        let raw = RawLock(self.word);
        if raw.held_by_me() {
            self.count.fetch_add(1, Relaxed);
            return Ok(true);
        }
        let got = raw.acquire(block, deadline, interruptible)?;
        if got {
            // A fresh hold, or one taken over from a dead owner.
            self.count.store(1, Relaxed);
        }
        Ok(got)
    }

    pub(crate) fn release(&self) -> Result<(), IpcError> {
        let raw = RawLock(self.word);
        if !raw.held_by_me() {
            return Err(IpcError::NotOwner);
        }
        if self.count.load(Relaxed) > 1 {
            self.count.fetch_sub(1, Relaxed);
        } else {
            self.count.store(0, Relaxed);
            raw.unlock();
        }
        Ok(())
    }

    /// Acquires for an internal operation (blocking, interruptible) and returns
    /// a guard that releases one level.
    pub(crate) fn enter(self) -> Result<ReGuard<'a>, IpcError> {
        self.acquire(true, Deadline(None), true)?;
        Ok(ReGuard(self))
    }
}

/// One level of a [`ReLock`], released on drop.
pub(crate) struct ReGuard<'a>(ReLock<'a>);

impl Drop for ReGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.release();
    }
}

//! Process-shared synchronisation: lock, rlock, semaphore, event, barrier. Each
//! is a few futex words in its own one-page `memfd` segment.
//!
//! Locks hold their owner's thread id (the pid of a single-threaded process): a
//! waiter that sleeps through a whole slice checks whether the owner still lives
//! (`kill(pid, 0)`, and /proc for an unreaped zombie) and takes the lock over if
//! not, so a lock whose holder died is acquired within about one slice (50 ms).
//! The data the dead holder protected may be half-updated; that is the caller's
//! business. PID reuse is not detected. Semaphores, events and barriers have no
//! owner and so no recovery.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

use super::futex::{self, Deadline, RawLock, ReLock};
use super::queue::sleep;
use super::registry::kind;
use super::segment::{bad_handle, Common, Header};
use super::shared::Shared;
use super::{IpcError, IpcResult};

#[repr(C)]
pub(crate) struct SyncHdr {
    common: Common,
    kind: AtomicU32,
    /// Lock owner word; semaphore value; event flag; barrier generation.
    word: AtomicU32,
    /// Rlock recursion; barrier arrivals.
    count: AtomicU32,
    /// Semaphore and event sleepers.
    waiters: AtomicU32,
    /// Barrier size.
    parties: AtomicU32,
    /// Barrier's own lock.
    ilock: AtomicU32,
}

impl Header for SyncHdr {
    const MAGIC: u64 = 0x7072_6f63_5379_6e63; // "procSync"
    fn common(&self) -> &Common {
        &self.common
    }
}

type Obj = Arc<Shared<SyncHdr>>;

fn create(k: u8, init: impl FnOnce(&SyncHdr)) -> io::Result<Obj> {
    Shared::create(k, c"proc-sync", 0, |h: &SyncHdr| {
        h.kind.store(k as u32, Relaxed);
        init(h)
    })
}

fn reopen(k: u8, d: &[u8]) -> io::Result<Obj> {
    let o = Shared::<SyncHdr>::from_description(k, d)?;
    if o.hdr().kind.load(Relaxed) != k as u32 {
        return Err(bad_handle());
    }
    Ok(o)
}

macro_rules! handle {
    ($name:ident, $kind:expr) => {
        impl $name {
            /// The object as bytes that `from_description` turns back into a
            /// handle in any process.
            pub fn describe(&self) -> io::Result<Vec<u8>> {
                self.0.describe()
            }

            pub fn from_description(d: &[u8]) -> io::Result<$name> {
                Ok($name(reopen($kind, d)?))
            }

            /// An id naming this object in every process.
            pub fn id(&self) -> u128 {
                self.0.id
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &$name) -> bool {
                self.0.id == other.0.id
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:032x})", stringify!($name), self.0.id)
            }
        }
    };
}

/// A mutual-exclusion lock shared by processes; recovered when its holder dies.
#[derive(Clone)]
pub struct Lock(Obj);
handle!(Lock, kind::LOCK);

impl Lock {
    pub fn new() -> io::Result<Lock> {
        Ok(Lock(create(kind::LOCK, |_| {})?))
    }

    fn raw(&self) -> RawLock<'_> {
        RawLock(&self.0.hdr().word)
    }

    /// Takes the lock: `Ok(false)` when not `block` and it is held, or when
    /// `timeout` passes. Acquiring a lock one already holds waits (as in Python).
    pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> IpcResult<bool> {
        self.raw().acquire(block, Deadline::after(timeout), true)
    }

    /// `NotOwner` unless this process holds it.
    pub fn release(&self) -> IpcResult<()> {
        self.raw().release()
    }

    /// Whether a live process holds it.
    pub fn locked(&self) -> bool {
        self.raw().locked()
    }
}

/// A re-entrant lock: its owner may acquire it again and must release it as
/// many times.
#[derive(Clone)]
pub struct RLock(Obj);
handle!(RLock, kind::RLOCK);

impl RLock {
    pub fn new() -> io::Result<RLock> {
        Ok(RLock(create(kind::RLOCK, |_| {})?))
    }

    fn re(&self) -> ReLock<'_> {
        let h = self.0.hdr();
        ReLock {
            word: &h.word,
            count: &h.count,
        }
    }

    pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> IpcResult<bool> {
        self.re().acquire(block, Deadline::after(timeout), true)
    }

    pub fn release(&self) -> IpcResult<()> {
        self.re().release()
    }

    pub fn locked(&self) -> bool {
        RawLock(&self.0.hdr().word).locked()
    }

    /// How many times the calling process holds it (0 if it does not).
    pub fn depth(&self) -> u32 {
        if RawLock(&self.0.hdr().word).held_by_me() {
            self.0.hdr().count.load(Relaxed)
        } else {
            0
        }
    }
}

/// A counting semaphore.
#[derive(Clone)]
pub struct Semaphore(Obj);
handle!(Semaphore, kind::SEMAPHORE);

impl Semaphore {
    pub fn new(value: u32) -> io::Result<Semaphore> {
        Ok(Semaphore(create(kind::SEMAPHORE, |h| {
            h.word.store(value, Relaxed)
        })?))
    }

    /// Decrements the value, waiting while it is zero: `Ok(false)` when not
    /// `block`, or when `timeout` passes.
    pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> IpcResult<bool> {
        let h = self.0.hdr();
        let deadline = Deadline::after(timeout);
        let mut spun = false;
        loop {
            let v = h.word.load(Acquire);
            if v > 0 {
                if h.word.compare_exchange(v, v - 1, Acquire, Relaxed).is_ok() {
                    return Ok(true);
                }
                continue;
            }
            if !block {
                return Ok(false);
            }
            if !spun {
                static SPIN: futex::Spin = futex::Spin::new();
                spun = true;
                SPIN.spin(|| h.word.load(Relaxed) > 0);
                continue;
            }
            h.waiters.fetch_add(1, SeqCst);
            let r = if h.word.load(SeqCst) == 0 {
                sleep(&h.word, 0, deadline, IpcError::Timeout)
            } else {
                Ok(())
            };
            h.waiters.fetch_sub(1, SeqCst);
            match r {
                Ok(()) => {}
                Err(e) => {
                    // We may have swallowed a wake-up meant for someone else.
                    if h.word.load(SeqCst) > 0 && h.waiters.load(SeqCst) > 0 {
                        futex::wake(&h.word, 1);
                    }
                    return match e {
                        IpcError::Timeout => Ok(false),
                        e => Err(e),
                    };
                }
            }
        }
    }

    /// Increments the value, waking one waiter.
    pub fn release(&self) -> IpcResult<()> {
        let h = self.0.hdr();
        let mut v = h.word.load(Relaxed);
        loop {
            let n = v.checked_add(1).ok_or(IpcError::Full)?;
            match h.word.compare_exchange_weak(v, n, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        if h.waiters.load(SeqCst) > 0 {
            futex::wake(&h.word, 1);
        }
        Ok(())
    }

    pub fn value(&self) -> u32 {
        self.0.hdr().word.load(Relaxed)
    }
}

/// A flag processes can wait for.
#[derive(Clone)]
pub struct Event(Obj);
handle!(Event, kind::EVENT);

impl Event {
    pub fn new() -> io::Result<Event> {
        Ok(Event(create(kind::EVENT, |_| {})?))
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        let h = self.0.hdr();
        h.word.store(1, SeqCst);
        if h.waiters.load(SeqCst) > 0 {
            futex::wake(&h.word, i32::MAX);
        }
    }

    pub fn clear(&self) {
        self.0.hdr().word.store(0, SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.hdr().word.load(SeqCst) != 0
    }

    /// Waits until the flag is set: `Ok(false)` if `timeout` passes first.
    pub fn wait(&self, timeout: Option<Duration>) -> IpcResult<bool> {
        let h = self.0.hdr();
        let deadline = Deadline::after(timeout);
        loop {
            if h.word.load(SeqCst) != 0 {
                return Ok(true);
            }
            h.waiters.fetch_add(1, SeqCst);
            let r = if h.word.load(SeqCst) == 0 {
                sleep(&h.word, 0, deadline, IpcError::Timeout)
            } else {
                Ok(())
            };
            h.waiters.fetch_sub(1, SeqCst);
            match r {
                Ok(()) => {}
                Err(IpcError::Timeout) => return Ok(h.word.load(SeqCst) != 0),
                Err(e) => return Err(e),
            }
        }
    }
}

/// A barrier for a fixed number of processes.
#[derive(Clone)]
pub struct Barrier(Obj);
handle!(Barrier, kind::BARRIER);

impl Barrier {
    /// A barrier that opens when `parties` (at least 1) processes wait on it.
    pub fn new(parties: u32) -> io::Result<Barrier> {
        if parties == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a barrier needs at least one party",
            ));
        }
        Ok(Barrier(create(kind::BARRIER, |h| {
            h.parties.store(parties, Relaxed)
        })?))
    }

    pub fn parties(&self) -> u32 {
        self.0.hdr().parties.load(Relaxed)
    }

    /// Processes waiting now.
    pub fn n_waiting(&self) -> u32 {
        self.0.hdr().count.load(Relaxed)
    }

    /// Waits until `parties` processes are waiting, then lets them all go; each
    /// gets its arrival index (0 for the first). A wait that times out
    /// (`Timeout`) or is interrupted withdraws, so the barrier stays usable.
    pub fn wait(&self, timeout: Option<Duration>) -> IpcResult<u32> {
        let h = self.0.hdr();
        let il = RawLock(&h.ilock);
        let deadline = Deadline::after(timeout);
        let (gen, idx) = {
            let _g = il.lock();
            let gen = h.word.load(SeqCst);
            let idx = h.count.load(Relaxed);
            if idx + 1 >= h.parties.load(Relaxed) {
                h.count.store(0, Relaxed);
                h.word.fetch_add(1, SeqCst);
                drop(_g);
                futex::wake(&h.word, i32::MAX);
                return Ok(idx);
            }
            h.count.store(idx + 1, Relaxed);
            (gen, idx)
        };
        loop {
            if h.word.load(SeqCst) != gen {
                return Ok(idx);
            }
            if let Err(e) = sleep(&h.word, gen, deadline, IpcError::Timeout) {
                let _g = il.lock();
                if h.word.load(SeqCst) != gen {
                    return Ok(idx);
                }
                h.count.fetch_sub(1, Relaxed);
                return Err(e);
            }
        }
    }
}

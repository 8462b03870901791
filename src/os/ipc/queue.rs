//! A multi-producer, multi-consumer message queue between processes.
//!
//! The messages live in a ring in a shared `memfd` segment (see `ring`), guarded
//! by one process-shared lock that recovers from a dead holder. `put` returns
//! once the message is in shared memory, so nothing is lost when its producer
//! exits at once. A getter that finds the queue empty spins for a moment
//! (adaptively), then registers and sleeps on a futex word; a put only touches
//! that word and makes the wake-up system call when a getter is registered. So
//! an uncontended put or get is a lock, a copy and an unlock, with no system
//! call at all. (Bounded puts wait for room the same way.)
//!
//! Limits: an unbounded queue grows until memory runs out (it shrinks back when
//! it drains); a bounded one counts items, not bytes. Each message is copied
//! into and out of shared memory whole, so a 64 MiB message briefly needs 64 MiB
//! of shared memory besides the two private copies.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

use super::futex::{self, Deadline, RawLock};
use super::registry::kind;
use super::ring::{self, RingFields};
use super::segment::{Common, Header};
use super::shared::Shared;
use super::{IpcError, IpcResult, SLICE};
use crate::os::signal;

#[repr(C)]
struct QHdr {
    common: Common,
    lock: AtomicU32,
    closed: AtomicU32,
    /// Bumped by a put while getters sleep, and by close; they wait on it.
    items_seq: AtomicU32,
    /// Bumped by a get while putters sleep, and by close; they wait on it.
    space_seq: AtomicU32,
    /// Bumped when the count of unfinished tasks drops to zero.
    join_seq: AtomicU32,
    get_waiters: AtomicU32,
    put_waiters: AtomicU32,
    _pad: AtomicU32,
    maxsize: AtomicU64,
    unfinished: AtomicU64,
    ring: RingFields,
}

impl Header for QHdr {
    const MAGIC: u64 = 0x7072_6f63_5175_6575; // "procQueu"
    fn common(&self) -> &Common {
        &self.common
    }
}

/// A handle to a queue; clones (and descriptions decoded in this process) share
/// one local object.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Shared<QHdr>>,
}

impl PartialEq for Queue {
    /// Handles are equal when they name the same queue.
    fn eq(&self, other: &Queue) -> bool {
        self.inner.id == other.inner.id
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Queue({:032x})", self.inner.id)
    }
}

impl Queue {
    /// A new queue holding at most `maxsize` items; 0 means unbounded.
    pub fn new(maxsize: usize) -> io::Result<Queue> {
        let inner = Shared::create(kind::QUEUE, c"proc-queue", ring::INITIAL, |h: &QHdr| {
            h.maxsize.store(maxsize as u64, Relaxed);
            h.ring.init();
        })?;
        Ok(Queue { inner })
    }

    fn hdr(&self) -> &QHdr {
        self.inner.seg.hdr()
    }

    fn lock(&self) -> RawLock<'_> {
        RawLock(&self.hdr().lock)
    }

    /// Adds a message. A full bounded queue makes it wait (`block`), at most
    /// `timeout`, then fail with `Full`; a closed queue fails with `Closed`.
    pub fn put(&self, msg: &[u8], block: bool, timeout: Option<Duration>) -> IpcResult<()> {
        let h = self.hdr();
        let deadline = Deadline::after(timeout);
        loop {
            let g = self.lock().lock();
            if h.closed.load(Relaxed) != 0 {
                return Err(IpcError::Closed);
            }
            let max = h.maxsize.load(Relaxed);
            if max == 0 || (h.ring.len() as u64) < max {
                // SAFETY: we hold the queue's lock.
                unsafe { ring::push(&self.inner.seg, &h.ring, msg)? };
                h.unfinished.fetch_add(1, SeqCst);
                // A getter registers (under the lock) before it sleeps on
                // `items_seq`, so the word only needs to change when one has.
                let sleepers = h.get_waiters.load(Relaxed);
                if sleepers > 0 {
                    h.items_seq.fetch_add(1, Release);
                }
                drop(g);
                if sleepers > 0 {
                    futex::wake(&h.items_seq, 1);
                }
                return Ok(());
            }
            if !block {
                return Err(IpcError::Full);
            }
            h.put_waiters.fetch_add(1, Relaxed);
            let seq = h.space_seq.load(Relaxed);
            drop(g);
            let r = sleep(&h.space_seq, seq, deadline, IpcError::Full);
            h.put_waiters.fetch_sub(1, Relaxed);
            if let Err(e) = r {
                self.pass_on(&h.space_seq, &h.put_waiters, |h| {
                    h.maxsize.load(Relaxed) > h.ring.len() as u64
                });
                return Err(e);
            }
        }
    }

    /// Takes the oldest message. An empty queue makes it wait (`block`), at most
    /// `timeout`, then fail with `Empty`; a closed and drained one fails with
    /// `Closed` at once.
    pub fn get(&self, block: bool, timeout: Option<Duration>) -> IpcResult<Vec<u8>> {
        let h = self.hdr();
        let deadline = Deadline::after(timeout);
        let mut spun = false;
        loop {
            let g = self.lock().lock();
            // SAFETY: we hold the queue's lock.
            if let Some(m) = unsafe { ring::pop(&self.inner.seg, &h.ring)? } {
                let sleepers = h.put_waiters.load(Relaxed);
                if sleepers > 0 {
                    h.space_seq.fetch_add(1, Release);
                }
                drop(g);
                if sleepers > 0 {
                    futex::wake(&h.space_seq, 1);
                }
                return Ok(m);
            }
            if h.closed.load(Relaxed) != 0 {
                return Err(IpcError::Closed);
            }
            if !block {
                return Err(IpcError::Empty);
            }
            if !spun {
                // Another CPU may be about to put: look again for a moment
                // before paying for a sleep and a wake-up.
                drop(g);
                spun = true;
                static SPIN: futex::Spin = futex::Spin::new();
                SPIN.spin(|| h.ring.len() > 0 || h.closed.load(Relaxed) != 0);
                continue;
            }
            h.get_waiters.fetch_add(1, Relaxed);
            let seq = h.items_seq.load(Relaxed);
            drop(g);
            let r = sleep(&h.items_seq, seq, deadline, IpcError::Empty);
            h.get_waiters.fetch_sub(1, Relaxed);
            if let Err(e) = r {
                self.pass_on(&h.items_seq, &h.get_waiters, |h| h.ring.len() > 0);
                return Err(e);
            }
        }
    }

    /// A sleeper that gives up (timeout, signal) may have taken the one wake-up
    /// meant for a message or a free slot: hand it on to another sleeper.
    fn pass_on(&self, word: &AtomicU32, waiters: &AtomicU32, ready: impl Fn(&QHdr) -> bool) {
        if waiters.load(Relaxed) > 0 && ready(self.hdr()) {
            futex::wake(word, 1);
        }
    }

    /// Messages in the queue now.
    pub fn qsize(&self) -> usize {
        self.hdr().ring.len()
    }

    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether a bounded queue holds `maxsize` items (never for an unbounded one).
    pub fn full(&self) -> bool {
        let max = self.hdr().maxsize.load(Relaxed);
        max != 0 && self.qsize() as u64 >= max
    }

    /// The bound given at creation (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.hdr().maxsize.load(Relaxed) as usize
    }

    /// Closes the queue for every process: later puts fail with `Closed`, getters
    /// drain what is left and then get `Closed`; sleepers wake at once.
    pub fn close(&self) {
        let h = self.hdr();
        {
            let _g = self.lock().lock();
            h.closed.store(1, Relaxed);
            h.items_seq.fetch_add(1, Release);
            h.space_seq.fetch_add(1, Release);
        }
        futex::wake(&h.items_seq, i32::MAX);
        futex::wake(&h.space_seq, i32::MAX);
    }

    pub fn is_closed(&self) -> bool {
        self.hdr().closed.load(Relaxed) != 0
    }

    /// Marks one item done; `TooManyTaskDone` if every item put already is.
    pub fn task_done(&self) -> IpcResult<()> {
        let h = self.hdr();
        let mut u = h.unfinished.load(SeqCst);
        loop {
            if u == 0 {
                return Err(IpcError::TooManyTaskDone);
            }
            match h.unfinished.compare_exchange_weak(u, u - 1, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => u = now,
            }
        }
        if u == 1 {
            h.join_seq.fetch_add(1, SeqCst);
            futex::wake(&h.join_seq, i32::MAX);
        }
        Ok(())
    }

    /// Waits until every item put has been marked done (`Timeout` after
    /// `timeout`).
    pub fn join(&self, timeout: Option<Duration>) -> IpcResult<()> {
        let h = self.hdr();
        let deadline = Deadline::after(timeout);
        loop {
            let seq = h.join_seq.load(SeqCst);
            if h.unfinished.load(SeqCst) == 0 {
                return Ok(());
            }
            sleep(&h.join_seq, seq, deadline, IpcError::Timeout)?;
        }
    }

    /// Items put and not yet marked done.
    pub fn unfinished(&self) -> usize {
        self.hdr().unfinished.load(SeqCst) as usize
    }

    /// An id naming this queue in every process.
    pub fn id(&self) -> u128 {
        self.inner.id
    }

    /// The queue as bytes that [`Queue::from_description`] turns back into a
    /// handle in any process (see the module `registry` for the rules).
    pub fn describe(&self) -> io::Result<Vec<u8>> {
        self.inner.describe()
    }

    pub fn from_description(d: &[u8]) -> io::Result<Queue> {
        Ok(Queue {
            inner: Shared::from_description(kind::QUEUE, d)?,
        })
    }
}

/// Sleeps on `word` while it holds `seq`, for one slice at most. `Interrupted`
/// when a signal is pending, `on_timeout` once the deadline has passed.
pub(crate) fn sleep(
    word: &AtomicU32,
    seq: u32,
    deadline: Deadline,
    on_timeout: IpcError,
) -> IpcResult<()> {
    if signal::pending() {
        return Err(IpcError::Interrupted);
    }
    let Some(slice) = deadline.slice(SLICE) else {
        return Err(on_timeout);
    };
    futex::wait(word, seq, Some(slice));
    if signal::pending() {
        return Err(IpcError::Interrupted);
    }
    Ok(())
}

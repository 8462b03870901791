//! Message pipes: `pipe(duplex)` gives two ends that send and receive whole
//! messages (empty ones included, any size).
//!
//! Each direction is a ring of messages in a shared `memfd` segment (as for
//! queues) plus a "doorbell" OS pipe. The sending end holds the doorbell's write
//! end and the receiving end its read end, so the doorbell reaches EOF exactly
//! when every copy of the sending end, in every process, is closed: that is when
//! `recv` reports `Closed`, after draining the ring. A receiver about to sleep
//! registers in the ring's header and polls the doorbell together with the
//! signal wake-up fd; a sender writes one doorbell byte only when a receiver is
//! registered. So a message costs one write on the sending side and a poll plus
//! a read on the receiving side when the receiver sleeps (ping-pong), and no
//! system call at all when the receiver is busy (streaming).
//!
//! Unread messages accumulate in shared memory, up to `SEND_CAP` (64 MiB) of
//! them; past that a send waits for the receiver to catch up (a single message
//! of any size is always accepted into an empty ring). That is far more slack
//! than an OS pipe gives, so a child can send its results and exit before its
//! parent starts reading, while a runaway sender is still held back. A send to
//! a direction whose readers are all gone fails with `Closed` when it would
//! grow the ring or wait (the check costs a system call, so it is not made for
//! every message); until then such messages are dropped with the ring.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::futex::{self, Deadline, RawLock};
use super::registry::{self, kind, Desc, FdRef, Source};
use super::ring::{self, RingFields};
use super::segment::{bad_handle, retry_emfile, Common, Header, Segment};
use super::{IpcError, IpcResult};
use crate::os::signal;

#[repr(C)]
struct ChanHdr {
    common: Common,
    lock: AtomicU32,
    /// Receivers asleep (or about to sleep) on the doorbell.
    rx_waiting: AtomicU32,
    /// Senders waiting for room, asleep on `space_seq`.
    tx_waiting: AtomicU32,
    /// Bumped by a receive while senders wait.
    space_seq: AtomicU32,
    ring: RingFields,
}

impl Header for ChanHdr {
    const MAGIC: u64 = 0x7072_6f63_5069_7065; // "procPipe"
    fn common(&self) -> &Common {
        &self.common
    }
}

/// One direction's ring, shared by the two local ends that use it.
struct RingObj {
    seg: Segment<ChanHdr>,
    id: u128,
}

impl Drop for RingObj {
    fn drop(&mut self) {
        registry::unregister(self.id, kind::PIPE_RING);
    }
}

fn ring_id(pair: u128, dir: u8) -> u128 {
    pair ^ (dir as u128 + 1)
}

impl RingObj {
    fn create(pair: u128, dir: u8) -> io::Result<Arc<RingObj>> {
        let id = ring_id(pair, dir);
        let seg = Segment::create(c"proc-pipe", id, ring::INITIAL, |h: &ChanHdr| h.ring.init())?;
        let r = Arc::new(RingObj { seg, id });
        registry::register(id, kind::PIPE_RING, &r);
        Ok(r)
    }

    fn open(s: &Source, slot: usize, id: u128) -> io::Result<Arc<RingObj>> {
        if let Some(r) = registry::lookup::<RingObj>(id, kind::PIPE_RING) {
            return Ok(r);
        }
        let fd = s.fds[slot].reopen(s.pid, libc::O_RDWR)?;
        let r = Arc::new(RingObj {
            seg: Segment::open(fd, id)?,
            id,
        });
        registry::register(id, kind::PIPE_RING, &r);
        Ok(r)
    }

    fn hdr(&self) -> &ChanHdr {
        self.seg.hdr()
    }
}

struct Tx {
    ring: Arc<RingObj>,
    /// None when the end was reopened after every reader had gone.
    bell: Option<OwnedFd>,
}

struct Rx {
    ring: Arc<RingObj>,
    bell: OwnedFd,
}

struct State {
    closed: bool,
    /// Shared with operations in flight, so that `close` never pulls a
    /// descriptor from under one.
    tx: Option<Arc<Tx>>,
    rx: Option<Arc<Rx>>,
}

struct EndInner {
    pair: u128,
    side: u8,
    state: Mutex<State>,
    /// Seen the doorbell's EOF: every copy of the other end is closed.
    peer_gone: AtomicBool,
    origin: Source,
}

impl Drop for EndInner {
    fn drop(&mut self) {
        registry::unregister(self.pair, end_key(self.side));
    }
}

fn end_key(side: u8) -> u8 {
    kind::PIPE_END | side << 7
}

/// One end of a message pipe. Clones (and descriptions decoded in this process)
/// share one local end; `close` closes this process's copy.
#[derive(Clone)]
pub struct PipeEnd {
    inner: Arc<EndInner>,
}

impl PartialEq for PipeEnd {
    fn eq(&self, other: &PipeEnd) -> bool {
        self.inner.pair == other.inner.pair && self.inner.side == other.inner.side
    }
}

impl std::fmt::Debug for PipeEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PipeEnd({:032x}/{})", self.inner.pair, self.inner.side)
    }
}

/// A new pipe. `duplex`: two ends that both send and receive. Otherwise
/// `(reader, writer)`.
pub fn pipe(duplex: bool) -> io::Result<(PipeEnd, PipeEnd)> {
    let pair = registry::new_id();
    let (r0, w0) = bell()?;
    let ring0 = RingObj::create(pair, 0)?;
    // Side 0 sends on direction 0 and (duplex) receives on direction 1.
    let mut a = State {
        closed: false,
        tx: Some(Arc::new(Tx {
            ring: ring0.clone(),
            bell: Some(w0),
        })),
        rx: None,
    };
    let mut b = State {
        closed: false,
        tx: None,
        rx: Some(Arc::new(Rx {
            ring: ring0,
            bell: r0,
        })),
    };
    if duplex {
        let (r1, w1) = bell()?;
        let ring1 = RingObj::create(pair, 1)?;
        b.tx = Some(Arc::new(Tx {
            ring: ring1.clone(),
            bell: Some(w1),
        }));
        a.rx = Some(Arc::new(Rx {
            ring: ring1,
            bell: r1,
        }));
    }
    let a = PipeEnd::from_state(pair, 0, a, None)?;
    let b = PipeEnd::from_state(pair, 1, b, None)?;
    Ok(if duplex { (a, b) } else { (b, a) })
}

/// A non-blocking, close-on-exec OS pipe.
fn bell() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = retry_emfile(os_pipe::pipe)?;
    let (r, w): (OwnedFd, OwnedFd) = (r.into(), w.into());
    for fd in [&r, &w] {
        // SAFETY: fcntl on descriptors we own.
        unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    Ok((r, w))
}

/// Unread bytes past which a send waits.
const SEND_CAP: usize = 64 << 20;

/// Descriptor slots in a description: absent ones have fd -1.
const TX_RING: usize = 0;
const TX_BELL: usize = 1;
const RX_RING: usize = 2;
const RX_BELL: usize = 3;

const ABSENT: FdRef = FdRef {
    fd: -1,
    dev: 0,
    ino: 0,
};

fn slots(st: &State) -> io::Result<Vec<FdRef>> {
    let mut v = vec![ABSENT; 4];
    if let Some(tx) = &st.tx {
        v[TX_RING] = FdRef::of(tx.ring.seg.fd())?;
        if let Some(b) = &tx.bell {
            v[TX_BELL] = FdRef::of(b.as_raw_fd())?;
        }
    }
    if let Some(rx) = &st.rx {
        v[RX_RING] = FdRef::of(rx.ring.seg.fd())?;
        v[RX_BELL] = FdRef::of(rx.bell.as_raw_fd())?;
    }
    Ok(v)
}

/// What a receiver found.
enum Got {
    Msg(Vec<u8>),
    /// Something to read (for `poll`, which does not take it).
    Ready,
}

/// How one wait on an fd ended.
enum FdWait {
    Ready(libc::c_short),
    /// The slice passed; look again.
    Again,
    Expired,
}

/// Waits until `fd` has `events`, a signal arrives or the deadline passes.
/// `Interrupted` when a signal is pending.
fn wait_fd(fd: RawFd, events: libc::c_short, deadline: Deadline) -> IpcResult<FdWait> {
    if signal::pending() {
        return Err(IpcError::Interrupted);
    }
    // With the signal fd in the set nothing can slip in between our check of
    // `pending` and the sleep (and without handlers installed there is no fd,
    // but nothing can become pending either), so the sleep need not end on its
    // own: no timer, which keeps the ping-pong path lean.
    let wake = signal::wake_fd();
    let remaining = deadline.remaining();
    let mut fds = [
        libc::pollfd {
            fd,
            events,
            revents: 0,
        },
        libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // A passed deadline still polls once, without sleeping.
    let ms = remaining.map_or(-1, |r| {
        r.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int
    });
    // SAFETY: two valid pollfds (a negative fd is ignored).
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e.into());
        }
    }
    if signal::pending() {
        return Err(IpcError::Interrupted);
    }
    if fds[1].revents != 0 {
        // A signal that needs nothing from us (SIGCHLD): empty the pipe so the
        // next poll sleeps.
        signal::drain_wake();
    }
    Ok(if fds[0].revents != 0 {
        FdWait::Ready(fds[0].revents)
    } else if deadline.remaining().is_some_and(|r| r.is_zero()) {
        FdWait::Expired
    } else {
        FdWait::Again
    })
}

impl PipeEnd {
    fn from_state(pair: u128, side: u8, st: State, origin: Option<Source>) -> io::Result<PipeEnd> {
        let origin = match origin {
            Some(o) => o,
            None => Source {
                pid: futex::pid(),
                fds: slots(&st)?,
            },
        };
        let inner = Arc::new(EndInner {
            pair,
            side,
            state: Mutex::new(st),
            peer_gone: AtomicBool::new(false),
            origin,
        });
        registry::register(pair, end_key(side), &inner);
        Ok(PipeEnd { inner })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tx(&self) -> IpcResult<Arc<Tx>> {
        let st = self.state();
        if st.closed {
            return Err(IpcError::Closed);
        }
        st.tx.clone().ok_or(IpcError::WrongEnd)
    }

    fn rx(&self) -> IpcResult<Arc<Rx>> {
        let st = self.state();
        if st.closed {
            return Err(IpcError::Closed);
        }
        st.rx.clone().ok_or(IpcError::WrongEnd)
    }

    /// An id naming the pipe (both ends) in every process.
    pub fn id(&self) -> u128 {
        self.inner.pair
    }

    /// Which end: 0 or 1 (a one-way pipe's reader is 1, its writer 0).
    pub fn side(&self) -> u8 {
        self.inner.side
    }

    /// Whether this end can send (a duplex end, or the writer of a one-way pipe).
    pub fn can_send(&self) -> bool {
        self.state().tx.is_some()
    }

    /// Whether this end can receive.
    pub fn can_recv(&self) -> bool {
        self.state().rx.is_some()
    }

    /// Sends one message. Waits only when `SEND_CAP` bytes are unread (see the
    /// module documentation): `Interrupted` then if a signal is pending.
    /// `WrongEnd` on a reader; `Closed` if this end is closed, or the other end
    /// is gone.
    pub fn send(&self, msg: &[u8]) -> IpcResult<()> {
        let tx = self.tx()?;
        let h = tx.ring.hdr();
        loop {
            let seq = {
                let _g = RawLock(&h.lock).lock();
                let rec = ring::record_len(msg.len());
                let full = h.ring.len() > 0 && h.ring.used() + rec > SEND_CAP;
                if (full || ring::needs_growth(&h.ring, msg.len())) && readers_gone(&tx) {
                    return Err(IpcError::Closed);
                }
                if !full {
                    // SAFETY: we hold the ring's lock.
                    unsafe { ring::push(&tx.ring.seg, &h.ring, msg)? };
                    break;
                }
                h.tx_waiting.fetch_add(1, SeqCst);
                h.space_seq.load(SeqCst)
            };
            let r = crate::os::ipc::queue::sleep(
                &h.space_seq,
                seq,
                Deadline::after(None),
                IpcError::Timeout,
            );
            h.tx_waiting.fetch_sub(1, SeqCst);
            r?;
        }
        // Pairs with the receiver's registration: it registers, then looks at
        // the ring; we publish, then look at the registrations. With a full
        // fence on both sides one of us sees the other.
        std::sync::atomic::fence(SeqCst);
        if h.rx_waiting.load(SeqCst) > 0 {
            if let Some(bell) = &tx.bell {
                let b = 1u8;
                // SAFETY: a one-byte write from a local to our descriptor. A full
                // doorbell (EAGAIN) already wakes the receiver.
                let n = unsafe { libc::write(bell.as_raw_fd(), (&b as *const u8).cast(), 1) };
                if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EPIPE) {
                    return Err(IpcError::Closed);
                }
            }
        }
        Ok(())
    }

    /// Receives the next message. When there is none: `Empty` at once if not
    /// `block`, else waits (at most `timeout`, then `Empty`). `Closed` once every
    /// copy of the other end is closed and nothing is left; `WrongEnd` on a
    /// writer; `Interrupted` when a signal is pending.
    pub fn recv(&self, block: bool, timeout: Option<Duration>) -> IpcResult<Vec<u8>> {
        match self.wait(true, block, Deadline::after(timeout)) {
            Ok(Got::Msg(m)) => Ok(m),
            Ok(Got::Ready) => Err(IpcError::Empty),
            Err(IpcError::Timeout) => Err(IpcError::Empty),
            Err(e) => Err(e),
        }
    }

    /// Whether `recv` would return without blocking (a message is there, or the
    /// other end is gone), waiting up to `timeout` (`None`: for ever) for it.
    /// Takes nothing.
    pub fn poll(&self, timeout: Option<Duration>) -> IpcResult<bool> {
        let block = timeout != Some(Duration::ZERO);
        match self.wait(false, block, Deadline::after(timeout)) {
            Ok(_) | Err(IpcError::Closed) => Ok(true),
            Err(IpcError::Timeout) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The receiving side of `recv` and `poll`: sleeping in `poll` on the
    /// doorbell and the signal fd. A futex sleep would cost as many system calls
    /// but wakes the receiver on another CPU, where a pipe write hands its CPU
    /// over synchronously, which wins ping-pong; for the same reason there is no
    /// spinning here: the woken peer would wait on the spinner's CPU.
    fn wait(&self, take: bool, block: bool, deadline: Deadline) -> IpcResult<Got> {
        let rx = self.rx()?;
        let h = rx.ring.hdr();
        loop {
            {
                let _g = RawLock(&h.lock).lock();
                if !take && h.ring.len() > 0 {
                    return Ok(Got::Ready);
                }
                // SAFETY: we hold the ring's lock.
                if let Some(m) = unsafe { ring::pop(&rx.ring.seg, &h.ring)? } {
                    if h.tx_waiting.load(SeqCst) > 0 {
                        h.space_seq.fetch_add(1, SeqCst);
                        drop(_g);
                        futex::wake(&h.space_seq, i32::MAX);
                    }
                    return Ok(Got::Msg(m));
                }
                if self.inner.peer_gone.load(Relaxed) {
                    return Err(IpcError::Closed);
                }
            }
            if !block {
                // Tell "nothing yet" from "nothing ever again".
                return match self.check_bell(&rx, Deadline::after(Some(Duration::ZERO)))? {
                    true => continue,
                    false => Err(IpcError::Timeout),
                };
            }
            // Register, then look again (see `send`).
            h.rx_waiting.fetch_add(1, SeqCst);
            std::sync::atomic::fence(SeqCst);
            let r = if h.ring.len() > 0 {
                Ok(true)
            } else {
                self.check_bell(&rx, deadline)
            };
            h.rx_waiting.fetch_sub(1, SeqCst);
            match r {
                Ok(false) if deadline.remaining().is_some_and(|r| r.is_zero()) => {
                    return Err(IpcError::Timeout);
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits (one slice) for the doorbell and empties it. True when it rang or
    /// reached EOF (recorded in `peer_gone`).
    fn check_bell(&self, rx: &Rx, deadline: Deadline) -> IpcResult<bool> {
        let fd = rx.bell.as_raw_fd();
        let revents = match wait_fd(fd, libc::POLLIN, deadline)? {
            FdWait::Ready(r) => r,
            FdWait::Again | FdWait::Expired => return Ok(false),
        };
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reading into a local buffer from our non-blocking pipe.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 && (n as usize) < buf.len() {
                // Emptied (a byte arriving now only costs a spurious wake-up).
                return Ok(true);
            }
            if n > 0 {
                continue;
            }
            if n == 0 {
                self.inner.peer_gone.store(true, Relaxed);
                return Ok(true);
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(revents & libc::POLLIN != 0),
                _ => return Err(io::Error::last_os_error().into()),
            }
        }
    }

    /// Closes this process's copy of the end (its descriptors close once no
    /// operation on them is in flight). Later operations here fail with `Closed`.
    pub fn close(&self) {
        let mut st = self.state();
        st.closed = true;
        st.tx = None;
        st.rx = None;
    }

    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// The end as bytes that [`PipeEnd::from_description`] turns back into a
    /// handle in any process.
    pub fn describe(&self) -> io::Result<Vec<u8>> {
        let st = self.state();
        if st.closed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot send a closed pipe end",
            ));
        }
        Ok(Desc {
            kind: kind::PIPE_END,
            id: self.inner.pair,
            sub: self.inner.side,
            sources: registry::sources(slots(&st)?, &self.inner.origin),
        }
        .encode())
    }

    pub fn from_description(d: &[u8]) -> io::Result<PipeEnd> {
        let desc = Desc::decode(d, kind::PIPE_END)?;
        let (pair, side) = (desc.id, desc.sub & 1);
        if let Some(inner) = registry::lookup::<EndInner>(pair, end_key(side)) {
            let end = PipeEnd { inner };
            // A copy closed here is reopened from the describer's.
            if !end.is_closed() {
                return Ok(end);
            }
        }
        let st = desc.reopen(|s| {
            if s.fds.len() != 4 {
                return Err(bad_handle());
            }
            let mut st = State {
                closed: false,
                tx: None,
                rx: None,
            };
            if s.fds[TX_RING].fd >= 0 {
                let ring = RingObj::open(s, TX_RING, ring_id(pair, side))?;
                let bell = if s.fds[TX_BELL].fd < 0 {
                    None
                } else {
                    match s.fds[TX_BELL].reopen(s.pid, libc::O_WRONLY | libc::O_NONBLOCK) {
                        Ok(fd) => Some(fd),
                        // No reader is left: sends will fail.
                        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => None,
                        Err(e) => return Err(e),
                    }
                };
                st.tx = Some(Arc::new(Tx { ring, bell }));
            }
            if s.fds[RX_RING].fd >= 0 {
                // Side 1 receives on direction 0 (a one-way reader is side 1).
                let ring = RingObj::open(s, RX_RING, ring_id(pair, 1 - side))?;
                let bell = s.fds[RX_BELL].reopen(s.pid, libc::O_RDONLY | libc::O_NONBLOCK)?;
                st.rx = Some(Arc::new(Rx { ring, bell }));
            }
            Ok((st, s.clone()))
        })?;
        PipeEnd::from_state(pair, side, st.0, Some(st.1))
    }
}

/// Whether every reader of `tx`'s direction is gone (the doorbell reports
/// POLLERR to a writer then).
fn readers_gone(tx: &Tx) -> bool {
    let Some(bell) = &tx.bell else {
        return true;
    };
    let mut p = libc::pollfd {
        fd: bell.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) };
    p.revents & libc::POLLERR != 0
}

//! Pool plumbing: the two pipes between the parent and each pool worker,
//! length-prefixed frames on them, non-blocking reads and writes, and `poll`.
//!
//! Each worker has its own pair of pipes, Popen-style: the parent writes task
//! frames into the worker's "task" pipe and reads result frames from its
//! "result" pipe. The parent's ends are non-blocking and driven by one `poll`
//! loop on the interpreter's thread; the worker's ends stay blocking (a worker
//! does one thing at a time). A worker's death shows up as end-of-file on its
//! result pipe, because only the worker holds that pipe's write end.
//!
//! A frame is `[u32 little-endian length][u8 kind][body]`, where the length
//! counts the kind byte and the body. What the kinds and bodies mean is the
//! runtime's business: this module moves bytes and never sees a `Value`.
//!
//! Parent-side descriptors are recorded (`track`) so that a worker forked
//! later closes them at once (`close_tracked`): a worker then holds no end of
//! any other worker's pipes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Bytes before a frame's body: the length (4) and the kind (1).
pub const HEADER: usize = 5;

/// The largest frame accepted (a corrupt length must not make us allocate
/// gigabytes).
pub const MAX_FRAME: usize = 1 << 31;

/// The pipes of one worker.
pub struct Pipes {
    /// The worker reads tasks here.
    pub task_r: OwnedFd,
    /// The parent writes tasks here (non-blocking).
    pub task_w: OwnedFd,
    /// The parent reads results here (non-blocking).
    pub result_r: OwnedFd,
    /// The worker writes results here.
    pub result_w: OwnedFd,
}

/// Makes a worker's pipes (`O_CLOEXEC`, from `os_pipe`); the parent's ends are
/// non-blocking and tracked (see `close_tracked`).
pub fn worker_pipes() -> io::Result<Pipes> {
    let (tr, tw) = os_pipe::pipe()?;
    let (rr, rw) = os_pipe::pipe()?;
    // SAFETY: each raw fd was just taken out of its owner and is owned once.
    let p = unsafe {
        Pipes {
            task_r: OwnedFd::from_raw_fd(tr.into_raw_fd()),
            task_w: OwnedFd::from_raw_fd(tw.into_raw_fd()),
            result_r: OwnedFd::from_raw_fd(rr.into_raw_fd()),
            result_w: OwnedFd::from_raw_fd(rw.into_raw_fd()),
        }
    };
    set_nonblocking(p.task_w.as_raw_fd())?;
    set_nonblocking(p.result_r.as_raw_fd())?;
    // Results of many tasks can wait in the pipe; a bigger pipe means fewer
    // wake-ups. Best effort: the default size works too.
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        libc::fcntl(p.result_r.as_raw_fd(), libc::F_SETPIPE_SZ, 256 * 1024);
        libc::fcntl(p.task_w.as_raw_fd(), libc::F_SETPIPE_SZ, 256 * 1024);
    }
    track(p.task_w.as_raw_fd());
    track(p.result_r.as_raw_fd());
    Ok(p)
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

static TRACKED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

fn tracked() -> MutexGuard<'static, Vec<RawFd>> {
    TRACKED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records a descriptor that pool workers forked from now on must close.
pub fn track(fd: RawFd) {
    tracked().push(fd);
}

/// Forgets a parent-side descriptor (call before closing it).
pub fn untrack(fd: RawFd) {
    tracked().retain(|&f| f != fd);
}

/// In a freshly forked worker: closes every parent-side pool descriptor it
/// inherited (other workers' pipes, and the parent's ends of its own).
pub fn close_tracked() {
    let fds = std::mem::take(&mut *tracked());
    for fd in fds {
        // SAFETY: these descriptors belong to the parent's pool objects, which
        // this process never uses (a pool is used only by the process that made
        // it); closing our inherited copies is all that happens.
        unsafe { libc::close(fd) };
    }
}

/// The outcome of one non-blocking or blocking read or write.
#[derive(Debug)]
pub enum Io {
    /// This many bytes moved.
    Done(usize),
    /// Non-blocking descriptor not ready.
    WouldBlock,
    /// End of file (read), or the reader is gone (write: EPIPE).
    Closed,
    /// A signal interrupted the call.
    Interrupted,
    Failed(io::Error),
}

fn classify(n: isize) -> Io {
    if n >= 0 {
        return Io::Done(n as usize);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) => Io::WouldBlock,
        Some(libc::EINTR) => Io::Interrupted,
        Some(libc::EPIPE) => Io::Closed,
        _ => Io::Failed(e),
    }
}

/// One `read` appending to `buf` (at least `min_room` bytes of room are made).
pub fn read_into(fd: RawFd, buf: &mut Vec<u8>, min_room: usize) -> Io {
    if buf.capacity() - buf.len() < min_room {
        buf.reserve(min_room);
    }
    let room = buf.capacity() - buf.len();
    // SAFETY: reading into the spare capacity of `buf`, then setting the
    // length to cover exactly the bytes the kernel wrote.
    unsafe {
        let n = libc::read(fd, buf.as_mut_ptr().add(buf.len()).cast(), room);
        match classify(n) {
            Io::Done(0) => Io::Closed,
            Io::Done(k) => {
                buf.set_len(buf.len() + k);
                Io::Done(k)
            }
            other => other,
        }
    }
}

/// One `write` of (a prefix of) `data`.
pub fn write_some(fd: RawFd, data: &[u8]) -> Io {
    // SAFETY: writing from a valid slice.
    classify(unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) })
}

/// Writes all of `data` to a blocking descriptor, retrying after signals.
pub fn write_all(fd: RawFd, mut data: &[u8]) -> Io {
    let total = data.len();
    while !data.is_empty() {
        match write_some(fd, data) {
            Io::Done(n) => data = &data[n..],
            Io::Interrupted | Io::WouldBlock => continue,
            other => return other,
        }
    }
    Io::Done(total)
}

/// Starts a frame of `kind` at the end of `buf`; returns where it starts, for
/// `end_frame`.
pub fn begin_frame(buf: &mut Vec<u8>, kind: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0, 0, 0, kind]);
    start
}

/// Fills in the length of the frame begun at `start`.
pub fn end_frame(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - 4) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// A frame length that cannot be: the stream is corrupt.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFrame;

/// The first complete frame in `buf`: `(kind, body start, frame end)`, or
/// `Ok(None)` when more bytes are needed.
pub fn next_frame(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, BadFrame> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(BadFrame);
    }
    let end = 4 + len;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((buf[4], HEADER, end)))
}

/// Bytes still needed to complete the frame that `buf` starts with (0 when
/// the header is incomplete or the frame is complete), so readers can make
/// room for a large frame in one go.
pub fn frame_missing(buf: &[u8]) -> usize {
    if buf.len() < 4 {
        return 0;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    (4 + len.min(MAX_FRAME)).saturating_sub(buf.len())
}

/// A `u32` from a body at `at`, little-endian.
pub fn get_u32(body: &[u8], at: usize) -> Option<u32> {
    body.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// What `poll` should wait for on one descriptor.
pub struct Watch {
    pub fd: RawFd,
    pub read: bool,
    pub write: bool,
}

/// What happened on one descriptor.
#[derive(Clone, Copy, Default, Debug)]
pub struct Ready {
    pub read: bool,
    pub write: bool,
    /// Hang-up or error: a read will see end-of-file, a write EPIPE.
    pub hup: bool,
}

/// One `poll` over `watch`; `None` blocks. A signal ends it early with every
/// entry not ready (the caller looks at the pending signals and polls again).
pub fn poll(watch: &[Watch], timeout: Option<Duration>) -> io::Result<Vec<Ready>> {
    let mut fds: Vec<libc::pollfd> = watch
        .iter()
        .map(|w| libc::pollfd {
            fd: w.fd,
            events: (if w.read { libc::POLLIN } else { 0 })
                | (if w.write { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        // Round up, so a short wait does not become a busy loop of zero polls.
        Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
    };
    // SAFETY: `fds` is a valid array of pollfd of the given length.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(vec![Ready::default(); watch.len()]);
        }
        return Err(e);
    }
    Ok(fds
        .iter()
        .map(|p| Ready {
            read: p.revents & libc::POLLIN != 0,
            write: p.revents & libc::POLLOUT != 0,
            hup: p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        let s = begin_frame(&mut buf, 7);
        buf.extend_from_slice(b"hello");
        end_frame(&mut buf, s);
        let s = begin_frame(&mut buf, 9);
        end_frame(&mut buf, s);
        let (k, b, e) = next_frame(&buf).unwrap().unwrap();
        assert_eq!((k, &buf[b..e]), (7, &b"hello"[..]));
        let rest = &buf[e..];
        let (k, b, e) = next_frame(rest).unwrap().unwrap();
        assert_eq!((k, b, e), (9, HEADER, HEADER));
        assert_eq!(next_frame(&rest[..3]).unwrap(), None);
        assert_eq!(frame_missing(&buf[..6]), 4);
        assert!(next_frame(&[0, 0, 0, 0, 1]).is_err());
    }
}

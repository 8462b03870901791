//! Our ends of a command's pipes, and the one-thread `poll` loop that moves bytes
//! through them: cargo's `read2.rs`, grown to one writer and any number of
//! readers, with a deadline and the signal wake-up fd in the poll set.
//!
//! Our ends are non-blocking, so a full pipe or an empty one never blocks the
//! interpreter; what has been read or not yet written stays in these structs, so a
//! call that stops (timeout, signal) loses nothing and can simply be made again.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr;
use std::time::Instant;

use crate::os::signal;

/// How much room a read asks the kernel to fill (a default pipe holds 64 KiB).
const READ_CHUNK: usize = 64 * 1024;

/// Why a loop stopped before it was done.
#[derive(Debug)]
pub(super) enum Stop {
    Timeout,
    Interrupted,
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

/// The read end of a command's stdout or stderr, with what was read and not yet
/// taken. The descriptor is closed (and `None`) once it reaches end of file.
pub(super) struct OutPipe {
    fd: Option<OwnedFd>,
    buf: Vec<u8>,
    /// Bytes before `start` were taken already.
    start: usize,
    /// No newline in `buf[start..scanned]`: `take_line` does not look there again.
    scanned: usize,
}

impl OutPipe {
    pub fn new(fd: OwnedFd) -> io::Result<OutPipe> {
        set_nonblocking(fd.as_raw_fd(), true)?;
        Ok(OutPipe {
            fd: Some(fd),
            buf: Vec::new(),
            start: 0,
            scanned: 0,
        })
    }

    pub fn raw(&self) -> Option<RawFd> {
        self.fd.as_ref().map(|f| f.as_raw_fd())
    }

    pub fn at_eof(&self) -> bool {
        self.fd.is_none()
    }

    pub fn has_buffered(&self) -> bool {
        self.start < self.buf.len()
    }

    /// Closes our end early (after a kill): whatever still holds the other end
    /// (a grandchild) gets SIGPIPE, and we stop waiting for it.
    pub fn close(&mut self) {
        self.fd = None;
    }

    /// The descriptor, for connecting it to another command; `None` at EOF.
    pub fn take_fd(&mut self) -> io::Result<Option<OwnedFd>> {
        match self.fd.take() {
            Some(fd) => {
                set_nonblocking(fd.as_raw_fd(), false)?;
                Ok(Some(fd))
            }
            None => Ok(None),
        }
    }

    /// One non-blocking read. Nothing available is not an error.
    pub fn fill(&mut self) -> io::Result<()> {
        let Some(fd) = self.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return Ok(());
        };
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.reserve(READ_CHUNK);
        let spare = self.buf.spare_capacity_mut();
        // SAFETY: the kernel writes at most `spare.len()` bytes into our spare
        // capacity; we extend the length by exactly what it wrote.
        let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
        match n {
            0 => self.fd = None,
            n if n > 0 => unsafe { self.buf.set_len(self.buf.len() + n as usize) },
            _ => {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => {}
                    _ => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Everything read and not yet taken.
    pub fn take_all(&mut self) -> Vec<u8> {
        let out = if self.start == 0 {
            mem::take(&mut self.buf)
        } else {
            let rest = self.buf[self.start..].to_vec();
            self.buf.clear();
            rest
        };
        self.start = 0;
        self.scanned = 0;
        out
    }

    /// The next complete line (with its `\n`); at EOF, the unterminated rest.
    pub fn take_line(&mut self) -> Option<Vec<u8>> {
        let from = self.scanned.max(self.start);
        match self.buf[from..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = from + i + 1;
                let line = self.buf[self.start..end].to_vec();
                self.start = end;
                self.scanned = end;
                Some(line)
            }
            None if self.at_eof() && self.has_buffered() => Some(self.take_all()),
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }
}

/// The write end of a command's stdin, with what was handed to us and not yet
/// written.
pub(super) struct InPipe {
    fd: OwnedFd,
    data: Vec<u8>,
    off: usize,
}

impl InPipe {
    pub fn new(fd: OwnedFd) -> io::Result<InPipe> {
        set_nonblocking(fd.as_raw_fd(), true)?;
        Ok(InPipe {
            fd,
            data: Vec::new(),
            off: 0,
        })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.off == self.data.len() {
            self.data.clear();
            self.off = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.off
    }

    /// Forgets what was not written (the reader went away).
    pub fn discard(&mut self) {
        self.data.clear();
        self.off = 0;
    }

    /// One non-blocking write of what we hold. A full pipe is not an error; a
    /// closed reader is `BrokenPipe` (with SIGPIPE held off by a
    /// [`SigpipeGuard`]).
    pub fn flush_some(&mut self) -> io::Result<()> {
        let n = self.write_some_at(self.off)?;
        self.off += n;
        if self.off == self.data.len() {
            self.discard();
        }
        Ok(())
    }

    /// One non-blocking write of `bytes`; how many went (0 for a full pipe).
    pub fn write_some(&self, bytes: &[u8]) -> io::Result<usize> {
        write_nonblocking(self.raw(), bytes)
    }

    fn write_some_at(&self, off: usize) -> io::Result<usize> {
        write_nonblocking(self.raw(), &self.data[off..])
    }
}

fn write_nonblocking(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    if bytes.is_empty() {
        return Ok(0);
    }
    // SAFETY: writing from a live slice.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
        _ => Err(e),
    }
}

/// Blocks until one of `fds` has an event, the deadline passes, or a signal for
/// the interpreter is pending. The signal wake-up fd joins the poll set, so a
/// signal ends the wait at once.
pub(super) fn wait_ready(
    fds: &mut Vec<libc::pollfd>,
    deadline: Option<Instant>,
) -> Result<(), Stop> {
    let n = fds.len();
    let wake = signal::wake_fd();
    if wake >= 0 {
        fds.push(pollfd(wake, libc::POLLIN));
    }
    let result = loop {
        if signal::pending() {
            break Err(Stop::Interrupted);
        }
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up, so that we never wake just before the deadline and spin.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        // SAFETY: `fds` is a live, correctly sized array of pollfd.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break Err(Stop::Io(e));
        }
        if wake >= 0 && fds[n].revents != 0 {
            signal::drain_wake();
            fds[n].revents = 0;
        }
        if fds[..n].iter().any(|f| f.revents != 0) {
            break Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Err(Stop::Timeout);
        }
    };
    fds.truncate(n);
    result
}

pub(super) fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Writes what `input` holds and then `fresh` (closing it once everything is
/// written, or once the reader is gone) while reading every `outs` to end of
/// file, on this one thread. `fresh` is written straight from the caller's
/// slice; only what is still unwritten when we stop early is copied into
/// `input`, to go first next time.
pub(super) fn pump(
    input: &mut Option<InPipe>,
    fresh: &[u8],
    outs: &mut [&mut OutPipe],
    deadline: Option<Instant>,
) -> Result<(), Stop> {
    let mut written = 0;
    let result = pump_inner(input, fresh, &mut written, outs, deadline);
    if let Some(i) = input {
        i.push(&fresh[written..]);
    }
    result
}

fn pump_inner(
    input: &mut Option<InPipe>,
    fresh: &[u8],
    written: &mut usize,
    outs: &mut [&mut OutPipe],
    deadline: Option<Instant>,
) -> Result<(), Stop> {
    let _sigpipe = input.is_some().then(SigpipeGuard::new);
    let mut fds = Vec::with_capacity(outs.len() + 2);
    loop {
        if input
            .as_ref()
            .is_some_and(|i| i.remaining() == 0 && *written == fresh.len())
        {
            // Closing our end is the child's end of file.
            *input = None;
        }
        fds.clear();
        if let Some(i) = input {
            fds.push(pollfd(i.raw(), libc::POLLOUT));
        }
        fds.extend(
            outs.iter()
                .filter_map(|o| o.raw())
                .map(|fd| pollfd(fd, libc::POLLIN)),
        );
        if fds.is_empty() {
            return Ok(());
        }
        wait_ready(&mut fds, deadline)?;
        let mut ready = fds.iter().map(|f| f.revents != 0);
        if let Some(i) = input {
            if ready.next() == Some(true) {
                let wrote = if i.remaining() > 0 {
                    i.flush_some()
                } else {
                    i.write_some(&fresh[*written..]).map(|n| *written += n)
                };
                if let Err(e) = wrote {
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        return Err(Stop::Io(e));
                    }
                    // The command stopped reading: what it did not take is dropped,
                    // as a shell pipeline would.
                    *input = None;
                }
            }
        }
        for out in outs.iter_mut().filter(|o| !o.at_eof()) {
            if ready.next() == Some(true) {
                out.fill()?;
            }
        }
    }
}

/// Writes what `input` holds and then `fresh`, without closing it. `fresh` goes
/// straight from the caller's slice; if we stop early (a signal) its unwritten
/// rest is kept in `input`. On an error nothing is kept.
pub(super) fn flush(
    input: &mut InPipe,
    fresh: &[u8],
    deadline: Option<Instant>,
) -> Result<(), Stop> {
    let _sigpipe = SigpipeGuard::new();
    let mut written = 0;
    let mut fds = Vec::with_capacity(2);
    while input.remaining() > 0 || written < fresh.len() {
        fds.clear();
        fds.push(pollfd(input.raw(), libc::POLLOUT));
        if let Err(stop) = wait_ready(&mut fds, deadline) {
            input.push(&fresh[written..]);
            return Err(stop);
        }
        let wrote = if input.remaining() > 0 {
            input.flush_some()
        } else {
            input.write_some(&fresh[written..]).map(|n| written += n)
        };
        if let Err(e) = wrote {
            input.discard();
            return Err(Stop::Io(e));
        }
    }
    Ok(())
}

/// Reads `out` until `done` says so or it reaches end of file.
pub(super) fn fill_until(
    out: &mut OutPipe,
    deadline: Option<Instant>,
    mut done: impl FnMut(&mut OutPipe) -> bool,
) -> Result<(), Stop> {
    let mut fds = Vec::with_capacity(2);
    while !done(out) {
        let Some(fd) = out.raw() else {
            return Ok(());
        };
        fds.clear();
        fds.push(pollfd(fd, libc::POLLIN));
        wait_ready(&mut fds, deadline)?;
        out.fill()?;
    }
    Ok(())
}

pub(super) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let new = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        if new != flags && libc::fcntl(fd, libc::F_SETFL, new) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Holds SIGPIPE off while we write to a command's stdin, so that a command that
/// stops reading gives us `EPIPE` instead of killing the interpreter, whatever
/// the runtime did with SIGPIPE's disposition. A SIGPIPE raised meanwhile is
/// taken before the old mask comes back.
pub(super) struct SigpipeGuard {
    old_mask: Option<libc::sigset_t>,
}

impl SigpipeGuard {
    pub fn new() -> SigpipeGuard {
        // SAFETY: signal-mask and disposition queries on local storage.
        unsafe {
            let mut current: libc::sigaction = mem::zeroed();
            libc::sigaction(libc::SIGPIPE, ptr::null(), &mut current);
            if current.sa_sigaction == libc::SIG_IGN {
                return SigpipeGuard { old_mask: None };
            }
            let mut set: libc::sigset_t = mem::zeroed();
            let mut old: libc::sigset_t = mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            if libc::sigismember(&old, libc::SIGPIPE) == 1 {
                // Already blocked by the caller: theirs to deal with.
                return SigpipeGuard { old_mask: None };
            }
            SigpipeGuard {
                old_mask: Some(old),
            }
        }
    }
}

impl Drop for SigpipeGuard {
    fn drop(&mut self) {
        let Some(old) = self.old_mask else { return };
        // SAFETY: as in `new`; a zero timeout makes sigtimedwait only take a
        // SIGPIPE that is already pending.
        unsafe {
            let mut pending: libc::sigset_t = mem::zeroed();
            libc::sigpending(&mut pending);
            if libc::sigismember(&pending, libc::SIGPIPE) == 1 {
                let mut set: libc::sigset_t = mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGPIPE);
                let zero = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::sigtimedwait(&set, ptr::null_mut(), &zero);
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
        }
    }
}

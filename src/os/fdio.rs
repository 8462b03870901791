//! Reads and writes that a signal interrupts promptly: the pipe through which a
//! spawned child sends its result to its parent, and the interpreter's stdin.
//!
//! Every wait here polls the descriptor together with `signal::wake_fd`, so a
//! signal (SIGCHLD included) ends it at once; the caller then looks at
//! `signal::pending`, runs handlers or reaps, and waits again. Nothing here
//! blocks in `read` or `write` without having polled first, except
//! [`Writer::write_all`], whose `write(2)` returns `EINTR` when a handler runs.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::os::signal;

/// The parent's end of a result pipe: non-blocking, `O_CLOEXEC`.
pub struct Reader {
    fd: OwnedFd,
}

/// The child's end of a result pipe: blocking, `O_CLOEXEC`.
pub struct Writer {
    fd: OwnedFd,
}

impl AsRawFd for Reader {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsRawFd for Writer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A one-way pipe for a child's result (from `os_pipe`, so `O_CLOEXEC`).
pub fn pipe() -> io::Result<(Reader, Writer)> {
    let (r, w) = os_pipe::pipe()?;
    let r: OwnedFd = r.into();
    set_nonblocking(r.as_raw_fd())?;
    Ok((Reader { fd: r }, Writer { fd: w.into() }))
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What a non-blocking read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Everything available was read; the writer may send more.
    Open,
    /// The other end is closed and everything was read.
    Eof,
}

/// Reads everything available from a non-blocking `fd` into `buf`.
///
/// Most results are a few bytes: they are read through a small buffer on the
/// stack, so that collecting a child allocates (and, right after a fork,
/// copies on write) no more memory than its result needs. Large ones are read
/// straight into `buf`, which grows by doubling.
fn read_available(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<Drained> {
    const SMALL: usize = 512;
    let mut small = [0u8; SMALL];
    loop {
        let direct = buf.capacity() - buf.len() >= SMALL;
        let (ptr, len) = if direct {
            let spare = buf.spare_capacity_mut();
            (spare.as_mut_ptr().cast::<u8>(), spare.len())
        } else {
            (small.as_mut_ptr(), SMALL)
        };
        // SAFETY: `ptr` points at `len` writable bytes (the stack buffer or the
        // vector's spare capacity).
        let n = unsafe { libc::read(fd, ptr.cast(), len) };
        if n > 0 {
            let n = n as usize;
            if direct {
                // SAFETY: the kernel wrote `n` bytes into the spare capacity.
                unsafe { buf.set_len(buf.len() + n) };
            } else {
                buf.extend_from_slice(&small[..n]);
            }
            if n == len && buf.capacity() - buf.len() < SMALL {
                // More is coming: room for it, doubling.
                buf.reserve(buf.len().max(64 * 1024));
            }
            continue;
        }
        if n == 0 {
            return Ok(Drained::Eof);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(Drained::Open),
            _ => return Err(e),
        }
    }
}

impl Reader {
    /// Appends what the child has written so far to `buf`, without blocking.
    pub fn read_available(&mut self, buf: &mut Vec<u8>) -> io::Result<Drained> {
        read_available(self.fd.as_raw_fd(), buf)
    }

    /// Blocks until there is something to read (or EOF), a signal arrives, or
    /// `timeout` passes. Does not read, and does not drain the wake fd.
    pub fn wait(&self, timeout: Option<Duration>) {
        wait_readable(self.fd.as_raw_fd(), timeout);
    }
}

impl Writer {
    /// Writes all of `data` (blocking while the pipe is full). When a signal
    /// interrupts the write, `interrupted` is asked whether to go on; `false`
    /// abandons the write with `ErrorKind::Interrupted`.
    pub fn write_all(
        &mut self,
        data: &[u8],
        mut interrupted: impl FnMut() -> bool,
    ) -> io::Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            // SAFETY: writing from a live slice.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if n >= 0 {
                rest = &rest[n as usize..];
                continue;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            if !interrupted() {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Closes a descriptor by number (for a grandchild that inherited a writer it
/// must not keep: the parent would wait for its EOF).
pub fn close_raw(fd: RawFd) {
    // SAFETY: the caller owns `fd` (an inherited copy nobody else uses).
    unsafe { libc::close(fd) };
}

/// Polls `fd` for reading together with the signal wake fd. `None` waits until
/// one of them is ready (at most `signal::MAX_NAP` at a time).
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) {
    let t = timeout.unwrap_or(signal::MAX_NAP).min(signal::MAX_NAP);
    let ms = t.as_nanos().div_ceil(1_000_000) as libc::c_int;
    let mut fds = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: signal::wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfds (a negative fd is ignored by poll).
    unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
}

/// Reads standard input a line at a time without ever blocking in `read(2)`
/// while a signal is pending: it polls stdin with the wake fd first.
pub struct StdinLines {
    buf: Vec<u8>,
    eof: bool,
}

/// Why `StdinLines::next_line` returned without a line.
#[derive(Debug)]
pub enum LineError {
    /// A signal the interpreter must act on arrived; call again afterwards.
    Interrupted,
    Io(io::Error),
}

impl Default for StdinLines {
    fn default() -> Self {
        StdinLines::new()
    }
}

impl StdinLines {
    pub const fn new() -> StdinLines {
        StdinLines {
            buf: Vec::new(),
            eof: false,
        }
    }

    /// The next line (with its `\n`, if it had one), or `Ok(None)` at EOF.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let rest = self.buf.split_off(i + 1);
                return Ok(Some(std::mem::replace(&mut self.buf, rest)));
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            if signal::pending() {
                return Err(LineError::Interrupted);
            }
            signal::drain_wake();
            // Polled first, so the read below finds data (or EOF) at once; a
            // signal arriving in between interrupts it (EINTR).
            wait_readable(0, None);
            if signal::pending() {
                return Err(LineError::Interrupted);
            }
            crate::os::process::sweep_if_signalled();
            if !stdin_ready() {
                continue;
            }
            let mut chunk = [0u8; 8192];
            // SAFETY: reading into a local buffer.
            let n = unsafe { libc::read(0, chunk.as_mut_ptr().cast(), chunk.len()) };
            if n > 0 {
                self.buf.extend_from_slice(&chunk[..n as usize]);
            } else if n == 0 {
                self.eof = true;
            } else {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) | Some(libc::EAGAIN) => {}
                    // stdin closed (fd 0 not open): as good as empty.
                    Some(libc::EBADF) => self.eof = true,
                    _ => return Err(LineError::Io(e)),
                }
            }
        }
    }
}

/// True when a read of stdin would not block (data, EOF, an error or no fd 0).
fn stdin_ready() -> bool {
    let mut pfd = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let r = unsafe { libc::poll(&mut pfd, 1, 0) };
    r > 0
}

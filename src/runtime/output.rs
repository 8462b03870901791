//! Standard output: block-buffered when stdout is not a terminal, line-buffered
//! when it is; flushed before every fork and at exit. A closed stdout (the reader
//! of a pipe went away) ends the program quietly.

use super::error::{Res, Unwind};
use std::io::Write;

/// The exit status of a program whose stdout was closed under it (as if killed
/// by SIGPIPE, like other Unix tools).
pub const BROKEN_PIPE_EXIT: i32 = 141;

pub struct Output {
    buf: Vec<u8>,
    tty: bool,
    broken: bool,
}

const CAPACITY: usize = 16 * 1024;

impl Output {
    pub fn stdout() -> Output {
        Output {
            buf: Vec::with_capacity(CAPACITY),
            tty: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            broken: false,
        }
    }

    pub fn write_str(&mut self, s: &str) -> Res<()> {
        if self.broken {
            return Ok(());
        }
        self.buf.extend_from_slice(s.as_bytes());
        if self.buf.len() >= CAPACITY || (self.tty && s.contains('\n')) {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffer out. A closed stdout turns into a quiet exit.
    pub fn flush(&mut self) -> Res<()> {
        if self.buf.is_empty() || self.broken {
            self.buf.clear();
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        let r = out.write_all(&self.buf).and_then(|_| out.flush());
        self.buf.clear();
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.broken = true;
                Err(Unwind::Exit(BROKEN_PIPE_EXIT))
            }
            Err(_) => Ok(()),
        }
    }

    /// Forgets buffered output without writing it (a forked child must not write
    /// its parent's pending output a second time; callers flush before forking).
    pub fn discard(&mut self) {
        self.buf.clear();
    }

    /// Whether output is buffered and not yet written.
    pub fn pending(&self) -> bool {
        !self.buf.is_empty()
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }
}

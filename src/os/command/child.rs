//! A running command: its pid, our ends of its pipes, and how it ended.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::error::CommandError;
use super::io::{self, InPipe, OutPipe, Stop};
use crate::os::process::{self, ExitStatus, Pid, WaitError};

/// Which of a command's output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A started command. Dropping it closes our pipe ends but neither kills nor
/// forgets the process: it stays in `process`'s table, which reaps it.
pub struct Child {
    pub(super) pid: Pid,
    pub(super) command: String,
    pub(super) process_group: bool,
    /// Readable once the process has exited (Linux >= 5.2), so waits can poll it
    /// with the pipes and the signal fd; without it waits fall back to polling.
    pub(super) pidfd: Option<OwnedFd>,
    pub(super) status: Option<ExitStatus>,
    pub(super) stdin: Option<InPipe>,
    pub(super) stdout: Option<OutPipe>,
    pub(super) stderr: Option<OutPipe>,
    /// A `communicate` has taken input; a later one may not bring more.
    pub(super) fed: bool,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("command", &self.command)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Child {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The command as a shell would read it, for messages.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// How it ended, once a wait has seen it end.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    pub fn has_stdin(&self) -> bool {
        self.stdin.is_some()
    }

    pub fn has_stream(&self, stream: Stream) -> bool {
        self.out(stream).is_some()
    }

    /// Writes all of `data` to the command's stdin. On `Interrupted` the part not
    /// yet written is kept and goes first on the next call: retry with `&[]`.
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<(), CommandError> {
        let command = &self.command;
        let Some(input) = self.stdin.as_mut() else {
            return Err(not_piped(command, "stdin"));
        };
        io::flush(input, data, None)
            .map_err(|s| stop_error(s, command, None, "writing to stdin of"))
    }

    /// Writes what an interrupted `write_stdin` left, then closes stdin so the
    /// command sees end of file. Closing twice is fine.
    pub fn close_stdin(&mut self) -> Result<(), CommandError> {
        if let Some(input) = self.stdin.as_mut() {
            let flushed = io::flush(input, &[], None);
            if let Err(Stop::Interrupted) = flushed {
                return Err(CommandError::Interrupted);
            }
            self.stdin = None;
            // A reader that went away has already read all it wanted.
            match flushed {
                Err(Stop::Io(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(CommandError::io(
                        format!("writing to stdin of `{}`", self.command),
                        e,
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads `stream` to end of file and returns everything not yet taken (bytes;
    /// the runtime decodes). On `Interrupted` nothing is lost: call again.
    pub fn read_all(&mut self, stream: Stream) -> Result<Vec<u8>, CommandError> {
        let command = &self.command;
        let out = match stream {
            Stream::Stdout => self.stdout.as_mut(),
            Stream::Stderr => self.stderr.as_mut(),
        }
        .ok_or_else(|| not_piped(command, stream.name()))?;
        io::fill_until(out, None, |_| false)
            .map_err(|s| stop_error(s, command, None, reading(stream)))?;
        Ok(out.take_all())
    }

    /// The next line of `stream`, with its `\n` (the last line may lack one);
    /// `None` at end of file. Buffered: bytes after the line stay for later reads.
    pub fn read_line(&mut self, stream: Stream) -> Result<Option<Vec<u8>>, CommandError> {
        let command = &self.command;
        let out = match stream {
            Stream::Stdout => self.stdout.as_mut(),
            Stream::Stderr => self.stderr.as_mut(),
        }
        .ok_or_else(|| not_piped(command, stream.name()))?;
        let mut line = None;
        io::fill_until(out, None, |o| {
            line = o.take_line();
            line.is_some()
        })
        .map_err(|s| stop_error(s, command, None, reading(stream)))?;
        Ok(line)
    }

    /// Hands over our end of `stream`, to be another command's stdin
    /// (`Stdio::Fd`), connected directly. Refused once bytes have been read into
    /// our buffer, since the other command would not see them.
    pub fn take_stream(&mut self, stream: Stream) -> Result<OwnedFd, CommandError> {
        let command = &self.command;
        let slot = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        let out = slot
            .as_mut()
            .ok_or_else(|| not_piped(command, stream.name()))?;
        if out.has_buffered() {
            return Err(CommandError::Usage(format!(
                "{} of `{command}` was already read from; it cannot be connected to another command",
                stream.name()
            )));
        }
        let fd = out
            .take_fd()
            .map_err(|e| CommandError::io(format!("{} of `{command}`", stream.name()), e))?;
        *slot = None;
        fd.ok_or_else(|| {
            CommandError::Usage(format!(
                "{} of `{command}` is already at end of file",
                stream.name()
            ))
        })
    }

    /// Closes our end of `stream` (Python's `p.stdout.close()`): a command that
    /// writes to it afterwards gets SIGPIPE. Bytes already read and not taken are
    /// dropped. Closing twice, or a stream never piped, is fine.
    pub fn close_stream(&mut self, stream: Stream) {
        let slot = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        if let Some(out) = slot.as_mut() {
            out.close();
            out.take_all();
        }
    }

    /// Waits for the command to end. On `Timeout` it keeps running; on
    /// `Interrupted` call again.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<ExitStatus, CommandError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.wait_until(deadline)
            .map_err(|s| stop_error(s, &self.command, timeout, "waiting for"))
    }

    /// The status if the command has ended, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, CommandError> {
        if self.status.is_none() {
            process::sweep();
            self.status = process::try_status(self.pid);
            if self.status.is_some() {
                self.pidfd = None;
            }
        }
        Ok(self.status)
    }

    /// SIGTERM to the command's process group (grandchildren included).
    pub fn terminate(&self) -> Result<(), CommandError> {
        self.signal(libc::SIGTERM)
    }

    /// SIGKILL to the command's process group (grandchildren included).
    pub fn kill(&self) -> Result<(), CommandError> {
        self.signal(libc::SIGKILL)
    }

    /// Sends `signo` to the process group (or to the process alone when it was
    /// started without one). A command that has already ended is not an error.
    pub fn signal(&self, signo: i32) -> Result<(), CommandError> {
        let rc = if self.process_group {
            // A group outlives its leader while members remain (a grandchild), and
            // its id is not reused until it is empty: signalling it after the
            // leader has exited still reaches exactly the command's tree.
            // SAFETY: kill(2) with a negated process group id.
            unsafe { libc::kill(-self.pid, signo) }
        } else if let Some(pidfd) = &self.pidfd {
            // Exactly this process, even if it was reaped and its pid reused.
            // SAFETY: pidfd_send_signal(2) on our pidfd, no siginfo.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    signo,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                ) as i32
            }
        } else if self.status.is_some() {
            // Reaped, and the pid may belong to someone else now.
            return Ok(());
        } else {
            // SAFETY: kill(2) with a pid.
            unsafe { libc::kill(self.pid, signo) }
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(CommandError::io(
                    format!("cannot signal `{}`", self.command),
                    e,
                ));
            }
        }
        Ok(())
    }

    /// Feeds `input` to stdin (then closes it), reads stdout and stderr to end of
    /// file, and waits for the command to end: all on this thread, never
    /// deadlocking whatever the sizes. Returns what was read (bytes not taken by
    /// earlier reads included); a stream that is not piped gives nothing.
    ///
    /// On `Timeout` the command keeps running and nothing is lost: output read
    /// so far and input not yet written stay here, and a later `communicate`
    /// (with `input = None`) carries on. Likewise after `Interrupted`.
    pub fn communicate(
        &mut self,
        input: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<(Vec<u8>, Vec<u8>), CommandError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let fresh = input.unwrap_or_default();
        if !fresh.is_empty() {
            if self.fed {
                return Err(CommandError::Usage(format!(
                    "`{}` was already given its input by an earlier communicate",
                    self.command
                )));
            }
            if self.stdin.is_none() {
                return Err(not_piped(&self.command, "stdin"));
            }
        }
        self.fed = true;
        let mut outs: Vec<&mut OutPipe> = self.stdout.iter_mut().chain(&mut self.stderr).collect();
        io::pump(&mut self.stdin, fresh, &mut outs, deadline)
            .and_then(|()| self.wait_until(deadline).map(|_| ()))
            .map_err(|s| stop_error(s, &self.command, timeout, "talking to"))?;
        Ok((
            self.stdout
                .as_mut()
                .map(OutPipe::take_all)
                .unwrap_or_default(),
            self.stderr
                .as_mut()
                .map(OutPipe::take_all)
                .unwrap_or_default(),
        ))
    }

    /// After a timeout: SIGKILL to the group, close our pipe ends at once (a
    /// grandchild may hold theirs open for ever; we do not wait for its EOF), and
    /// reap the command. Output read so far stays readable with `read_all`.
    pub fn kill_and_reap(&mut self) -> ExitStatus {
        let _ = self.kill();
        self.close_pipes();
        if let Some(status) = self.status {
            return status;
        }
        let status = reap_dead(self.pid, self.pidfd.as_ref());
        self.status = Some(status);
        self.pidfd = None;
        status
    }

    fn close_pipes(&mut self) {
        self.stdin = None;
        if let Some(o) = self.stdout.as_mut() {
            o.close();
        }
        if let Some(o) = self.stderr.as_mut() {
            o.close();
        }
    }

    fn out(&self, stream: Stream) -> Option<&OutPipe> {
        match stream {
            Stream::Stdout => self.stdout.as_ref(),
            Stream::Stderr => self.stderr.as_ref(),
        }
    }

    /// Waits for the exit until `deadline`, interruptibly. The pidfd says when;
    /// `process` reaps and reports.
    pub(super) fn wait_until(&mut self, deadline: Option<Instant>) -> Result<ExitStatus, Stop> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = match &self.pidfd {
            Some(pidfd) => {
                let mut fds = vec![io::pollfd(pidfd.as_raw_fd(), libc::POLLIN)];
                io::wait_ready(&mut fds, deadline)?;
                collect(self.pid)?
            }
            None => poll_for_exit(self.pid, deadline)?,
        };
        self.status = Some(status);
        // The pidfd has served; do not hold a descriptor per finished child.
        self.pidfd = None;
        Ok(status)
    }
}

/// Without a pidfd: ask the table with a growing pause, still waking for signals.
fn poll_for_exit(pid: Pid, deadline: Option<Instant>) -> Result<ExitStatus, Stop> {
    let mut pause = Duration::from_micros(50);
    loop {
        process::sweep();
        if let Some(status) = process::try_status(pid) {
            return Ok(status);
        }
        let mut step = pause;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Stop::Timeout);
            }
            step = step.min(left);
        }
        match io::wait_ready(&mut Vec::new(), Some(Instant::now() + step)) {
            Err(Stop::Timeout) => {}
            other => other?,
        }
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Takes the status of a child known to have exited.
fn collect(pid: Pid) -> Result<ExitStatus, Stop> {
    process::sweep();
    if let Some(status) = process::try_status(pid) {
        return Ok(status);
    }
    match process::wait(pid, None) {
        Ok(status) => Ok(status),
        Err(WaitError::Interrupted) => Err(Stop::Interrupted),
        Err(WaitError::TimedOut) => Err(Stop::Timeout),
        Err(WaitError::NotAChild) => Err(Stop::Io(std::io::Error::other(format!(
            "process {pid} is no longer our child"
        )))),
    }
}

/// Reaps a child that has exited or was just SIGKILLed, whatever signals are
/// pending: this wait is short and must not be abandoned.
pub(super) fn reap_dead(pid: Pid, pidfd: Option<&OwnedFd>) -> ExitStatus {
    let mut pause = Duration::from_micros(20);
    loop {
        if let Some(fd) = pidfd {
            let mut p = io::pollfd(fd.as_raw_fd(), libc::POLLIN);
            // SAFETY: one live pollfd. EINTR just loops.
            unsafe { libc::poll(&mut p, 1, 100) };
        }
        process::sweep();
        if let Some(status) = process::try_status(pid) {
            return status;
        }
        if pidfd.is_none() {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        } else if let Ok(status) = process::wait(pid, Some(Duration::from_millis(1))) {
            return status;
        }
    }
}

fn reading(stream: Stream) -> &'static str {
    match stream {
        Stream::Stdout => "reading stdout of",
        Stream::Stderr => "reading stderr of",
    }
}

fn not_piped(command: &str, stream: &str) -> CommandError {
    CommandError::Usage(format!("{stream} of `{command}` is not an open pipe"))
}

pub(super) fn stop_error(
    stop: Stop,
    command: &str,
    timeout: Option<Duration>,
    doing: &str,
) -> CommandError {
    match stop {
        Stop::Timeout => CommandError::Timeout {
            command: command.to_string(),
            after: timeout.unwrap_or_default(),
        },
        Stop::Interrupted => CommandError::Interrupted,
        Stop::Io(e) => CommandError::io(format!("{doing} `{command}`"), e),
    }
}

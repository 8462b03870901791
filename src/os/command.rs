//! External commands (SPEC §12): what the runtime's `run`, `sh`, `popen` and
//! `pipeline` builtins are made of.
//!
//! This module owns starting programs (`spawn`: argv or a command string split as
//! a shell would, without a shell), our ends of their pipes, moving bytes through
//! them on the one interpreter thread, timeouts, and saying what went wrong. It
//! takes strings, bytes and descriptors and gives back bytes and statuses: it
//! never sees an interpreter value, and it never reaps a child itself (every
//! child is registered in `process`'s table and waited for through it).
//!
//! - Each command runs in its own process group, so a timeout or `kill()` reaches
//!   its grandchildren too; with `PR_SET_PDEATHSIG` it dies with the interpreter;
//!   its signal dispositions and mask are back to the defaults. See `spawn.rs` for
//!   how (a vfork-style `clone`, as fast as `posix_spawn`) and why.
//! - No reader threads: every wait is one `poll` over our pipe ends, the child's
//!   pidfd and the signal wake-up fd. A pending signal ends any wait with
//!   `Interrupted`, losing nothing, so the runtime can run handlers and retry.
//! - Pipe ends move by value: when a command has started, the parent's copies of
//!   its ends are closed, so readers see end of file.
//!
//! ```no_run
//! use std::time::Duration;
//! use proc::os::command::{run, run_pipeline, spawn, CommandSpec, Stdio, Stream};
//!
//! # fn main() -> Result<(), proc::os::command::CommandError> {
//! // run("sort -r", input = "a\nb\n", timeout = 5, check = true)
//! let spec = CommandSpec::parse("sort -r")?.stdio(Stdio::Pipe, Stdio::Pipe, Stdio::Pipe);
//! let out = run(spec, Some(b"a\nb\n"), Some(Duration::from_secs(5)), &mut || true)?;
//! out.check()?;
//! assert_eq!(out.stdout, b"b\na\n");
//!
//! // popen: one command's stdout straight into another's stdin, read line by line
//! let mut ls = spawn(CommandSpec::parse("ls /")?.stdio(Stdio::Null, Stdio::Pipe, Stdio::Inherit))?;
//! let ls_out = ls.take_stream(Stream::Stdout)?;
//! let mut wc = spawn(CommandSpec::parse("wc -l")?.stdio(Stdio::Fd(ls_out), Stdio::Pipe, Stdio::Inherit))?;
//! let _count = wc.read_line(Stream::Stdout)?;
//! ls.wait(None)?;
//! wc.wait(None)?;
//!
//! // pipeline(["printf", "b\na\n"], "sort")
//! let stages = vec![
//!     CommandSpec::new(vec!["printf".into(), "b\\na\\n".into()]),
//!     CommandSpec::parse("sort")?.stdio(Stdio::Inherit, Stdio::Pipe, Stdio::Pipe),
//! ];
//! let out = run_pipeline(stages, None, None, &mut || true)?;
//! assert_eq!(out.statuses.iter().map(|s| s.code()).collect::<Vec<_>>(), [0, 0]);
//! # Ok(())
//! # }
//! ```
//!
//! Commands in their own process group are not in the terminal's foreground
//! group: one that reads the terminal gets SIGTTIN. For interactive commands the
//! runtime can set `CommandSpec::process_group = false`.

mod child;
mod error;
mod io;
mod pipeline;
mod spawn;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

pub use child::{Child, Stream};
pub use error::{check_status, describe, CommandError, ProcessFailure};
pub use pipeline::{run_pipeline, spawn_pipeline, Pipeline, PipelineOutput};

use crate::os::process::{ExitStatus, Pid};
use io::{InPipe, OutPipe};
use spawn::Prepared;

/// Splits a command string into words as a shell would: quotes and backslashes
/// are honoured, and nothing else is special (no variables, globbing, pipes or
/// redirections).
pub fn split_command(command: &str) -> Result<Vec<String>, CommandError> {
    let words = shell_words::split(command).map_err(|e| CommandError::Parse {
        command: command.to_string(),
        message: e.to_string(),
    })?;
    if words.is_empty() {
        return Err(CommandError::Parse {
            command: command.to_string(),
            message: "empty command".into(),
        });
    }
    Ok(words)
}

/// Where one of a command's standard streams goes.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The interpreter's own.
    #[default]
    Inherit,
    /// A pipe to us: write with `Child::write_stdin`, read with `read_line`,
    /// `read_all` or `communicate`.
    Pipe,
    /// `/dev/null`.
    Null,
    /// This descriptor (for example another command's stdout from
    /// `Child::take_stream`, so the two are connected directly). It is closed in
    /// the parent once the command has started.
    Fd(OwnedFd),
    /// stderr only: wherever stdout goes.
    ToStdout,
}

/// A command to start.
#[derive(Debug)]
pub struct CommandSpec {
    /// The program (searched for in `PATH` unless it contains a `/`) and its
    /// arguments.
    pub argv: Vec<String>,
    /// The working directory; the interpreter's own when `None`.
    pub cwd: Option<String>,
    /// The whole environment, replacing the interpreter's (its `PATH`, if any, is
    /// then the one searched); the interpreter's own when `None`.
    pub env: Option<Vec<(String, String)>>,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// Start the command in a process group of its own (the default), so that
    /// signals from `terminate`/`kill`/a timeout reach its whole tree.
    pub process_group: bool,
}

impl CommandSpec {
    /// `argv` with every stream inherited, in its own process group.
    pub fn new(argv: Vec<String>) -> CommandSpec {
        CommandSpec {
            argv,
            cwd: None,
            env: None,
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            process_group: true,
        }
    }

    /// A command string, split by [`split_command`].
    pub fn parse(command: &str) -> Result<CommandSpec, CommandError> {
        Ok(CommandSpec::new(split_command(command)?))
    }

    /// The same with its three streams set.
    pub fn stdio(mut self, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> CommandSpec {
        self.stdin = stdin;
        self.stdout = stdout;
        self.stderr = stderr;
        self
    }

    fn prepare(&self) -> Result<Prepared, CommandError> {
        spawn::prepare(
            &self.argv,
            self.cwd.as_deref(),
            self.env.as_deref(),
            self.process_group,
        )
    }
}

/// Starts a command and registers it with `process`. A missing program or
/// directory is an error naming it, reported before anything runs where it can
/// be (`PATH` search) and otherwise from the child's failed `chdir`/`exec`.
pub fn spawn(spec: CommandSpec) -> Result<Child, CommandError> {
    let prepared = spec.prepare()?;
    start(&prepared, spec.stdin, spec.stdout, spec.stderr)
}

/// How a command that `run` waited for ended, and what it wrote.
#[derive(Debug)]
pub struct Output {
    pub pid: Pid,
    pub command: String,
    pub status: ExitStatus,
    /// Empty for a stream that was not piped.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// `check = true`: a non-zero exit is an error with the tail of stderr.
    pub fn check(&self) -> Result<(), CommandError> {
        check_status(&self.command, self.status, &self.stderr)
    }
}

/// Starts `spec`, feeds it `input` (stdin becomes a pipe when there is input),
/// collects what it writes to piped streams and waits for it.
///
/// A `timeout` kills the command's process group, reaps it and returns `Timeout`
/// promptly, even if a grandchild still holds the pipes. When a signal for the
/// interpreter arrives, `on_interrupt` is called (run the handlers there): `true`
/// carries on where it was, `false` kills the command and returns `Interrupted`.
pub fn run(
    mut spec: CommandSpec,
    input: Option<&[u8]>,
    timeout: Option<Duration>,
    on_interrupt: &mut dyn FnMut() -> bool,
) -> Result<Output, CommandError> {
    if input.is_some() {
        spec.stdin = Stdio::Pipe;
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut child = spawn(spec)?;
    let mut input = input;
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match child.communicate(input.take(), left) {
            Ok((stdout, stderr)) => {
                return Ok(Output {
                    pid: child.pid,
                    command: child.command.clone(),
                    status: child.status.unwrap_or(ExitStatus::Code(0)),
                    stdout,
                    stderr,
                })
            }
            Err(CommandError::Interrupted) if on_interrupt() => continue,
            Err(CommandError::Timeout { command, .. }) => {
                child.kill_and_reap();
                return Err(CommandError::Timeout {
                    command,
                    after: timeout.unwrap_or_default(),
                });
            }
            Err(e) => {
                child.kill_and_reap();
                return Err(e);
            }
        }
    }
}

/// One stream's two ends: what the child gets (a descriptor >= 3, or a marker)
/// and what we keep.
struct Ends {
    child: Option<OwnedFd>,
    raw: RawFd,
    ours: Option<OwnedFd>,
}

fn ends(stdio: Stdio, target: RawFd, command: &str) -> Result<Ends, CommandError> {
    let io_err = |e| CommandError::Spawn {
        command: command.to_string(),
        source: e,
    };
    let (child, ours) = match stdio {
        Stdio::Inherit => {
            return Ok(Ends {
                child: None,
                raw: spawn::INHERIT,
                ours: None,
            })
        }
        Stdio::ToStdout if target == 2 => {
            return Ok(Ends {
                child: None,
                raw: spawn::TO_STDOUT,
                ours: None,
            })
        }
        Stdio::ToStdout => {
            return Err(CommandError::Usage(
                "only stderr can be sent to stdout".into(),
            ))
        }
        Stdio::Null => {
            // SAFETY: open(2) with a constant path; we own the result.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io_err(std::io::Error::last_os_error()));
            }
            (unsafe { OwnedFd::from_raw_fd(fd) }, None)
        }
        Stdio::Pipe => {
            let (r, w) = os_pipe::pipe().map_err(io_err)?;
            let (r, w) = (OwnedFd::from(r), OwnedFd::from(w));
            if target == 0 {
                (r, Some(w))
            } else {
                (w, Some(r))
            }
        }
        Stdio::Fd(fd) => {
            // Ours may have been non-blocking; the command expects ordinary stdio.
            io::set_nonblocking(fd.as_raw_fd(), false).map_err(io_err)?;
            (fd, None)
        }
    };
    // The child `dup2`s its ends onto 0, 1 and 2 in turn: none may be one of
    // those already, or an earlier `dup2` would overwrite it.
    let child = if child.as_raw_fd() < 3 {
        // SAFETY: duplicating a descriptor we own; we own the copy.
        let fd = unsafe { libc::fcntl(child.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
        if fd < 0 {
            return Err(io_err(std::io::Error::last_os_error()));
        }
        unsafe { OwnedFd::from_raw_fd(fd) }
    } else {
        child
    };
    Ok(Ends {
        raw: child.as_raw_fd(),
        child: Some(child),
        ours,
    })
}

/// Starts a prepared command with these streams.
fn start(p: &Prepared, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Result<Child, CommandError> {
    let ends_in = ends(stdin, 0, &p.display)?;
    let ends_out = ends(stdout, 1, &p.display)?;
    let ends_err = ends(stderr, 2, &p.display)?;
    let io_err = |e| CommandError::Spawn {
        command: p.display.clone(),
        source: e,
    };
    let stdin = ends_in.ours.map(InPipe::new).transpose().map_err(io_err)?;
    let stdout = ends_out
        .ours
        .map(OutPipe::new)
        .transpose()
        .map_err(io_err)?;
    let stderr = ends_err
        .ours
        .map(OutPipe::new)
        .transpose()
        .map_err(io_err)?;
    let (pid, pidfd) = spawn::launch(p, [ends_in.raw, ends_out.raw, ends_err.raw])?;
    // The command has exec'd: the parent's copies of its ends close here, so a
    // reader downstream sees end of file when the command is done.
    drop((ends_in.child, ends_out.child, ends_err.child));
    Ok(Child {
        pid,
        command: p.display.clone(),
        process_group: p.process_group,
        pidfd,
        status: None,
        stdin,
        stdout,
        stderr,
        fed: false,
    })
}

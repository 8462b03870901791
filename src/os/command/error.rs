//! What went wrong running a command, said the way cargo's `ProcessError` says it:
//! the command as a user could paste it, what happened, and the tail of stderr.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::os::process::ExitStatus;
use crate::os::signal;

/// How much of a failed command's stderr an error message repeats.
const TAIL_LINES: usize = 10;
const TAIL_BYTES: usize = 2048;

/// Everything the command layer reports. The runtime maps `Timeout` to the
/// `Timeout` kind, `Interrupted` to "run the signal handlers and retry", `Io` to
/// `IOError`, and the rest to `CommandError`.
#[derive(Debug)]
pub enum CommandError {
    /// A command string that cannot be split into words (an unclosed quote), or
    /// an empty one.
    Parse { command: String, message: String },
    /// The program is not on `PATH`, or the path given does not exist.
    NoSuchProgram { program: String },
    /// The working directory given for the command does not exist.
    NoSuchDirectory { path: String },
    /// The command could not be started for another reason (permission denied, an
    /// exec format error, a NUL byte in an argument, too many open files, ...).
    Spawn { command: String, source: io::Error },
    /// The command ran and failed (non-zero exit, or killed by a signal), for
    /// `check = true`.
    Failed(ProcessFailure),
    /// The timeout passed. Whether the command was killed depends on the call:
    /// `run`/`run_pipeline` kill it, `Child::wait`/`communicate` leave it running.
    Timeout { command: String, after: Duration },
    /// A signal the interpreter must handle is pending (`signal::pending`). No
    /// state is lost: run the handlers and call again.
    Interrupted,
    /// Reading or writing a pipe failed, or a child was lost from the table.
    Io { context: String, source: io::Error },
    /// The call does not make sense in this state (input after a timed-out
    /// `communicate` started writing, a stream that was never piped, ...).
    Usage(String),
}

impl CommandError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> CommandError {
        CommandError::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Parse { command, message } => {
                write!(f, "cannot split command `{command}`: {message}")
            }
            CommandError::NoSuchProgram { program } => write!(f, "no such program: `{program}`"),
            CommandError::NoSuchDirectory { path } => write!(f, "no such directory: `{path}`"),
            CommandError::Spawn { command, source } => {
                write!(f, "cannot run `{command}`: {}", plain_io(source))
            }
            CommandError::Failed(failure) => failure.fmt(f),
            CommandError::Timeout { command, after } => {
                write!(
                    f,
                    "command `{command}` timed out after {}s",
                    after.as_secs_f64()
                )
            }
            CommandError::Interrupted => f.write_str("interrupted by a signal"),
            CommandError::Io { context, source } => write!(f, "{context}: {}", plain_io(source)),
            CommandError::Usage(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::Spawn { source, .. } | CommandError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A command that ran and did not succeed: which one, how it ended, and what it
/// said last on stderr (when stderr was captured).
#[derive(Debug, Clone)]
pub struct ProcessFailure {
    pub command: String,
    pub status: ExitStatus,
    /// The last lines of captured stderr, already trimmed to a few lines.
    pub stderr_tail: String,
}

impl ProcessFailure {
    pub fn new(command: impl Into<String>, status: ExitStatus, stderr: &[u8]) -> ProcessFailure {
        ProcessFailure {
            command: command.into(),
            status,
            stderr_tail: tail(stderr),
        }
    }
}

impl fmt::Display for ProcessFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command `{}` {}", self.command, describe(self.status))?;
        if !self.stderr_tail.is_empty() {
            write!(f, "\n--- stderr\n{}", self.stderr_tail)?;
        }
        Ok(())
    }
}

/// "exited with code 2" or "killed by signal 9 (SIGKILL)".
pub fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(code) => format!("exited with code {code}"),
        ExitStatus::Signal(sig) => {
            let name = signal::name(sig);
            if name.starts_with("SIG") {
                format!("killed by signal {sig} ({name})")
            } else {
                format!("killed by signal {sig}")
            }
        }
    }
}

/// `Ok` for exit code 0, else `Failed` naming the command and quoting the tail of
/// `stderr` (pass what was captured, or nothing).
pub fn check_status(command: &str, status: ExitStatus, stderr: &[u8]) -> Result<(), CommandError> {
    if status == ExitStatus::Code(0) {
        Ok(())
    } else {
        Err(CommandError::Failed(ProcessFailure::new(
            command, status, stderr,
        )))
    }
}

/// The last few lines of `bytes`, decoded lossily, without the final newline.
fn tail(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |i| i + 1);
    let bytes = &bytes[..end];
    let mut start = bytes.len().saturating_sub(TAIL_BYTES);
    let mut lines = 0;
    for (i, &b) in bytes.iter().enumerate().skip(start).rev() {
        if b == b'\n' {
            lines += 1;
            if lines == TAIL_LINES {
                start = i + 1;
                break;
            }
        }
    }
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// An `io::Error` without Rust's " (os error N)" suffix, lowercased like the rest
/// of proc's messages.
fn plain_io(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let t = tail(text.as_bytes());
        assert!(t.starts_with("line 21\n"), "{t}");
        assert!(t.ends_with("line 30"), "{t}");
        assert_eq!(tail(b"only\n"), "only");
        assert_eq!(tail(b""), "");
    }

    #[test]
    fn messages() {
        let f = ProcessFailure::new("sort -x", ExitStatus::Code(2), b"sort: invalid option\n");
        assert_eq!(
            f.to_string(),
            "command `sort -x` exited with code 2\n--- stderr\nsort: invalid option"
        );
        assert_eq!(
            describe(ExitStatus::Signal(9)),
            "killed by signal 9 (SIGKILL)"
        );
        let e = CommandError::Spawn {
            command: "x".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(e.to_string(), "cannot run `x`: permission denied");
    }
}

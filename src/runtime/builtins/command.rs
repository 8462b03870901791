//! External commands (SPEC §12): `run`, `sh`, `popen` and `pipeline`, and the
//! `popen` and `stream` handles (in `command/popen.rs`).
//!
//! This family turns values into `os::command` requests and the answers back into
//! values: argv lists or command strings, the stdio choices, `env`/`cwd`, seconds,
//! bytes decoded as UTF-8 (lossily). It never touches a descriptor itself. Every
//! wait the OS layer makes ends early with `Interrupted` when a signal arrives;
//! here that means "run the script's handlers, then carry on", so `on_signal`
//! handlers and Ctrl-C stay prompt however long a command runs.

mod popen;

use std::rc::Rc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use crate::os::command::{self as os, CommandError, CommandSpec, Stdio};
use crate::os::process::ExitStatus;
use crate::runtime::builtins::core::seconds;
use crate::runtime::error::{fail, Res, RtError, Unwind};
use crate::runtime::format::display;
use crate::runtime::value::{Args, Builtin, Key, Value};
use crate::runtime::Interp;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "run",
        func: run,
    },
    Builtin {
        name: "sh",
        func: sh,
    },
    Builtin {
        name: "popen",
        func: popen::popen,
    },
    Builtin {
        name: "pipeline",
        func: pipeline,
    },
];

/// A `CommandError` as the script sees it: `Timeout` for a timeout, `IOError` for
/// a pipe that failed, `ValueError` for a call that makes no sense in the
/// handle's state, `CommandError` for the rest (missing program or directory,
/// failed exit, a command string that cannot be split).
pub(crate) fn command_error(e: CommandError) -> Unwind {
    let kind = match &e {
        CommandError::Timeout { .. } => "Timeout",
        CommandError::Io { .. } | CommandError::Interrupted => "IOError",
        CommandError::Usage(_) => "ValueError",
        CommandError::Parse { .. }
        | CommandError::NoSuchProgram { .. }
        | CommandError::NoSuchDirectory { .. }
        | CommandError::Spawn { .. }
        | CommandError::Failed(_) => "CommandError",
    };
    RtError::new(kind, e.to_string()).into()
}

/// Runs `op` until it finishes without being interrupted, running the script's
/// signal handlers between tries (an unhandled SIGINT unwinds from there).
/// `op` must keep its own progress, as every `os::command` call does.
pub(crate) fn retry<T>(
    interp: &mut Interp,
    mut op: impl FnMut() -> Result<T, CommandError>,
) -> Res<T> {
    loop {
        match op() {
            Err(CommandError::Interrupted) => interp.handle_signals()?,
            other => return other.map_err(command_error),
        }
    }
}

/// What is left of `timeout` at `deadline`, for a retried call.
pub(crate) fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// A `Timeout` names the timeout the script gave, not what a retry had left.
pub(crate) fn full_timeout(e: CommandError, timeout: Option<Duration>) -> CommandError {
    match (e, timeout) {
        (CommandError::Timeout { command, .. }, Some(after)) => {
            CommandError::Timeout { command, after }
        }
        (e, _) => e,
    }
}

/// The command: a list is the argv (no shell); a string is split into words as a
/// shell would, quotes honoured and nothing expanded. Numbers in a list are
/// written out (`["sleep", 1]`).
pub(crate) fn argv_of(func: &str, cmd: Option<Value>) -> Res<Vec<String>> {
    match cmd {
        Some(Value::Str(s)) => os::split_command(&s).map_err(command_error),
        Some(Value::List(l)) => {
            let l = l.borrow();
            if l.is_empty() {
                return fail("ValueError", format!("{func}(): the command is empty"));
            }
            l.iter()
                .map(|a| match a {
                    Value::Str(s) => Ok(s.to_string()),
                    Value::Int(_) | Value::Float(_) => Ok(display(a)),
                    other => fail(
                        "TypeError",
                        format!(
                            "{func}(): command arguments must be str, not {}",
                            other.type_name()
                        ),
                    ),
                })
                .collect()
        }
        Some(other) => fail(
            "TypeError",
            format!(
                "{func}(): the command must be a list or a str, not {}",
                other.type_name()
            ),
        ),
        None => fail("TypeError", format!("{func}() missing argument `cmd`")),
    }
}

/// Where a standard stream goes, as a script names it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Dest {
    Inherit,
    Pipe,
    Null,
    /// stderr only: wherever stdout goes.
    Stdout,
}

impl Dest {
    pub(crate) fn of(
        func: &str,
        what: &str,
        v: Option<Value>,
        default: Dest,
        allow_stdout: bool,
    ) -> Res<Dest> {
        let choices = if allow_stdout {
            "\"pipe\", \"inherit\", \"null\" or \"stdout\""
        } else {
            "\"pipe\", \"inherit\" or \"null\""
        };
        match v {
            None | Some(Value::Nil) => Ok(default),
            Some(Value::Str(s)) => match &*s {
                "inherit" => Ok(Dest::Inherit),
                "pipe" => Ok(Dest::Pipe),
                "null" => Ok(Dest::Null),
                "stdout" if allow_stdout => Ok(Dest::Stdout),
                other => fail(
                    "ValueError",
                    format!("{func}(): {what} must be {choices}, not {other:?}"),
                ),
            },
            Some(other) => fail(
                "TypeError",
                format!(
                    "{func}(): {what} must be {choices}, not {}",
                    other.type_name()
                ),
            ),
        }
    }

    pub(crate) fn stdio(self) -> Stdio {
        match self {
            Dest::Inherit => Stdio::Inherit,
            Dest::Pipe => Stdio::Pipe,
            Dest::Null => Stdio::Null,
            Dest::Stdout => Stdio::ToStdout,
        }
    }
}

/// Whether the command would use the interpreter's terminal. Such a command
/// stays in the interpreter's process group, the terminal's foreground one, as a
/// shell's foreground job does: in a group of its own it would be stopped
/// (SIGTTIN) the moment it read the terminal, and Ctrl-C would not reach it.
/// The price: `terminate`, `kill` and timeouts then reach the command itself,
/// not what it started in the background.
pub(crate) fn on_terminal(stdin: Dest, stdout: Dest, stderr: Dest) -> bool {
    use std::io::IsTerminal;
    (stdin == Dest::Inherit && std::io::stdin().is_terminal())
        || (stdout == Dest::Inherit && std::io::stdout().is_terminal())
        || ((stderr == Dest::Inherit || (stderr == Dest::Stdout && stdout == Dest::Inherit))
            && std::io::stderr().is_terminal())
}

/// `cwd = "dir"` or nil.
pub(crate) fn cwd_of(func: &str, v: Option<Value>) -> Res<Option<String>> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.to_string())),
        Some(other) => fail(
            "TypeError",
            format!("{func}(): cwd must be a str, not {}", other.type_name()),
        ),
    }
}

/// `env = {"NAME": value}` replaces the whole environment; values that are
/// numbers or bools are written out.
pub(crate) fn env_of(func: &str, v: Option<Value>) -> Res<Option<Vec<(String, String)>>> {
    let m = match v {
        None | Some(Value::Nil) => return Ok(None),
        Some(Value::Map(m)) => m,
        Some(other) => {
            return fail(
                "TypeError",
                format!("{func}(): env must be a map, not {}", other.type_name()),
            )
        }
    };
    let m = m.borrow();
    let mut vars = Vec::with_capacity(m.len());
    for (k, v) in m.iter() {
        let Key::Str(k) = k else {
            return fail(
                "TypeError",
                format!(
                    "{func}(): env names must be str, not {}",
                    k.to_value().type_name()
                ),
            );
        };
        let v = match v {
            Value::Str(s) => s.to_string(),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => display(v),
            other => {
                return fail(
                    "TypeError",
                    format!(
                        "{func}(): env value of {k:?} must be str, not {}",
                        other.type_name()
                    ),
                )
            }
        };
        vars.push((k.to_string(), v));
    }
    Ok(Some(vars))
}

pub(crate) fn timeout_of(func: &str, v: Option<Value>) -> Res<Option<Duration>> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => seconds(func, &v).map(Some),
    }
}

pub(crate) fn input_of(func: &str, v: Option<Value>) -> Res<Option<Rc<str>>> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(other) => fail(
            "TypeError",
            format!("{func}(): input must be a str, not {}", other.type_name()),
        ),
    }
}

/// Bytes a command wrote, as a str (invalid UTF-8 becomes U+FFFD).
pub(crate) fn text(bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(s) => Value::Str(s.into()),
        Err(e) => Value::Str(String::from_utf8_lossy(e.as_bytes()).into()),
    }
}

/// What `run`, `sh` and `pipeline` take besides the command.
struct Options {
    input: Option<Rc<str>>,
    check: bool,
    timeout: Option<Duration>,
    cwd: Option<String>,
    env: Option<Vec<(String, String)>>,
    stdout: Dest,
    stderr: Dest,
}

const OPTION_NAMES: [&str; 7] = [
    "input", "check", "timeout", "cwd", "env", "stdout", "stderr",
];

impl Options {
    fn parse(
        func: &str,
        [input, check, timeout, cwd, env, stdout, stderr]: [Option<Value>; 7],
    ) -> Res<Options> {
        Ok(Options {
            input: input_of(func, input)?,
            check: check.is_some_and(|c| c.truthy()),
            timeout: timeout_of(func, timeout)?,
            cwd: cwd_of(func, cwd)?,
            env: env_of(func, env)?,
            stdout: Dest::of(func, "stdout", stdout, Dest::Pipe, false)?,
            stderr: Dest::of(func, "stderr", stderr, Dest::Pipe, true)?,
        })
    }

    /// The command's spec; `first` is whether it reads the interpreter's stdin
    /// (when there is no `input`).
    fn spec(&self, argv: Vec<String>, first: bool) -> CommandSpec {
        let stdin = if first && self.input.is_none() {
            Dest::Inherit
        } else {
            Dest::Pipe
        };
        let mut spec =
            CommandSpec::new(argv).stdio(Stdio::Inherit, self.stdout.stdio(), self.stderr.stdio());
        spec.cwd = self.cwd.clone();
        spec.env = self.env.clone();
        spec.process_group = !on_terminal(stdin, self.stdout, self.stderr);
        spec
    }

    /// Whatever the interpreter printed must come out before what the command
    /// writes to the same terminal or file.
    fn flush_first(&self, interp: &mut Interp) -> Res<()> {
        if self.stdout == Dest::Inherit || self.stderr == Dest::Inherit {
            interp.out.flush()?;
        }
        Ok(())
    }

    /// The stderr to quote when `check` fails: what stderr captured, or the
    /// merged stdout when stderr went there.
    fn tail_source<'a>(&self, stdout: &'a [u8], stderr: &'a [u8]) -> &'a [u8] {
        if self.stderr == Dest::Stdout && self.stdout == Dest::Pipe {
            stdout
        } else {
            stderr
        }
    }
}

fn piped(dest: Dest, bytes: Vec<u8>) -> Value {
    if dest == Dest::Pipe {
        text(bytes)
    } else {
        Value::Nil
    }
}

/// The map `run` returns: `{code, ok, stdout, stderr, pid}`.
fn result_map(status: ExitStatus, stdout: Value, stderr: Value, pid: i32) -> IndexMap<Key, Value> {
    let mut m = IndexMap::with_capacity(6);
    m.insert(Key::Str("code".into()), Value::Int(status.code() as i64));
    m.insert(Key::Str("ok".into()), Value::Bool(status.success()));
    m.insert(Key::Str("stdout".into()), stdout);
    m.insert(Key::Str("stderr".into()), stderr);
    m.insert(Key::Str("pid".into()), Value::Int(pid as i64));
    m
}

/// Calls the OS layer's `run`/`run_pipeline` with an `on_interrupt` that runs the
/// script's signal handlers; an unwind from a handler (an uncaught error, or
/// SIGINT) stops the command and comes back here.
fn with_handlers<T>(
    interp: &mut Interp,
    call: impl FnOnce(&mut dyn FnMut() -> bool) -> Result<T, CommandError>,
) -> Res<T> {
    let mut unwound: Option<Unwind> = None;
    let r = call(&mut || match interp.handle_signals() {
        Ok(()) => true,
        Err(u) => {
            unwound = Some(u);
            false
        }
    });
    if let Some(u) = unwound {
        return Err(u);
    }
    r.map_err(command_error)
}

fn run_argv(interp: &mut Interp, argv: Vec<String>, opts: Options) -> Res<Value> {
    opts.flush_first(interp)?;
    let spec = opts.spec(argv, true);
    let input = opts.input.as_deref().map(str::as_bytes);
    let out = with_handlers(interp, |on_interrupt| {
        os::run(spec, input, opts.timeout, on_interrupt)
    })?;
    if opts.check {
        os::check_status(
            &out.command,
            out.status,
            opts.tail_source(&out.stdout, &out.stderr),
        )
        .map_err(command_error)?;
    }
    let stdout = piped(opts.stdout, out.stdout);
    let stderr = piped(opts.stderr, out.stderr);
    Ok(Value::map(result_map(out.status, stdout, stderr, out.pid)))
}

/// `run(cmd, input = nil, check = false, timeout = nil, cwd = nil, env = nil,
/// stdout = "pipe", stderr = "pipe")`.
fn run(interp: &mut Interp, args: Args) -> Res<Value> {
    let [cmd, input, check, timeout, cwd, env, stdout, stderr] = args.bind(
        "run",
        [
            "cmd", "input", "check", "timeout", "cwd", "env", "stdout", "stderr",
        ],
        1,
    )?;
    let argv = argv_of("run", cmd)?;
    let opts = Options::parse("run", [input, check, timeout, cwd, env, stdout, stderr])?;
    run_argv(interp, argv, opts)
}

/// `sh(script, ...)` is `run(["/bin/sh", "-c", script], ...)`.
fn sh(interp: &mut Interp, args: Args) -> Res<Value> {
    let [script, input, check, timeout, cwd, env, stdout, stderr] = args.bind(
        "sh",
        [
            "script", "input", "check", "timeout", "cwd", "env", "stdout", "stderr",
        ],
        1,
    )?;
    let script = match script {
        Some(Value::Str(s)) => s.to_string(),
        other => {
            return fail(
                "TypeError",
                format!(
                    "sh(): script must be a str, not {}",
                    other.unwrap_or_default().type_name()
                ),
            )
        }
    };
    let opts = Options::parse("sh", [input, check, timeout, cwd, env, stdout, stderr])?;
    run_argv(interp, vec!["/bin/sh".into(), "-c".into(), script], opts)
}

/// `pipeline(cmd1, cmd2, ..., input = nil, check = false, timeout = nil)`, and
/// `run`'s `cwd`, `env`, `stdout` (the last stage's) and `stderr` (every
/// stage's). The map is the last stage's, plus `codes`.
fn pipeline(interp: &mut Interp, mut args: Args) -> Res<Value> {
    let cmds = std::mem::take(&mut args.pos);
    let opts = Options::parse("pipeline", args.bind("pipeline", OPTION_NAMES, 0)?)?;
    if cmds.is_empty() {
        return fail("TypeError", "pipeline() needs at least one command");
    }
    let specs = cmds
        .into_iter()
        .enumerate()
        .map(|(i, c)| argv_of("pipeline", Some(c)).map(|argv| opts.spec(argv, i == 0)))
        .collect::<Res<Vec<_>>>()?;
    opts.flush_first(interp)?;
    let input = opts.input.as_deref().map(str::as_bytes);
    let mut out = with_handlers(interp, |on_interrupt| {
        os::run_pipeline(specs, input, opts.timeout, on_interrupt)
    })?;
    if opts.check {
        if opts.stderr == Dest::Stdout && opts.stdout == Dest::Pipe {
            // The last stage's errors went to the captured stdout: quote that.
            if let Some(last) = out.stderrs.last_mut() {
                last.clone_from(&out.stdout);
            }
        }
        out.check().map_err(command_error)?;
    }
    let last = out.statuses.len() - 1;
    let stderr = out.stderrs.pop().unwrap_or_default();
    let codes = out
        .statuses
        .iter()
        .map(|s| Value::Int(s.code() as i64))
        .collect();
    let mut m = result_map(
        out.statuses[last],
        piped(opts.stdout, out.stdout),
        piped(opts.stderr, stderr),
        out.pids[last],
    );
    m.insert(Key::Str("codes".into()), Value::list(codes));
    Ok(Value::map(m))
}

//! `popen(...)`: a running command as a handle, and its pipes as `stream`s.
//!
//! The handle and its streams share one `os::command::Child`. No borrow of it is
//! held while the script's signal handlers run (they may use the same handle), so
//! every blocking call goes through `retry`, which borrows for one try at a time.
//! Neither handle is sendable: they have no `wire()`.

use std::any::Any;
use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Instant;

use super::{
    argv_of, command_error, cwd_of, env_of, full_timeout, input_of, left, on_terminal, retry, text,
    timeout_of, Dest,
};
use crate::os::command::{self as os, Child, CommandSpec, Stdio, Stream};
use crate::os::process::Pid;
use crate::runtime::error::{fail, Res};
use crate::runtime::value::{Args, Object, Value};
use crate::runtime::Interp;

/// The child, and what became of our ends of its output pipes.
struct Shared {
    child: Child,
    /// Per output stream (stdout, stderr): why the script can no longer read it,
    /// once it was closed or handed to another command.
    gone: [Option<&'static str>; 2],
}

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn stream_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    }
}

/// The `popen` handle.
pub struct Popen {
    shared: Rc<RefCell<Shared>>,
    pid: Pid,
    stdin: Value,
    stdout: Value,
    stderr: Value,
}

#[derive(Clone, Copy)]
enum Which {
    Stdin,
    Out(Stream),
}

/// A `stream`: the writing end of a popen's stdin, or the reading end of its
/// stdout or stderr.
pub struct PipeStream {
    shared: Rc<RefCell<Shared>>,
    which: Which,
    pid: Pid,
}

/// `popen(cmd, stdin = "inherit", stdout = "inherit", stderr = "inherit",
/// cwd = nil, env = nil)`.
pub fn popen(interp: &mut Interp, args: Args) -> Res<Value> {
    let [cmd, stdin, stdout, stderr, cwd, env] = args.bind(
        "popen",
        ["cmd", "stdin", "stdout", "stderr", "cwd", "env"],
        1,
    )?;
    let argv = argv_of("popen", cmd)?;
    let stdout = Dest::of("popen", "stdout", stdout, Dest::Inherit, false)?;
    let stderr = Dest::of("popen", "stderr", stderr, Dest::Inherit, true)?;
    let cwd = cwd_of("popen", cwd)?;
    let env = env_of("popen", env)?;
    // Taken last: once another command's stream is ours, no argument error may
    // come between us and the spawn that passes it on.
    let (stdin, stdin_dest) = match stdin {
        Some(v @ Value::Object(_)) => (Stdio::Fd(connect(&v)?), Dest::Pipe),
        v => {
            let d = Dest::of("popen", "stdin", v, Dest::Inherit, false)?;
            (d.stdio(), d)
        }
    };
    if stdout == Dest::Inherit || stderr == Dest::Inherit {
        interp.out.flush()?;
    }
    let mut spec = CommandSpec::new(argv).stdio(stdin, stdout.stdio(), stderr.stdio());
    spec.cwd = cwd;
    spec.env = env;
    spec.process_group = !on_terminal(stdin_dest, stdout, stderr);
    let child = os::spawn(spec).map_err(command_error)?;
    let pid = child.pid();
    let has_stdin = child.has_stdin();
    let has = [
        child.has_stream(Stream::Stdout),
        child.has_stream(Stream::Stderr),
    ];
    let shared = Rc::new(RefCell::new(Shared {
        child,
        gone: [None; 2],
    }));
    let stream = |present: bool, which: Which| {
        if present {
            Value::object(PipeStream {
                shared: shared.clone(),
                which,
                pid,
            })
        } else {
            Value::Nil
        }
    };
    let stdin = stream(has_stdin, Which::Stdin);
    let stdout = stream(has[0], Which::Out(Stream::Stdout));
    let stderr = stream(has[1], Which::Out(Stream::Stderr));
    Ok(Value::object(Popen {
        shared,
        pid,
        stdin,
        stdout,
        stderr,
    }))
}

/// `popen(..., stdin = other.stdout)`: takes the other command's pipe end, to be
/// this command's stdin. The two are connected directly; the interpreter keeps
/// no copy, so the reader sees end of file when the writer is done.
fn connect(v: &Value) -> Res<OwnedFd> {
    let Some(s) = v.downcast::<PipeStream>() else {
        return fail(
            "TypeError",
            format!(
                "popen(): stdin must be \"pipe\", \"inherit\", \"null\" or another popen's stdout, not {}",
                v.type_name()
            ),
        );
    };
    let Which::Out(stream) = s.which else {
        return fail(
            "ValueError",
            "popen(): stdin cannot be another popen's stdin (pass its stdout)",
        );
    };
    let mut shared = s.shared.borrow_mut();
    if let Some(why) = shared.gone[slot(stream)] {
        return fail(
            "ValueError",
            format!(
                "{} of `{}` is {why}",
                stream_name(stream),
                shared.child.command()
            ),
        );
    }
    let fd = shared.child.take_stream(stream).map_err(command_error)?;
    shared.gone[slot(stream)] = Some("connected to another command");
    Ok(fd)
}

fn code_or_nil(status: Option<crate::os::process::ExitStatus>) -> Value {
    status.map_or(Value::Nil, |s| Value::Int(s.code() as i64))
}

impl Popen {
    fn communicate(&self, interp: &mut Interp, args: Args) -> Res<Value> {
        let [input, timeout] = args.bind("communicate", ["input", "timeout"], 0)?;
        let input = input_of("communicate", input)?;
        let timeout = timeout_of("communicate", timeout)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let has = {
            let s = self.shared.borrow();
            [
                s.child.has_stream(Stream::Stdout),
                s.child.has_stream(Stream::Stderr),
            ]
        };
        let mut input = input.as_deref().map(str::as_bytes);
        let (out, err) = retry(interp, || {
            let r = self
                .shared
                .borrow_mut()
                .child
                .communicate(input.take(), left(deadline));
            r.map_err(|e| full_timeout(e, timeout))
        })?;
        let pick = |present: bool, bytes: Vec<u8>| {
            if present {
                text(bytes)
            } else {
                Value::Nil
            }
        };
        Ok(Value::list(vec![pick(has[0], out), pick(has[1], err)]))
    }

    fn wait(&self, interp: &mut Interp, timeout: Option<std::time::Duration>) -> Res<Value> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let status = retry(interp, || {
            let r = self.shared.borrow_mut().child.wait(left(deadline));
            r.map_err(|e| full_timeout(e, timeout))
        })?;
        Ok(Value::Int(status.code() as i64))
    }

    fn poll(&self) -> Res<Value> {
        let status = self
            .shared
            .borrow_mut()
            .child
            .try_wait()
            .map_err(command_error)?;
        Ok(code_or_nil(status))
    }
}

impl Object for Popen {
    fn type_name(&self) -> &'static str {
        "popen"
    }

    fn repr(&self) -> String {
        let status = match self.shared.try_borrow_mut() {
            Ok(mut s) => s.child.try_wait().ok().flatten(),
            Err(_) => None,
        };
        match status {
            None => format!("<popen pid={} running>", self.pid),
            Some(s) => format!("<popen pid={} returncode={}>", self.pid, s.code()),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn get_field(&self, _interp: &mut Interp, name: &str) -> Res<Value> {
        Ok(match name {
            "pid" => Value::Int(self.pid as i64),
            "stdin" => self.stdin.clone(),
            "stdout" => self.stdout.clone(),
            "stderr" => self.stderr.clone(),
            "returncode" => return self.poll(),
            "command" => Value::str(self.shared.borrow().child.command()),
            _ => {
                return fail(
                    "TypeError",
                    format!(
                        "popen has no field `{name}` (it has: pid, command, stdin, stdout, stderr, returncode)"
                    ),
                )
            }
        })
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "communicate" => self.communicate(interp, args),
            "wait" => {
                let [timeout] = args.bind("wait", ["timeout"], 0)?;
                let timeout = timeout_of("wait", timeout)?;
                self.wait(interp, timeout)
            }
            "poll" => {
                args.bind("poll", [], 0)?;
                self.poll()
            }
            "terminate" | "kill" => {
                args.bind(name, [], 0)?;
                let child = &self.shared.borrow().child;
                let r = if name == "kill" {
                    child.kill()
                } else {
                    child.terminate()
                };
                r.map_err(command_error)?;
                Ok(Value::Nil)
            }
            "signal" => {
                let [sig] = args.bind("signal", ["sig"], 1)?;
                let signo = signal_number(sig.unwrap_or_default())?;
                self.shared
                    .borrow()
                    .child
                    .signal(signo)
                    .map_err(command_error)?;
                Ok(Value::Nil)
            }
            _ => fail(
                "TypeError",
                format!(
                    "popen has no method `{name}` (it has: communicate, wait, poll, terminate, kill, signal)"
                ),
            ),
        }
    }

    fn enter(&self, _interp: &mut Interp, this: &Value) -> Res<Value> {
        Ok(this.clone())
    }

    /// Leaving `with`: stdin flushed and closed, our ends of stdout and stderr
    /// closed, then the command waited for (as Python's `Popen.__exit__`).
    fn exit(&self, interp: &mut Interp) -> Res<()> {
        retry(interp, || self.shared.borrow_mut().child.close_stdin())?;
        {
            let mut s = self.shared.borrow_mut();
            for stream in [Stream::Stdout, Stream::Stderr] {
                if s.child.has_stream(stream) {
                    s.child.close_stream(stream);
                    s.gone[slot(stream)].get_or_insert("closed");
                }
            }
        }
        self.wait(interp, None).map(|_| ())
    }
}

/// "TERM", "SIGTERM", "term" or 15.
fn signal_number(v: Value) -> Res<i32> {
    let n = match &v {
        Value::Str(s) => crate::os::signal::by_name(s),
        Value::Int(i) => i32::try_from(*i)
            .ok()
            .and_then(|i| crate::os::signal::by_name(&i.to_string())),
        other => {
            return fail(
                "TypeError",
                format!(
                    "signal(): sig must be a name or a number, not {}",
                    other.type_name()
                ),
            )
        }
    };
    match n {
        Some(n) => Ok(n),
        None => fail(
            "ValueError",
            format!(
                "signal(): unknown signal {}",
                crate::runtime::format::repr(&v)
            ),
        ),
    }
}

impl PipeStream {
    fn name(&self) -> &'static str {
        match self.which {
            Which::Stdin => "stdin",
            Which::Out(s) => stream_name(s),
        }
    }

    fn closed_error<T>(&self, why: &str) -> Res<T> {
        let s = self.shared.borrow();
        fail(
            "ValueError",
            format!("{} of `{}` is {why}", self.name(), s.child.command()),
        )
    }

    /// The output stream, if the script may still read it.
    fn readable(&self, func: &str) -> Res<Stream> {
        let Which::Out(stream) = self.which else {
            return fail(
                "ValueError",
                format!("{func}(): stdin is for writing, not reading"),
            );
        };
        if let Some(why) = self.shared.borrow().gone[slot(stream)] {
            return self.closed_error(why);
        }
        Ok(stream)
    }

    fn writable(&self, func: &str) -> Res<()> {
        if !matches!(self.which, Which::Stdin) {
            return fail(
                "ValueError",
                format!("{func}(): {} is for reading, not writing", self.name()),
            );
        }
        if !self.shared.borrow().child.has_stdin() {
            return self.closed_error("closed");
        }
        Ok(())
    }

    /// The next line without its line ending (`\n` or `\r\n`), as `lines()`
    /// gives stdin's; None at end of file.
    fn readline(&self, interp: &mut Interp) -> Res<Option<Value>> {
        let stream = self.readable("readline")?;
        let line = retry(interp, || self.shared.borrow_mut().child.read_line(stream))?;
        Ok(line.map(|mut l| {
            if l.last() == Some(&b'\n') {
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
            }
            text(l)
        }))
    }
}

impl Object for PipeStream {
    fn type_name(&self) -> &'static str {
        "stream"
    }

    fn repr(&self) -> String {
        format!("<stream {} pid={}>", self.name(), self.pid)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "read" => {
                args.bind("read", [], 0)?;
                let stream = self.readable("read")?;
                let all = retry(interp, || self.shared.borrow_mut().child.read_all(stream))?;
                Ok(text(all))
            }
            "readline" => {
                args.bind("readline", [], 0)?;
                Ok(self.readline(interp)?.unwrap_or_default())
            }
            "write" => {
                let [data] = args.bind("write", ["data"], 1)?;
                let data = match data {
                    Some(Value::Str(s)) => s,
                    other => {
                        return fail(
                            "TypeError",
                            format!(
                                "write() needs a str, not {}",
                                other.unwrap_or_default().type_name()
                            ),
                        )
                    }
                };
                self.writable("write")?;
                // After an interrupted try the OS layer keeps what is unwritten
                // and sends it first: later tries bring nothing new.
                let mut fresh = Some(data.as_bytes());
                retry(interp, || {
                    let bytes = fresh.take().unwrap_or_default();
                    self.shared.borrow_mut().child.write_stdin(bytes)
                })?;
                Ok(Value::Nil)
            }
            "flush" => {
                args.bind("flush", [], 0)?;
                // Writes are not buffered here; this checks the stream is usable.
                self.writable("flush")?;
                Ok(Value::Nil)
            }
            "close" => {
                args.bind("close", [], 0)?;
                match self.which {
                    Which::Stdin => {
                        retry(interp, || self.shared.borrow_mut().child.close_stdin())?;
                    }
                    Which::Out(stream) => {
                        let mut s = self.shared.borrow_mut();
                        if s.gone[slot(stream)].is_none() {
                            s.child.close_stream(stream);
                            s.gone[slot(stream)] = Some("closed");
                        }
                    }
                }
                Ok(Value::Nil)
            }
            _ => fail(
                "TypeError",
                format!(
                    "stream has no method `{name}` (it has: {})",
                    match self.which {
                        Which::Stdin => "write, flush, close",
                        Which::Out(_) => "read, readline, close",
                    }
                ),
            ),
        }
    }

    fn next_item(&self, interp: &mut Interp) -> Res<Option<Value>> {
        if matches!(self.which, Which::Stdin) {
            return fail("TypeError", "a popen's stdin stream is not iterable");
        }
        self.readline(interp)
    }
}

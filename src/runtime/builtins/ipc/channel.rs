//! `queue(maxsize)` and `pipe(duplex)`: messages between processes, each one a
//! `wire` message (a deep copy of the value sent).

use super::{described, flag, io_error, ipc_error, no_method, secs, timeout_arg, wait};
use crate::os::ipc::{self, IpcError};
use crate::runtime::error::{fail, Res};
use crate::runtime::value::{plural, Args, Object, Value};
use crate::runtime::{wire, Interp};
use std::any::Any;
use std::time::Duration;

pub(super) fn decode(ty: &str, bytes: &[u8]) -> std::io::Result<Option<Value>> {
    Ok(Some(match ty {
        "queue" => Value::object(Queue(ipc::Queue::from_description(bytes)?)),
        // A pipe end closed before it was sent arrives closed.
        "pipe" if bytes.is_empty() => {
            let (end, _) = ipc::pipe(false)?;
            end.close();
            Value::object(Pipe(end))
        }
        "pipe" => Value::object(Pipe(ipc::PipeEnd::from_description(bytes)?)),
        _ => return Ok(None),
    }))
}

// ---------------------------------------------------------------------------
// queue

pub struct Queue(ipc::Queue);

pub(super) fn queue(_: &mut Interp, args: Args) -> Res<Value> {
    let [maxsize] = args.bind("queue", ["maxsize"], 0)?;
    let maxsize = match maxsize {
        None | Some(Value::Nil) => 0,
        Some(Value::Int(n)) if n >= 0 => n as usize,
        Some(Value::Int(n)) => {
            return fail(
                "ValueError",
                format!("queue(): maxsize must be 0 (unbounded) or more, not {n}"),
            )
        }
        Some(v) => {
            return fail(
                "TypeError",
                format!("queue(): maxsize must be an int, not {}", v.type_name()),
            )
        }
    };
    let q = ipc::Queue::new(maxsize).map_err(io_error)?;
    Ok(Value::object(Queue(q)))
}

impl Queue {
    fn put(&self, interp: &mut Interp, item: &Value, block: bool, t: Option<Duration>) -> Res<()> {
        let q = &self.0;
        // Most puts find room: try at once, from the reused encoding buffer.
        let r = match wire::encode_with(interp, item, |msg| q.put(msg, false, None))? {
            Err(IpcError::Full) if block && t != Some(Duration::ZERO) => {
                let msg = wire::encode(interp, item)?;
                interp.out.flush()?;
                wait(interp, true, t, |_| false, |b, left| q.put(&msg, b, left))?
            }
            r => r,
        };
        match r {
            Ok(()) => Ok(()),
            Err(IpcError::Full) => {
                let max = q.maxsize();
                match t.filter(|t| block && !t.is_zero()) {
                    Some(t) => fail(
                        "Full",
                        format!("queue still full after {}s (maxsize {max})", secs(t)),
                    ),
                    None => fail("Full", format!("queue is full (maxsize {max})")),
                }
            }
            Err(IpcError::Closed) => fail("Closed", "put to a closed queue"),
            Err(e) => Err(ipc_error(e)),
        }
    }

    /// The next item; `Ok(None)` once the queue is closed and drained.
    fn get(&self, interp: &mut Interp, block: bool, t: Option<Duration>) -> Res<Option<Value>> {
        let q = &self.0;
        let r = wait(
            interp,
            block,
            t,
            |r| matches!(r, Err(IpcError::Empty)),
            |b, left| q.get(b, left),
        )?;
        match r {
            Ok(msg) => wire::decode(interp, &msg).map(Some),
            Err(IpcError::Closed) => Ok(None),
            Err(IpcError::Empty) => match t.filter(|t| block && !t.is_zero()) {
                Some(t) => fail("Empty", format!("queue still empty after {}s", secs(t))),
                None => fail("Empty", "queue is empty"),
            },
            Err(e) => Err(ipc_error(e)),
        }
    }

    fn get_or_closed(&self, interp: &mut Interp, block: bool, t: Option<Duration>) -> Res<Value> {
        match self.get(interp, block, t)? {
            Some(v) => Ok(v),
            None => fail("Closed", "queue is closed and empty"),
        }
    }
}

impl Object for Queue {
    fn type_name(&self) -> &'static str {
        "queue"
    }

    fn repr(&self) -> String {
        let size = match self.0.maxsize() {
            0 => "unbounded".to_string(),
            n => format!("maxsize={n}"),
        };
        let closed = if self.0.is_closed() { " closed" } else { "" };
        format!("<queue {size}{closed}>")
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "put" => {
                let [item, block, timeout] = args.bind("put", ["item", "block", "timeout"], 1)?;
                let t = timeout_arg("put", timeout)?;
                self.put(interp, &item.unwrap_or_default(), flag(block, true), t)?;
                Ok(Value::Nil)
            }
            "get" => {
                let [block, timeout] = args.bind("get", ["block", "timeout"], 0)?;
                let t = timeout_arg("get", timeout)?;
                self.get_or_closed(interp, flag(block, true), t)
            }
            "put_nowait" => {
                let [item] = args.bind("put_nowait", ["item"], 1)?;
                self.put(interp, &item.unwrap_or_default(), false, None)?;
                Ok(Value::Nil)
            }
            "get_nowait" => {
                args.bind("get_nowait", [], 0)?;
                self.get_or_closed(interp, false, None)
            }
            "qsize" => {
                args.bind("qsize", [], 0)?;
                Ok(Value::Int(self.0.qsize() as i64))
            }
            "empty" => {
                args.bind("empty", [], 0)?;
                Ok(Value::Bool(self.0.empty()))
            }
            "full" => {
                args.bind("full", [], 0)?;
                Ok(Value::Bool(self.0.full()))
            }
            "task_done" => {
                args.bind("task_done", [], 0)?;
                self.0.task_done().map_err(ipc_error)?;
                Ok(Value::Nil)
            }
            "join" => {
                let [timeout] = args.bind("join", ["timeout"], 0)?;
                let t = timeout_arg("join", timeout)?;
                let q = &self.0;
                interp.out.flush()?;
                match wait(interp, true, t, |_| false, |_, left| q.join(left))? {
                    Ok(()) => Ok(Value::Nil),
                    Err(IpcError::Timeout) => fail(
                        "Timeout",
                        format!(
                            "queue.join() timed out after {}s ({} item{} not done)",
                            secs(t.unwrap_or_default()),
                            q.unfinished(),
                            plural(q.unfinished())
                        ),
                    ),
                    Err(e) => Err(ipc_error(e)),
                }
            }
            "close" => {
                args.bind("close", [], 0)?;
                self.0.close();
                Ok(Value::Nil)
            }
            _ => no_method("queue", name),
        }
    }

    fn next_item(&self, interp: &mut Interp) -> Res<Option<Value>> {
        self.get(interp, true, None)
    }

    fn wire(&self) -> Option<Vec<u8>> {
        described(self.0.describe())
    }
}

// ---------------------------------------------------------------------------
// pipe

pub struct Pipe(ipc::PipeEnd);

pub(super) fn pipe(_: &mut Interp, args: Args) -> Res<Value> {
    let [duplex] = args.bind("pipe", ["duplex"], 0)?;
    let (a, b) = ipc::pipe(flag(duplex, true)).map_err(io_error)?;
    Ok(Value::list(vec![
        Value::object(Pipe(a)),
        Value::object(Pipe(b)),
    ]))
}

impl Pipe {
    /// What an open end is: "duplex", "reader" or "writer".
    fn role(&self) -> &'static str {
        match (self.0.can_send(), self.0.can_recv()) {
            (true, true) => "duplex",
            (false, _) => "reader",
            (true, false) => "writer",
        }
    }

    fn send(&self, interp: &mut Interp, v: &Value) -> Res<()> {
        let end = &self.0;
        let r = match wire::encode_with(interp, v, |msg| end.send(msg))? {
            // It waited (64 MiB unread) and a signal came: the message is not
            // sent; run the handlers and go on.
            Err(IpcError::Interrupted) => {
                let msg = wire::encode(interp, v)?;
                wait(interp, true, None, |_| false, |_, _| end.send(&msg))?
            }
            r => r,
        };
        match r {
            Ok(()) => Ok(()),
            Err(IpcError::Closed) if end.is_closed() => fail("Closed", "send on a closed pipe end"),
            Err(IpcError::Closed) => fail("Closed", "the other end of the pipe is closed"),
            Err(IpcError::WrongEnd) => fail(
                "ValueError",
                "cannot send on the read end of a one-way pipe",
            ),
            Err(e) => Err(ipc_error(e)),
        }
    }

    /// The next message; `Ok(None)` once every copy of the other end is closed
    /// and nothing is left.
    fn recv(&self, interp: &mut Interp) -> Res<Option<Value>> {
        let end = &self.0;
        let r = wait(
            interp,
            true,
            None,
            |r| matches!(r, Err(IpcError::Empty)),
            |b, left| end.recv(b, left),
        )?;
        match r {
            Ok(msg) => wire::decode(interp, &msg).map(Some),
            Err(IpcError::Closed) if end.is_closed() => fail("Closed", "recv on a closed pipe end"),
            Err(IpcError::Closed) => Ok(None),
            Err(IpcError::WrongEnd) => fail(
                "ValueError",
                "cannot recv on the write end of a one-way pipe",
            ),
            Err(e) => Err(ipc_error(e)),
        }
    }
}

impl Object for Pipe {
    fn type_name(&self) -> &'static str {
        "pipe"
    }

    fn repr(&self) -> String {
        if self.0.is_closed() {
            "<pipe closed>".into()
        } else {
            format!("<pipe {}>", self.role())
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "send" => {
                let [v] = args.bind("send", ["value"], 1)?;
                self.send(interp, &v.unwrap_or_default())?;
                Ok(Value::Nil)
            }
            "recv" => {
                args.bind("recv", [], 0)?;
                match self.recv(interp)? {
                    Some(v) => Ok(v),
                    None => fail("Closed", "the other end of the pipe is closed"),
                }
            }
            "poll" => {
                let [timeout] = args.bind("poll", ["timeout"], 0)?;
                let t = match timeout {
                    None => Some(Duration::ZERO),
                    t => timeout_arg("poll", t)?,
                };
                if self.0.is_closed() {
                    return fail("Closed", "poll on a closed pipe end");
                }
                if !self.0.can_recv() {
                    return fail("ValueError", "cannot poll the write end of a one-way pipe");
                }
                let end = &self.0;
                let block = t != Some(Duration::ZERO);
                if block {
                    interp.out.flush()?;
                }
                // Not blocking, `wait` passes a zero timeout.
                match wait(interp, block, t, |_| false, |_, left| end.poll(left))? {
                    Ok(ready) => Ok(Value::Bool(ready)),
                    Err(e) => Err(ipc_error(e)),
                }
            }
            "close" => {
                args.bind("close", [], 0)?;
                self.0.close();
                Ok(Value::Nil)
            }
            _ => no_method("pipe", name),
        }
    }

    fn next_item(&self, interp: &mut Interp) -> Res<Option<Value>> {
        self.recv(interp)
    }

    fn wire(&self) -> Option<Vec<u8>> {
        if self.0.is_closed() {
            return Some(Vec::new());
        }
        described(self.0.describe())
    }
}

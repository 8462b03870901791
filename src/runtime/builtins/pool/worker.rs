//! The loop a pool worker runs in its own process: read task frames from the
//! task pipe, call the function on each item with `Interp::call`, write one
//! result frame per task back. It ends when the parent says stop, when its
//! task pipe reaches end-of-file, after `maxtasksperchild` tasks, or when a
//! task calls `exit()` (or a signal ends it), with that code.

use super::codec;
use super::proto::*;
use crate::os::pool as chan;
use crate::runtime::error::{RtError, Unwind};
use crate::runtime::value::{Args, ErrorVal, Value};
use crate::runtime::{wire, Interp};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Instant;

/// Runs in the forked worker; returns its exit code.
pub fn main(interp: &mut Interp, task_r: OwnedFd, result_w: OwnedFd, limit: Option<u64>) -> i32 {
    chan::close_tracked();
    let rfd = task_r.as_raw_fd();
    let wfd = result_w.as_raw_fd();
    // A pool made inside a task forks workers of its own: they must not hold
    // this worker's pipes (the parent would miss this worker's end-of-file).
    chan::track(rfd);
    chan::track(wfd);
    let mut funcs: HashMap<u32, Result<Value, RtError>> = HashMap::new();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut pos = 0;
    let mut out: Vec<u8> = Vec::new();
    let mut done: u64 = 0;
    loop {
        let frame = match chan::next_frame(&buf[pos..]) {
            Ok(f) => f,
            Err(chan::BadFrame) => return 70, // corrupt stream: cannot go on
        };
        let Some((kind, b, e)) = frame else {
            if pos > 0 {
                buf.drain(..pos);
                pos = 0;
            }
            let room = READ_CHUNK.max(chan::frame_missing(&buf));
            match chan::read_into(rfd, &mut buf, room) {
                chan::Io::Done(_) | chan::Io::WouldBlock => {}
                chan::Io::Closed => return 0,
                chan::Io::Interrupted => {
                    if let Err(code) = signals(interp) {
                        return code;
                    }
                }
                chan::Io::Failed(_) => return 1,
            }
            continue;
        };
        let body = &buf[pos + b..pos + e];
        match kind {
            T_FUNC => {
                let id = chan::get_u32(body, 0).unwrap_or(u32::MAX);
                let f = match wire::decode(interp, &body[4.min(body.len())..]) {
                    Ok(v) => Ok(v),
                    Err(Unwind::Error(e)) => Err(*e),
                    Err(_) => Err(RtError::new("ValueError", "cannot receive the function")),
                };
                funcs.insert(id, f);
            }
            T_FORGET => {
                if let Some(id) = chan::get_u32(body, 0) {
                    funcs.remove(&id);
                }
            }
            T_TASK => {
                if let Err(code) = run_task(interp, body, &funcs, &mut out) {
                    return code;
                }
                match chan::write_all(wfd, &out) {
                    chan::Io::Done(_) => {}
                    // The parent is gone: nobody wants the result.
                    _ => return 1,
                }
                done += 1;
                if limit.is_some_and(|k| done >= k) {
                    return 0;
                }
            }
            T_STOP => return 0,
            _ => return 70,
        }
        pos += e;
    }
}

/// Runs pending signal handlers; `Err(code)` when the worker must end.
fn signals(interp: &mut Interp) -> Result<(), i32> {
    match interp.poll_signals() {
        Ok(()) => Ok(()),
        Err(Unwind::Exit(n)) => Err(n),
        Err(_) => Err(1),
    }
}

/// Runs one task frame and leaves its result frame in `out`. `Err(code)`
/// when the worker must end now (`exit()` in the task, or a signal).
fn run_task(
    interp: &mut Interp,
    body: &[u8],
    funcs: &HashMap<u32, Result<Value, RtError>>,
    out: &mut Vec<u8>,
) -> Result<(), i32> {
    let t0 = Instant::now();
    let fid = chan::get_u32(body, 0).unwrap_or(u32::MAX);
    let star = body.get(4) == Some(&MODE_STAR);
    let payload = body.get(5..).unwrap_or(&[]);
    let mut results: Vec<Value> = Vec::new();
    let mut fails: Vec<u32> = Vec::new();
    let items = match codec::decode(interp, payload) {
        Ok(items) => items,
        Err(Unwind::Error(e)) => {
            // Cannot happen for a well-formed frame; answer with the error for
            // every item rather than hang the parent.
            encode_result(interp, out, t0, vec![error_value(*e)], vec![0]);
            return Ok(());
        }
        Err(_) => return Err(70),
    };
    let f = match funcs.get(&fid) {
        Some(Ok(f)) => Ok(f.clone()),
        Some(Err(e)) => Err(e.clone()),
        None => Err(RtError::new(
            "ValueError",
            "pool worker does not know this function",
        )),
    };
    for (i, item) in items.into_iter().enumerate() {
        let r = match &f {
            Err(e) => Err(e.clone()),
            Ok(f) => match call_item(interp, f, item, star) {
                Ok(v) => Ok(v),
                Err(Unwind::Error(e)) => Err(*e),
                Err(Unwind::Exit(n)) => {
                    let _ = interp.out.flush();
                    return Err(n);
                }
                Err(_) => Err(RtError::new(
                    "ValueError",
                    "unexpected control flow in a task",
                )),
            },
        };
        match r {
            Ok(v) => results.push(v),
            Err(e) => {
                fails.push(i as u32);
                results.push(error_value(e));
            }
        }
        signals(interp)?;
    }
    // A task's output is written before its result reaches the parent.
    if let Err(Unwind::Exit(n)) = interp.out.flush() {
        return Err(n);
    }
    encode_result(interp, out, t0, results, fails);
    Ok(())
}

fn call_item(interp: &mut Interp, f: &Value, item: Value, star: bool) -> Result<Value, Unwind> {
    let args = if star {
        match item {
            Value::List(l) => Args::new(l.borrow().iter().cloned()),
            other => {
                return Err(RtError::new(
                    "TypeError",
                    format!(
                        "starmap() needs each item to be a list of arguments, not {}",
                        other.type_name()
                    ),
                )
                .into())
            }
        }
    } else {
        Args::new([item])
    };
    interp.call(f, args)
}

fn error_value(e: RtError) -> Value {
    Value::Error(Rc::new(ErrorVal { err: e }))
}

/// The result frame: `[u32 microseconds][u32 failures][u32 index]... [payload]`.
/// A result that cannot be sent (a process handle, say) fails its item.
fn encode_result(
    interp: &Interp,
    out: &mut Vec<u8>,
    t0: Instant,
    mut results: Vec<Value>,
    mut fails: Vec<u32>,
) {
    out.clear();
    let start = chan::begin_frame(out, R_RESULT);
    let head = out.len();
    let put_head = |out: &mut Vec<u8>, fails: &[u32]| {
        let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
        out.extend_from_slice(&us.to_le_bytes());
        out.extend_from_slice(&(fails.len() as u32).to_le_bytes());
        for i in fails {
            out.extend_from_slice(&i.to_le_bytes());
        }
    };
    put_head(out, &fails);
    if codec::encode(interp, &results, out).is_err() {
        for (i, r) in results.iter_mut().enumerate() {
            if let Err(Unwind::Error(e)) = wire::encode(interp, r) {
                let mut e = *e;
                e.message = format!("cannot send the task's result back: {}", e.message);
                *r = error_value(e);
                fails.push(i as u32);
            }
        }
        fails.sort_unstable();
        fails.dedup();
        out.truncate(head);
        put_head(out, &fails);
        if codec::encode(interp, &results, out).is_err() {
            out.truncate(head);
            put_head(out, &[]);
        }
    }
    chan::end_frame(out, start);
}

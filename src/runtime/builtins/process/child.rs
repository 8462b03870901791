//! `spawn` / `daemon`: what the parent evaluates before forking, and what the
//! forked child does: run the call, report an uncaught error naming itself,
//! finish with its own children, and send its result back.
//!
//! A child's exit code: 0 after the call returns (its value is sent), `n`
//! after `exit(n)`, 1 after an uncaught error or a result that cannot be sent.
//! A child stopped by SIGINT, SIGTERM or SIGHUP (with no handler) dies by that
//! signal after stopping its own children, so its parent sees `exitcode == -N`.

use super::{at_exit, fork_child, report_error, Process};
use crate::os::fdio;
use crate::runtime::builtins::methods;
use crate::runtime::error::{at, fail, Res, RtError, Unwind};
use crate::runtime::interp::{expr_span, Env};
use crate::runtime::value::{Args, Key, Value};
use crate::runtime::{wire, Interp};
use crate::syntax::ast::{Block, Expr, Spawn, SpawnBody};
use crate::syntax::Span;
use std::os::fd::AsRawFd;
use std::rc::Rc;

/// What the child runs, evaluated in the parent.
enum Target<'a> {
    Call(Value, Args),
    /// `spawn obj.method(..)` on a handle, list or str: the method is looked
    /// up in the child.
    Method(Value, Rc<str>, Args),
    Block(&'a Block, Env),
}

fn callable(f: Value, span: Span) -> Res<Value> {
    match f {
        Value::Func(_) | Value::Builtin(_) => Ok(f),
        other => Err(RtError::new(
            "TypeError",
            format!("{} is not callable", other.type_name()),
        )
        .at(span)
        .into()),
    }
}

/// The map methods that `m.name(..)` calls rather than a function stored
/// under "name" (see `methods::call_method`).
const MAP_METHODS: &[&str] = &["get", "keys", "values", "items", "pop"];

fn target<'a>(interp: &mut Interp, sp: &'a Spawn, env: &Env) -> Res<Target<'a>> {
    let (callee, args) = match &sp.body {
        SpawnBody::Block(b) => return Ok(Target::Block(b, env.clone())),
        SpawnBody::Call(callee, args) => (callee, args),
    };
    if let Expr::Field(obj, name, fspan) = callee {
        let o = interp.eval(obj, env)?;
        let method = match &o {
            Value::Map(m) => {
                MAP_METHODS.contains(&&**name) && !m.borrow().contains_key(&Key::Str(name.clone()))
            }
            Value::Object(_) | Value::List(_) | Value::Str(_) => true,
            other => {
                return Err(RtError::new(
                    "TypeError",
                    format!("{} has no method `{name}`", other.type_name()),
                )
                .at(*fspan)
                .into())
            }
        };
        if method {
            let args = interp.eval_args(args, env)?;
            return Ok(Target::Method(o, name.clone(), args));
        }
        let f = at(interp.get_field(&o, name), *fspan)?;
        let f = callable(f, *fspan)?;
        let args = interp.eval_args(args, env)?;
        return Ok(Target::Call(f, args));
    }
    let f = interp.eval(callee, env)?;
    let f = callable(f, expr_span(callee).unwrap_or(sp.span))?;
    let args = interp.eval_args(args, env)?;
    Ok(Target::Call(f, args))
}

/// `spawn CALL`, `spawn BLOCK`, `daemon ...`: evaluates the callee and the
/// arguments here, forks, and returns the `process` at once.
pub fn eval_spawn(interp: &mut Interp, sp: &Spawn, env: &Env) -> Res<Value> {
    if interp.procs.daemon {
        let kw = if sp.daemon { "daemon" } else { "spawn" };
        return Err(RtError::new(
            "ProcessError",
            format!("a daemon process may not have children of its own (`{kw}` in a daemon)"),
        )
        .at(sp.span)
        .into());
    }
    let target = target(interp, sp, env)?;
    let (reader, writer) = match fdio::pipe() {
        Ok(p) => p,
        Err(e) => {
            return Err(
                RtError::new("ProcessError", format!("cannot make a pipe: {e}"))
                    .at(sp.span)
                    .into(),
            )
        }
    };
    let name = interp.procs.next_name();
    let child_name = name.clone();
    let (daemon, span) = (sp.daemon, sp.span);
    // (The child keeps its inherited copy of `reader`: closing it would cost a
    // system call and gain nothing.)
    let pid = at(
        fork_child(interp, move |interp| {
            run(interp, child_name, daemon, writer, target, span)
        }),
        sp.span,
    )?;
    let p = Rc::new(Process::new(pid, name, sp.daemon, reader));
    interp.procs.add(p.clone());
    Ok(Value::Object(p))
}

/// The child's side, from the fork to its exit code.
fn run(
    interp: &mut Interp,
    name: String,
    daemon: bool,
    mut writer: fdio::Writer,
    target: Target,
    span: Span,
) -> i32 {
    let procs = &mut interp.procs;
    procs.name = Some(name);
    procs.daemon = daemon;
    procs.result_fd = Some(writer.as_raw_fd());
    let r = match target {
        Target::Call(f, args) => at(interp.call(&f, args), span),
        Target::Method(o, name, args) => at(methods::call_method(interp, &o, &name, args), span),
        Target::Block(b, env) => interp.exec_block(b, &env),
    };
    let r = match r {
        Err(Unwind::Return(v)) => Ok(v),
        Err(Unwind::Break) => fail("ValueError", "`break` outside a loop"),
        Err(Unwind::Continue) => fail("ValueError", "`continue` outside a loop"),
        r => r,
    };
    let (mut code, mut msg) = match r {
        Ok(v) => match wire::encode(interp, &v) {
            Ok(bytes) => (0, Some(bytes)),
            Err(Unwind::Error(e)) => {
                let mut e = *e;
                e.message = format!("cannot send the result to the parent: {}", e.message);
                report_error(interp, &e.at(span));
                (1, None)
            }
            Err(_) => (1, None),
        },
        Err(Unwind::Exit(n)) => (n, None),
        Err(Unwind::Error(e)) => {
            report_error(interp, &e);
            (1, None)
        }
        Err(_) => (1, None),
    };
    // The child's own children are joined (daemons terminated) before it ends;
    // its pools still open are terminated first.
    crate::runtime::builtins::pool::at_exit(interp);
    if let Some(c) = at_exit(interp) {
        code = c;
        msg = None;
    }
    // No result pipe left if the call went on in a `daemonize`d grandchild
    // (`after_fork` closed it there; the parent saw this process exit 0).
    if interp.procs.result_fd.is_none() {
        msg = None;
    }
    if let Some(bytes) = msg {
        let sent = writer.write_all(&bytes, || interp.handle_signals().is_ok());
        if sent.is_err() && interp.exit_signal.is_none() {
            code = 1;
        }
    }
    if let Some(sig) = interp.exit_signal {
        let _ = interp.out.flush();
        crate::os::signal::die_by(sig);
    }
    // `_exit` closes it.
    std::mem::forget(writer);
    code
}

//! Processes: spawn / daemon / join, the process handle, exit, pids, signals.
//! (The full implementation lands with the processes issue; this file holds the
//! entry points the evaluator calls.)

use crate::runtime::error::{fail, Res, Unwind};
use crate::runtime::interp::Env;
use crate::runtime::value::{Args, Builtin, Value};
use crate::runtime::Interp;
use crate::syntax::ast::Spawn;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "exit",
        func: exit,
    },
    Builtin {
        name: "getpid",
        func: getpid,
    },
    Builtin {
        name: "getppid",
        func: getppid,
    },
];

/// Forks a child that runs `body` on the interpreter's copy and ends with the
/// code it returns (after flushing its own output). The parent's buffered output
/// is flushed first so nothing is printed twice. Used by spawn/daemon and the
/// pool's workers.
pub fn fork_child(
    interp: &mut Interp,
    body: impl FnOnce(&mut Interp) -> i32,
) -> Res<crate::os::process::Pid> {
    interp.out.flush()?;
    match crate::os::process::fork_with(|| {
        interp.out.discard();
        let code = body(interp);
        let code = match interp.out.flush() {
            Err(Unwind::Exit(n)) if code == 0 => n,
            _ => code,
        };
        code
    }) {
        Ok(pid) => Ok(pid),
        Err(e) => fail("ProcessError", format!("cannot fork: {e}")),
    }
}

pub fn eval_spawn(_interp: &mut Interp, _sp: &Spawn, _env: &Env) -> Res<Value> {
    fail("ProcessError", "spawn is not available yet")
}

pub fn join_value(
    _interp: &mut Interp,
    _v: &Value,
    _timeout: Option<std::time::Duration>,
) -> Res<Value> {
    fail("ProcessError", "join is not available yet")
}

fn exit(_: &mut Interp, args: Args) -> Res<Value> {
    let [code] = args.bind("exit", ["code"], 0)?;
    match code {
        None | Some(Value::Nil) => Err(Unwind::Exit(0)),
        Some(Value::Int(c)) => Err(Unwind::Exit((c & 0xff) as i32)),
        Some(Value::Bool(b)) => Err(Unwind::Exit(b as i32)),
        Some(other) => fail(
            "TypeError",
            format!("exit() needs an int code, not {}", other.type_name()),
        ),
    }
}

fn getpid(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("getpid", [], 0)?;
    Ok(Value::Int(std::process::id() as i64))
}

fn getppid(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("getppid", [], 0)?;
    Ok(Value::Int(std::os::unix::process::parent_id() as i64))
}

/// At the end of the main script: daemons terminated, other children joined.
pub fn at_exit(_interp: &mut Interp) {}

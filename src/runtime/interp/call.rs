//! Calling functions: binding arguments to a fresh frame, defaults, the recursion
//! limit, and builtins.

use crate::runtime::error::{fail, Res, RtError, Unwind};
use crate::runtime::value::{plural, Args, Closure, Frame, Value};
use crate::runtime::{Interp, MAX_DEPTH};
use std::rc::Rc;

/// Stack that must be left when a user function starts running.
const RED_ZONE: usize = 4 * 1024 * 1024;

impl Interp {
    /// Calls any callable value with already-evaluated arguments.
    pub fn call(&mut self, f: &Value, args: Args) -> Res<Value> {
        match f {
            Value::Func(c) => self.call_closure(c, args),
            Value::Builtin(b) => (b.func)(self, args),
            other => fail(
                "TypeError",
                format!("{} is not callable", other.type_name()),
            ),
        }
    }

    pub fn call_closure(&mut self, c: &Rc<Closure>, args: Args) -> Res<Value> {
        if self.depth >= MAX_DEPTH {
            return fail(
                "RecursionError",
                format!(
                    "maximum recursion depth ({MAX_DEPTH}) exceeded in {}()",
                    c.def.name
                ),
            );
        }
        let frame = bind_frame(self, c, args)?;
        self.depth += 1;
        // Deep recursion grows the stack on the heap instead of overflowing it.
        // The red zone covers the deepest a function body can recurse without
        // another call: expressions are at most MAX_EXPR_DEPTH operators deep
        // (a few hundred bytes of stack each) and blocks at most layout's
        // MAX_DEPTH brackets.
        let r = stacker::maybe_grow(RED_ZONE, 4 * RED_ZONE, || {
            self.exec_block(&c.def.body, &Some(frame))
        });
        self.depth -= 1;
        match r {
            Ok(v) | Err(Unwind::Return(v)) => Ok(v),
            Err(Unwind::Break) => fail("ValueError", "`break` outside a loop"),
            Err(Unwind::Continue) => fail("ValueError", "`continue` outside a loop"),
            Err(e) => Err(e),
        }
    }
}

/// Makes the frame for a call: positional arguments, then named ones, then
/// defaults (evaluated in the new frame, so a default may use earlier parameters).
pub fn bind_frame(interp: &mut Interp, c: &Rc<Closure>, args: Args) -> Res<Rc<Frame>> {
    let def = &c.def;
    let np = def.params.len();
    if args.pos.len() > np {
        return fail(
            "TypeError",
            format!(
                "{}() takes {np} argument{}, got {}",
                def.name,
                plural(np),
                args.pos.len()
            ),
        );
    }
    let frame = Frame::new(def.nslots as usize, c.env.clone());
    {
        let mut slots = frame.slots.borrow_mut();
        let npos = args.pos.len();
        for (i, v) in args.pos.into_iter().enumerate() {
            slots[i] = v;
        }
        for (name, v) in args.named {
            match def.params.iter().position(|p| p.var.name == name) {
                Some(i) if i < npos || !matches!(slots[i], Value::Undefined) => {
                    return Err(RtError::new(
                        "TypeError",
                        format!("{}() got argument `{name}` twice", def.name),
                    )
                    .into())
                }
                Some(i) => slots[i] = v,
                None => {
                    return Err(RtError::new(
                        "TypeError",
                        format!("{}() has no parameter named `{name}`", def.name),
                    )
                    .into())
                }
            }
        }
    }
    // Defaults are evaluated in the new frame.
    let env = Some(frame.clone());
    for (i, p) in def.params.iter().enumerate() {
        let missing = matches!(frame.slots.borrow()[i], Value::Undefined);
        if missing {
            match &p.default {
                Some(d) => {
                    let v = interp.eval(d, &env)?;
                    frame.slots.borrow_mut()[i] = v;
                }
                None => {
                    return fail(
                        "TypeError",
                        format!("{}() missing argument `{}`", def.name, p.var.name),
                    );
                }
            }
        }
    }
    Ok(frame)
}

//! Calling functions: binding arguments to a fresh frame, defaults, the recursion
//! limit, and builtins.

use super::Env;
use crate::runtime::error::{fail, Res, RtError, Unwind};
use crate::runtime::value::{plural, Args, Closure, Frame, Value};
use crate::runtime::{Interp, MAX_DEPTH};
use crate::syntax::ast::Arg;
use std::rc::Rc;

/// How many finished frames are kept for reuse.
const FRAME_POOL: usize = 64;

/// Stack that must be left when a user function starts running.
const RED_ZONE: usize = 4 * 1024 * 1024;

impl Interp {
    /// A call of a user function with positional arguments only: they are
    /// evaluated straight into the new frame, with no `Args` in between. The
    /// evaluator's fast path for `f(x, y)`.
    pub(crate) fn call_direct(&mut self, c: &Rc<Closure>, args: &[Arg], env: &Env) -> Res<Value> {
        let def = &c.def;
        let frame = self.take_frame(def.nslots as usize, c.env.clone());
        for (i, a) in args.iter().enumerate() {
            let v = self.eval(&a.value, env)?;
            frame.slots.borrow_mut()[i] = v;
        }
        let frame = Some(frame);
        if args.len() < def.params.len() {
            fill_defaults(self, c, &frame, args.len())?;
        }
        self.run_frame(c, frame)
    }

    fn run_frame(&mut self, c: &Rc<Closure>, frame: Env) -> Res<Value> {
        if self.depth >= MAX_DEPTH {
            return fail(
                "RecursionError",
                format!(
                    "maximum recursion depth ({MAX_DEPTH}) exceeded in {}()",
                    c.def.name
                ),
            );
        }
        self.depth += 1;
        // Deep recursion grows the stack on the heap instead of overflowing it.
        // The red zone covers the deepest a function body can recurse without
        // another call: expressions are at most MAX_EXPR_DEPTH operators deep
        // (a few hundred bytes of stack each) and blocks at most layout's
        // MAX_DEPTH brackets.
        let r = stacker::maybe_grow(RED_ZONE, 4 * RED_ZONE, || {
            self.exec_block(&c.def.body, &frame)
        });
        self.depth -= 1;
        if let Some(f) = frame {
            self.recycle_frame(f);
        }
        match r {
            Ok(v) | Err(Unwind::Return(v)) => Ok(v),
            Err(Unwind::Break) => fail("ValueError", "`break` outside a loop"),
            Err(Unwind::Continue) => fail("ValueError", "`continue` outside a loop"),
            Err(e) => Err(e),
        }
    }

    /// A frame of `n` slots, reusing a finished one when there is one.
    fn take_frame(&mut self, n: usize, parent: Option<Rc<Frame>>) -> Rc<Frame> {
        if let Some(mut f) = self.frame_pool.pop() {
            if let Some(fm) = Rc::get_mut(&mut f) {
                fm.parent = parent;
                let slots = fm.slots.get_mut();
                for _ in 0..n {
                    slots.push(Value::Undefined);
                }
                return f;
            }
        }
        Frame::new(n, parent)
    }

    /// Keeps a finished frame for reuse, unless a closure still holds it.
    fn recycle_frame(&mut self, mut f: Rc<Frame>) {
        if self.frame_pool.len() < FRAME_POOL {
            if let Some(fm) = Rc::get_mut(&mut f) {
                fm.parent = None;
                fm.slots.get_mut().clear();
                self.frame_pool.push(f);
            }
        }
    }

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
        let frame = bind_frame(self, c, args)?;
        self.run_frame(c, Some(frame))
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
    let frame = interp.take_frame(def.nslots as usize, c.env.clone());
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
    fill_defaults(interp, c, &env, 0)?;
    Ok(frame)
}

/// Fills parameters from `from` on that got no argument with their defaults.
fn fill_defaults(interp: &mut Interp, c: &Rc<Closure>, env: &Env, from: usize) -> Res<()> {
    let def = &c.def;
    let frame = env.as_ref().expect("frame");
    for (i, p) in def.params.iter().enumerate().skip(from) {
        if !matches!(frame.slots.borrow()[i], Value::Undefined) {
            continue;
        }
        match &p.default {
            Some(d) => {
                let v = interp.eval(d, env)?;
                frame.slots.borrow_mut()[i] = v;
            }
            None => {
                return fail(
                    "TypeError",
                    format!("{}() missing argument `{}`", def.name, p.var.name),
                )
            }
        }
    }
    Ok(())
}

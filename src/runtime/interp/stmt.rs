//! Statements and blocks.

use super::Env;
use crate::runtime::error::{at, fail, Res, RtError, Unwind};
use crate::runtime::value::{Closure, ErrorVal, Value};
use crate::runtime::Interp;
use crate::syntax::ast::*;
use crate::syntax::Span;
use std::rc::Rc;

impl Interp {
    /// Runs top-level code; its value is the last expression statement's.
    pub fn exec_top(&mut self, block: &Block) -> Res<Value> {
        let r = self.exec_stmts(block, &None);
        match r {
            Err(Unwind::Return(_)) => fail("ValueError", "`return` outside a function"),
            Err(Unwind::Break) => fail("ValueError", "`break` outside a loop"),
            Err(Unwind::Continue) => fail("ValueError", "`continue` outside a loop"),
            r => r,
        }
    }

    /// Runs a block; `fn` declarations are created first (hoisting). The value is
    /// the last statement's when it is an expression (or an `if` / `try` whose
    /// branch ends in one), else nil.
    pub fn exec_block(&mut self, block: &Block, env: &Env) -> Res<Value> {
        self.exec_stmts(block, env)
    }

    fn exec_stmts(&mut self, block: &Block, env: &Env) -> Res<Value> {
        if block.has_fns {
            self.hoist(block, env)?;
        }
        let mut last = Value::Nil;
        for s in &block.stmts {
            self.poll_signals()?;
            last = self.exec(s, env)?;
        }
        Ok(last)
    }

    #[inline(never)]
    fn hoist(&mut self, block: &Block, env: &Env) -> Res<()> {
        for s in &block.stmts {
            if let Stmt::Fn(var, def) = s {
                let f = Value::Func(Rc::new(Closure {
                    def: def.clone(),
                    env: env.clone(),
                }));
                self.assign_var(var, f, env)?;
            }
        }
        Ok(())
    }

    fn exec(&mut self, s: &Stmt, env: &Env) -> Res<Value> {
        match s {
            Stmt::Expr(e) => self.eval(e, env),
            Stmt::Let(target, value, span) => {
                let v = self.eval(value, env)?;
                self.bind_target(target, v, env, *span)?;
                Ok(Value::Nil)
            }
            Stmt::Assign(lv, op, value, span) => {
                self.exec_assign(lv, *op, value, *span, env)?;
                Ok(Value::Nil)
            }
            Stmt::Fn(..) => Ok(Value::Nil),
            Stmt::If(branches, otherwise) => {
                for (cond, body) in branches {
                    if self.eval(cond, env)?.truthy() {
                        return self.exec_block(body, env);
                    }
                }
                match otherwise {
                    Some(b) => self.exec_block(b, env),
                    None => Ok(Value::Nil),
                }
            }
            Stmt::While(cond, body) => {
                while self.eval(cond, env)?.truthy() {
                    // Every iteration, not only every statement: `while true { }`
                    // has none, and Ctrl-C must still stop it.
                    self.poll_signals()?;
                    match self.exec_block(body, env) {
                        Ok(_) | Err(Unwind::Continue) => {}
                        Err(Unwind::Break) => break,
                        Err(e) => return Err(e),
                    }
                }
                Ok(Value::Nil)
            }
            Stmt::For(target, iter, body, span) => {
                let it = self.eval(iter, env)?;
                let span = super::expr::expr_span(iter).unwrap_or(*span);
                self.exec_for(target, it, body, span, env)?;
                Ok(Value::Nil)
            }
            Stmt::Try(t) => self.exec_try(t, env),
            Stmt::With(subject, name, body, span) => {
                let v = self.eval(subject, env)?;
                let subject_span = super::expr::expr_span(subject).unwrap_or(*span);
                let Value::Object(obj) = &v else {
                    return Err(RtError::new(
                        "TypeError",
                        format!(
                            "`with` needs a lock, semaphore, value, array, pool or popen, not {}",
                            v.type_name()
                        ),
                    )
                    .at(subject_span)
                    .into());
                };
                let obj = obj.clone();
                let entered = at(obj.enter(self, &v), *span)?;
                if let Some(var) = name {
                    self.assign_var(var, entered, env)?;
                }
                let r = self.exec_block(body, env);
                let ex = at(obj.exit(self), *span);
                match (r, ex) {
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) => Err(e),
                    (Ok(v), Ok(())) => Ok(v),
                }
            }
            Stmt::Return(e, _) => {
                let v = match e {
                    Some(e) => self.eval(e, env)?,
                    None => Value::Nil,
                };
                Err(Unwind::Return(v))
            }
            Stmt::Break(_) => Err(Unwind::Break),
            Stmt::Continue(_) => Err(Unwind::Continue),
            Stmt::Throw(e, span) => {
                let v = self.eval(e, env)?;
                Err(throw_value(v, *span).into())
            }
        }
    }

    fn exec_try(&mut self, t: &TryStmt, env: &Env) -> Res<Value> {
        let mut r = self.exec_block(&t.body, env);
        if let (Err(Unwind::Error(e)), Some((var, handler))) = (&r, &t.catch) {
            let ev = Value::Error(Rc::new(ErrorVal { err: (**e).clone() }));
            r = match var {
                Some(var) => self
                    .assign_var(var, ev, env)
                    .and_then(|_| self.exec_block(handler, env)),
                None => self.exec_block(handler, env),
            };
        }
        if let Some(fin) = &t.finally {
            // A `finally` that itself unwinds replaces the pending outcome.
            self.exec_block(fin, env)?;
        }
        r
    }

    fn exec_for(
        &mut self,
        target: &Target,
        it: Value,
        body: &Block,
        span: Span,
        env: &Env,
    ) -> Res<()> {
        macro_rules! step {
            ($v:expr) => {{
                self.poll_signals()?;
                self.bind_target(target, $v, env, span)?;
                match self.exec_block(body, env) {
                    Ok(_) | Err(Unwind::Continue) => {}
                    Err(Unwind::Break) => break,
                    Err(e) => return Err(e),
                }
            }};
        }
        match &it {
            Value::Range(r) => {
                let r = **r;
                for i in 0..r.len() {
                    step!(Value::Int(r.get(i)))
                }
            }
            Value::List(l) => {
                let mut i = 0;
                loop {
                    let v = match l.borrow().get(i) {
                        Some(v) => v.clone(),
                        None => break,
                    };
                    i += 1;
                    step!(v)
                }
            }
            Value::Map(m) => {
                let keys: Vec<Value> = m.borrow().keys().map(|k| k.to_value()).collect();
                for k in keys {
                    step!(k)
                }
            }
            Value::Str(s) => {
                let s = s.clone();
                for c in s.chars() {
                    step!(Value::Str(c.to_string().into()))
                }
            }
            Value::Object(o) => {
                let o = o.clone();
                loop {
                    self.poll_signals()?;
                    match at(o.next_item(self), span)? {
                        Some(v) => step!(v),
                        None => break,
                    }
                }
            }
            other => {
                return fail(
                    "TypeError",
                    format!("cannot iterate over {}", other.type_name()),
                )
                .map_err(|e| at_err(e, span))
            }
        }
        Ok(())
    }

    pub(crate) fn bind_target(
        &mut self,
        target: &Target,
        v: Value,
        env: &Env,
        span: Span,
    ) -> Res<()> {
        match target {
            Target::Var(var) => self.assign_var(var, v, env),
            Target::List(vars, tspan) => {
                let items: Vec<Value> = match &v {
                    Value::List(l) => l.borrow().clone(),
                    other => {
                        return Err(RtError::new(
                            "TypeError",
                            format!(
                                "cannot destructure {} into {} names (expected a list)",
                                other.type_name(),
                                vars.len()
                            ),
                        )
                        .at(*tspan)
                        .into())
                    }
                };
                if items.len() != vars.len() {
                    return Err(RtError::new(
                        "ValueError",
                        format!(
                            "cannot destructure a list of {} into {} names",
                            items.len(),
                            vars.len()
                        ),
                    )
                    .at(*tspan)
                    .into());
                }
                let _ = span;
                for (var, item) in vars.iter().zip(items) {
                    self.assign_var(var, item, env)?;
                }
                Ok(())
            }
        }
    }

    fn exec_assign(
        &mut self,
        lv: &LValue,
        op: Option<BinOp>,
        value: &Expr,
        span: Span,
        env: &Env,
    ) -> Res<()> {
        match lv {
            LValue::Var(var) => {
                let v = match op {
                    None => self.eval(value, env)?,
                    Some(op) => {
                        let old = self.read_var(var, env)?;
                        let rhs = self.eval(value, env)?;
                        match (&old, &rhs) {
                            (Value::Int(x), Value::Int(y)) => {
                                match crate::runtime::ops::int_fast(op, *x, *y) {
                                    Some(v) => v,
                                    None => {
                                        at(crate::runtime::ops::binary(self, op, &old, &rhs), span)?
                                    }
                                }
                            }
                            _ => at(crate::runtime::ops::binary(self, op, &old, &rhs), span)?,
                        }
                    }
                };
                self.assign_var(var, v, env)
            }
            LValue::Index(obj, idx, ispan) => {
                let o = self.eval(obj, env)?;
                let i = self.eval(idx, env)?;
                let v = match op {
                    None => self.eval(value, env)?,
                    Some(op) => {
                        let old = at(self.index_value(&o, &i), *ispan)?;
                        let rhs = self.eval(value, env)?;
                        at(crate::runtime::ops::binary(self, op, &old, &rhs), span)?
                    }
                };
                at(self.set_index(&o, &i, v), *ispan)
            }
            LValue::Field(obj, name, fspan) => {
                let o = self.eval(obj, env)?;
                let v = match op {
                    None => self.eval(value, env)?,
                    Some(op) => {
                        let old = at(self.get_field(&o, name), *fspan)?;
                        let rhs = self.eval(value, env)?;
                        at(crate::runtime::ops::binary(self, op, &old, &rhs), span)?
                    }
                };
                at(self.set_field(&o, name, v), *fspan)
            }
        }
    }
}

fn at_err(e: Unwind, span: Span) -> Unwind {
    match e {
        Unwind::Error(mut e) if e.span.is_none() => {
            e.span = Some(span);
            Unwind::Error(e)
        }
        e => e,
    }
}

/// What `throw v` raises: an error value re-raised as it was (its span kept), a
/// string as kind `Error`, anything else as kind `Error` with its printed form.
pub fn throw_value(v: Value, span: Span) -> RtError {
    match v {
        Value::Error(e) => e.err.clone().at(span),
        Value::Str(s) => RtError::new("Error", s.to_string()).at(span),
        other => RtError::new("Error", crate::runtime::format::display(&other)).at(span),
    }
}

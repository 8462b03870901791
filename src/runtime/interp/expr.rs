//! Expressions, variables, indexing and fields.

use super::Env;
use crate::runtime::builtins;
use crate::runtime::error::{at, fail, Res, RtError};
use crate::runtime::format;
use crate::runtime::ops::{self, index_of, slice_bounds};
use crate::runtime::value::{Args, Closure, Key, Value};
use crate::runtime::Interp;
use crate::syntax::ast::*;
use crate::syntax::Span;
use indexmap::IndexMap;
use std::rc::Rc;

impl Interp {
    /// The hot expressions are handled here; the rest in `eval_cold`, which keeps
    /// this function's frame small.
    #[inline]
    pub fn eval(&mut self, e: &Expr, env: &Env) -> Res<Value> {
        match e {
            Expr::Var(v) => self.read_var(v, env),
            Expr::Int(i) => Ok(Value::Int(*i)),
            Expr::Binary(op, l, r, span) => {
                let a = self.eval(l, env)?;
                let b = self.eval(r, env)?;
                if let (Value::Int(x), Value::Int(y)) = (&a, &b) {
                    if let Some(v) = ops::int_fast(*op, *x, *y) {
                        return Ok(v);
                    }
                }
                at(ops::binary(self, *op, &a, &b), *span)
            }
            Expr::Call(callee, args, span) => {
                let f = self.eval(callee, env)?;
                if let Value::Func(c) = &f {
                    if args.len() <= c.def.params.len() && args.iter().all(|a| a.name.is_none()) {
                        return at(self.call_direct(c, args, env), *span);
                    }
                }
                let args = self.eval_args(args, env)?;
                at(self.call(&f, args), *span)
            }
            _ => self.eval_cold(e, env),
        }
    }

    #[inline(never)]
    fn eval_cold(&mut self, e: &Expr, env: &Env) -> Res<Value> {
        match e {
            Expr::Var(v) => self.read_var(v, env),
            Expr::Int(i) => Ok(Value::Int(*i)),
            Expr::Binary(op, l, r, span) => {
                let a = self.eval(l, env)?;
                let b = self.eval(r, env)?;
                at(ops::binary(self, *op, &a, &b), *span)
            }
            Expr::Call(callee, args, span) => {
                let f = self.eval(callee, env)?;
                let args = self.eval_args(args, env)?;
                at(self.call(&f, args), *span)
            }
            Expr::Method(obj, name, args, span) => {
                let o = self.eval(obj, env)?;
                let args = self.eval_args(args, env)?;
                at(builtins::methods::call_method(self, &o, name, args), *span)
            }
            Expr::Nil => Ok(Value::Nil),
            Expr::Bool(b) => Ok(Value::Bool(*b)),
            Expr::Float(f) => Ok(Value::Float(*f)),
            Expr::Str(s) => Ok(Value::Str(s.clone())),
            Expr::Interp(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        StrPart::Lit(s) => out.push_str(s),
                        StrPart::Expr(e, spec, span) => {
                            let v = self.eval(e, env)?;
                            match spec {
                                None => format::display_into(&mut out, &v),
                                Some(spec) => {
                                    out.push_str(&at(format::format_value(&v, spec), *span)?)
                                }
                            }
                        }
                    }
                }
                Ok(Value::Str(out.into()))
            }
            Expr::List(xs) => {
                let mut v = Vec::with_capacity(xs.len());
                for x in xs {
                    v.push(self.eval(x, env)?);
                }
                Ok(Value::list(v))
            }
            Expr::Map(kvs, span) => {
                let mut m = IndexMap::with_capacity(kvs.len());
                for (k, v) in kvs {
                    let kv = self.eval(k, env)?;
                    let key = at(Key::from_value(&kv), expr_span(k).unwrap_or(*span))?;
                    let v = self.eval(v, env)?;
                    m.insert(key, v);
                }
                Ok(Value::map(m))
            }
            Expr::Neg(x, span) => match self.eval(x, env)? {
                Value::Int(i) => match i.checked_neg() {
                    Some(n) => Ok(Value::Int(n)),
                    None => Err(RtError::new("ValueError", "integer overflow")
                        .at(*span)
                        .into()),
                },
                Value::Float(f) => Ok(Value::Float(-f)),
                other => Err(RtError::new(
                    "TypeError",
                    format!("cannot negate {}", other.type_name()),
                )
                .at(*span)
                .into()),
            },
            Expr::Not(x) => Ok(Value::Bool(!self.eval(x, env)?.truthy())),
            Expr::And(l, r) => {
                let a = self.eval(l, env)?;
                if !a.truthy() {
                    return Ok(a);
                }
                self.eval(r, env)
            }
            Expr::Or(l, r) => {
                let a = self.eval(l, env)?;
                if a.truthy() {
                    return Ok(a);
                }
                self.eval(r, env)
            }
            Expr::Field(obj, name, span) => {
                let o = self.eval(obj, env)?;
                at(self.get_field(&o, name), *span)
            }
            Expr::Index(obj, idx, span) => {
                let o = self.eval(obj, env)?;
                let i = self.eval(idx, env)?;
                at(self.index_value(&o, &i), *span)
            }
            Expr::Slice(obj, lo, hi, span) => {
                let o = self.eval(obj, env)?;
                let lo = self.eval_bound(lo, env, *span)?;
                let hi = self.eval_bound(hi, env, *span)?;
                at(slice(&o, lo, hi), *span)
            }
            Expr::Fn(def) => Ok(Value::Func(Rc::new(Closure {
                def: def.clone(),
                env: env.clone(),
            }))),
            Expr::Spawn(sp) => builtins::process::eval_spawn(self, sp, env),
            Expr::Join(x, span) => {
                let v = self.eval(x, env)?;
                at(builtins::process::join_value(self, &v, None), *span)
            }
        }
    }

    fn eval_bound(&mut self, b: &Option<Box<Expr>>, env: &Env, span: Span) -> Res<Option<i64>> {
        match b {
            None => Ok(None),
            Some(e) => match self.eval(e, env)? {
                Value::Int(i) => Ok(Some(i)),
                Value::Nil => Ok(None),
                other => Err(RtError::new(
                    "TypeError",
                    format!("slice bounds must be int, not {}", other.type_name()),
                )
                .at(span)
                .into()),
            },
        }
    }

    pub fn eval_args(&mut self, args: &[Arg], env: &Env) -> Res<Args> {
        let mut out = Args::default();
        for a in args {
            let v = self.eval(&a.value, env)?;
            match &a.name {
                None => out.pos.push(v),
                Some(n) => out.named.push((n.clone(), v)),
            }
        }
        Ok(out)
    }

    #[inline(always)]
    pub fn read_var(&mut self, var: &Var, env: &Env) -> Res<Value> {
        let v = match var.res {
            Binding::Local { depth: 0, slot } => {
                let f = env.as_ref().expect("locals only inside functions");
                let v = f.slots.borrow()[slot as usize].clone();
                v
            }
            Binding::Global(slot) => self.globals[slot as usize].clone(),
            _ => return self.read_var_cold(var, env),
        };
        if let Value::Undefined = v {
            return Err(undefined(var));
        }
        Ok(v)
    }

    #[inline(never)]
    fn read_var_cold(&mut self, var: &Var, env: &Env) -> Res<Value> {
        let v = match var.res {
            Binding::Local { depth, slot } => {
                let f = env
                    .as_ref()
                    .expect("locals only inside functions")
                    .up(depth);
                let v = f.slots.borrow()[slot as usize].clone();
                v
            }
            Binding::Global(slot) => self.globals[slot as usize].clone(),
            Binding::Builtin(i) => Value::Builtin(builtins::table()[i as usize]),
            Binding::Dynamic => match self.resolver.global_slot(&var.name) {
                Some(slot) => self
                    .globals
                    .get(slot as usize)
                    .cloned()
                    .unwrap_or(Value::Undefined),
                None => Value::Undefined,
            },
        };
        if let Value::Undefined = v {
            return Err(undefined(var));
        }
        Ok(v)
    }

    pub fn assign_var(&mut self, var: &Var, v: Value, env: &Env) -> Res<()> {
        match var.res {
            Binding::Local { depth, slot } => {
                let f = env
                    .as_ref()
                    .expect("locals only inside functions")
                    .up(depth);
                f.slots.borrow_mut()[slot as usize] = v;
            }
            Binding::Global(slot) => self.globals[slot as usize] = v,
            Binding::Builtin(_) | Binding::Dynamic => match self.resolver.global_slot(&var.name) {
                Some(slot)
                    if !matches!(
                        self.globals.get(slot as usize),
                        None | Some(Value::Undefined)
                    ) =>
                {
                    self.globals[slot as usize] = v
                }
                _ => {
                    return Err(RtError::new(
                        "NameError",
                        format!(
                            "`{}` is not declared (use `let {} = ...`)",
                            var.name, var.name
                        ),
                    )
                    .at(var.span)
                    .into())
                }
            },
        }
        Ok(())
    }

    pub fn index_value(&mut self, o: &Value, i: &Value) -> Res<Value> {
        match (o, i) {
            (Value::List(l), Value::Int(n)) => {
                let l = l.borrow();
                match index_of(*n, l.len()) {
                    Some(k) => Ok(l[k].clone()),
                    None => fail(
                        "IndexError",
                        format!("list index {n} out of range (len {})", l.len()),
                    ),
                }
            }
            (Value::Str(s), Value::Int(n)) => {
                let len = s.chars().count();
                match index_of(*n, len) {
                    Some(k) => Ok(Value::Str(
                        s.chars()
                            .nth(k)
                            .map(String::from)
                            .unwrap_or_default()
                            .into(),
                    )),
                    None => fail(
                        "IndexError",
                        format!("string index {n} out of range (len {len})"),
                    ),
                }
            }
            (Value::Range(r), Value::Int(n)) => match index_of(*n, r.len()) {
                Some(k) => Ok(Value::Int(r.get(k))),
                None => fail("IndexError", format!("range index {n} out of range")),
            },
            (Value::Map(m), k) => {
                let key = Key::from_value(k)?;
                match m.borrow().get(&key) {
                    Some(v) => Ok(v.clone()),
                    None => fail("KeyError", format!("key {} not found", format::repr(k))),
                }
            }
            (Value::Object(obj), _) => obj.clone().index(self, i),
            (Value::List(_) | Value::Str(_) | Value::Range(_), other) => fail(
                "TypeError",
                format!(
                    "{} indices must be int, not {}",
                    o.type_name(),
                    other.type_name()
                ),
            ),
            _ => fail("TypeError", format!("{} cannot be indexed", o.type_name())),
        }
    }

    pub fn set_index(&mut self, o: &Value, i: &Value, v: Value) -> Res<()> {
        match (o, i) {
            (Value::List(l), Value::Int(n)) => {
                let mut l = l.borrow_mut();
                let len = l.len();
                match index_of(*n, len) {
                    Some(k) => {
                        l[k] = v;
                        Ok(())
                    }
                    None => fail(
                        "IndexError",
                        format!("list index {n} out of range (len {len})"),
                    ),
                }
            }
            (Value::List(_), other) => fail(
                "TypeError",
                format!("list indices must be int, not {}", other.type_name()),
            ),
            (Value::Map(m), k) => {
                let key = Key::from_value(k)?;
                m.borrow_mut().insert(key, v);
                Ok(())
            }
            (Value::Object(obj), _) => obj.clone().set_index(self, i, v),
            _ => fail(
                "TypeError",
                format!("{} does not support item assignment", o.type_name()),
            ),
        }
    }

    pub fn get_field(&mut self, o: &Value, name: &str) -> Res<Value> {
        match o {
            Value::Map(m) => match m.borrow().get(&Key::Str(name.into())) {
                Some(v) => Ok(v.clone()),
                None => fail("KeyError", format!("key \"{name}\" not found")),
            },
            Value::Object(obj) => obj.clone().get_field(self, name),
            Value::Error(e) => match name {
                "kind" => Ok(Value::Str(e.err.kind.clone())),
                "message" => Ok(Value::Str(e.err.message.as_str().into())),
                _ => fail(
                    "TypeError",
                    format!("error has no field `{name}` (it has `kind` and `message`)"),
                ),
            },
            _ => fail(
                "TypeError",
                format!("{} has no field `{name}`", o.type_name()),
            ),
        }
    }

    pub fn set_field(&mut self, o: &Value, name: &str, v: Value) -> Res<()> {
        match o {
            Value::Map(m) => {
                m.borrow_mut().insert(Key::Str(name.into()), v);
                Ok(())
            }
            Value::Object(obj) => obj.clone().set_field(self, name, v),
            _ => fail(
                "TypeError",
                format!("cannot set field `{name}` of {}", o.type_name()),
            ),
        }
    }
}

#[cold]
fn undefined(var: &Var) -> crate::runtime::error::Unwind {
    RtError::new("NameError", format!("`{}` is not defined", var.name))
        .at(var.span)
        .into()
}

fn slice(o: &Value, lo: Option<i64>, hi: Option<i64>) -> Res<Value> {
    match o {
        Value::List(l) => {
            let l = l.borrow();
            let (a, b) = slice_bounds(lo, hi, l.len());
            Ok(Value::list(l[a..b].to_vec()))
        }
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let (a, b) = slice_bounds(lo, hi, chars.len());
            Ok(Value::Str(chars[a..b].iter().collect::<String>().into()))
        }
        _ => fail("TypeError", format!("{} cannot be sliced", o.type_name())),
    }
}

/// The span of an expression where it has one (for errors about it). Literals
/// carry none: the caller falls back to the enclosing node's span.
pub fn expr_span(e: &Expr) -> Option<Span> {
    Some(match e {
        Expr::Var(v) => v.span,
        Expr::Map(_, s)
        | Expr::Neg(_, s)
        | Expr::Binary(_, _, _, s)
        | Expr::Call(_, _, s)
        | Expr::Method(_, _, _, s)
        | Expr::Field(_, _, s)
        | Expr::Index(_, _, s)
        | Expr::Slice(_, _, _, s)
        | Expr::Join(_, s) => *s,
        Expr::Fn(d) => d.span,
        Expr::Spawn(sp) => sp.span,
        Expr::Not(x) | Expr::And(x, _) | Expr::Or(x, _) => return expr_span(x),
        Expr::Nil
        | Expr::Interp(_)
        | Expr::Bool(_)
        | Expr::Int(_)
        | Expr::Float(_)
        | Expr::Str(_)
        | Expr::List(_) => return None,
    })
}

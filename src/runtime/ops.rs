//! Operators on values: arithmetic with overflow checks, comparison, membership.

use super::error::{fail, Res};
use super::value::{equals, Key, Value};
use super::Interp;
use crate::syntax::ast::BinOp;
use std::cmp::Ordering;
use std::rc::Rc;

fn overflow<T>() -> Res<T> {
    fail("ValueError", "integer overflow")
}

fn type_err<T>(op: BinOp, a: &Value, b: &Value) -> Res<T> {
    let verb = match op {
        BinOp::Add => "add",
        BinOp::Sub => "subtract",
        BinOp::Mul => "multiply",
        BinOp::Div | BinOp::FloorDiv => "divide",
        BinOp::Rem => "take the remainder of",
        _ => "compare",
    };
    let (x, y) = (a.type_name(), b.type_name());
    match op {
        BinOp::Sub => fail("TypeError", format!("cannot subtract {y} from {x}")),
        BinOp::Div | BinOp::FloorDiv | BinOp::Rem => {
            fail("TypeError", format!("cannot {verb} {x} by {y}"))
        }
        _ => fail("TypeError", format!("cannot {verb} {x} and {y}")),
    }
}

/// Int-with-int arithmetic and comparison without overflow or division: the
/// evaluator's fast path. None means "take the general path".
#[inline(always)]
pub fn int_fast(op: BinOp, x: i64, y: i64) -> Option<Value> {
    Some(match op {
        BinOp::Add => Value::Int(x.checked_add(y)?),
        BinOp::Sub => Value::Int(x.checked_sub(y)?),
        BinOp::Mul => Value::Int(x.checked_mul(y)?),
        BinOp::Rem if y > 0 => Value::Int(x.rem_euclid(y)),
        BinOp::Lt => Value::Bool(x < y),
        BinOp::Le => Value::Bool(x <= y),
        BinOp::Gt => Value::Bool(x > y),
        BinOp::Ge => Value::Bool(x >= y),
        BinOp::Eq => Value::Bool(x == y),
        BinOp::Ne => Value::Bool(x != y),
        _ => return None,
    })
}

pub fn binary(interp: &mut Interp, op: BinOp, a: &Value, b: &Value) -> Res<Value> {
    use Value::*;
    // The hot paths first: int with int.
    if let (Int(x), Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        return Ok(match op {
            BinOp::Add => Int(x.checked_add(y).map_or_else(overflow, Ok)?),
            BinOp::Sub => Int(x.checked_sub(y).map_or_else(overflow, Ok)?),
            BinOp::Mul => Int(x.checked_mul(y).map_or_else(overflow, Ok)?),
            BinOp::Div => {
                if y == 0 {
                    return fail("ZeroDivisionError", "division by zero");
                }
                Float(x as f64 / y as f64)
            }
            BinOp::FloorDiv => {
                if y == 0 {
                    return fail("ZeroDivisionError", "integer division by zero");
                }
                if x == i64::MIN && y == -1 {
                    return overflow();
                }
                Int(x.div_euclid(y) - if y < 0 && x.rem_euclid(y) != 0 { 1 } else { 0 })
            }
            BinOp::Rem => {
                if y == 0 {
                    return fail("ZeroDivisionError", "integer modulo by zero");
                }
                if y == -1 {
                    return Ok(Int(0));
                }
                let r = x % y;
                Int(if r != 0 && (r < 0) != (y < 0) {
                    r + y
                } else {
                    r
                })
            }
            BinOp::Eq => Bool(x == y),
            BinOp::Ne => Bool(x != y),
            BinOp::Lt => Bool(x < y),
            BinOp::Le => Bool(x <= y),
            BinOp::Gt => Bool(x > y),
            BinOp::Ge => Bool(x >= y),
            BinOp::In | BinOp::NotIn => return type_err_in(b),
        });
    }
    match op {
        BinOp::Eq => Ok(Bool(equals(a, b))),
        BinOp::Ne => Ok(Bool(!equals(a, b))),
        BinOp::In => Ok(Bool(contains(interp, b, a)?)),
        BinOp::NotIn => Ok(Bool(!contains(interp, b, a)?)),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => Ok(Bool(comparison(op, a, b)?)),
        _ => arith(op, a, b),
    }
}

fn type_err_in<T>(container: &Value) -> Res<T> {
    fail(
        "TypeError",
        format!(
            "`in` needs a str, list, map or range on the right, not {}",
            container.type_name()
        ),
    )
}

fn arith(op: BinOp, a: &Value, b: &Value) -> Res<Value> {
    use Value::*;
    let floats = match (a, b) {
        (Float(x), Float(y)) => Some((*x, *y)),
        (Int(x), Float(y)) => Some((*x as f64, *y)),
        (Float(x), Int(y)) => Some((*x, *y as f64)),
        _ => None,
    };
    if let Some((x, y)) = floats {
        return Ok(Float(match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            BinOp::Div => {
                if y == 0.0 {
                    return fail("ZeroDivisionError", "float division by zero");
                }
                x / y
            }
            BinOp::FloorDiv => {
                if y == 0.0 {
                    return fail("ZeroDivisionError", "float floor division by zero");
                }
                (x / y).floor()
            }
            _ => {
                if y == 0.0 {
                    return fail("ZeroDivisionError", "float modulo by zero");
                }
                let r = x % y;
                if r != 0.0 && (r < 0.0) != (y < 0.0) {
                    r + y
                } else {
                    r
                }
            }
        }));
    }
    match (op, a, b) {
        (BinOp::Add, Str(x), Str(y)) => {
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            Ok(Str(s.into()))
        }
        (BinOp::Add, List(x), List(y)) => {
            let mut v = x.borrow().clone();
            v.extend(y.borrow().iter().cloned());
            Ok(Value::list(v))
        }
        (BinOp::Mul, Str(s), Int(n)) | (BinOp::Mul, Int(n), Str(s)) => {
            let n = (*n).max(0) as usize;
            if s.len().saturating_mul(n) > 1 << 32 {
                return fail("ValueError", "repeated string too large");
            }
            Ok(Str(s.repeat(n).into()))
        }
        (BinOp::Mul, List(l), Int(n)) | (BinOp::Mul, Int(n), List(l)) => {
            let n = (*n).max(0) as usize;
            let l = l.borrow();
            if l.len().saturating_mul(n) > 1 << 28 {
                return fail("ValueError", "repeated list too large");
            }
            let mut v = Vec::with_capacity(l.len() * n);
            for _ in 0..n {
                v.extend(l.iter().cloned());
            }
            Ok(Value::list(v))
        }
        _ => type_err(op, a, b),
    }
}

/// Ordering for `<` and `sorted`: numbers with numbers, strings with strings,
/// lists element-wise. None when the types do not compare.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    order(a, b).ok()
}

/// Why two values do not order.
enum Unordered {
    /// The innermost pair that does not compare (a nan among them, maybe).
    Types(&'static str, &'static str),
    TooDeep,
}

fn order(a: &Value, b: &Value) -> Result<Ordering, Unordered> {
    use Value::*;
    let unordered = || Unordered::Types(a.type_name(), b.type_name());
    match (a, b) {
        (Int(x), Int(y)) => Ok(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y).ok_or_else(unordered),
        (Int(x), Float(y)) => (*x as f64).partial_cmp(y).ok_or_else(unordered),
        (Float(x), Int(y)) => x.partial_cmp(&(*y as f64)).ok_or_else(unordered),
        (Str(x), Str(y)) => Ok(x.cmp(y)),
        (Bool(x), Bool(y)) => Ok(x.cmp(y)),
        (List(x), List(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            super::value::nested(|| {
                for (p, q) in x.iter().zip(y.iter()) {
                    match order(p, q)? {
                        Ordering::Equal => continue,
                        o => return Ok(o),
                    }
                }
                Ok(x.len().cmp(&y.len()))
            })
            .unwrap_or(Err(Unordered::TooDeep))
        }
        _ => Err(unordered()),
    }
}

/// `<`, `<=`, `>`, `>=`. A nan compares false with everything, as in Python.
fn comparison(op: BinOp, a: &Value, b: &Value) -> Res<bool> {
    let is_nan = |v: &Value| matches!(v, Value::Float(f) if f.is_nan());
    let is_number = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
    if (is_nan(a) || is_nan(b)) && is_number(a) && is_number(b) {
        return Ok(false);
    }
    let ord = match order(a, b) {
        Ok(o) => o,
        Err(why) => {
            let (x, y) = (a.type_name(), b.type_name());
            let sym = op.symbol();
            let detail = match why {
                Unordered::Types(p, q) if (p, q) != (x, y) => {
                    format!(" (their items {p} and {q} do not order)")
                }
                Unordered::TooDeep => " (nested too deeply)".to_string(),
                Unordered::Types(..) => String::new(),
            };
            return fail(
                "TypeError",
                format!("cannot compare {x} and {y} with `{sym}`{detail}"),
            );
        }
    };
    Ok(match op {
        BinOp::Lt => ord == Ordering::Less,
        BinOp::Le => ord != Ordering::Greater,
        BinOp::Gt => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

pub fn contains(interp: &mut Interp, container: &Value, item: &Value) -> Res<bool> {
    match container {
        Value::Str(s) => match item {
            Value::Str(i) => Ok(s.contains(&**i)),
            _ => fail(
                "TypeError",
                format!(
                    "`in <str>` needs a str on the left, not {}",
                    item.type_name()
                ),
            ),
        },
        Value::List(l) => Ok(l.borrow().iter().any(|x| equals(x, item))),
        Value::Map(m) => match Key::from_value(item) {
            Ok(k) => Ok(m.borrow().contains_key(&k)),
            Err(_) => Ok(false),
        },
        Value::Range(r) => Ok(match item {
            Value::Int(i) => r.contains(*i),
            Value::Float(f) => f.fract() == 0.0 && f.abs() < 9.2e18 && r.contains(*f as i64),
            _ => false,
        }),
        Value::Object(o) => Rc::clone(o).contains(interp, item),
        _ => type_err_in(container),
    }
}

/// Resolves a possibly negative index against a length.
pub fn index_of(i: i64, len: usize) -> Option<usize> {
    // i128: a range can be longer than i64::MAX.
    let (i, len) = (i as i128, len as i128);
    let i = if i < 0 { i + len } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// Clamps slice bounds as Python does.
pub fn slice_bounds(lo: Option<i64>, hi: Option<i64>, len: usize) -> (usize, usize) {
    let clamp = |i: i64| {
        let i = if i < 0 { i + len as i64 } else { i };
        i.clamp(0, len as i64) as usize
    };
    let lo = lo.map_or(0, clamp);
    let hi = hi.map_or(len, clamp);
    (lo, hi.max(lo))
}

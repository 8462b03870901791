//! Methods of the plain types: str, list, map (SPEC §13). Handles answer their
//! own methods through `Object::call_method`.

use super::core::{map_items, map_keys, map_values, sort_values};
use crate::runtime::error::{fail, Res};
use crate::runtime::format::display;
use crate::runtime::value::{equals, Args, Key, Value};
use crate::runtime::Interp;
use std::rc::Rc;

pub fn call_method(interp: &mut Interp, obj: &Value, name: &str, args: Args) -> Res<Value> {
    match obj {
        Value::Str(s) => str_method(s, name, args),
        Value::List(_) => list_method(interp, obj, name, args),
        Value::Map(m) => match name {
            "get" | "keys" | "values" | "items" | "pop" => map_method(m, name, args),
            _ => {
                // `m.f(x)` calls a function stored under "f".
                let f = m.borrow().get(&Key::Str(name.into())).cloned();
                match f {
                    Some(f) => interp.call(&f, args),
                    None => fail(
                        "TypeError",
                        format!("map has no method `{name}` (and no key \"{name}\")"),
                    ),
                }
            }
        },
        Value::Object(o) => o.clone().call_method(interp, name, args),
        other => fail(
            "TypeError",
            format!("{} has no method `{name}`", other.type_name()),
        ),
    }
}

fn arg_str(func: &str, v: Option<Value>) -> Res<Option<Rc<str>>> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(other) => fail(
            "TypeError",
            format!("{func}() needs a str argument, not {}", other.type_name()),
        ),
    }
}

fn need_str(func: &str, v: Option<Value>) -> Res<Rc<str>> {
    match arg_str(func, v)? {
        Some(s) => Ok(s),
        None => fail("TypeError", format!("{func}() needs a str argument")),
    }
}

fn strs(v: Vec<String>) -> Value {
    Value::list(v.into_iter().map(|s| Value::Str(s.into())).collect())
}

fn str_method(s: &Rc<str>, name: &str, args: Args) -> Res<Value> {
    let s: &str = s;
    Ok(match name {
        "split" => {
            let [sep, max] = args.bind("split", ["sep", "maxsplit"], 0)?;
            let sep = arg_str("split", sep)?;
            let max = match max {
                None | Some(Value::Nil) => usize::MAX,
                Some(Value::Int(n)) if n >= 0 => n as usize,
                Some(Value::Int(_)) => usize::MAX,
                Some(o) => {
                    return fail(
                        "TypeError",
                        format!("split(): maxsplit must be int, not {}", o.type_name()),
                    )
                }
            };
            match sep {
                None => {
                    let mut out = Vec::new();
                    let mut rest = s.trim_start();
                    while !rest.is_empty() {
                        if out.len() == max {
                            out.push(rest.trim_end().to_string());
                            break;
                        }
                        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                        out.push(rest[..end].to_string());
                        rest = rest[end..].trim_start();
                    }
                    strs(out)
                }
                Some(sep) if sep.is_empty() => {
                    return fail("ValueError", "split(): empty separator")
                }
                Some(sep) => strs(
                    s.splitn(max.saturating_add(1), &*sep)
                        .map(String::from)
                        .collect(),
                ),
            }
        }
        "strip" | "lstrip" | "rstrip" => {
            let [chars] = args.bind(name, ["chars"], 0)?;
            let chars = arg_str(name, chars)?;
            let pat = |c: char| match &chars {
                Some(cs) => cs.contains(c),
                None => c.is_whitespace(),
            };
            Value::str(match name {
                "strip" => s.trim_matches(pat),
                "lstrip" => s.trim_start_matches(pat),
                _ => s.trim_end_matches(pat),
            })
        }
        "lines" => {
            args.bind("lines", [], 0)?;
            strs(s.lines().map(String::from).collect())
        }
        "upper" => {
            args.bind("upper", [], 0)?;
            Value::Str(s.to_uppercase().into())
        }
        "lower" => {
            args.bind("lower", [], 0)?;
            Value::Str(s.to_lowercase().into())
        }
        "replace" => {
            let [from, to] = args.bind("replace", ["old", "new"], 2)?;
            let (from, to) = (need_str("replace", from)?, need_str("replace", to)?);
            Value::Str(s.replace(&*from, &to).into())
        }
        "starts_with" => {
            let [p] = args.bind("starts_with", ["prefix"], 1)?;
            Value::Bool(s.starts_with(&*need_str("starts_with", p)?))
        }
        "ends_with" => {
            let [p] = args.bind("ends_with", ["suffix"], 1)?;
            Value::Bool(s.ends_with(&*need_str("ends_with", p)?))
        }
        "find" => {
            let [p] = args.bind("find", ["sub"], 1)?;
            let p = need_str("find", p)?;
            match s.find(&*p) {
                Some(b) => Value::Int(s[..b].chars().count() as i64),
                None => Value::Int(-1),
            }
        }
        "contains" => {
            let [p] = args.bind("contains", ["sub"], 1)?;
            Value::Bool(s.contains(&*need_str("contains", p)?))
        }
        "join" => {
            let [xs] = args.bind("join", ["items"], 1)?;
            let items = match xs.unwrap_or_default() {
                Value::List(l) => l.borrow().clone(),
                other => {
                    return fail(
                        "TypeError",
                        format!("join() needs a list, not {}", other.type_name()),
                    )
                }
            };
            let mut out = String::new();
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(s);
                }
                out.push_str(&display(x));
            }
            Value::Str(out.into())
        }
        "len" => {
            args.bind("len", [], 0)?;
            Value::Int(s.chars().count() as i64)
        }
        _ => return fail("TypeError", format!("str has no method `{name}`")),
    })
}

fn list_method(interp: &mut Interp, obj: &Value, name: &str, args: Args) -> Res<Value> {
    let Value::List(l) = obj else { unreachable!() };
    Ok(match name {
        "push" => {
            let [v] = args.bind("push", ["value"], 1)?;
            l.borrow_mut().push(v.unwrap_or_default());
            Value::Nil
        }
        "pop" => {
            let [i] = args.bind("pop", ["index"], 0)?;
            let mut l = l.borrow_mut();
            let len = l.len();
            let idx = match i {
                None | Some(Value::Nil) => len.checked_sub(1),
                Some(Value::Int(i)) => crate::runtime::ops::index_of(i, len),
                Some(o) => {
                    return fail(
                        "TypeError",
                        format!("pop(): index must be int, not {}", o.type_name()),
                    )
                }
            };
            match idx {
                Some(k) => l.remove(k),
                None if len == 0 => return fail("IndexError", "pop from an empty list"),
                None => return fail("IndexError", "pop index out of range"),
            }
        }
        "insert" => {
            let [i, v] = args.bind("insert", ["index", "value"], 2)?;
            let Some(Value::Int(i)) = i else {
                return fail("TypeError", "insert(): index must be int");
            };
            let mut l = l.borrow_mut();
            let len = l.len() as i64;
            let at = if i < 0 { (i + len).max(0) } else { i.min(len) } as usize;
            l.insert(at, v.unwrap_or_default());
            Value::Nil
        }
        "extend" => {
            let [xs] = args.bind("extend", ["items"], 1)?;
            let xs = super::core::collect(interp, &xs.unwrap_or_default())?;
            l.borrow_mut().extend(xs);
            Value::Nil
        }
        "sort" => {
            let [key, reverse] = args.bind("sort", ["key", "reverse"], 0)?;
            let mut v = std::mem::take(&mut *l.borrow_mut());
            let r = sort_values(interp, &mut v, key, reverse.is_some_and(|r| r.truthy()));
            *l.borrow_mut() = v;
            r?;
            Value::Nil
        }
        "reverse" => {
            args.bind("reverse", [], 0)?;
            l.borrow_mut().reverse();
            Value::Nil
        }
        "index" => {
            let [x] = args.bind("index", ["value"], 1)?;
            let x = x.unwrap_or_default();
            match l.borrow().iter().position(|y| equals(y, &x)) {
                Some(i) => Value::Int(i as i64),
                None => {
                    return fail(
                        "ValueError",
                        format!("{} is not in the list", crate::runtime::format::repr(&x)),
                    )
                }
            }
        }
        "copy" => {
            args.bind("copy", [], 0)?;
            Value::list(l.borrow().clone())
        }
        "len" => {
            args.bind("len", [], 0)?;
            Value::Int(l.borrow().len() as i64)
        }
        _ => return fail("TypeError", format!("list has no method `{name}`")),
    })
}

fn map_method(m: &crate::runtime::value::Map, name: &str, args: Args) -> Res<Value> {
    Ok(match name {
        "get" => {
            let [k, d] = args.bind("get", ["key", "default"], 1)?;
            let k = Key::from_value(&k.unwrap_or_default())?;
            m.borrow().get(&k).cloned().unwrap_or(d.unwrap_or_default())
        }
        "pop" => {
            let [k, d] = args.bind("pop", ["key", "default"], 1)?;
            let kv = k.unwrap_or_default();
            let k = Key::from_value(&kv)?;
            match m.borrow_mut().shift_remove(&k) {
                Some(v) => v,
                None => match d {
                    Some(d) => d,
                    None => {
                        return fail(
                            "KeyError",
                            format!("key {} not found", crate::runtime::format::repr(&kv)),
                        )
                    }
                },
            }
        }
        "keys" => {
            args.bind("keys", [], 0)?;
            map_keys(m)
        }
        "values" => {
            args.bind("values", [], 0)?;
            map_values(m)
        }
        _ => {
            args.bind("items", [], 0)?;
            map_items(m)
        }
    })
}

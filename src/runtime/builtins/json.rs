//! parse_json / to_json, through serde_json.

use crate::runtime::error::{fail, Res};
use crate::runtime::value::{Args, Builtin, Key, Value};
use crate::runtime::Interp;
use indexmap::IndexMap;
use serde_json::Value as J;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "parse_json",
        func: parse_json,
    },
    Builtin {
        name: "to_json",
        func: to_json,
    },
];

fn parse_json(_: &mut Interp, args: Args) -> Res<Value> {
    let [s] = args.bind("parse_json", ["text"], 1)?;
    let Some(Value::Str(s)) = s else {
        return fail("TypeError", "parse_json() needs a str");
    };
    match serde_json::from_str::<J>(&s) {
        Ok(j) => Ok(from_json(j)),
        Err(e) => fail("ValueError", format!("invalid JSON: {e}")),
    }
}

fn from_json(j: J) -> Value {
    match j {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::Str(s.into()),
        J::Array(a) => Value::list(a.into_iter().map(from_json).collect()),
        J::Object(o) => {
            let m: IndexMap<Key, Value> = o
                .into_iter()
                .map(|(k, v)| (Key::Str(k.into()), from_json(v)))
                .collect();
            Value::map(m)
        }
    }
}

fn to_json_value(v: &Value, depth: usize) -> Res<J> {
    if depth > 512 {
        return fail(
            "ValueError",
            "to_json(): value nested too deeply (a cycle?)",
        );
    }
    Ok(match v {
        Value::Nil | Value::Undefined => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => J::Number(n),
            None => return fail("ValueError", format!("to_json(): {f} is not valid JSON")),
        },
        Value::Str(s) => J::String(s.to_string()),
        Value::List(l) => J::Array(
            l.borrow()
                .iter()
                .map(|x| to_json_value(x, depth + 1))
                .collect::<Res<_>>()?,
        ),
        Value::Range(r) if r.len() > super::core::MAX_RANGE_ITEMS => {
            return fail("ValueError", "to_json(): range too long")
        }
        Value::Range(r) => J::Array((0..r.len()).map(|i| J::from(r.get(i))).collect()),
        Value::Map(m) => {
            let mut o = serde_json::Map::new();
            for (k, x) in m.borrow().iter() {
                let key = match k {
                    Key::Str(s) => s.to_string(),
                    Key::Int(i) => i.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                o.insert(key, to_json_value(x, depth + 1)?);
            }
            J::Object(o)
        }
        other => {
            return fail(
                "TypeError",
                format!("to_json(): {} is not JSON-serializable", other.type_name()),
            )
        }
    })
}

fn to_json(_: &mut Interp, args: Args) -> Res<Value> {
    let [v, indent] = args.bind("to_json", ["value", "indent"], 1)?;
    let j = to_json_value(&v.unwrap_or_default(), 0)?;
    let s = match indent {
        None | Some(Value::Nil) => serde_json::to_string(&j),
        Some(Value::Int(n)) => {
            let ind = " ".repeat(n.clamp(0, 16) as usize);
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(ind.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&j, &mut ser)
                .map(|_| String::from_utf8_lossy(&buf).into_owned())
        }
        Some(other) => {
            return fail(
                "TypeError",
                format!("to_json(): indent must be int, not {}", other.type_name()),
            )
        }
    };
    match s {
        Ok(s) => Ok(Value::Str(s.into())),
        Err(e) => fail("ValueError", format!("to_json(): {e}")),
    }
}

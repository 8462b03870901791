//! `value(init)`, `array(n_or_list)`, `shared_dict()`, `shared_list()`: shared
//! memory. Each embeds a re-entrant lock that every single operation takes, and
//! that `with x { }` holds around a block.

use super::sync::enter_with;
use super::{described, io_error, ipc_error, no_method, retry};
use crate::os::ipc::{self, IpcError, Num};
use crate::runtime::builtins::core::collect;
use crate::runtime::error::{fail, Res, RtError, Unwind};
use crate::runtime::format::repr;
use crate::runtime::ops;
use crate::runtime::value::{Args, Key, Object, Value};
use crate::runtime::{wire, Interp};
use crate::syntax::ast::BinOp;
use indexmap::IndexMap;
use std::any::Any;

pub(super) fn decode(ty: &str, bytes: &[u8]) -> std::io::Result<Option<Value>> {
    Ok(Some(match ty {
        "value" => Value::object(Cell(ipc::ValueCell::from_description(bytes)?)),
        "array" => Value::object(Array(ipc::Array::from_description(bytes)?)),
        "shared_dict" => Value::object(Dict(ipc::SharedDict::from_description(bytes)?)),
        "shared_list" => Value::object(List(ipc::SharedList::from_description(bytes)?)),
        _ => return Ok(None),
    }))
}

/// `with x { }` and the release at its end, for the embedded locks.
macro_rules! with_lock {
    () => {
        fn enter(&self, interp: &mut Interp, this: &Value) -> Res<Value> {
            enter_with(interp, |b, t| self.0.acquire(b, t))?;
            Ok(this.clone())
        }

        fn exit(&self, _: &mut Interp) -> Res<()> {
            self.0.release().map_err(ipc_error)
        }

        fn wire(&self) -> Option<Vec<u8>> {
            described(self.0.describe())
        }
    };
}

fn int_index(ty: &str, i: &Value) -> Res<i64> {
    match i {
        Value::Int(i) => Ok(*i),
        other => fail(
            "TypeError",
            format!("{ty} indices must be int, not {}", other.type_name()),
        ),
    }
}

fn out_of_range(ty: &str, i: i64, len: usize) -> Unwind {
    RtError::new(
        "IndexError",
        format!("{ty} index {i} out of range (len {len})"),
    )
    .into()
}

// ---------------------------------------------------------------------------
// value

pub struct Cell(ipc::ValueCell);

pub(super) fn value(interp: &mut Interp, args: Args) -> Res<Value> {
    let [init] = args.bind("value", ["init"], 1)?;
    let bytes = wire::encode(interp, &init.unwrap_or_default())?;
    Ok(Value::object(Cell(
        ipc::ValueCell::new(&bytes).map_err(io_error)?,
    )))
}

impl Cell {
    fn read(&self, interp: &mut Interp) -> Res<Value> {
        // Plain values are decoded in place; others are copied out first.
        let got = retry(interp, || {
            self.0
                .get_with(|b| wire::decode_plain(b).ok_or_else(|| b.to_vec()))
        })?;
        match got {
            Ok(v) => Ok(v),
            Err(bytes) => wire::decode(interp, &bytes),
        }
    }

    fn write(&self, interp: &mut Interp, v: &Value) -> Res<()> {
        match wire::encode_with(interp, v, |b| self.0.set(b))? {
            Err(IpcError::Interrupted) => {
                let bytes = wire::encode(interp, v)?;
                retry(interp, || self.0.set(&bytes))
            }
            r => r.map_err(ipc_error),
        }
    }

    /// `v.add(n)`: read, add and write under the cell's lock.
    fn add(&self, interp: &mut Interp, n: &Value) -> Res<Value> {
        enter_with(interp, |b, t| self.0.acquire(b, t))?;
        let r = (|| {
            let old = self.read(interp)?;
            let new = ops::binary(interp, BinOp::Add, &old, n)?;
            self.write(interp, &new)?;
            Ok(new)
        })();
        self.0.release().map_err(ipc_error)?;
        r
    }
}

impl Object for Cell {
    fn type_name(&self) -> &'static str {
        "value"
    }

    fn repr(&self) -> String {
        // Printing has no interpreter at hand: plain values are shown, a cell
        // holding a function or a handle is not.
        let shown = self.0.get().ok().and_then(|b| wire::decode_plain(&b));
        match shown {
            Some(v) => format!("<value {}>", repr(&v)),
            None => "<value>".into(),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn get_field(&self, interp: &mut Interp, name: &str) -> Res<Value> {
        match name {
            "value" => self.read(interp),
            _ => fail("TypeError", format!("value has no field `{name}`")),
        }
    }

    fn set_field(&self, interp: &mut Interp, name: &str, v: Value) -> Res<()> {
        match name {
            "value" => self.write(interp, &v),
            _ => fail(
                "TypeError",
                format!("cannot set field `{name}` of value (only `value`)"),
            ),
        }
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "add" => {
                let [n] = args.bind("add", ["n"], 1)?;
                self.add(interp, &n.unwrap_or_default())
            }
            "value" => {
                // `v.value(x)` calls the function the cell holds.
                let f = self.read(interp)?;
                interp.call(&f, args)
            }
            _ => no_method("value", name),
        }
    }

    with_lock!();
}

// ---------------------------------------------------------------------------
// array

pub struct Array(ipc::Array);

fn num(v: &Value) -> Res<Num> {
    match v {
        Value::Int(i) => Ok(Num::Int(*i)),
        Value::Float(f) => Ok(Num::Float(*f)),
        other => fail(
            "TypeError",
            format!(
                "array items must be int or float, not {}",
                other.type_name()
            ),
        ),
    }
}

fn from_num(n: Num) -> Value {
    match n {
        Num::Int(i) => Value::Int(i),
        Num::Float(f) => Value::Float(f),
    }
}

pub(super) fn array(interp: &mut Interp, args: Args) -> Res<Value> {
    let [init] = args.bind("array", ["size_or_items"], 1)?;
    let nums: Vec<Num> = match init.unwrap_or_default() {
        Value::Int(n) if (0..=1 << 32).contains(&n) => vec![Num::Int(0); n as usize],
        Value::Int(n) => {
            return fail(
                "ValueError",
                format!("array(): size must be from 0 to 4294967296, not {n}"),
            )
        }
        v @ (Value::List(_) | Value::Range(_)) => {
            collect(interp, &v)?.iter().map(num).collect::<Res<_>>()?
        }
        v => {
            return fail(
                "TypeError",
                format!(
                    "array() needs a size or a list of numbers, not {}",
                    v.type_name()
                ),
            )
        }
    };
    Ok(Value::object(Array(
        ipc::Array::new(&nums).map_err(io_error)?,
    )))
}

impl Array {
    fn items(&self, interp: &mut Interp) -> Res<Vec<Value>> {
        Ok(retry(interp, || self.0.to_vec())?
            .into_iter()
            .map(from_num)
            .collect())
    }
}

impl Object for Array {
    fn type_name(&self) -> &'static str {
        "array"
    }

    fn repr(&self) -> String {
        format!("<array len={}>", self.0.len())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn index(&self, interp: &mut Interp, i: &Value) -> Res<Value> {
        let i = int_index("array", i)?;
        match retry(interp, || self.0.get(i)) {
            Err(Unwind::Error(e)) if &*e.kind == "IndexError" => {
                Err(out_of_range("array", i, self.0.len()))
            }
            r => r.map(from_num),
        }
    }

    fn set_index(&self, interp: &mut Interp, i: &Value, v: Value) -> Res<()> {
        let i = int_index("array", i)?;
        let n = num(&v)?;
        match retry(interp, || self.0.set(i, n)) {
            Err(Unwind::Error(e)) if &*e.kind == "IndexError" => {
                Err(out_of_range("array", i, self.0.len()))
            }
            r => r,
        }
    }

    fn len(&self, _: &mut Interp) -> Res<usize> {
        Ok(self.0.len())
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "list" => {
                args.bind("list", [], 0)?;
                Ok(Value::list(self.items(interp)?))
            }
            _ => no_method("array", name),
        }
    }

    with_lock!();
}

// ---------------------------------------------------------------------------
// shared_dict

pub struct Dict(ipc::SharedDict);

pub(super) fn shared_dict(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("shared_dict", [], 0)?;
    Ok(Value::object(Dict(
        ipc::SharedDict::new().map_err(io_error)?,
    )))
}

/// A key's bytes in the dict: one tag byte, then the key. Equal keys (as a
/// map compares them) give equal bytes.
fn key_bytes(k: &Key) -> Vec<u8> {
    match k {
        Key::Str(s) => {
            let mut b = Vec::with_capacity(1 + s.len());
            b.push(b's');
            b.extend_from_slice(s.as_bytes());
            b
        }
        Key::Int(i) => {
            let mut b = vec![b'i'];
            b.extend_from_slice(&i.to_le_bytes());
            b
        }
        Key::Bool(v) => vec![b'b', *v as u8],
    }
}

fn key_from_bytes(b: &[u8]) -> Res<Key> {
    let bad = || fail("ValueError", "corrupt shared_dict key");
    match b.split_first() {
        Some((b's', s)) => match std::str::from_utf8(s) {
            Ok(s) => Ok(Key::Str(s.into())),
            Err(_) => bad(),
        },
        Some((b'i', n)) => match <[u8; 8]>::try_from(n) {
            Ok(n) => Ok(Key::Int(i64::from_le_bytes(n))),
            Err(_) => bad(),
        },
        Some((b'b', [v])) => Ok(Key::Bool(*v != 0)),
        _ => bad(),
    }
}

impl Dict {
    fn lookup(&self, interp: &mut Interp, k: &Value) -> Res<Option<Value>> {
        let key = key_bytes(&Key::from_value(k)?);
        match retry(interp, || self.0.get(&key))? {
            Some(b) => wire::decode(interp, &b).map(Some),
            None => Ok(None),
        }
    }

    fn keys(&self, interp: &mut Interp) -> Res<Vec<Value>> {
        retry(interp, || self.0.keys())?
            .iter()
            .map(|k| key_from_bytes(k).map(|k| k.to_value()))
            .collect()
    }

    fn items(&self, interp: &mut Interp) -> Res<Vec<(Key, Value)>> {
        retry(interp, || self.0.items())?
            .iter()
            .map(|(k, v)| Ok((key_from_bytes(k)?, wire::decode(interp, v)?)))
            .collect()
    }
}

impl Object for Dict {
    fn type_name(&self) -> &'static str {
        "shared_dict"
    }

    fn repr(&self) -> String {
        format!("<shared_dict len={}>", self.0.len())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn index(&self, interp: &mut Interp, k: &Value) -> Res<Value> {
        match self.lookup(interp, k)? {
            Some(v) => Ok(v),
            None => fail("KeyError", format!("key {} not found", repr(k))),
        }
    }

    fn set_index(&self, interp: &mut Interp, k: &Value, v: Value) -> Res<()> {
        let key = key_bytes(&Key::from_value(k)?);
        let val = wire::encode(interp, &v)?;
        retry(interp, || self.0.set(&key, &val))
    }

    fn len(&self, _: &mut Interp) -> Res<usize> {
        Ok(self.0.len())
    }

    fn contains(&self, interp: &mut Interp, k: &Value) -> Res<bool> {
        // As for maps: what cannot be a key is simply not in it.
        let Ok(key) = Key::from_value(k) else {
            return Ok(false);
        };
        let key = key_bytes(&key);
        retry(interp, || self.0.contains(&key))
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "get" => {
                let [k, default] = args.bind("get", ["key", "default"], 1)?;
                Ok(self
                    .lookup(interp, &k.unwrap_or_default())?
                    .unwrap_or(default.unwrap_or_default()))
            }
            "keys" => {
                args.bind("keys", [], 0)?;
                Ok(Value::list(self.keys(interp)?))
            }
            "values" => {
                args.bind("values", [], 0)?;
                let items = self.items(interp)?;
                Ok(Value::list(items.into_iter().map(|(_, v)| v).collect()))
            }
            "items" => {
                args.bind("items", [], 0)?;
                let items = self.items(interp)?;
                Ok(Value::list(
                    items
                        .into_iter()
                        .map(|(k, v)| Value::list(vec![k.to_value(), v]))
                        .collect(),
                ))
            }
            "dict" => {
                args.bind("dict", [], 0)?;
                let items = self.items(interp)?;
                Ok(Value::map(items.into_iter().collect::<IndexMap<_, _>>()))
            }
            "pop" => {
                let [k, default] = args.bind("pop", ["key", "default"], 1)?;
                let k = k.unwrap_or_default();
                let key = key_bytes(&Key::from_value(&k)?);
                match retry(interp, || self.0.remove(&key))? {
                    Some(b) => wire::decode(interp, &b),
                    None => match default {
                        Some(d) => Ok(d),
                        None => fail("KeyError", format!("key {} not found", repr(&k))),
                    },
                }
            }
            _ => no_method("shared_dict", name),
        }
    }

    with_lock!();
}

// ---------------------------------------------------------------------------
// shared_list

pub struct List(ipc::SharedList);

pub(super) fn shared_list(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("shared_list", [], 0)?;
    Ok(Value::object(List(
        ipc::SharedList::new().map_err(io_error)?,
    )))
}

impl List {
    fn index_error(&self, i: i64, e: IpcError) -> Unwind {
        match e {
            IpcError::OutOfRange => out_of_range("shared_list", i, self.0.len()),
            e => ipc_error(e),
        }
    }
}

impl Object for List {
    fn type_name(&self) -> &'static str {
        "shared_list"
    }

    fn repr(&self) -> String {
        format!("<shared_list len={}>", self.0.len())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn index(&self, interp: &mut Interp, i: &Value) -> Res<Value> {
        let i = int_index("shared_list", i)?;
        let b = loop {
            match self.0.get(i) {
                Err(IpcError::Interrupted) => interp.handle_signals()?,
                Err(e) => return Err(self.index_error(i, e)),
                Ok(b) => break b,
            }
        };
        wire::decode(interp, &b)
    }

    fn set_index(&self, interp: &mut Interp, i: &Value, v: Value) -> Res<()> {
        let i = int_index("shared_list", i)?;
        let val = wire::encode(interp, &v)?;
        loop {
            match self.0.set(i, &val) {
                Err(IpcError::Interrupted) => interp.handle_signals()?,
                Err(e) => return Err(self.index_error(i, e)),
                Ok(()) => return Ok(()),
            }
        }
    }

    fn len(&self, _: &mut Interp) -> Res<usize> {
        Ok(self.0.len())
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "push" => {
                let [v] = args.bind("push", ["value"], 1)?;
                let val = wire::encode(interp, &v.unwrap_or_default())?;
                retry(interp, || self.0.push(&val))?;
                Ok(Value::Nil)
            }
            "pop" => {
                let [i] = args.bind("pop", ["index"], 0)?;
                let i = match i {
                    None | Some(Value::Nil) => None,
                    Some(i) => Some(int_index("shared_list", &i)?),
                };
                let b = loop {
                    match self.0.pop(i) {
                        Err(IpcError::Interrupted) => interp.handle_signals()?,
                        Err(IpcError::OutOfRange) if self.0.is_empty() => {
                            return fail("IndexError", "pop from an empty shared_list")
                        }
                        Err(e) => return Err(self.index_error(i.unwrap_or(-1), e)),
                        Ok(b) => break b,
                    }
                };
                wire::decode(interp, &b)
            }
            "list" => {
                args.bind("list", [], 0)?;
                let items = retry(interp, || self.0.to_vec())?;
                Ok(Value::list(
                    items
                        .iter()
                        .map(|b| wire::decode(interp, b))
                        .collect::<Res<_>>()?,
                ))
            }
            _ => no_method("shared_list", name),
        }
    }

    with_lock!();
}

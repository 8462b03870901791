//! Runtime values. Ints, floats, bools and nil are stored inline (no allocation);
//! heap values are reference-counted so a clone is a pointer copy.

use super::error::{Res, RtError};
use super::Interp;
use crate::syntax::ast::{FnDef, Sym};
use indexmap::IndexMap;
use smallvec::SmallVec;
use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

pub type List = Rc<Items<Vec<Value>>>;
pub type Map = Rc<Items<IndexMap<Key, Value>>>;

/// The contents of a list or map: a `RefCell` (it derefs to one) that drops
/// nested lists and maps with a loop instead of recursion, so that a list a
/// million levels deep (`for i in range(n) { x = [x] }`) does not overflow the
/// stack when it goes away.
pub struct Items<T: Children>(RefCell<T>);

impl<T: Children> Items<T> {
    pub fn new(items: T) -> Items<T> {
        Items(RefCell::new(items))
    }
}

impl<T: Children> std::ops::Deref for Items<T> {
    type Target = RefCell<T>;
    fn deref(&self) -> &RefCell<T> {
        &self.0
    }
}

/// What a container holds, for `Items`' drop.
pub trait Children {
    fn values(&self) -> impl Iterator<Item = &Value>;
    /// Moves the values out, leaving the container empty.
    fn take_into(&mut self, out: &mut Vec<Value>);
}

impl Children for Vec<Value> {
    fn values(&self) -> impl Iterator<Item = &Value> {
        self.iter()
    }
    fn take_into(&mut self, out: &mut Vec<Value>) {
        out.append(self);
    }
}

impl Children for IndexMap<Key, Value> {
    fn values(&self) -> impl Iterator<Item = &Value> {
        IndexMap::values(self)
    }
    fn take_into(&mut self, out: &mut Vec<Value>) {
        out.extend(self.drain(..).map(|(_, v)| v));
    }
}

/// True when dropping `v` would drop a container (its last reference).
fn last_container(v: &Value) -> bool {
    match v {
        Value::List(l) => Rc::strong_count(l) == 1,
        Value::Map(m) => Rc::strong_count(m) == 1,
        _ => false,
    }
}

impl<T: Children> Drop for Items<T> {
    fn drop(&mut self) {
        let items = self.0.get_mut();
        // The common case, flat contents, drops as usual.
        if !items.values().any(last_container) {
            return;
        }
        let mut pending = Vec::new();
        items.take_into(&mut pending);
        while let Some(v) = pending.pop() {
            // Empty each container before it drops, so its own drop is shallow.
            match v {
                Value::List(l) => {
                    if let Ok(mut inner) = Rc::try_unwrap(l) {
                        inner.0.get_mut().take_into(&mut pending);
                    }
                }
                Value::Map(m) => {
                    if let Ok(mut inner) = Rc::try_unwrap(m) {
                        inner.0.get_mut().take_into(&mut pending);
                    }
                }
                _ => {}
            }
        }
    }
}

#[derive(Clone, Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    List(List),
    Map(Map),
    Range(Rc<RangeVal>),
    Func(Rc<Closure>),
    Builtin(&'static Builtin),
    Object(Rc<dyn Object>),
    Error(Rc<ErrorVal>),
    /// A slot declared but not yet assigned: reading it is a NameError.
    Undefined,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeVal {
    pub start: i64,
    pub stop: i64,
    pub step: i64,
}

impl RangeVal {
    pub fn len(&self) -> usize {
        // In i128 throughout: `-step` of the most negative step, and the
        // distance between far-apart bounds, do not fit in an i64.
        let (start, stop, step) = (self.start as i128, self.stop as i128, self.step as i128);
        let n = if step > 0 {
            (stop - start + step - 1) / step
        } else {
            (start - stop - step - 1) / -step
        };
        n.max(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th item; `i < len()`. Worked out in i128 because `step * i` can
    /// leave the i64 range on the way even when the item is inside it.
    pub fn get(&self, i: usize) -> i64 {
        (self.start as i128 + self.step as i128 * i as i128) as i64
    }

    pub fn contains(&self, v: i64) -> bool {
        let off = v as i128 - self.start as i128;
        let step = self.step as i128;
        off % step == 0 && {
            let k = off / step;
            k >= 0 && k < self.len() as i128
        }
    }
}

/// A caught error as a value: `e.kind`, `e.message`.
#[derive(Debug)]
pub struct ErrorVal {
    pub err: RtError,
}

/// A map key: strings, ints and bools.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Key {
    Str(Rc<str>),
    Int(i64),
    Bool(bool),
}

impl Key {
    pub fn from_value(v: &Value) -> Res<Key> {
        match v {
            Value::Str(s) => Ok(Key::Str(s.clone())),
            Value::Int(i) => Ok(Key::Int(*i)),
            Value::Bool(b) => Ok(Key::Bool(*b)),
            other => Err(RtError::new(
                "TypeError",
                format!(
                    "map keys must be str, int or bool, not {}",
                    other.type_name()
                ),
            )
            .into()),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Key::Str(s) => Value::Str(s.clone()),
            Key::Int(i) => Value::Int(*i),
            Key::Bool(b) => Value::Bool(*b),
        }
    }
}

/// A function frame: parameters and locals in slots. Closures keep the frame of
/// their definition alive, so capture is by reference.
pub struct Frame {
    pub slots: RefCell<Vec<Value>>,
    pub parent: Option<Rc<Frame>>,
}

impl Frame {
    pub fn new(n: usize, parent: Option<Rc<Frame>>) -> Rc<Frame> {
        Rc::new(Frame {
            slots: RefCell::new(vec![Value::Undefined; n]),
            parent,
        })
    }

    pub fn up(self: &Rc<Frame>, depth: u16) -> &Rc<Frame> {
        let mut f = self;
        for _ in 0..depth {
            f = f
                .parent
                .as_ref()
                .expect("resolver guarantees the frame depth");
        }
        f
    }
}

pub struct Closure {
    pub def: Rc<FnDef>,
    /// The frame the function was defined in (None at top level).
    pub env: Option<Rc<Frame>>,
}

pub type BuiltinFn = fn(&mut Interp, Args) -> Res<Value>;

/// A builtin function.
pub struct Builtin {
    pub name: &'static str,
    pub func: BuiltinFn,
}

/// Arguments as passed: positional then named.
#[derive(Default)]
pub struct Args {
    pub pos: SmallVec<[Value; 4]>,
    pub named: Vec<(Sym, Value)>,
}

impl Args {
    pub fn new(pos: impl IntoIterator<Item = Value>) -> Args {
        Args {
            pos: pos.into_iter().collect(),
            named: Vec::new(),
        }
    }

    /// Binds to the parameter names of `func`; the first `required` are required.
    /// Missing optional ones come back as None.
    pub fn bind<const N: usize>(
        self,
        func: &str,
        names: [&str; N],
        required: usize,
    ) -> Res<[Option<Value>; N]> {
        let mut out: [Option<Value>; N] = std::array::from_fn(|_| None);
        if self.pos.len() > N {
            let takes = match N {
                0 => "no arguments".to_string(),
                n => format!("at most {n} argument{}", plural(n)),
            };
            return Err(RtError::new(
                "TypeError",
                format!("{func}() takes {takes}, got {}", self.pos.len()),
            )
            .into());
        }
        for (i, v) in self.pos.into_iter().enumerate() {
            out[i] = Some(v);
        }
        for (name, v) in self.named {
            match names.iter().position(|n| **n == *name) {
                Some(i) if out[i].is_some() => {
                    return Err(RtError::new(
                        "TypeError",
                        format!("{func}() got argument `{name}` twice"),
                    )
                    .into())
                }
                Some(i) => out[i] = Some(v),
                None => {
                    return Err(RtError::new(
                        "TypeError",
                        format!(
                            "{func}() has no parameter named `{name}` (it takes: {})",
                            names.join(", ")
                        ),
                    )
                    .into())
                }
            }
        }
        for (i, o) in out.iter().enumerate().take(required) {
            if o.is_none() {
                return Err(RtError::new(
                    "TypeError",
                    format!("{func}() missing argument `{}`", names[i]),
                )
                .into());
            }
        }
        Ok(out)
    }

    /// For functions taking only positional arguments, any number.
    pub fn positional(self, func: &str) -> Res<SmallVec<[Value; 4]>> {
        if let Some((name, _)) = self.named.first() {
            return Err(RtError::new(
                "TypeError",
                format!("{func}() has no parameter named `{name}`"),
            )
            .into());
        }
        Ok(self.pos)
    }
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The protocol every handle (process, queue, lock, pool, popen, ...) implements.
/// Defaults raise a TypeError naming the type, so a handle implements only what
/// it supports.
pub trait Object: 'static {
    /// The type name `type(v)` gives ("queue", "process", ...).
    fn type_name(&self) -> &'static str;

    /// How `print` shows it, e.g. `<process Process-1 pid=4242 running>`.
    fn repr(&self) -> String {
        format!("<{}>", self.type_name())
    }

    fn as_any(&self) -> &dyn Any;

    /// `h.name` (attribute read).
    fn get_field(&self, _interp: &mut Interp, name: &str) -> Res<Value> {
        Err(RtError::new(
            "TypeError",
            format!("{} has no field `{name}`", self.type_name()),
        )
        .into())
    }

    /// `h.name = v`.
    fn set_field(&self, _interp: &mut Interp, name: &str, _v: Value) -> Res<()> {
        Err(RtError::new(
            "TypeError",
            format!("cannot set field `{name}` of {}", self.type_name()),
        )
        .into())
    }

    /// `h.name(args)`.
    fn call_method(&self, _interp: &mut Interp, name: &str, _args: Args) -> Res<Value> {
        Err(RtError::new(
            "TypeError",
            format!("{} has no method `{name}`", self.type_name()),
        )
        .into())
    }

    /// `h[i]`.
    fn index(&self, _interp: &mut Interp, _i: &Value) -> Res<Value> {
        Err(RtError::new(
            "TypeError",
            format!("{} cannot be indexed", self.type_name()),
        )
        .into())
    }

    /// `h[i] = v`.
    fn set_index(&self, _interp: &mut Interp, _i: &Value, _v: Value) -> Res<()> {
        Err(RtError::new(
            "TypeError",
            format!("{} does not support item assignment", self.type_name()),
        )
        .into())
    }

    /// `len(h)`.
    fn len(&self, _interp: &mut Interp) -> Res<usize> {
        Err(RtError::new("TypeError", format!("{} has no len()", self.type_name())).into())
    }

    /// `x in h`.
    fn contains(&self, _interp: &mut Interp, _v: &Value) -> Res<bool> {
        Err(RtError::new(
            "TypeError",
            format!("`in` is not supported by {}", self.type_name()),
        )
        .into())
    }

    /// The next item of `for x in h`, or None at the end.
    fn next_item(&self, _interp: &mut Interp) -> Res<Option<Value>> {
        Err(RtError::new("TypeError", format!("{} is not iterable", self.type_name())).into())
    }

    /// `with h { }` on entry; the result is bound by `as`.
    fn enter(&self, _interp: &mut Interp, this: &Value) -> Res<Value> {
        let _ = this;
        Err(RtError::new(
            "TypeError",
            format!("{} cannot be used with `with`", self.type_name()),
        )
        .into())
    }

    /// `with h { }` on every exit.
    fn exit(&self, _interp: &mut Interp) -> Res<()> {
        Ok(())
    }

    /// A description of the OS object for another process (SPEC §11), or None if
    /// this handle cannot be sent. `wire::decode_handle` rebuilds it.
    fn wire(&self) -> Option<Vec<u8>> {
        None
    }
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.into())
    }

    pub fn list(v: Vec<Value>) -> Value {
        Value::List(Rc::new(Items::new(v)))
    }

    pub fn map(m: IndexMap<Key, Value>) -> Value {
        Value::Map(Rc::new(Items::new(m)))
    }

    pub fn object(o: impl Object) -> Value {
        Value::Object(Rc::new(o))
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil | Value::Undefined => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Range(_) => "range",
            Value::Func(_) | Value::Builtin(_) => "fn",
            Value::Object(o) => o.type_name(),
            Value::Error(_) => "error",
        }
    }

    #[inline]
    pub fn truthy(&self) -> bool {
        if let Value::Bool(b) = self {
            return *b;
        }
        self.truthy_slow()
    }

    fn truthy_slow(&self) -> bool {
        match self {
            Value::Nil | Value::Undefined => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.borrow().is_empty(),
            Value::Map(m) => !m.borrow().is_empty(),
            Value::Range(r) => !r.is_empty(),
            _ => true,
        }
    }

    /// Downcasts a handle.
    pub fn downcast<T: 'static>(&self) -> Option<&T> {
        match self {
            Value::Object(o) => o.as_any().downcast_ref::<T>(),
            _ => None,
        }
    }
}

/// How deeply `==` and ordering descend into nested lists and maps; deeper (a
/// list that contains itself, most likely) counts as unequal and unordered.
pub const MAX_COMPARE_DEPTH: usize = 100_000;

/// Runs one level of a recursive comparison: on a stack grown on the heap when
/// the nesting is deep, and not at all (None) beyond `MAX_COMPARE_DEPTH`.
pub fn nested<T>(f: impl FnOnce() -> T) -> Option<T> {
    thread_local! { static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) }; }
    let depth = DEPTH.with(|d| d.get());
    if depth >= MAX_COMPARE_DEPTH {
        return None;
    }
    DEPTH.with(|d| d.set(depth + 1));
    let r = stacker::maybe_grow(64 * 1024, 1024 * 1024, f);
    DEPTH.with(|d| d.set(depth));
    Some(r)
}

/// `==`: content for strings, lists and maps; identity for handles and functions.
pub fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            Rc::ptr_eq(x, y) || {
                let (x, y) = (x.borrow(), y.borrow());
                x.len() == y.len()
                    && nested(|| x.iter().zip(y.iter()).all(|(a, b)| equals(a, b))).unwrap_or(false)
            }
        }
        (Value::Map(x), Value::Map(y)) => {
            Rc::ptr_eq(x, y) || {
                let (x, y) = (x.borrow(), y.borrow());
                x.len() == y.len()
                    && nested(|| {
                        x.iter()
                            .all(|(k, v)| y.get(k).is_some_and(|w| equals(v, w)))
                    })
                    .unwrap_or(false)
            }
        }
        (Value::Range(x), Value::Range(y)) => x == y,
        (Value::Func(x), Value::Func(y)) => Rc::ptr_eq(x, y),
        (Value::Builtin(x), Value::Builtin(y)) => std::ptr::eq(*x, *y),
        (Value::Object(x), Value::Object(y)) => std::ptr::addr_eq(Rc::as_ptr(x), Rc::as_ptr(y)),
        (Value::Error(x), Value::Error(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::format::repr(self))
    }
}

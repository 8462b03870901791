//! Values crossing process boundaries (SPEC §11): every sendable value becomes a
//! compact bincode message and comes back as a deep copy.
//!
//! Functions travel as their AST plus exactly what they reach outside themselves
//! (the resolver's capture list, and the top-level variables they use), so a
//! closure defined after a pool worker started still runs there. A function that
//! refers to itself (recursion through a global) or is shared appears once, in the
//! message's function table. Handles travel as a description of their OS object
//! (see `Object::wire`) and are rebuilt by `decode_handle`. Messages holding
//! only plain values take a compact form of their own (see `plain`).

use super::error::{fail, Res};
use super::value::{Closure, ErrorVal, Frame, Key, RangeVal, Value};
use super::{builtins, Interp};
use crate::runtime::error::RtError;
use crate::syntax::ast::FnDef;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::rc::Rc;

/// Lists and maps nested deeper than this are refused (a cycle, most likely).
const MAX_NESTING: usize = 2_000;

#[derive(Serialize, Deserialize)]
enum W {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<W>),
    Map(Vec<(WKey, W)>),
    Range(i64, i64, i64),
    Func(u32),
    Builtin(u32),
    Error(String, String),
    Handle(String, Vec<u8>),
}

#[derive(Serialize, Deserialize)]
enum WKey {
    Str(String),
    Int(i64),
    Bool(bool),
}

#[derive(Serialize, Deserialize)]
struct WFunc {
    def: Rc<FnDef>,
    /// Sizes of the enclosing frames, innermost first.
    frames: Vec<u32>,
    /// (depth >= 1, slot, value) for each captured variable.
    captures: Vec<(u16, u32, W)>,
}

#[derive(Serialize, Deserialize)]
struct Message {
    root: W,
    funcs: Vec<WFunc>,
    globals: Vec<(u32, W)>,
}

struct Encoder<'a> {
    interp: &'a Interp,
    funcs: Vec<Option<WFunc>>,
    func_ids: HashMap<*const Closure, u32>,
    globals: Vec<(u32, W)>,
    globals_seen: Vec<u32>,
}

impl Encoder<'_> {
    fn value(&mut self, v: &Value, depth: usize) -> Res<W> {
        if depth > MAX_NESTING {
            return fail(
                "ValueError",
                "cannot send a value nested this deeply (does it contain itself?)",
            );
        }
        Ok(match v {
            Value::Nil | Value::Undefined => W::Nil,
            Value::Bool(b) => W::Bool(*b),
            Value::Int(i) => W::Int(*i),
            Value::Float(f) => W::Float(*f),
            Value::Str(s) => W::Str(s.to_string()),
            Value::List(l) => W::List(
                l.borrow()
                    .iter()
                    .map(|x| self.value(x, depth + 1))
                    .collect::<Res<_>>()?,
            ),
            Value::Map(m) => W::Map(
                m.borrow()
                    .iter()
                    .map(|(k, x)| {
                        let k = match k {
                            Key::Str(s) => WKey::Str(s.to_string()),
                            Key::Int(i) => WKey::Int(*i),
                            Key::Bool(b) => WKey::Bool(*b),
                        };
                        Ok((k, self.value(x, depth + 1)?))
                    })
                    .collect::<Res<_>>()?,
            ),
            Value::Range(r) => W::Range(r.start, r.stop, r.step),
            Value::Builtin(b) => {
                let i = builtins::table()
                    .iter()
                    .position(|x| std::ptr::eq(*x, *b))
                    .unwrap_or(0);
                W::Builtin(i as u32)
            }
            Value::Error(e) => W::Error(e.err.kind.to_string(), e.err.message.clone()),
            Value::Func(c) => W::Func(self.func(c, depth)?),
            Value::Object(o) => match o.wire() {
                Some(bytes) => W::Handle(o.type_name().to_string(), bytes),
                None => {
                    return fail(
                        "TypeError",
                        format!("a {} cannot be sent to another process", o.type_name()),
                    )
                }
            },
        })
    }

    fn func(&mut self, c: &Rc<Closure>, depth: usize) -> Res<u32> {
        let key = Rc::as_ptr(c);
        if let Some(&id) = self.func_ids.get(&key) {
            return Ok(id);
        }
        let id = self.funcs.len() as u32;
        self.func_ids.insert(key, id);
        self.funcs.push(None);
        let mut frames = Vec::new();
        let mut f = c.env.clone();
        while let Some(fr) = f {
            frames.push(fr.slots.borrow().len() as u32);
            f = fr.parent.clone();
        }
        let mut captures = Vec::new();
        for &(d, slot) in &c.def.captures {
            let Some(env) = &c.env else { continue };
            let v = env
                .up(d - 1)
                .slots
                .borrow()
                .get(slot as usize)
                .cloned()
                .unwrap_or_default();
            captures.push((d, slot, self.value(&v, depth + 1)?));
        }
        // Names resolved dynamically (declared at top level after the function)
        // travel like globals, under the slot they have now.
        let dynamic = c
            .def
            .dynamic
            .iter()
            .filter_map(|n| self.interp.resolver.global_slot(n));
        let slots: Vec<u32> = c.def.globals.iter().copied().chain(dynamic).collect();
        for g in slots {
            if self.globals_seen.contains(&g) {
                continue;
            }
            self.globals_seen.push(g);
            let v = self
                .interp
                .globals
                .get(g as usize)
                .cloned()
                .unwrap_or(Value::Undefined);
            if matches!(v, Value::Undefined) {
                continue;
            }
            // Handles and other unsendable globals a function merely could reach
            // are left behind; the receiver keeps its own.
            if let Ok(w) = self.value(&v, depth + 1) {
                self.globals.push((g, w));
            }
        }
        self.funcs[id as usize] = Some(WFunc {
            def: c.def.clone(),
            frames,
            captures,
        });
        Ok(id)
    }
}

/// Serializes a value for another process.
pub fn encode(interp: &Interp, v: &Value) -> Res<Vec<u8>> {
    if let Some(bytes) = plain::encode(v) {
        return Ok(bytes);
    }
    let mut enc = Encoder {
        interp,
        funcs: Vec::new(),
        func_ids: HashMap::new(),
        globals: Vec::new(),
        globals_seen: Vec::new(),
    };
    let root = enc.value(v, 0)?;
    let msg = Message {
        root,
        funcs: enc
            .funcs
            .into_iter()
            .map(|f| f.expect("function encoded"))
            .collect(),
        globals: enc.globals,
    };
    bincode::serialize(&msg).or_else(|e| fail("ValueError", format!("cannot serialize value: {e}")))
}

/// Serializes a value and hands the bytes to `f`. Plain values are written
/// into a buffer kept for the next call, so a small item costs no allocation.
pub fn encode_with<R>(interp: &Interp, v: &Value, f: impl FnOnce(&[u8]) -> R) -> Res<R> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut f = Some(f);
    let done = SCRATCH.with(|s| {
        // Busy (an `f` that sends again): take the allocating path.
        let mut buf = s.try_borrow_mut().ok()?;
        buf.clear();
        if !plain::encode_into(&mut buf, v) {
            return None;
        }
        let r = f.take().map(|f| f(&buf));
        if buf.capacity() > 64 * 1024 {
            *buf = Vec::new();
        }
        r
    });
    match (done, f) {
        (Some(r), _) => Ok(r),
        (None, Some(f)) => Ok(f(&encode(interp, v)?)),
        (None, None) => unreachable!("`f` runs at most once"),
    }
}

struct Decoder {
    funcs: Vec<Value>,
}

impl Decoder {
    fn value(&self, interp: &mut Interp, w: W) -> Res<Value> {
        Ok(match w {
            W::Nil => Value::Nil,
            W::Bool(b) => Value::Bool(b),
            W::Int(i) => Value::Int(i),
            W::Float(f) => Value::Float(f),
            W::Str(s) => Value::Str(s.into()),
            W::List(xs) => Value::list(
                xs.into_iter()
                    .map(|x| self.value(interp, x))
                    .collect::<Res<_>>()?,
            ),
            W::Map(kvs) => {
                let mut m = IndexMap::with_capacity(kvs.len());
                for (k, x) in kvs {
                    let k = match k {
                        WKey::Str(s) => Key::Str(s.into()),
                        WKey::Int(i) => Key::Int(i),
                        WKey::Bool(b) => Key::Bool(b),
                    };
                    m.insert(k, self.value(interp, x)?);
                }
                Value::map(m)
            }
            W::Range(start, stop, step) => Value::Range(Rc::new(RangeVal { start, stop, step })),
            W::Func(i) => match self.funcs.get(i as usize) {
                Some(f) => f.clone(),
                None => return fail("ValueError", "corrupt message: bad function index"),
            },
            W::Builtin(i) => match builtins::table().get(i as usize) {
                Some(b) => Value::Builtin(b),
                None => return fail("ValueError", "corrupt message: bad builtin index"),
            },
            W::Error(kind, message) => Value::Error(Rc::new(ErrorVal {
                err: RtError::new(&kind, message),
            })),
            W::Handle(ty, bytes) => decode_handle(interp, &ty, &bytes)?,
        })
    }
}

/// Deserializes a message made by `encode`. Top-level variables the message's
/// functions need are filled in where this process has none yet (never
/// overwritten: a process keeps its own state).
pub fn decode(interp: &mut Interp, bytes: &[u8]) -> Res<Value> {
    if let Some((&plain::PLAIN, rest)) = bytes.split_first() {
        return match plain::decode(rest) {
            Some(v) => Ok(v),
            None => fail("ValueError", "cannot deserialize value: corrupt message"),
        };
    }
    let msg: Message = match bincode::deserialize(bytes) {
        Ok(m) => m,
        Err(e) => return fail("ValueError", format!("cannot deserialize value: {e}")),
    };
    // Functions first, with empty frames, so captures may refer to any of them.
    let mut dec = Decoder {
        funcs: Vec::with_capacity(msg.funcs.len()),
    };
    let mut frames_of = Vec::with_capacity(msg.funcs.len());
    for wf in &msg.funcs {
        let mut env: Option<Rc<Frame>> = None;
        let mut chain = Vec::new();
        for &size in wf.frames.iter().rev() {
            let f = Frame::new(size as usize, env.take());
            chain.push(f.clone());
            env = Some(f);
        }
        chain.reverse(); // innermost first
        dec.funcs.push(Value::Func(Rc::new(Closure {
            def: wf.def.clone(),
            env,
        })));
        frames_of.push(chain);
    }
    for (wf, chain) in msg.funcs.into_iter().zip(frames_of) {
        for (d, slot, w) in wf.captures {
            let v = dec.value(interp, w)?;
            if let Some(f) = chain.get(d as usize - 1) {
                if let Some(s) = f.slots.borrow_mut().get_mut(slot as usize) {
                    *s = v;
                }
            }
        }
    }
    for (g, w) in msg.globals {
        let v = dec.value(interp, w)?;
        let g = g as usize;
        if interp.globals.len() <= g {
            interp.globals.resize(g + 1, Value::Undefined);
        }
        if matches!(interp.globals[g], Value::Undefined) {
            interp.globals[g] = v;
        }
    }
    dec.value(interp, msg.root)
}

/// Rebuilds a handle from its description. Each sendable handle type registers
/// its decoder here.
pub fn decode_handle(_interp: &mut Interp, ty: &str, bytes: &[u8]) -> Res<Value> {
    builtins::ipc::decode_handle(ty, bytes)
}

/// The compact form of plain values (nil, bools, numbers, strings, ranges, and
/// lists and maps of them): most messages are these, and a queue or pipe item
/// is often a single int or string, so they skip bincode and the function and
/// global tables. A message in this form starts with `PLAIN`, which no bincode
/// `Message` does (its first byte is the root's variant index, below 16).
/// The pool's task and result frames use the same codec (`write_value`,
/// `Reader`). Ints are zigzag varints: small ones take a byte or two.
pub mod plain {
    use super::MAX_NESTING;
    use crate::runtime::value::{Key, RangeVal, Value};
    use indexmap::IndexMap;
    use std::rc::Rc;

    pub(super) const PLAIN: u8 = 0xF1;

    const NIL: u8 = 0;
    const FALSE: u8 = 1;
    const TRUE: u8 = 2;
    const INT: u8 = 3;
    const FLOAT: u8 = 4;
    const STR: u8 = 5;
    const LIST: u8 = 6;
    const MAP: u8 = 7;
    const RANGE: u8 = 8;

    /// The value in the compact form, or None if it holds anything else (a
    /// function, a handle, an error) or nests too deeply.
    pub(super) fn encode(v: &Value) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(16);
        encode_into(&mut out, v).then_some(out)
    }

    /// Appends the compact form of `v` to `out` (false: `v` is not plain, and
    /// `out` holds a partial message).
    pub(super) fn encode_into(out: &mut Vec<u8>, v: &Value) -> bool {
        out.push(PLAIN);
        value(out, v, 0)
    }

    /// Appends a length as a varint.
    pub fn write_len(out: &mut Vec<u8>, mut n: usize) {
        while n >= 0x80 {
            out.push(n as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn len(out: &mut Vec<u8>, n: usize) {
        write_len(out, n)
    }

    fn int(out: &mut Vec<u8>, i: i64) {
        out.push(INT);
        let z = ((i << 1) ^ (i >> 63)) as u64;
        len(out, z as usize);
    }

    /// Appends the compact form of `v` (without the `PLAIN` marker); false if
    /// `v` is not plain, with `out` partly written.
    pub fn write_value(out: &mut Vec<u8>, v: &Value) -> bool {
        value(out, v, 0)
    }

    fn str(out: &mut Vec<u8>, s: &str) {
        out.push(STR);
        len(out, s.len());
        out.extend_from_slice(s.as_bytes());
    }

    fn value(out: &mut Vec<u8>, v: &Value, depth: usize) -> bool {
        match v {
            Value::Nil | Value::Undefined => out.push(NIL),
            Value::Bool(false) => out.push(FALSE),
            Value::Bool(true) => out.push(TRUE),
            Value::Int(i) => int(out, *i),
            Value::Float(f) => {
                out.push(FLOAT);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::Str(s) => str(out, s),
            Value::Range(r) => {
                out.push(RANGE);
                for x in [r.start, r.stop, r.step] {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            Value::List(l) => {
                if depth >= MAX_NESTING {
                    return false;
                }
                let l = l.borrow();
                out.push(LIST);
                len(out, l.len());
                for x in l.iter() {
                    if !value(out, x, depth + 1) {
                        return false;
                    }
                }
            }
            Value::Map(m) => {
                if depth >= MAX_NESTING {
                    return false;
                }
                let m = m.borrow();
                out.push(MAP);
                len(out, m.len());
                for (k, x) in m.iter() {
                    match k {
                        Key::Str(s) => str(out, s),
                        Key::Int(i) => int(out, *i),
                        Key::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
                    }
                    if !value(out, x, depth + 1) {
                        return false;
                    }
                }
            }
            Value::Func(_) | Value::Builtin(_) | Value::Object(_) | Value::Error(_) => {
                return false
            }
        }
        true
    }

    /// Reads a message in the compact form (after its `PLAIN` byte); None if it
    /// is malformed.
    pub(super) fn decode(b: &[u8]) -> Option<Value> {
        let mut r = Reader(b);
        let v = r.value(0)?;
        r.0.is_empty().then_some(v)
    }

    /// Reads values in the compact form, one after another.
    pub struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        pub fn new(b: &'a [u8]) -> Reader<'a> {
            Reader(b)
        }

        /// True when everything has been read.
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        fn zigzag(&mut self) -> Option<i64> {
            let z = self.len()? as u64;
            Some(((z >> 1) as i64) ^ -((z & 1) as i64))
        }

        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if self.0.len() < n {
                return None;
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Some(a)
        }

        fn byte(&mut self) -> Option<u8> {
            Some(self.take(1)?[0])
        }

        fn i64(&mut self) -> Option<i64> {
            Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
        }

        /// A varint length.
        pub fn len(&mut self) -> Option<usize> {
            let mut n = 0usize;
            for shift in (0..64).step_by(7) {
                let b = self.byte()?;
                n |= ((b & 0x7f) as usize).checked_shl(shift)?;
                if b < 0x80 {
                    return Some(n);
                }
            }
            None
        }

        fn str(&mut self) -> Option<Rc<str>> {
            let n = self.len()?;
            std::str::from_utf8(self.take(n)?).ok().map(Rc::from)
        }

        /// The next value; None if the input is malformed.
        pub fn value(&mut self, depth: usize) -> Option<Value> {
            Some(match self.byte()? {
                NIL => Value::Nil,
                FALSE => Value::Bool(false),
                TRUE => Value::Bool(true),
                INT => Value::Int(self.zigzag()?),
                FLOAT => Value::Float(f64::from_bits(self.i64()? as u64)),
                STR => Value::Str(self.str()?),
                RANGE => {
                    let (start, stop, step) = (self.i64()?, self.i64()?, self.i64()?);
                    if step == 0 {
                        return None;
                    }
                    Value::Range(Rc::new(RangeVal { start, stop, step }))
                }
                LIST if depth < MAX_NESTING => {
                    let n = self.len()?;
                    // Every item takes at least a byte: a corrupt length cannot
                    // make us reserve more than the message holds.
                    let mut xs = Vec::with_capacity(n.min(self.0.len()));
                    for _ in 0..n {
                        xs.push(self.value(depth + 1)?);
                    }
                    Value::list(xs)
                }
                MAP if depth < MAX_NESTING => {
                    let n = self.len()?;
                    let mut m = IndexMap::with_capacity(n.min(self.0.len() / 2));
                    for _ in 0..n {
                        let k = match self.byte()? {
                            STR => Key::Str(self.str()?),
                            INT => Key::Int(self.zigzag()?),
                            FALSE => Key::Bool(false),
                            TRUE => Key::Bool(true),
                            _ => return None,
                        };
                        m.insert(k, self.value(depth + 1)?);
                    }
                    Value::map(m)
                }
                _ => return None,
            })
        }
    }
}

/// Decodes a message that holds only plain values (no functions or handles),
/// without an interpreter; None for any other message.
pub fn decode_plain(bytes: &[u8]) -> Option<Value> {
    match bytes.split_first() {
        Some((&plain::PLAIN, rest)) => plain::decode(rest),
        _ => None,
    }
}

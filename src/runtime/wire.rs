//! Values crossing process boundaries (SPEC §11): every sendable value becomes a
//! compact bincode message and comes back as a deep copy.
//!
//! Functions travel as their AST plus exactly what they reach outside themselves
//! (the resolver's capture list, and the top-level variables they use), so a
//! closure defined after a pool worker started still runs there. A function that
//! refers to itself (recursion through a global) or is shared appears once, in the
//! message's function table. Handles travel as a description of their OS object
//! (see `Object::wire`) and are rebuilt by `decode_handle`.

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
pub fn decode_handle(_interp: &mut Interp, ty: &str, _bytes: &[u8]) -> Res<Value> {
    fail(
        "TypeError",
        format!("cannot receive a {ty} in this process"),
    )
}

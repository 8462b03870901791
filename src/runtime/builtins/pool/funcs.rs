//! Functions are sent to each worker once, not with every task: the parent
//! keeps the encoded function under a small id and a worker that already has
//! that id gets only the id. `map` over 200,000 items sends the function's AST
//! once per worker.
//!
//! A cached encoding is reused while it still says the same thing: a function
//! that captures nothing (and whose top-level names have not gained a value
//! since) encodes the same every time; a closure's captures are encoded again
//! on each submission and compared, since they may have changed.

use crate::runtime::error::Res;
use crate::runtime::value::Value;
use crate::runtime::{wire, Interp};
use std::rc::Rc;

/// How many functions the parent (and so each worker) keeps at most.
const MAX_ENTRIES: usize = 32;

/// An encoded function and the id workers know it by. Jobs hold it, so a
/// function evicted from the cache can still be sent for a job queued earlier.
pub struct FuncData {
    pub id: u32,
    pub bytes: Vec<u8>,
}

struct Entry {
    /// The function's definition (or builtin), by address.
    key: usize,
    /// Keeps the definition alive, so the address is not reused.
    _keep: Value,
    data: Rc<FuncData>,
    /// Top-level names the function uses that had no value when it was encoded.
    unset_globals: Vec<u32>,
    used: u64,
}

#[derive(Default)]
pub struct FuncCache {
    entries: Vec<Entry>,
    next_id: u32,
    clock: u64,
}

fn unset(interp: &Interp, g: u32) -> bool {
    interp
        .globals
        .get(g as usize)
        .is_none_or(|v| matches!(v, Value::Undefined))
}

impl FuncCache {
    /// The encoded form of `f` (which must be callable), and the ids that left
    /// the cache (workers should forget them).
    pub fn resolve(&mut self, interp: &Interp, f: &Value) -> Res<(Rc<FuncData>, Vec<u32>)> {
        self.clock += 1;
        let (key, captures, globals): (usize, bool, &[u32]) = match f {
            Value::Func(c) => (
                Rc::as_ptr(&c.def) as *const () as usize,
                !c.def.captures.is_empty() && c.env.is_some(),
                &c.def.globals,
            ),
            Value::Builtin(b) => (*b as *const _ as *const () as usize, false, &[]),
            _ => (0, true, &[]),
        };
        let fresh = if captures {
            Some(wire::encode(interp, f)?)
        } else {
            None
        };
        let mut evicted = Vec::new();
        if let Some(i) = self.entries.iter().position(|e| e.key == key && key != 0) {
            let e = &mut self.entries[i];
            let same = match &fresh {
                Some(b) => *b == e.data.bytes,
                None => e.unset_globals.iter().all(|&g| unset(interp, g)),
            };
            if same {
                e.used = self.clock;
                return Ok((e.data.clone(), evicted));
            }
            evicted.push(self.entries.remove(i).data.id);
        }
        let bytes = match fresh {
            Some(b) => b,
            None => wire::encode(interp, f)?,
        };
        let data = Rc::new(FuncData {
            id: self.next_id,
            bytes,
        });
        self.next_id = self.next_id.wrapping_add(1);
        self.entries.push(Entry {
            key,
            _keep: f.clone(),
            data: data.clone(),
            unset_globals: globals
                .iter()
                .copied()
                .filter(|&g| unset(interp, g))
                .collect(),
            used: self.clock,
        });
        if self.entries.len() > MAX_ENTRIES {
            if let Some((i, _)) = self.entries.iter().enumerate().min_by_key(|(_, e)| e.used) {
                evicted.push(self.entries.remove(i).data.id);
            }
        }
        Ok((data, evicted))
    }
}

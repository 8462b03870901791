//! The payload of task and result frames: a list of items, in the cheapest
//! form that can carry them.
//!
//! - `FMT_PLAIN`: nil, bools, ints, floats, strings, and lists and maps of
//!   them, written directly (tag bytes, varints) and read straight back into
//!   values. This is what almost every task sends, and it is several times
//!   cheaper than the general format.
//! - `FMT_WIRE`: anything else (functions, handles, errors) goes through
//!   `runtime::wire`, the general format for values crossing processes.
//! - `FMT_RANGE`: `[i64 start][i64 step][u64 count]`, a slice of a `range`,
//!   so `map(f, range(n))` never builds or sends the n inputs.

use crate::runtime::error::{fail, Res};
use crate::runtime::value::{Key, Value};
use crate::runtime::{wire, Interp};
use indexmap::IndexMap;

pub const FMT_PLAIN: u8 = 0;
pub const FMT_WIRE: u8 = 1;
pub const FMT_RANGE: u8 = 2;

const NIL: u8 = 0;
const TRUE: u8 = 1;
const FALSE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STR: u8 = 5;
const LIST: u8 = 6;
const MAP: u8 = 7;

/// Nesting the plain format takes; deeper values go through `wire`.
const MAX_DEPTH: usize = 64;

/// Appends the payload for `items` to `out`: plain when it can be, else wire.
pub fn encode(interp: &Interp, items: &[Value], out: &mut Vec<u8>) -> Res<()> {
    let start = out.len();
    out.push(FMT_PLAIN);
    put_len(out, items.len());
    if items.iter().all(|v| plain(v, out, 0)) {
        return Ok(());
    }
    out.truncate(start);
    out.push(FMT_WIRE);
    let list = Value::list(items.to_vec());
    out.extend_from_slice(&wire::encode(interp, &list)?);
    Ok(())
}

/// Appends a range payload: `count` ints from `start` by `step`.
pub fn encode_range(start: i64, step: i64, count: usize, out: &mut Vec<u8>) {
    out.push(FMT_RANGE);
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&step.to_le_bytes());
    out.extend_from_slice(&(count as u64).to_le_bytes());
}

/// Reads a payload made by `encode` / `encode_range` back into its items.
pub fn decode(interp: &mut Interp, bytes: &[u8]) -> Res<Vec<Value>> {
    fn corrupt<T>() -> Res<T> {
        fail("ValueError", "corrupt pool message")
    }
    match bytes.first() {
        Some(&FMT_PLAIN) => {
            let mut r = Reader { b: bytes, pos: 1 };
            let Some(n) = r.len() else { return corrupt() };
            let mut out = Vec::with_capacity(n.min(bytes.len()));
            for _ in 0..n {
                match r.value(0) {
                    Some(v) => out.push(v),
                    None => return corrupt(),
                }
            }
            Ok(out)
        }
        Some(&FMT_WIRE) => match wire::decode(interp, &bytes[1..])? {
            Value::List(l) => Ok(l.take()),
            _ => corrupt(),
        },
        Some(&FMT_RANGE) if bytes.len() >= 25 => {
            let word = |i: usize| {
                let mut a = [0u8; 8];
                a.copy_from_slice(&bytes[1 + 8 * i..9 + 8 * i]);
                a
            };
            let (start, step) = (i64::from_le_bytes(word(0)), i64::from_le_bytes(word(1)));
            let count = u64::from_le_bytes(word(2)) as usize;
            let mut out = Vec::with_capacity(count.min(1 << 20));
            let mut x = start;
            for i in 0..count {
                out.push(Value::Int(x));
                if i + 1 < count {
                    x = match x.checked_add(step) {
                        Some(y) => y,
                        None => return corrupt(),
                    };
                }
            }
            Ok(out)
        }
        _ => corrupt(),
    }
}

/// `decode`, writing the items into `out`, which must have room for exactly
/// as many.
pub fn decode_into(interp: &mut Interp, bytes: &[u8], out: &mut [Value]) -> Res<()> {
    if bytes.first() == Some(&FMT_PLAIN) {
        let mut r = Reader { b: bytes, pos: 1 };
        if r.len() != Some(out.len()) {
            return fail("ValueError", "corrupt pool message");
        }
        for slot in out.iter_mut() {
            match r.value(0) {
                Some(v) => *slot = v,
                None => return fail("ValueError", "corrupt pool message"),
            }
        }
        return Ok(());
    }
    let items = decode(interp, bytes)?;
    if items.len() != out.len() {
        return fail("ValueError", "corrupt pool message");
    }
    for (slot, v) in out.iter_mut().zip(items) {
        *slot = v;
    }
    Ok(())
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_int(out: &mut Vec<u8>, i: i64) {
    put_len(out, ((i << 1) ^ (i >> 63)) as u64 as usize);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.push(STR);
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Writes `v` if it is plain; false (with `out` partly written) if not.
fn plain(v: &Value, out: &mut Vec<u8>, depth: usize) -> bool {
    match v {
        Value::Nil => out.push(NIL),
        Value::Bool(true) => out.push(TRUE),
        Value::Bool(false) => out.push(FALSE),
        Value::Int(i) => {
            out.push(INT);
            put_int(out, *i);
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Str(s) => put_str(out, s),
        Value::List(l) if depth < MAX_DEPTH => {
            let l = l.borrow();
            out.push(LIST);
            put_len(out, l.len());
            return l.iter().all(|x| plain(x, out, depth + 1));
        }
        Value::Map(m) if depth < MAX_DEPTH => {
            let m = m.borrow();
            out.push(MAP);
            put_len(out, m.len());
            for (k, x) in m.iter() {
                match k {
                    Key::Str(s) => put_str(out, s),
                    Key::Int(i) => {
                        out.push(INT);
                        put_int(out, *i);
                    }
                    Key::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
                }
                if !plain(x, out, depth + 1) {
                    return false;
                }
            }
        }
        _ => return false,
    }
    true
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let x = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(x)
    }

    fn len(&mut self) -> Option<usize> {
        let mut n: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift > 63 {
                return None;
            }
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).ok();
            }
            shift += 7;
        }
    }

    fn int(&mut self) -> Option<i64> {
        let z = self.len()? as u64;
        Some(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        Some(match self.byte()? {
            NIL => Value::Nil,
            TRUE => Value::Bool(true),
            FALSE => Value::Bool(false),
            INT => Value::Int(self.int()?),
            FLOAT => {
                let mut a = [0u8; 8];
                a.copy_from_slice(self.bytes(8)?);
                Value::Float(f64::from_le_bytes(a))
            }
            STR => {
                let n = self.len()?;
                Value::Str(std::str::from_utf8(self.bytes(n)?).ok()?.into())
            }
            LIST => {
                let n = self.len()?;
                // Every item takes at least a byte: a corrupt length cannot
                // make us reserve more than the message could hold.
                let mut v = Vec::with_capacity(n.min(self.b.len() - self.pos));
                for _ in 0..n {
                    v.push(self.value(depth + 1)?);
                }
                Value::list(v)
            }
            MAP => {
                let n = self.len()?;
                let mut m = IndexMap::with_capacity(n.min(self.b.len() - self.pos));
                for _ in 0..n {
                    let k = match self.value(depth + 1)? {
                        Value::Str(s) => Key::Str(s),
                        Value::Int(i) => Key::Int(i),
                        Value::Bool(b) => Key::Bool(b),
                        _ => return None,
                    };
                    let x = self.value(depth + 1)?;
                    m.insert(k, x);
                }
                Value::map(m)
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_round_trip() {
        let mut interp = Interp::new("t", Vec::new());
        let mut m = IndexMap::new();
        m.insert(Key::Str("k".into()), Value::Float(1.5));
        m.insert(
            Key::Int(-3),
            Value::list(vec![Value::Nil, Value::Bool(true)]),
        );
        let items = vec![
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Int(-1),
            Value::str("héllo"),
            Value::map(m),
        ];
        let mut out = Vec::new();
        encode(&interp, &items, &mut out).unwrap_or_else(|_| panic!("encode"));
        assert_eq!(out[0], FMT_PLAIN);
        let back = decode(&mut interp, &out).unwrap_or_else(|_| panic!("decode"));
        assert_eq!(format!("{back:?}"), format!("{items:?}"));
        // Truncated input is an error, never a panic.
        for cut in 0..out.len() {
            let _ = decode(&mut interp, &out[..cut]);
        }
    }

    #[test]
    fn range_payload() {
        let mut interp = Interp::new("t", Vec::new());
        let mut out = Vec::new();
        encode_range(10, -3, 4, &mut out);
        let back = decode(&mut interp, &out).unwrap_or_else(|_| panic!("decode"));
        assert_eq!(format!("{back:?}"), "[10, 7, 4, 1]");
    }
}

//! The payload of task and result frames: a list of items, in the cheapest
//! form that can carry them.
//!
//! - `FMT_PLAIN`: nil, bools, ints, floats, strings, and lists and maps of
//!   them, in `wire::plain`'s compact form (tag bytes, varints), read straight
//!   back into values. This is what almost every task sends, and it is several times
//!   cheaper than the general format.
//! - `FMT_WIRE`: anything else (functions, handles, errors) goes through
//!   `runtime::wire`, the general format for values crossing processes.
//! - `FMT_RANGE`: `[i64 start][i64 step][u64 count]`, a slice of a `range`,
//!   so `map(f, range(n))` never builds or sends the n inputs.

use crate::runtime::error::{fail, Res};
use crate::runtime::value::Value;
use crate::runtime::wire::{self, plain};
use crate::runtime::Interp;

pub const FMT_PLAIN: u8 = 0;
pub const FMT_WIRE: u8 = 1;
pub const FMT_RANGE: u8 = 2;

/// Appends the payload for `items` to `out`: plain when it can be, else wire.
pub fn encode(interp: &Interp, items: &[Value], out: &mut Vec<u8>) -> Res<()> {
    let start = out.len();
    out.push(FMT_PLAIN);
    plain::write_len(out, items.len());
    if items.iter().all(|v| plain::write_value(out, v)) {
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
            let mut r = plain::Reader::new(&bytes[1..]);
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
        let mut r = plain::Reader::new(&bytes[1..]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::value::Key;
    use indexmap::IndexMap;

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

//! Core builtins: printing and input, conversions, collections, time, randomness,
//! the environment and files, errors and assertions.

use crate::runtime::error::{fail, Res, RtError, Unwind};
use crate::runtime::format::{display, display_into};
use crate::runtime::ops::compare;
use crate::runtime::value::{Args, Builtin, ErrorVal, Key, Object, RangeVal, Value};
use crate::runtime::Interp;
use std::any::Any;
use std::cmp::Ordering;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "print",
        func: print,
    },
    Builtin {
        name: "eprint",
        func: eprint,
    },
    Builtin {
        name: "input",
        func: input,
    },
    Builtin {
        name: "lines",
        func: lines,
    },
    Builtin {
        name: "len",
        func: len,
    },
    Builtin {
        name: "str",
        func: str_,
    },
    Builtin {
        name: "int",
        func: int,
    },
    Builtin {
        name: "float",
        func: float,
    },
    Builtin {
        name: "bool",
        func: bool_,
    },
    Builtin {
        name: "type",
        func: type_,
    },
    Builtin {
        name: "range",
        func: range,
    },
    Builtin {
        name: "list",
        func: list,
    },
    Builtin {
        name: "keys",
        func: keys,
    },
    Builtin {
        name: "values",
        func: values,
    },
    Builtin {
        name: "items",
        func: items,
    },
    Builtin {
        name: "enumerate",
        func: enumerate,
    },
    Builtin {
        name: "zip",
        func: zip,
    },
    Builtin {
        name: "sorted",
        func: sorted,
    },
    Builtin {
        name: "sum",
        func: sum,
    },
    Builtin {
        name: "min",
        func: min,
    },
    Builtin {
        name: "max",
        func: max,
    },
    Builtin {
        name: "abs",
        func: abs,
    },
    Builtin {
        name: "round",
        func: round,
    },
    Builtin {
        name: "time",
        func: time,
    },
    Builtin {
        name: "monotonic",
        func: monotonic,
    },
    Builtin {
        name: "sleep",
        func: sleep,
    },
    Builtin {
        name: "cpu_count",
        func: cpu_count,
    },
    Builtin {
        name: "random",
        func: random,
    },
    Builtin {
        name: "randint",
        func: randint,
    },
    Builtin {
        name: "env",
        func: env,
    },
    Builtin {
        name: "setenv",
        func: setenv,
    },
    Builtin {
        name: "cwd",
        func: cwd,
    },
    Builtin {
        name: "cd",
        func: cd,
    },
    Builtin {
        name: "read_file",
        func: read_file,
    },
    Builtin {
        name: "write_file",
        func: write_file,
    },
    Builtin {
        name: "append_file",
        func: append_file,
    },
    Builtin {
        name: "exists",
        func: exists,
    },
    Builtin {
        name: "error",
        func: error,
    },
    Builtin {
        name: "assert",
        func: assert,
    },
];

fn want_str(func: &str, what: &str, v: Option<Value>) -> Res<Rc<str>> {
    match v {
        Some(Value::Str(s)) => Ok(s),
        Some(other) => fail(
            "TypeError",
            format!("{func}(): {what} must be str, not {}", other.type_name()),
        ),
        None => fail("TypeError", format!("{func}() missing argument `{what}`")),
    }
}

fn opt_str(func: &str, what: &str, v: Option<Value>, default: &str) -> Res<Rc<str>> {
    match v {
        None => Ok(default.into()),
        v => want_str(func, what, v),
    }
}

fn print_to(interp: &mut Interp, args: Args, func: &str) -> Res<String> {
    let mut sep: Rc<str> = " ".into();
    let mut end: Rc<str> = "\n".into();
    for (name, v) in args.named {
        match &*name {
            "sep" => sep = want_str(func, "sep", Some(v))?,
            "end" => end = want_str(func, "end", Some(v))?,
            _ => {
                return fail(
                    "TypeError",
                    format!("{func}() has no parameter named `{name}`"),
                )
            }
        }
    }
    let _ = interp;
    let mut s = String::new();
    for (i, v) in args.pos.iter().enumerate() {
        if i > 0 {
            s.push_str(&sep);
        }
        display_into(&mut s, v);
    }
    s.push_str(&end);
    Ok(s)
}

fn print(interp: &mut Interp, args: Args) -> Res<Value> {
    let s = print_to(interp, args, "print")?;
    interp.out.write_str(&s)?;
    Ok(Value::Nil)
}

fn eprint(interp: &mut Interp, args: Args) -> Res<Value> {
    let s = print_to(interp, args, "eprint")?;
    // What was printed before comes out before this, even into one file (2>&1).
    interp.out.flush()?;
    use std::io::Write;
    let _ = std::io::stderr().write_all(s.as_bytes());
    Ok(Value::Nil)
}

/// Reads one line from stdin without its line ending; None at EOF. Signals
/// interrupt the wait promptly: their handlers run, then it reads on.
pub fn read_stdin_line(interp: &mut Interp) -> Res<Option<String>> {
    use crate::os::fdio::{LineError, StdinLines};
    thread_local! {
        static STDIN: std::cell::RefCell<StdinLines> = const { std::cell::RefCell::new(StdinLines::new()) };
    }
    loop {
        match STDIN.with(|s| s.borrow_mut().next_line()) {
            Ok(None) => return Ok(None),
            Ok(Some(bytes)) => {
                let mut line = String::from_utf8_lossy(&bytes).into_owned();
                if line.ends_with('\n') {
                    line.pop();
                    if line.ends_with('\r') {
                        line.pop();
                    }
                }
                return Ok(Some(line));
            }
            Err(LineError::Interrupted) => interp.handle_signals()?,
            Err(LineError::Io(e)) => return fail("IOError", format!("cannot read stdin: {e}")),
        }
    }
}

fn input(interp: &mut Interp, args: Args) -> Res<Value> {
    let [prompt] = args.bind("input", ["prompt"], 0)?;
    if let Some(p) = prompt {
        interp.out.write_str(&display(&p))?;
    }
    interp.out.flush()?;
    Ok(read_stdin_line(interp)?.map_or(Value::Nil, |l| Value::Str(l.into())))
}

/// `lines()`: stdin as a stream of lines, read as they arrive.
struct StdinLines;

impl Object for StdinLines {
    fn type_name(&self) -> &'static str {
        "stream"
    }
    fn repr(&self) -> String {
        "<stream stdin>".into()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn next_item(&self, interp: &mut Interp) -> Res<Option<Value>> {
        Ok(read_stdin_line(interp)?.map(|l| Value::Str(l.into())))
    }
}

fn lines(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("lines", [], 0)?;
    Ok(Value::object(StdinLines))
}

pub fn length(interp: &mut Interp, v: &Value) -> Res<usize> {
    Ok(match v {
        Value::Str(s) => s.chars().count(),
        Value::List(l) => l.borrow().len(),
        Value::Map(m) => m.borrow().len(),
        Value::Range(r) => r.len(),
        Value::Object(o) => o.clone().len(interp)?,
        other => return fail("TypeError", format!("{} has no len()", other.type_name())),
    })
}

fn len(interp: &mut Interp, args: Args) -> Res<Value> {
    let [v] = args.bind("len", ["value"], 1)?;
    let n = length(interp, &v.unwrap_or_default())?;
    // Only a range can be longer than the largest int.
    i64::try_from(n).map(Value::Int).or_else(|_| {
        fail(
            "ValueError",
            "len(): the range is longer than the largest int",
        )
    })
}

fn str_(_: &mut Interp, args: Args) -> Res<Value> {
    let [v] = args.bind("str", ["value"], 0)?;
    Ok(Value::Str(v.map_or(String::new(), |v| display(&v)).into()))
}

fn int(_: &mut Interp, args: Args) -> Res<Value> {
    let [v, base] = args.bind("int", ["value", "base"], 1)?;
    let base = match base {
        None => 10,
        Some(Value::Int(b)) if (2..=36).contains(&b) => b as u32,
        Some(b) => {
            return fail(
                "ValueError",
                format!(
                    "int(): base must be an int from 2 to 36, not {}",
                    display(&b)
                ),
            )
        }
    };
    match v.unwrap_or_default() {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Bool(b) => Ok(Value::Int(b as i64)),
        Value::Float(f) => {
            // 2^63 is exactly representable; anything from it up does not fit.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if !f.is_finite() || f.trunc() >= LIMIT || f.trunc() < -LIMIT {
                return fail(
                    "ValueError",
                    format!("int(): cannot convert {} to int", display(&Value::Float(f))),
                );
            }
            Ok(Value::Int(f.trunc() as i64))
        }
        Value::Str(s) => {
            let t: String = s.trim().chars().filter(|c| *c != '_').collect();
            let (neg, digits) = match t.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, t.strip_prefix('+').unwrap_or(&t)),
            };
            let digits = if base == 16 {
                digits.trim_start_matches("0x")
            } else {
                digits
            };
            // A sign inside the digits (`--1`, `-+1`) is not a number.
            let valid = !digits.is_empty() && !digits.starts_with(['+', '-']);
            // Parse with the sign, so that the most negative int is in range.
            let signed = if neg {
                format!("-{digits}")
            } else {
                digits.to_string()
            };
            match i64::from_str_radix(&signed, base) {
                Ok(n) if valid => Ok(Value::Int(n)),
                Err(e)
                    if valid
                        && matches!(
                            e.kind(),
                            std::num::IntErrorKind::PosOverflow
                                | std::num::IntErrorKind::NegOverflow
                        ) =>
                {
                    fail(
                        "ValueError",
                        format!("int(): {:?} does not fit in a 64-bit int", &*s),
                    )
                }
                _ => fail("ValueError", format!("int(): invalid literal {:?}", &*s)),
            }
        }
        other => fail(
            "TypeError",
            format!("int() cannot convert {}", other.type_name()),
        ),
    }
}

fn float(_: &mut Interp, args: Args) -> Res<Value> {
    let [v] = args.bind("float", ["value"], 1)?;
    match v.unwrap_or_default() {
        Value::Int(i) => Ok(Value::Float(i as f64)),
        Value::Float(f) => Ok(Value::Float(f)),
        Value::Bool(b) => Ok(Value::Float(b as i64 as f64)),
        Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "inf" | "+inf" | "infinity" => Ok(Value::Float(f64::INFINITY)),
            "-inf" | "-infinity" => Ok(Value::Float(f64::NEG_INFINITY)),
            "nan" => Ok(Value::Float(f64::NAN)),
            t => match t.parse::<f64>() {
                Ok(f) => Ok(Value::Float(f)),
                Err(_) => fail("ValueError", format!("float(): invalid literal {:?}", &*s)),
            },
        },
        other => fail(
            "TypeError",
            format!("float() cannot convert {}", other.type_name()),
        ),
    }
}

fn bool_(_: &mut Interp, args: Args) -> Res<Value> {
    let [v] = args.bind("bool", ["value"], 0)?;
    Ok(Value::Bool(v.is_some_and(|v| v.truthy())))
}

fn type_(_: &mut Interp, args: Args) -> Res<Value> {
    let [v] = args.bind("type", ["value"], 1)?;
    Ok(Value::str(v.unwrap_or_default().type_name()))
}

fn want_int(func: &str, v: Value) -> Res<i64> {
    match v {
        Value::Int(i) => Ok(i),
        Value::Bool(b) => Ok(b as i64),
        other => fail(
            "TypeError",
            format!("{func}() needs int arguments, not {}", other.type_name()),
        ),
    }
}

fn range(_: &mut Interp, args: Args) -> Res<Value> {
    let pos = args.positional("range")?;
    let ints: Vec<i64> = pos
        .into_iter()
        .map(|v| want_int("range", v))
        .collect::<Res<_>>()?;
    let (start, stop, step) = match ints[..] {
        [stop] => (0, stop, 1),
        [start, stop] => (start, stop, 1),
        [start, stop, step] => (start, stop, step),
        _ => {
            return fail(
                "TypeError",
                format!("range() takes 1 to 3 arguments, got {}", ints.len()),
            )
        }
    };
    if step == 0 {
        return fail("ValueError", "range() step must not be zero");
    }
    Ok(Value::Range(Rc::new(RangeVal { start, stop, step })))
}

/// The longest range made into a list (as for `[x] * n`): longer ones would
/// exhaust memory, which aborts rather than raising an error.
pub const MAX_RANGE_ITEMS: usize = 1 << 28;

/// Collects any iterable into a Vec (lists, ranges, maps' keys, strings' chars,
/// iterable handles).
pub fn collect(interp: &mut Interp, v: &Value) -> Res<Vec<Value>> {
    Ok(match v {
        Value::List(l) => l.borrow().clone(),
        Value::Range(r) => {
            if r.len() > MAX_RANGE_ITEMS {
                return fail(
                    "ValueError",
                    format!("range of {} items is too long to make into a list", r.len()),
                );
            }
            (0..r.len()).map(|i| Value::Int(r.get(i))).collect()
        }
        Value::Map(m) => m.borrow().keys().map(Key::to_value).collect(),
        Value::Str(s) => s
            .chars()
            .map(|c| Value::Str(c.to_string().into()))
            .collect(),
        Value::Object(o) => {
            let o = o.clone();
            let mut out = Vec::new();
            while let Some(x) = o.next_item(interp)? {
                out.push(x);
            }
            out
        }
        other => {
            return fail(
                "TypeError",
                format!("cannot iterate over {}", other.type_name()),
            )
        }
    })
}

fn list(interp: &mut Interp, args: Args) -> Res<Value> {
    let [v] = args.bind("list", ["iterable"], 0)?;
    match v {
        None => Ok(Value::list(Vec::new())),
        Some(v) => Ok(Value::list(collect(interp, &v)?)),
    }
}

fn want_map(func: &str, v: Option<Value>) -> Res<crate::runtime::value::Map> {
    match v {
        Some(Value::Map(m)) => Ok(m),
        Some(other) => fail(
            "TypeError",
            format!("{func}() needs a map, not {}", other.type_name()),
        ),
        None => fail("TypeError", format!("{func}() missing argument `map`")),
    }
}

pub fn map_keys(m: &crate::runtime::value::Map) -> Value {
    Value::list(m.borrow().keys().map(Key::to_value).collect())
}

pub fn map_values(m: &crate::runtime::value::Map) -> Value {
    Value::list(m.borrow().values().cloned().collect())
}

pub fn map_items(m: &crate::runtime::value::Map) -> Value {
    Value::list(
        m.borrow()
            .iter()
            .map(|(k, v)| Value::list(vec![k.to_value(), v.clone()]))
            .collect(),
    )
}

fn keys(_: &mut Interp, args: Args) -> Res<Value> {
    let [m] = args.bind("keys", ["map"], 1)?;
    Ok(map_keys(&want_map("keys", m)?))
}

fn values(_: &mut Interp, args: Args) -> Res<Value> {
    let [m] = args.bind("values", ["map"], 1)?;
    Ok(map_values(&want_map("values", m)?))
}

fn items(_: &mut Interp, args: Args) -> Res<Value> {
    let [m] = args.bind("items", ["map"], 1)?;
    Ok(map_items(&want_map("items", m)?))
}

fn enumerate(interp: &mut Interp, args: Args) -> Res<Value> {
    let [xs, start] = args.bind("enumerate", ["iterable", "start"], 1)?;
    let start = start.map_or(Ok(0), |s| want_int("enumerate", s))?;
    let xs = collect(interp, &xs.unwrap_or_default())?;
    let mut out = Vec::with_capacity(xs.len());
    for (i, x) in xs.into_iter().enumerate() {
        let Some(n) = start.checked_add(i as i64) else {
            return fail("ValueError", "integer overflow");
        };
        out.push(Value::list(vec![Value::Int(n), x]));
    }
    Ok(Value::list(out))
}

fn zip(interp: &mut Interp, args: Args) -> Res<Value> {
    let pos = args.positional("zip")?;
    let lists: Vec<Vec<Value>> = pos.iter().map(|v| collect(interp, v)).collect::<Res<_>>()?;
    let n = lists.iter().map(Vec::len).min().unwrap_or(0);
    Ok(Value::list(
        (0..n)
            .map(|i| Value::list(lists.iter().map(|l| l[i].clone()).collect()))
            .collect(),
    ))
}

/// Sorts with an optional key function; a comparison between types that do not
/// order is a TypeError.
pub fn sort_values(
    interp: &mut Interp,
    xs: &mut Vec<Value>,
    key: Option<Value>,
    reverse: bool,
) -> Res<()> {
    let keys: Option<Vec<Value>> = match key {
        None | Some(Value::Nil) => None,
        Some(f) => Some(
            xs.iter()
                .map(|x| interp.call(&f, Args::new([x.clone()])))
                .collect::<Res<_>>()?,
        ),
    };
    let mut bad: Option<(String, String)> = None;
    let mut cmp = |a: &Value, b: &Value| -> Ordering {
        compare(a, b).unwrap_or_else(|| {
            if bad.is_none() {
                bad = Some((a.type_name().into(), b.type_name().into()));
            }
            Ordering::Equal
        })
    };
    match keys {
        None => xs.sort_by(&mut cmp),
        Some(keys) => {
            let mut idx: Vec<usize> = (0..xs.len()).collect();
            idx.sort_by(|&i, &j| cmp(&keys[i], &keys[j]));
            let sorted: Vec<Value> = idx.into_iter().map(|i| xs[i].clone()).collect();
            *xs = sorted;
        }
    }
    if let Some((a, b)) = bad {
        return fail("TypeError", format!("cannot order {a} and {b}"));
    }
    if reverse {
        xs.reverse();
    }
    Ok(())
}

fn sorted(interp: &mut Interp, args: Args) -> Res<Value> {
    let [xs, key, reverse] = args.bind("sorted", ["iterable", "key", "reverse"], 1)?;
    let mut v = collect(interp, &xs.unwrap_or_default())?;
    sort_values(interp, &mut v, key, reverse.is_some_and(|r| r.truthy()))?;
    Ok(Value::list(v))
}

fn sum(interp: &mut Interp, args: Args) -> Res<Value> {
    let [xs, start] = args.bind("sum", ["iterable", "start"], 1)?;
    let mut acc = start.unwrap_or(Value::Int(0));
    for x in collect(interp, &xs.unwrap_or_default())? {
        acc = crate::runtime::ops::binary(interp, crate::syntax::ast::BinOp::Add, &acc, &x)?;
    }
    Ok(acc)
}

fn extreme(interp: &mut Interp, args: Args, func: &str, want: Ordering) -> Res<Value> {
    let mut key = None;
    let mut default = None;
    for (name, v) in args.named {
        match &*name {
            "key" => key = Some(v),
            "default" => default = Some(v),
            _ => {
                return fail(
                    "TypeError",
                    format!("{func}() has no parameter named `{name}`"),
                )
            }
        }
    }
    let xs = if args.pos.len() == 1 {
        collect(interp, &args.pos[0])?
    } else {
        args.pos.into_vec()
    };
    if xs.is_empty() {
        return match default {
            Some(d) => Ok(d),
            None => fail("ValueError", format!("{func}() of an empty sequence")),
        };
    }
    let mut best = xs[0].clone();
    let mut best_key = match &key {
        Some(f) => interp.call(f, Args::new([best.clone()]))?,
        None => best.clone(),
    };
    for x in xs.into_iter().skip(1) {
        let k = match &key {
            Some(f) => interp.call(f, Args::new([x.clone()]))?,
            None => x.clone(),
        };
        match compare(&k, &best_key) {
            Some(o) if o == want => {
                best = x;
                best_key = k;
            }
            Some(_) => {}
            None => {
                return fail(
                    "TypeError",
                    format!(
                        "cannot order {} and {}",
                        k.type_name(),
                        best_key.type_name()
                    ),
                )
            }
        }
    }
    Ok(best)
}

fn min(interp: &mut Interp, args: Args) -> Res<Value> {
    extreme(interp, args, "min", Ordering::Less)
}

fn max(interp: &mut Interp, args: Args) -> Res<Value> {
    extreme(interp, args, "max", Ordering::Greater)
}

fn abs(_: &mut Interp, args: Args) -> Res<Value> {
    let [v] = args.bind("abs", ["x"], 1)?;
    match v.unwrap_or_default() {
        Value::Int(i) => i
            .checked_abs()
            .map(Value::Int)
            .map_or_else(|| fail("ValueError", "integer overflow"), Ok),
        Value::Float(f) => Ok(Value::Float(f.abs())),
        other => fail(
            "TypeError",
            format!("abs() needs a number, not {}", other.type_name()),
        ),
    }
}

fn round(_: &mut Interp, args: Args) -> Res<Value> {
    let [v, nd] = args.bind("round", ["x", "ndigits"], 1)?;
    let x = match v.unwrap_or_default() {
        Value::Int(i) => return round_int(i, nd),
        Value::Float(f) => f,
        other => {
            return fail(
                "TypeError",
                format!("round() needs a number, not {}", other.type_name()),
            )
        }
    };
    match nd {
        None | Some(Value::Nil) => {
            let r = x.round_ties_even();
            if !r.is_finite() || r.abs() >= 9.2e18 {
                return fail(
                    "ValueError",
                    format!(
                        "round(): cannot convert {} to int",
                        crate::runtime::format::float_str(x)
                    ),
                );
            }
            Ok(Value::Int(r as i64))
        }
        Some(Value::Int(n)) => {
            if n >= 0 {
                // Rust's fixed-precision formatting rounds the exact binary value
                // correctly, as Python's round() does (round(2.675, 2) == 2.67).
                let s = format!("{:.*}", n.min(340) as usize, x);
                Ok(Value::Float(s.parse().unwrap_or(x)))
            } else {
                let p = 10f64.powi(n.checked_neg().unwrap_or(i64::MAX).min(400) as i32);
                if p.is_infinite() {
                    return Ok(Value::Float(0.0 * x));
                }
                Ok(Value::Float((x / p).round_ties_even() * p))
            }
        }
        Some(other) => fail(
            "TypeError",
            format!("round(): ndigits must be int, not {}", other.type_name()),
        ),
    }
}

/// `round(n, ndigits)` of an int: unchanged unless ndigits is negative, then to
/// a multiple of 10^-ndigits, a half to the even multiple (Python's rule).
fn round_int(n: i64, nd: Option<Value>) -> Res<Value> {
    let nd = match nd {
        None | Some(Value::Nil) => return Ok(Value::Int(n)),
        Some(Value::Int(d)) => d,
        Some(other) => {
            return fail(
                "TypeError",
                format!("round(): ndigits must be int, not {}", other.type_name()),
            )
        }
    };
    if nd >= 0 {
        return Ok(Value::Int(n));
    }
    // 10^19 > i64::MAX: every int rounds to 0 from there on.
    let Some(p) = 10i128.checked_pow(nd.unsigned_abs().min(20) as u32) else {
        return Ok(Value::Int(0));
    };
    let x = n as i128;
    let (q, r) = (x.div_euclid(p), x.rem_euclid(p));
    let q = match (2 * r).cmp(&p) {
        Ordering::Less => q,
        Ordering::Greater => q + 1,
        Ordering::Equal => q + (q & 1),
    };
    i64::try_from(q * p)
        .map(Value::Int)
        .or_else(|_| fail("ValueError", "integer overflow"))
}

fn time(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("time", [], 0)?;
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Value::Float(d.as_secs_f64()))
}

fn monotonic(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("monotonic", [], 0)?;
    thread_local! { static START: Instant = Instant::now(); }
    Ok(Value::Float(START.with(|s| s.elapsed().as_secs_f64())))
}

/// Seconds as a Duration; negative or non-numbers are errors.
pub fn seconds(func: &str, v: &Value) -> Res<Duration> {
    let s = match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        other => {
            return fail(
                "TypeError",
                format!(
                    "{func}(): seconds must be a number, not {}",
                    other.type_name()
                ),
            )
        }
    };
    if !(0.0..1e12).contains(&s) || s.is_nan() {
        return fail(
            "ValueError",
            format!(
                "{func}(): seconds must be between 0 and 1e12, got {}",
                display(v)
            ),
        );
    }
    Ok(Duration::from_secs_f64(s))
}

/// Sleeps, running signal handlers promptly when signals arrive meanwhile.
pub fn sleep_for(interp: &mut Interp, d: Duration) -> Res<()> {
    let deadline = Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if crate::os::signal::sleep(left).is_ok() {
            return Ok(());
        }
        // A signal, or children reaped: run handlers, release what exited.
        interp.poll_signals()?;
        if Instant::now() >= deadline {
            return Ok(());
        }
    }
}

fn sleep(interp: &mut Interp, args: Args) -> Res<Value> {
    let [s] = args.bind("sleep", ["seconds"], 1)?;
    let d = seconds("sleep", &s.unwrap_or_default())?;
    interp.out.flush()?;
    sleep_for(interp, d)?;
    Ok(Value::Nil)
}

fn cpu_count(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("cpu_count", [], 0)?;
    Ok(Value::Int(
        std::thread::available_parallelism().map_or(1, |n| n.get()) as i64,
    ))
}

fn random(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("random", [], 0)?;
    Ok(Value::Float(fastrand::f64()))
}

fn randint(_: &mut Interp, args: Args) -> Res<Value> {
    let [a, b] = args.bind("randint", ["a", "b"], 2)?;
    let (a, b) = (
        want_int("randint", a.unwrap_or_default())?,
        want_int("randint", b.unwrap_or_default())?,
    );
    if a > b {
        return fail("ValueError", format!("randint(): empty range {a}..{b}"));
    }
    Ok(Value::Int(fastrand::i64(a..=b)))
}

fn env(_: &mut Interp, args: Args) -> Res<Value> {
    let [name, default] = args.bind("env", ["name", "default"], 1)?;
    let name = want_str("env", "name", name)?;
    match std::env::var_os(&*name) {
        Some(v) => Ok(Value::Str(v.to_string_lossy().into())),
        None => Ok(default.unwrap_or_default()),
    }
}

fn setenv(_: &mut Interp, args: Args) -> Res<Value> {
    let [name, value] = args.bind("setenv", ["name", "value"], 2)?;
    let name = want_str("setenv", "name", name)?;
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return fail(
            "ValueError",
            format!("setenv(): invalid variable name {:?}", &*name),
        );
    }
    // The interpreter is single-threaded, which is what makes this sound.
    match value {
        None | Some(Value::Nil) => unsafe { std::env::remove_var(&*name) },
        Some(v) => {
            let v = display(&v);
            if v.contains('\0') {
                return fail("ValueError", "setenv(): value contains a NUL byte");
            }
            unsafe { std::env::set_var(&*name, v) }
        }
    }
    Ok(Value::Nil)
}

fn cwd(_: &mut Interp, args: Args) -> Res<Value> {
    args.bind("cwd", [], 0)?;
    match std::env::current_dir() {
        Ok(p) => Ok(Value::Str(p.to_string_lossy().into())),
        Err(e) => fail("IOError", format!("cwd(): {e}")),
    }
}

fn cd(_: &mut Interp, args: Args) -> Res<Value> {
    let [path] = args.bind("cd", ["path"], 1)?;
    let path = want_str("cd", "path", path)?;
    std::env::set_current_dir(&*path).or_else(|e| {
        fail(
            "IOError",
            format!("cd(): cannot enter {:?}: {}", &*path, io_msg(&e)),
        )
    })?;
    Ok(Value::Nil)
}

/// An io::Error's message without Rust's "(os error N)" suffix.
pub fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s.to_lowercase(),
    }
}

fn read_file(_: &mut Interp, args: Args) -> Res<Value> {
    let [path] = args.bind("read_file", ["path"], 1)?;
    let path = want_str("read_file", "path", path)?;
    match std::fs::read(&*path) {
        Ok(bytes) => Ok(Value::Str(String::from_utf8_lossy(&bytes).into())),
        Err(e) => fail(
            "IOError",
            format!("cannot read {:?}: {}", &*path, io_msg(&e)),
        ),
    }
}

fn write_common(func: &str, args: Args, append: bool) -> Res<Value> {
    use std::io::Write;
    let [path, data] = args.bind(func, ["path", "data"], 2)?;
    let path = want_str(func, "path", path)?;
    let data = display(&data.unwrap_or_default());
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .open(&*path)
        .and_then(|mut f| f.write_all(data.as_bytes()));
    match r {
        Ok(()) => Ok(Value::Nil),
        Err(e) => fail(
            "IOError",
            format!("cannot write {:?}: {}", &*path, io_msg(&e)),
        ),
    }
}

fn write_file(_: &mut Interp, args: Args) -> Res<Value> {
    write_common("write_file", args, false)
}

fn append_file(_: &mut Interp, args: Args) -> Res<Value> {
    write_common("append_file", args, true)
}

fn exists(_: &mut Interp, args: Args) -> Res<Value> {
    let [path] = args.bind("exists", ["path"], 1)?;
    let path = want_str("exists", "path", path)?;
    Ok(Value::Bool(std::path::Path::new(&*path).exists()))
}

fn error(_: &mut Interp, args: Args) -> Res<Value> {
    let [kind, msg] = args.bind("error", ["kind", "message"], 1)?;
    let (kind, msg) = match msg {
        None => ("Error".into(), display(&kind.unwrap_or_default())),
        Some(m) => (want_str("error", "kind", kind)?, display(&m)),
    };
    Ok(Value::Error(Rc::new(ErrorVal {
        err: RtError::new(&kind, msg),
    })))
}

fn assert(_: &mut Interp, args: Args) -> Res<Value> {
    let [cond, msg] = args.bind("assert", ["cond", "message"], 1)?;
    if cond.is_some_and(|c| c.truthy()) {
        return Ok(Value::Nil);
    }
    let msg = opt_str(
        "assert",
        "message",
        msg.map(|m| Value::Str(display(&m).into())),
        "assertion failed",
    )?;
    Err(Unwind::Error(Box::new(RtError::new(
        "AssertionError",
        msg.to_string(),
    ))))
}

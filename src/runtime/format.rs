//! How values print (SPEC §2) and the format-spec mini-language of string
//! interpolation (`{x:.2f}`, `{n:>8}`, `{n:08,d}`), modelled on Python's.

use super::error::{fail, Res};
use super::value::{Key, Value};
use std::fmt::Write;

/// `print`'s form: strings bare, everything else as `repr`.
pub fn display(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        _ => repr(v),
    }
}

pub fn display_into(out: &mut String, v: &Value) {
    match v {
        Value::Str(s) => out.push_str(s),
        _ => repr_into(out, v, 0),
    }
}

/// The form inside containers: strings quoted.
pub fn repr(v: &Value) -> String {
    let mut s = String::new();
    repr_into(&mut s, v, 0);
    s
}

const MAX_PRINT_DEPTH: usize = 64;

pub fn repr_into(out: &mut String, v: &Value, depth: usize) {
    if depth > MAX_PRINT_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::Nil | Value::Undefined => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => float_into(out, *f),
        Value::Str(s) => quote_into(out, s),
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.borrow().iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr_into(out, x, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, x)) in m.borrow().iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                key_into(out, k);
                out.push_str(": ");
                repr_into(out, x, depth + 1);
            }
            out.push('}');
        }
        Value::Range(r) => {
            if r.step == 1 {
                let _ = write!(out, "range({}, {})", r.start, r.stop);
            } else {
                let _ = write!(out, "range({}, {}, {})", r.start, r.stop, r.step);
            }
        }
        Value::Func(c) if c.def.name.starts_with('<') => out.push_str("<fn>"),
        Value::Func(c) => {
            let _ = write!(out, "<fn {}>", c.def.name);
        }
        Value::Builtin(b) => {
            let _ = write!(out, "<builtin {}>", b.name);
        }
        Value::Object(o) => out.push_str(&o.repr()),
        Value::Error(e) => {
            let _ = write!(out, "<error {}: {}>", e.err.kind, e.err.message);
        }
    }
}

pub fn key_into(out: &mut String, k: &Key) {
    match k {
        Key::Str(s) => quote_into(out, s),
        Key::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Key::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
    }
}

pub fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Shortest round-trip, with `.0` when whole; exponent form for very large or
/// small magnitudes, as Python prints them.
pub fn float_into(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("nan");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
    } else if f != 0.0 && (f.abs() >= 1e16 || f.abs() < 1e-4) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let _ = write!(
            out,
            "{mant}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    } else {
        let s = format!("{f}");
        out.push_str(&s);
        if !s.contains('.') {
            out.push_str(".0");
        }
    }
}

pub fn float_str(f: f64) -> String {
    let mut s = String::new();
    float_into(&mut s, f);
    s
}

/// A parsed format spec: `[[fill]align][sign][#][0][width][,|_][.precision][type]`.
#[derive(Default, Debug)]
struct Spec {
    fill: char,
    align: Option<char>,
    sign: Option<char>,
    /// `#`: `0x` / `0o` / `0b` before hex, octal and binary digits.
    alternate: bool,
    zero: bool,
    width: usize,
    grouping: Option<char>,
    precision: Option<usize>,
    ty: Option<char>,
}

fn parse_spec(spec: &str) -> Option<Spec> {
    let cs: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let mut s = Spec {
        fill: ' ',
        ..Spec::default()
    };
    let is_align = |c: char| matches!(c, '<' | '>' | '^' | '=');
    if cs.len() >= 2 && is_align(cs[1]) {
        s.fill = cs[0];
        s.align = Some(cs[1]);
        i = 2;
    } else if !cs.is_empty() && is_align(cs[0]) {
        s.align = Some(cs[0]);
        i = 1;
    }
    if i < cs.len() && matches!(cs[i], '+' | '-' | ' ') {
        s.sign = Some(cs[i]);
        i += 1;
    }
    if i < cs.len() && cs[i] == '#' {
        s.alternate = true;
        i += 1;
    }
    if i < cs.len() && cs[i] == '0' {
        s.zero = true;
        i += 1;
    }
    let start = i;
    while i < cs.len() && cs[i].is_ascii_digit() {
        i += 1;
    }
    if i > start {
        s.width = cs[start..i].iter().collect::<String>().parse().ok()?;
    }
    if i < cs.len() && matches!(cs[i], ',' | '_') {
        s.grouping = Some(cs[i]);
        i += 1;
    }
    if i < cs.len() && cs[i] == '.' {
        i += 1;
        let start = i;
        while i < cs.len() && cs[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        s.precision = Some(cs[start..i].iter().collect::<String>().parse().ok()?);
    }
    if i < cs.len() {
        s.ty = Some(cs[i]);
        i += 1;
    }
    (i == cs.len()).then_some(s)
}

fn group(digits: &str, sep: char) -> String {
    let (int, frac) = match digits.find('.') {
        Some(p) => digits.split_at(p),
        None => (digits, ""),
    };
    let mut out = String::new();
    let n = int.len();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (n - i) % 3 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out + frac
}

/// The widest field and the longest precision a format spec may ask for.
const MAX_WIDTH: usize = 1_000_000;
const MAX_PRECISION: usize = 1_000;

/// A non-negative float (or nan) by a float presentation type, as Python does.
fn float_body(a: f64, ty: Option<char>, precision: Option<usize>) -> String {
    let upper = matches!(ty, Some('F' | 'E' | 'G'));
    if !a.is_finite() {
        let t = if a.is_nan() { "nan" } else { "inf" };
        let t = if upper {
            t.to_uppercase()
        } else {
            t.to_string()
        };
        return if ty == Some('%') { t + "%" } else { t };
    }
    let p = precision.unwrap_or(6);
    let body = match ty {
        Some('f' | 'F') => format!("{a:.p$}"),
        Some('%') => format!("{:.p$}%", a * 100.0),
        Some('e' | 'E') => sci(a, p, false),
        Some('g' | 'G') => general(a, p.max(1), false),
        _ => match precision {
            // No type but a precision: 'g' that keeps a `.0` and switches to
            // exponent form one digit earlier (Python's rule).
            Some(p) => general(a, p.max(1), true),
            None => float_str(a),
        },
    };
    if upper {
        body.to_uppercase()
    } else {
        body
    }
}

/// `a` in exponent form with `p` digits after the point (`1.5e+03`).
fn sci(a: f64, p: usize, strip: bool) -> String {
    let t = format!("{a:.p$e}");
    let (m, e) = t.split_once('e').unwrap_or((&t, "0"));
    let m = if strip && m.contains('.') {
        m.trim_end_matches('0').trim_end_matches('.')
    } else {
        m
    };
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// Python's general format with `p` significant digits; `no_type` is the
/// variant used when a spec has a precision but no type.
fn general(a: f64, p: usize, no_type: bool) -> String {
    // The exponent after rounding to p digits decides the form.
    let t = format!("{a:.*e}", p - 1);
    let exp: i64 = t.split_once('e').map_or(0, |(_, e)| e.parse().unwrap_or(0));
    let limit = if no_type { p as i64 - 1 } else { p as i64 };
    if a != 0.0 && (exp < -4 || exp >= limit) {
        return sci(a, p - 1, true);
    }
    let decimals = (p as i64 - 1 - exp).max(0) as usize;
    let t = format!("{a:.decimals$}");
    let t = if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        t
    };
    if no_type && !t.contains('.') {
        t + ".0"
    } else {
        t
    }
}

/// Formats `v` by `spec`, as `format(v, spec)` does in Python.
pub fn format_value(v: &Value, spec: &str) -> Res<String> {
    if spec.is_empty() {
        return Ok(display(v));
    }
    let Some(s) = parse_spec(spec) else {
        return fail("ValueError", format!("invalid format spec `{spec}`"));
    };
    let bad = || {
        fail(
            "ValueError",
            format!("format spec `{spec}` does not apply to {}", v.type_name()),
        )
    };
    if s.width > MAX_WIDTH || s.precision.is_some_and(|p| p > MAX_PRECISION) {
        return fail(
            "ValueError",
            format!(
                "format spec `{spec}` is too large (width at most {MAX_WIDTH}, precision at most {MAX_PRECISION})"
            ),
        );
    }
    if s.alternate && !matches!((v, s.ty), (Value::Int(_), Some('x' | 'X' | 'o' | 'b'))) {
        return fail(
            "ValueError",
            format!("format spec `{spec}`: `#` needs an int and type x, X, o or b"),
        );
    }
    // The body (without sign) and whether it is numeric.
    let (negative, body, numeric) = match (v, s.ty) {
        // As in Python, a precision means nothing to an int.
        (Value::Int(_), None | Some('d' | 'x' | 'X' | 'o' | 'b')) if s.precision.is_some() => {
            return fail(
                "ValueError",
                format!("format spec `{spec}`: an int takes no precision (use `.Nf` for decimals)"),
            )
        }
        (Value::Int(i), None | Some('d')) => (*i < 0, i.unsigned_abs().to_string(), true),
        (Value::Int(i), Some('x')) => (*i < 0, format!("{:x}", i.unsigned_abs()), true),
        (Value::Int(i), Some('X')) => (*i < 0, format!("{:X}", i.unsigned_abs()), true),
        (Value::Int(i), Some('o')) => (*i < 0, format!("{:o}", i.unsigned_abs()), true),
        (Value::Int(i), Some('b')) => (*i < 0, format!("{:b}", i.unsigned_abs()), true),
        (Value::Int(_) | Value::Float(_), Some('f' | 'F' | 'e' | 'E' | '%' | 'g' | 'G'))
        | (Value::Float(_), None) => {
            let f = match v {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                _ => unreachable!(),
            };
            let body = float_body(f.abs(), s.ty, s.precision);
            (f.is_sign_negative() && !f.is_nan(), body, true)
        }
        (_, None | Some('s')) if s.sign.is_none() && s.grouping.is_none() => {
            let mut t = display(v);
            if let Some(p) = s.precision {
                t = t.chars().take(p).collect();
            }
            (false, t, false)
        }
        _ => return bad(),
    };
    let body = match s.grouping {
        Some(g) if numeric => group(&body, g),
        _ => body,
    };
    let sign = if negative {
        "-"
    } else {
        match s.sign {
            Some('+') => "+",
            Some(' ') => " ",
            _ => "",
        }
    };
    // The `#` prefix goes with the sign, before any zero padding (`0x00ff`).
    let prefix = match (s.alternate, s.ty) {
        (true, Some('x')) => "0x",
        (true, Some('X')) => "0X",
        (true, Some('o')) => "0o",
        (true, Some('b')) => "0b",
        _ => "",
    };
    let sign = format!("{sign}{prefix}");
    let sign = sign.as_str();
    let len = sign.chars().count() + body.chars().count();
    if len >= s.width {
        return Ok(format!("{sign}{body}"));
    }
    let pad = s.width - len;
    let (fill, align) = if s.zero && s.align.is_none() && numeric {
        ('0', '=')
    } else {
        (s.fill, s.align.unwrap_or(if numeric { '>' } else { '<' }))
    };
    let fills = |n: usize| fill.to_string().repeat(n);
    Ok(match align {
        '<' => format!("{sign}{body}{}", fills(pad)),
        '^' => format!("{}{sign}{body}{}", fills(pad / 2), fills(pad - pad / 2)),
        '=' => format!("{sign}{}{body}", fills(pad)),
        _ => format!("{}{sign}{body}", fills(pad)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: Value, spec: &str) -> String {
        format_value(&v, spec).unwrap_or_else(|_| "ERR".into())
    }

    #[test]
    fn floats_print_shortest_with_point_zero() {
        assert_eq!(float_str(2.0), "2.0");
        assert_eq!(float_str(1.5), "1.5");
        assert_eq!(float_str(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(float_str(1e16), "1e+16");
        assert_eq!(float_str(1e-5), "1e-05");
        assert_eq!(float_str(-0.0), "-0.0");
    }

    #[test]
    fn specs() {
        assert_eq!(f(Value::Float(2.34567), ".2f"), "2.35");
        assert_eq!(f(Value::Int(42), ">8"), "      42");
        assert_eq!(f(Value::str("ab"), ">5"), "   ab");
        assert_eq!(f(Value::str("ab"), "*^6"), "**ab**");
        assert_eq!(f(Value::Int(-42), "05"), "-0042");
        assert_eq!(f(Value::Int(1234567), ","), "1,234,567");
        assert_eq!(f(Value::Float(0.25), ".1%"), "25.0%");
        assert_eq!(f(Value::Int(255), "x"), "ff");
        assert_eq!(f(Value::Float(12345.678), ".3e"), "1.235e+04");
        assert_eq!(f(Value::Int(5), "+d"), "+5");
        assert_eq!(f(Value::str("x"), "d"), "ERR");
        // Python's rules for a precision without a type, and for 'g'.
        assert_eq!(f(Value::Float(1.23456), ".3"), "1.23");
        assert_eq!(f(Value::Float(12.0), ".3"), "12.0");
        assert_eq!(f(Value::Float(123.0), ".3"), "1.23e+02");
        assert_eq!(f(Value::Float(123.0), ".3g"), "123");
        assert_eq!(f(Value::Float(1000.0), ".3"), "1e+03");
        assert_eq!(f(Value::Float(0.5), ".0"), "0.5");
        assert_eq!(f(Value::Float(99999.5), ".5g"), "1e+05");
        assert_eq!(f(Value::Float(123456789.0), "g"), "1.23457e+08");
        assert_eq!(f(Value::Float(1e-5), "g"), "1e-05");
        assert_eq!(f(Value::Float(f64::NAN), "8.2f"), "     nan");
        assert_eq!(f(Value::Float(f64::NEG_INFINITY), ".1f"), "-inf");
        assert_eq!(f(Value::Float(1.5), "+.2"), "+1.5");
        assert_eq!(f(Value::Int(42), ".2"), "ERR");
        assert_eq!(f(Value::Float(1.5), ".999999"), "ERR");
        assert_eq!(f(Value::Int(255), "#x"), "0xff");
        assert_eq!(f(Value::Int(-255), "#06X"), "-0X0FF");
        assert_eq!(f(Value::Int(5), "#b"), "0b101");
        assert_eq!(f(Value::Int(5), "#d"), "ERR");
    }
}

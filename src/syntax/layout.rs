//! The layout pass that runs before the grammar. It replaces, byte for byte (so
//! spans stay true):
//! - every comment with spaces (the shebang line is a comment);
//! - every newline inside `( )`, `[ ]` and map literals with a space, except
//!   inside a block nested in them, such as a `fn` literal's body.
//!
//! It also refuses input nested deeper than `MAX_DEPTH` and tells the REPL when
//! input is incomplete (an open bracket or string at the end).

use super::error::SyntaxError;
use super::span::Span;

/// The deepest nesting of brackets, blocks and interpolations accepted.
pub const MAX_DEPTH: usize = 200;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Open {
    Paren,
    Bracket,
    Map,
    Block,
    /// `{` inside a double-quoted string.
    Interp,
}

/// What the last significant token was, to tell a map `{` from a block `{`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Start of input, an operator, `(`, `[`, `,`, `:`, `=`, a separator: a `{`
    /// here starts a map literal.
    ExprStart,
    /// A value just ended (a name, literal, `)`, `]`, `}`): a `{` here opens a block.
    ValueEnd,
}

/// Words after which a `{` starts a map even though a word precedes it.
const MAP_AFTER_WORDS: &[&str] = &["return", "in", "not", "and", "or", "throw", "join"];

pub fn layout(src: u32, text: &str) -> Result<String, SyntaxError> {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut stack: Vec<Open> = Vec::new();
    // Where each open bracket of `stack` is, for "not closed" errors.
    let mut opened_at: Vec<usize> = Vec::new();
    // Open strings: each entry is the stack depth at which the string opened.
    let mut i = 0;
    let mut prev = Prev::ExprStart;
    let mut word_start = 0;
    let too_deep = |at: usize| SyntaxError {
        message: format!("nesting too deep (more than {MAX_DEPTH} levels)"),
        span: Span::new(src, at, at + 1),
        incomplete: false,
    };
    // `in_string` is true while scanning the text of a double-quoted string whose
    // interpolation depth is the top of `stack` (or none).
    let mut in_string = false;
    let mut string_start = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            match c {
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    prev = Prev::ValueEnd;
                    i += 1;
                }
                b'{' if bytes.get(i + 1) == Some(&b'{') => i += 2,
                b'{' => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(too_deep(i));
                    }
                    stack.push(Open::Interp);
                    opened_at.push(i);
                    in_string = false;
                    prev = Prev::ExprStart;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        match c {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            b'"' => {
                in_string = true;
                string_start = i;
                i += 1;
            }
            b'\'' => {
                let start = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(unterminated(src, start, &stack, &opened_at)),
                        Some(b'\\') => i += 2,
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                prev = Prev::ValueEnd;
            }
            b'\n' => {
                match stack.last() {
                    Some(Open::Paren | Open::Bracket | Open::Map) => out[i] = b' ',
                    _ => prev = Prev::ExprStart,
                }
                i += 1;
            }
            b'(' | b'[' | b'{' => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(i));
                }
                let open = match c {
                    b'(' => Open::Paren,
                    b'[' => Open::Bracket,
                    _ if prev == Prev::ValueEnd && !after_map_word(bytes, word_start, i) => {
                        Open::Block
                    }
                    _ => Open::Map,
                };
                stack.push(open);
                opened_at.push(i);
                prev = Prev::ExprStart;
                i += 1;
            }
            b')' | b']' | b'}' => {
                let top = stack.pop();
                opened_at.pop();
                if top == Some(Open::Interp) && c == b'}' {
                    in_string = true;
                } else {
                    prev = Prev::ValueEnd;
                }
                i += 1;
            }
            b':' if stack.last() == Some(&Open::Interp) => {
                // A format spec runs to the closing brace.
                while i < bytes.len() && bytes[i] != b'}' && bytes[i] != b'"' {
                    i += 1;
                }
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                word_start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                // A word ends a value unless it is `.`-free operator keyword; the
                // map/block choice re-reads the word when a `{` follows.
                prev = Prev::ValueEnd;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            _ => {
                prev = Prev::ExprStart;
                i += 1;
            }
        }
    }
    if in_string {
        return Err(unterminated(src, string_start, &stack, &opened_at));
    }
    // An open bracket at the end: the grammar reports it, but the REPL must know
    // to ask for more.
    let text = String::from_utf8(out).map_err(|e| SyntaxError {
        message: "source is not valid UTF-8".into(),
        span: Span::new(
            src,
            e.utf8_error().valid_up_to(),
            e.utf8_error().valid_up_to() + 1,
        ),
        incomplete: false,
    })?;
    if let (Some(open), Some(&at)) = (stack.last(), opened_at.last()) {
        let (bracket, close) = match open {
            Open::Paren => ("(", ")"),
            Open::Bracket => ("[", "]"),
            Open::Map | Open::Block | Open::Interp => ("{", "}"),
        };
        return Err(SyntaxError {
            message: format!(
                "`{bracket}` is not closed (expected `{close}` before the end of input)"
            ),
            span: Span::new(src, at, at + 1),
            incomplete: true,
        });
    }
    Ok(text)
}

/// A string that runs to the end of the input. Inside an interpolation, the
/// `{` that opened it is the likely mistake (`"{bad"` meant a literal brace).
fn unterminated(src: u32, start: usize, stack: &[Open], opened_at: &[usize]) -> SyntaxError {
    match stack.iter().rposition(|o| *o == Open::Interp) {
        Some(k) => SyntaxError {
            message: "`{` in a string starts an interpolation that is not closed (a literal brace is `{{` or `\\{`)".into(),
            span: Span::new(src, opened_at[k], opened_at[k] + 1),
            incomplete: true,
        },
        None => SyntaxError {
            message: "unterminated string".into(),
            span: Span::new(src, start, start + 1),
            incomplete: true,
        },
    }
}

fn after_map_word(bytes: &[u8], word_start: usize, brace: usize) -> bool {
    // Only if the word is the last thing before the brace.
    let mut end = brace;
    while end > 0 && matches!(bytes[end - 1], b' ' | b'\t' | b'\r') {
        end -= 1;
    }
    if end <= word_start
        || !bytes[word_start..end]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return false;
    }
    let word = &bytes[word_start..end];
    MAP_AFTER_WORDS.iter().any(|w| w.as_bytes() == word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lay(s: &str) -> String {
        layout(0, s).unwrap()
    }

    #[test]
    fn newlines_inside_brackets_become_spaces() {
        assert_eq!(lay("f(1,\n2)\nx"), "f(1, 2)\nx");
        assert_eq!(lay("[1,\n2]"), "[1, 2]");
        assert_eq!(lay("let m = {\n\"a\": 1\n}"), "let m = { \"a\": 1 }");
    }

    #[test]
    fn blocks_keep_newlines() {
        assert_eq!(lay("if x {\na\n}"), "if x {\na\n}");
        assert_eq!(lay("f(fn() {\na\nb\n})"), "f(fn() {\na\nb\n})");
        assert_eq!(lay("return {\n}"), "return { }");
    }

    #[test]
    fn comments_are_blanked_but_not_in_strings() {
        assert_eq!(lay("#!/x\nf() # c"), "    \nf()    ");
        assert_eq!(lay("\"a # b\""), "\"a # b\"");
        assert_eq!(lay("\"{f(\"x\")} # y\""), "\"{f(\"x\")} # y\"");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let s = "(".repeat(10_000);
        let e = layout(0, &s).unwrap_err();
        assert!(e.message.contains("too deep"));
    }

    #[test]
    fn incomplete_input_is_flagged() {
        assert!(layout(0, "f(1,").unwrap_err().incomplete);
        assert!(layout(0, "\"abc").unwrap_err().incomplete);
        assert!(layout(0, "if x {").unwrap_err().incomplete);
    }
}

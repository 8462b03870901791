//! The one renderer for every error, syntax or runtime:
//!
//! ```text
//! error[TypeError]: cannot add int and str
//!  --> scripts/bad.proc:3:11
//!   |
//! 3 | let y = 1 + "a"
//!   |           ^
//! ```
//!
//! Rendered with codespan-reporting, into one buffer written to stderr at once.

use crate::syntax::span::{self, Span};
use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};
use std::io::Write;

/// Renders `error[kind]: message` with the source line and a caret under `span`.
pub fn render(kind: &str, message: &str, span: Option<Span>, color: bool) -> String {
    let mut buf: Vec<u8> = Vec::new();
    let mut done = false;
    if let Some(sp) = span {
        if let Some(src) = span::source(sp.src) {
            let len = src.text.len();
            let start = span::floor_char_boundary(&src.text, (sp.start as usize).min(len));
            let windowed = window(&src.text, start);
            let (text, start, location) = match &windowed {
                Some((text, at, line, col)) => (
                    text.as_str(),
                    *at,
                    Some(format!("{}:{line}:{col}", src.name)),
                ),
                None => (src.text.as_str(), start, None),
            };
            let file = SimpleFile::new(src.name.as_str(), text);
            // A caret under the first character of the span (the operator, the
            // call, the name), as the SPEC's example shows.
            let end = text[start..].chars().next().map_or(start, |c| {
                if c == '\n' {
                    start
                } else {
                    start + c.len_utf8()
                }
            });
            let diag = Diagnostic::error()
                .with_code(kind)
                .with_message(message)
                .with_labels(vec![Label::primary((), start..end)]);
            let config = term::Config {
                chars: term::Chars::ascii(),
                ..term::Config::default()
            };
            let r = if color {
                let mut w = termcolor::Ansi::new(&mut buf);
                term::emit(&mut w, &config, &file, &diag)
            } else {
                let mut w = termcolor::NoColor::new(&mut buf);
                term::emit(&mut w, &config, &file, &diag)
            };
            done = r.is_ok();
            if let (true, Some(location)) = (done, location) {
                buf = relocate(&buf, &location);
            }
        }
    }
    if !done {
        buf.clear();
        let _ = writeln!(buf, "error[{kind}]: {message}");
    }
    tidy(&String::from_utf8_lossy(&buf))
}

/// Source lines longer than this are shown as a window around the caret.
const MAX_LINE: usize = 160;
const CONTEXT: usize = 60;

/// When the line holding `at` is too long to show, a stand-in source: blank
/// lines up to it, then `...` and the characters around `at`, then `...`.
/// Returns it with the caret's offset in it and the true line and column.
fn window(text: &str, at: usize) -> Option<(String, usize, usize, usize)> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = &text[line_start..line_end];
    if line.len() <= MAX_LINE || line.chars().count() <= MAX_LINE {
        return None;
    }
    let (line_no, col) = span::line_col(text, at);
    let before: Vec<char> = text[line_start..at].chars().collect();
    let after: Vec<char> = text[at..line_end].chars().collect();
    let from = before.len().saturating_sub(CONTEXT);
    let to = after.len().min(CONTEXT);
    let mut out = "\n".repeat(line_no - 1);
    if from > 0 {
        out.push_str("...");
    }
    out.extend(&before[from..]);
    let caret = out.len();
    out.extend(&after[..to]);
    if to < after.len() {
        out.push_str("...");
    }
    Some((out, caret, line_no, col))
}

/// Puts the true `file:line:col` back on the ` --> ` line of a diagnostic
/// rendered from a windowed source.
fn relocate(rendered: &[u8], location: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(rendered);
    let mut out = String::with_capacity(text.len());
    let mut done = false;
    for line in text.split_inclusive('\n') {
        // The location starts after the first space that follows the arrow.
        let at = line
            .find("-->")
            .and_then(|p| line[p..].find(' ').map(|sp| p + sp + 1));
        match at {
            Some(at) if !done && is_arrow_line(line) => {
                done = true;
                out.push_str(&line[..at]);
                out.push_str(location);
                if line.contains('\x1b') {
                    out.push_str("\x1b[0m");
                }
                out.push('\n');
            }
            _ => out.push_str(line),
        }
    }
    out.into_bytes()
}

/// codespan-reporting indents the ` --> ` line one column deeper than rustc and
/// the SPEC do, and ends with a blank line; keep the SPEC's shape.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut arrow_seen = false;
    for line in text.lines() {
        // The arrow line (after the message, which may span lines) may start
        // with colour escapes: drop the first space before the arrow.
        let space = if !arrow_seen && is_arrow_line(line) {
            arrow_seen = true;
            line.find("-->").and_then(|arrow| line[..arrow].find(' '))
        } else {
            None
        };
        match space {
            Some(p) => {
                out.push_str(&line[..p]);
                out.push_str(line[p + 1..].trim_end());
            }
            None => out.push_str(line.trim_end()),
        }
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// ` --> file:line:col`, possibly with colour escapes.
fn is_arrow_line(line: &str) -> bool {
    let mut plain = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(esc) = rest.find('\x1b') {
        plain.push_str(&rest[..esc]);
        rest = rest[esc..].find('m').map_or("", |m| &rest[esc + m + 1..]);
    }
    plain.push_str(rest);
    plain.trim_start().starts_with("--> ")
}

/// Writes a rendered diagnostic to stderr in one piece.
pub fn emit(kind: &str, message: &str, span: Option<Span>) {
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let text = render(kind, message, span, color);
    let _ = std::io::stderr().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn colour_changes_nothing_but_colour() {
        let text = "let x = 1\nlet y = 1 + \"a\"\n";
        let src = span::add_source("bad.proc", text);
        let at = text.find('+').unwrap();
        let sp = Some(Span::new(src, at, at + 1));
        let plain = render("TypeError", "cannot add int and str", sp, false);
        let coloured = render("TypeError", "cannot add int and str", sp, true);
        assert_ne!(plain, coloured);
        assert_eq!(strip_ansi(&coloured), plain);
        assert!(plain.contains("\n --> bad.proc:2:11\n"), "{plain}");
    }

    #[test]
    fn a_message_of_several_lines_keeps_the_arrow_in_place() {
        let src = span::add_source("m.proc", "throw x\n");
        let text = render("X", "line one\nline two", Some(Span::new(src, 0, 1)), false);
        assert_eq!(
            text,
            "error[X]: line one\nline two\n --> m.proc:1:1\n  |\n1 | throw x\n  | ^\n"
        );
    }

    #[test]
    fn long_lines_are_windowed_with_the_true_column() {
        let line = format!("let s = \"{}\" + 1", "é".repeat(5000));
        let src = span::add_source("long.proc", line.as_str());
        let at = line.find('+').unwrap();
        let text = render("TypeError", "m", Some(Span::new(src, at, at + 1)), false);
        assert!(text.contains(" --> long.proc:1:5012\n"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() < 200), "{text}");
        assert!(text.contains("...ééé"), "{text}");
    }
}

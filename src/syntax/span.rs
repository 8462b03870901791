//! Byte-offset spans and the table of loaded sources. Line and column are worked
//! out only when a diagnostic is rendered.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;

/// A byte range in one loaded source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub src: u32,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(src: u32, start: usize, end: usize) -> Span {
        Span {
            src,
            start: start as u32,
            end: end as u32,
        }
    }

    /// A span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            src: self.src,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// One loaded piece of source text: a file, a `-c` argument, a REPL line.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

thread_local! {
    static SOURCES: RefCell<Vec<Rc<Source>>> = const { RefCell::new(Vec::new()) };
}

/// Registers a source and returns its id for spans.
pub fn add_source(name: impl Into<String>, text: impl Into<String>) -> u32 {
    SOURCES.with(|s| {
        let mut s = s.borrow_mut();
        s.push(Rc::new(Source {
            name: name.into(),
            text: text.into(),
        }));
        (s.len() - 1) as u32
    })
}

/// The source a span points into, if it is loaded in this process.
pub fn source(id: u32) -> Option<Rc<Source>> {
    SOURCES.with(|s| s.borrow().get(id as usize).cloned())
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

pub fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

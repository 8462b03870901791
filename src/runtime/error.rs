//! Runtime errors and control flow. Control flow is not an error: `Unwind` keeps
//! `return`, `break`, `continue` and `exit` apart from `RtError`.

use super::value::Value;
use crate::syntax::Span;
use std::rc::Rc;

/// A user-visible error: a kind (`TypeError`, or any kind a script throws), a
/// message, and where it happened. The span is set once, where the error arises,
/// and never overwritten by callers higher up.
#[derive(Clone, Debug)]
pub struct RtError {
    pub kind: Rc<str>,
    pub message: String,
    pub span: Option<Span>,
    /// The value thrown, when a script threw something other than an error
    /// (kept so `catch e` sees kind "Error" and the message).
    pub note: Option<String>,
}

impl RtError {
    pub fn new(kind: &str, message: impl Into<String>) -> RtError {
        RtError {
            kind: kind.into(),
            message: message.into(),
            span: None,
            note: None,
        }
    }

    pub fn at(mut self, span: Span) -> RtError {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }
}

pub enum Unwind {
    Error(Box<RtError>),
    Return(Value),
    Break,
    Continue,
    /// `exit(n)`, or an interrupt: runs `finally` blocks but no `catch`.
    Exit(i32),
}

impl From<RtError> for Unwind {
    fn from(e: RtError) -> Unwind {
        Unwind::Error(Box::new(e))
    }
}

pub type Res<T> = Result<T, Unwind>;

/// `Err(RtError)` of a kind, as an `Unwind`.
pub fn fail<T>(kind: &str, message: impl Into<String>) -> Res<T> {
    Err(Unwind::Error(Box::new(RtError::new(kind, message))))
}

/// Attaches a span to an error that has none yet.
pub fn at<T>(r: Res<T>, span: Span) -> Res<T> {
    match r {
        Err(Unwind::Error(mut e)) if e.span.is_none() => {
            e.span = Some(span);
            Err(Unwind::Error(e))
        }
        other => other,
    }
}

/// The kinds the runtime raises (SPEC §4), for docs and tests.
pub const KINDS: &[&str] = &[
    "Error",
    "TypeError",
    "ValueError",
    "NameError",
    "IndexError",
    "KeyError",
    "ZeroDivisionError",
    "IOError",
    "Empty",
    "Full",
    "Closed",
    "Timeout",
    "ProcessError",
    "LockError",
    "CommandError",
    "WorkerLost",
    "Cancelled",
    "AssertionError",
    "RecursionError",
];

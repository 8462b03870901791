//! Syntax errors: what was expected, where, and whether more input could fix it.

use super::span::Span;

#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
    /// The input ended while something was still open: the REPL asks for another
    /// line instead of reporting the error.
    pub incomplete: bool,
}

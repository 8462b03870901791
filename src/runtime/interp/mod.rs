//! The tree-walking evaluator: statements, expressions, calls.

mod call;
mod expr;
mod stmt;

pub use call::bind_frame;
pub use expr::expr_span;

use crate::runtime::value::Frame;
use std::rc::Rc;

/// The innermost function frame (None at top level, where names are globals).
pub type Env = Option<Rc<Frame>>;

//! Text -> AST: the layout pass, the pest grammar, and the AST builder. This module
//! never sees a runtime value.

pub mod ast;
pub mod error;
pub mod layout;
pub mod parser;
pub mod span;

pub use error::SyntaxError;
pub use parser::parse_program;
pub use span::Span;

//! The abstract syntax tree. Every node that can fail at run time carries a
//! `Span`. Names carry a `Res` slot that the resolver fills in before running.
//! The tree is serializable because functions cross process boundaries with it.

use super::span::Span;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

pub type Sym = Rc<str>;

/// Where a name lives, decided by the resolver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Binding {
    /// Not declared in any enclosing scope: looked up among the top-level names
    /// when the code runs, else a NameError.
    Dynamic,
    /// A slot in a function frame, `depth` frames up the closure chain.
    Local { depth: u16, slot: u32 },
    /// A slot among the top-level variables.
    Global(u32),
    /// A builtin function, by index in the builtin table.
    Builtin(u32),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Var {
    pub name: Sym,
    pub span: Span,
    pub res: Binding,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    /// Whether any statement is a `fn` declaration (to hoist on entry).
    pub has_fns: bool,
}

impl Block {
    pub fn new(stmts: Vec<Stmt>) -> Block {
        let has_fns = stmts.iter().any(|s| matches!(s, Stmt::Fn(..)));
        Block { stmts, has_fns }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Target {
    Var(Var),
    List(Vec<Var>, Span),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Stmt {
    Let(Target, Expr, Span),
    Assign(LValue, Option<BinOp>, Expr, Span),
    Expr(Expr),
    Fn(Var, Rc<FnDef>),
    If(Vec<(Expr, Block)>, Option<Block>),
    While(Expr, Block),
    For(Target, Expr, Block, Span),
    Try(Box<TryStmt>),
    With(Expr, Option<Var>, Block, Span),
    Return(Option<Expr>, Span),
    Break(Span),
    Continue(Span),
    Throw(Expr, Span),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TryStmt {
    pub body: Block,
    /// `catch e { }`: the variable (if named) and the handler.
    pub catch: Option<(Option<Var>, Block)>,
    pub finally: Option<Block>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LValue {
    Var(Var),
    Index(Box<Expr>, Box<Expr>, Span),
    Field(Box<Expr>, Sym, Span),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Arg {
    pub name: Option<Sym>,
    pub value: Expr,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum StrPart {
    Lit(Sym),
    Expr(Expr, Option<Sym>, Span),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Expr {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Sym),
    Interp(Vec<StrPart>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>, Span),
    Var(Var),
    Neg(Box<Expr>, Span),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>, Span),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Vec<Arg>, Span),
    Method(Box<Expr>, Sym, Vec<Arg>, Span),
    Field(Box<Expr>, Sym, Span),
    Index(Box<Expr>, Box<Expr>, Span),
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>, Span),
    Fn(Rc<FnDef>),
    Spawn(Box<Spawn>),
    Join(Box<Expr>, Span),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spawn {
    pub daemon: bool,
    pub body: SpawnBody,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SpawnBody {
    Call(Expr, Vec<Arg>),
    Block(Block),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Param {
    pub var: Var,
    pub default: Option<Expr>,
}

/// A function: a declaration or a literal. The resolver fills in the frame size
/// and what the function reaches outside itself — the exact set of values that
/// must travel with it to another process.
#[derive(Debug, Serialize, Deserialize)]
pub struct FnDef {
    pub name: Sym,
    pub params: Vec<Param>,
    pub body: Block,
    pub span: Span,
    /// Slots in this function's frame: parameters first, then every `let`.
    pub nslots: u32,
    /// Variables of enclosing function frames used here or in nested functions,
    /// as (depth, slot) relative to this function's own frame (depth >= 1).
    pub captures: Vec<(u16, u32)>,
    /// Top-level variables used here or in nested functions.
    pub globals: Vec<u32>,
    /// Names used here or in nested functions that no scope declared when the
    /// function was resolved: top-level names declared further down, looked up
    /// at run time. They travel with the function like `globals`.
    pub dynamic: Vec<Sym>,
}

/// A parsed and resolved piece of top-level code (a file, a REPL line).
#[derive(Debug)]
pub struct Program {
    pub body: Block,
    pub src: u32,
}

//! Text -> AST. The only file that names pest's `Rule`: one `build_*` function per
//! rule, precedence with pest's `PrattParser`, and an exhaustive `Rule -> name`
//! mapping so syntax errors say "expected expression", not "expected postfix_expr".

use super::ast::*;
use super::error::SyntaxError;
use super::layout::layout;
use super::span::Span;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::OnceLock;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/proc.pest"]
struct Grammar;

/// How deeply operators (binary, prefix, and postfix calls, indexes and fields)
/// may nest, counted along every path from the outermost expression, through
/// brackets and function literals, to the innermost: a bound on how deeply the
/// resolver, the evaluator and the tree's drop recurse, so they cannot overflow
/// the stack whatever the input.
pub const MAX_EXPR_DEPTH: usize = 2_000;

type PResult<T> = Result<T, SyntaxError>;

/// Parses a whole program (a file, a `-c` string, a REPL entry).
pub fn parse_program(src: u32, text: &str) -> PResult<Program> {
    // Parsing recurses once per nesting level; give it room whatever the caller's
    // stack, so that the depth limit, not the stack, decides.
    stacker::grow(64 * 1024 * 1024, || {
        let laid = layout(src, text)?;
        let mut pairs = match Grammar::parse(Rule::program, &laid) {
            Ok(pairs) => pairs,
            Err(e) => {
                // Parse again, recording what was tried where it failed: that
                // names the punctuation that would have fitted (`,` or `)`),
                // which the rule names alone do not. Only errors pay for it.
                pest::set_error_detail(true);
                let detailed = Grammar::parse(Rule::program, &laid).err();
                pest::set_error_detail(false);
                return Err(convert(src, &laid, detailed.unwrap_or(e)));
            }
        };
        let program = pairs.next().expect("program rule");
        let b = Builder {
            src,
            scope: Cell::new(Scope::default()),
            depth: Cell::new(0),
        };
        let mut stmts = Vec::new();
        for p in program.into_inner() {
            if p.as_rule() != Rule::EOI {
                stmts.push(b.stmt(p)?);
            }
        }
        Ok(Program {
            body: Block::new(stmts),
            src,
        })
    })
}

fn convert(src: u32, text: &str, e: pest::error::Error<Rule>) -> SyntaxError {
    let mut pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<&str> = Vec::new();
    let mut operator = false;
    let mut positives: &[Rule] = &[];
    if let pest::error::ErrorVariant::ParsingError { positives: p, .. } = &e.variant {
        positives = p;
    }
    let attempts = e.parse_attempts();
    // A rule can fail where it started although its parts got further (a
    // parameter list): then where they stopped says more, if what would have
    // fitted there is punctuation.
    let further = attempts
        .as_ref()
        .filter(|a| a.max_position > pos)
        .filter(|a| a.expected_tokens().iter().any(|t| punctuation(t).is_some()));
    if let Some(a) = further {
        pos = a.max_position;
    } else {
        let wants_expr = positives
            .iter()
            .any(|r| matches!(r, Rule::expr | Rule::postfix_expr | Rule::primary));
        for r in positives {
            // `-` and `not` start an expression; a name is one.
            if wants_expr && matches!(r, Rule::neg | Rule::kw_not | Rule::prefix | Rule::ident) {
                continue;
            }
            if is_operator(*r) {
                operator = true;
                continue;
            }
            let n = rule_name(*r);
            if !expected.contains(&n) {
                expected.push(n);
            }
        }
    }
    // Punctuation that would have fitted (the grammar's literals have no rule).
    if let Some(a) = &attempts {
        if a.max_position == pos {
            for t in a.expected_tokens() {
                let Some(lit) = punctuation(&t) else { continue };
                if !expected.contains(&lit) {
                    expected.push(lit);
                }
            }
        }
    }
    if operator {
        expected.push("an operator");
    }
    let found = found_at(text, pos);
    let message = match expected.len() {
        0 => format!("unexpected {found}"),
        1 => format!("expected {}, found {found}", expected[0]),
        _ => {
            let last = expected.pop().unwrap_or_default();
            format!("expected {} or {last}, found {found}", expected.join(", "))
        }
    };
    let rest = &text[pos.min(text.len())..];
    SyntaxError {
        message,
        span: Span::new(
            src,
            pos,
            pos + rest.chars().next().map_or(0, char::len_utf8),
        ),
        incomplete: rest.trim().is_empty(),
    }
}

/// The literal tokens an error names when they would have fitted.
fn punctuation(t: &impl std::fmt::Display) -> Option<&'static str> {
    Some(match t.to_string().as_str() {
        "," => "`,`",
        ")" => "`)`",
        "]" => "`]`",
        "}" => "`}`",
        ":" => "`:`",
        "=" => "`=`",
        _ => return None,
    })
}

/// Rules that continue an expression already there: binary operators and the
/// postfix call, index and field. Errors list them as one "an operator".
fn is_operator(r: Rule) -> bool {
    matches!(
        r,
        Rule::infix
            | Rule::or_op
            | Rule::and_op
            | Rule::not_in
            | Rule::in_op
            | Rule::eq
            | Rule::ne
            | Rule::le
            | Rule::ge
            | Rule::lt
            | Rule::gt
            | Rule::add
            | Rule::sub
            | Rule::floordiv
            | Rule::mul
            | Rule::div
            | Rule::rem
            | Rule::postfix
            | Rule::call_args
            | Rule::index
            | Rule::field
            | Rule::kw_in
            | Rule::kw_and
            | Rule::kw_or
            | Rule::kw_not
    )
}

fn found_at(text: &str, pos: usize) -> String {
    let rest = &text[pos.min(text.len())..];
    match rest.chars().next() {
        None => "end of input".into(),
        Some('\n') => "end of line".into(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            let w: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            format!("`{w}`")
        }
        Some('"' | '\'') => "a string".into(),
        Some(c) => format!("`{c}`"),
    }
}

/// What each rule is called in an error message. No `_` arm: a new rule must be
/// given a name here.
fn rule_name(r: Rule) -> &'static str {
    match r {
        Rule::WHITESPACE | Rule::nl | Rule::sep => "end of line",
        Rule::EOI => "end of line",
        Rule::program | Rule::stmts | Rule::stmt | Rule::simple_stmt => "statement",
        Rule::block => "block `{ ... }`",
        Rule::let_stmt => "`let`",
        Rule::target | Rule::target_list => "name or `[names]`",
        Rule::fn_decl => "function declaration",
        Rule::params => "parameter list",
        Rule::param => "parameter",
        Rule::if_stmt => "`if`",
        Rule::else_part => "`else`",
        Rule::while_stmt => "`while`",
        Rule::for_stmt => "`for`",
        Rule::try_stmt => "`try`",
        Rule::catch_part => "`catch`",
        Rule::finally_part => "`finally`",
        Rule::with_stmt => "`with`",
        Rule::return_stmt => "`return`",
        Rule::break_stmt => "`break`",
        Rule::continue_stmt => "`continue`",
        Rule::throw_stmt => "`throw`",
        Rule::assign_op => "`=`",
        Rule::expr | Rule::postfix_expr | Rule::primary | Rule::prefix => "expression",
        Rule::neg => "`-`",
        Rule::not_op => "`not`",
        Rule::infix => "operator",
        Rule::or_op => "`or`",
        Rule::and_op => "`and`",
        Rule::not_in => "`not in`",
        Rule::in_op => "`in`",
        Rule::eq => "`==`",
        Rule::ne => "`!=`",
        Rule::le => "`<=`",
        Rule::ge => "`>=`",
        Rule::lt => "`<`",
        Rule::gt => "`>`",
        Rule::add => "`+`",
        Rule::sub => "`-`",
        Rule::floordiv => "`//`",
        Rule::mul => "`*`",
        Rule::div => "`/`",
        Rule::rem => "`%`",
        Rule::postfix => "`(`, `[` or `.`",
        Rule::call_args => "`(`",
        Rule::arg | Rule::named_arg => "argument",
        Rule::index => "`[`",
        Rule::slice_colon => "`:`",
        Rule::field => "`.`",
        Rule::paren => "`(`",
        Rule::list_lit => "list",
        Rule::map_lit => "map",
        Rule::pair => "`key: value`",
        Rule::fn_lit => "`fn`",
        Rule::spawn_expr => "`spawn`",
        Rule::join_expr => "`join`",
        Rule::number | Rule::hex | Rule::float | Rule::int | Rule::digits | Rule::exponent => {
            "number"
        }
        Rule::string | Rule::raw_string => "string",
        Rule::str_text | Rule::str_escape => "string text",
        Rule::interp => "`{expression}`",
        Rule::fmt_spec | Rule::fmt_text => "format spec",
        Rule::ident_char | Rule::word | Rule::ident | Rule::name => "name",
        Rule::keyword => "keyword",
        Rule::kw_let => "`let`",
        Rule::kw_fn => "`fn`",
        Rule::kw_return => "`return`",
        Rule::kw_if => "`if`",
        Rule::kw_else => "`else`",
        Rule::kw_while => "`while`",
        Rule::kw_for => "`for`",
        Rule::kw_in => "`in`",
        Rule::kw_break => "`break`",
        Rule::kw_continue => "`continue`",
        Rule::kw_try => "`try`",
        Rule::kw_catch => "`catch`",
        Rule::kw_finally => "`finally`",
        Rule::kw_throw => "`throw`",
        Rule::kw_with => "`with`",
        Rule::kw_as => "`as`",
        Rule::kw_spawn => "`spawn`",
        Rule::kw_daemon => "`daemon`",
        Rule::kw_join => "`join`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_not => "`not`",
        Rule::kw_nil => "`nil`",
        Rule::kw_true => "`true`",
        Rule::kw_false => "`false`",
    }
}

fn pratt() -> &'static PrattParser<Rule> {
    static P: OnceLock<PrattParser<Rule>> = OnceLock::new();
    P.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::or_op, Assoc::Left))
            .op(Op::infix(Rule::and_op, Assoc::Left))
            .op(Op::prefix(Rule::not_op))
            .op(Op::infix(Rule::eq, Assoc::Left)
                | Op::infix(Rule::ne, Assoc::Left)
                | Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left)
                | Op::infix(Rule::in_op, Assoc::Left)
                | Op::infix(Rule::not_in, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::floordiv, Assoc::Left)
                | Op::infix(Rule::rem, Assoc::Left))
            .op(Op::prefix(Rule::neg))
    })
}

struct Builder {
    src: u32,
    /// Where the statement being built sits: inside how many loops of the
    /// innermost function, and whether inside a function at all. `return`,
    /// `break` and `continue` are checked against it.
    scope: Cell<Scope>,
    /// Operators enclosing the expression being built (see MAX_EXPR_DEPTH).
    depth: Cell<usize>,
}

#[derive(Clone, Copy, Default)]
struct Scope {
    loops: u32,
    in_fn: bool,
}

fn unresolved(name: &str, span: Span) -> Var {
    Var {
        name: name.into(),
        span,
        res: Binding::Dynamic,
    }
}

impl Builder {
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.src, s.start(), s.end())
    }

    fn err<T>(&self, p: &Pair<Rule>, msg: impl Into<String>) -> PResult<T> {
        Err(SyntaxError {
            message: msg.into(),
            span: self.span(p),
            incomplete: false,
        })
    }

    /// Builds `f` in a new function body (a `fn` or a spawned block): `return`
    /// is allowed there, and loops outside it are out of reach.
    fn in_function<T>(&self, f: impl FnOnce() -> PResult<T>) -> PResult<T> {
        let outer = self.scope.replace(Scope {
            loops: 0,
            in_fn: true,
        });
        let r = f();
        self.scope.set(outer);
        r
    }

    /// Builds a loop body.
    fn in_loop<T>(&self, f: impl FnOnce() -> PResult<T>) -> PResult<T> {
        let outer = self.scope.get();
        self.scope.set(Scope {
            loops: outer.loops + 1,
            ..outer
        });
        let r = f();
        self.scope.set(outer);
        r
    }

    fn var(&self, p: Pair<Rule>) -> Var {
        unresolved(p.as_str(), self.span(&p))
    }

    fn block(&self, p: Pair<Rule>) -> PResult<Block> {
        let stmts = p
            .into_inner()
            .map(|s| self.stmt(s))
            .collect::<PResult<_>>()?;
        Ok(Block::new(stmts))
    }

    fn stmt(&self, p: Pair<Rule>) -> PResult<Stmt> {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut it = p.into_inner();
        Ok(match rule {
            Rule::let_stmt => {
                it.next(); // let
                let target = self.target(it.next().expect("target"))?;
                let value = self.expr(it.next().expect("value"))?;
                Stmt::Let(target, value, span)
            }
            Rule::fn_decl => {
                it.next(); // fn
                let name = self.var(it.next().expect("name"));
                let def = self.fn_def(name.name.clone(), span, it)?;
                Stmt::Fn(name, def)
            }
            Rule::if_stmt => {
                let mut branches = Vec::new();
                let mut otherwise = None;
                let mut it = it;
                loop {
                    it.next(); // if
                    let cond = self.expr(it.next().expect("cond"))?;
                    let body = self.block(it.next().expect("body"))?;
                    branches.push((cond, body));
                    if it.next().is_none() {
                        break; // no else
                    }
                    let next = it.next().expect("else body");
                    if next.as_rule() == Rule::if_stmt {
                        it = next.into_inner();
                    } else {
                        otherwise = Some(self.block(next)?);
                        break;
                    }
                }
                Stmt::If(branches, otherwise)
            }
            Rule::while_stmt => {
                it.next();
                let cond = self.expr(it.next().expect("cond"))?;
                let body = self.in_loop(|| self.block(it.next().expect("body")))?;
                Stmt::While(cond, body)
            }
            Rule::for_stmt => {
                it.next();
                let target = self.target(it.next().expect("target"))?;
                it.next(); // in
                let iter = self.expr(it.next().expect("iter"))?;
                let body = self.in_loop(|| self.block(it.next().expect("body")))?;
                Stmt::For(target, iter, body, span)
            }
            Rule::try_stmt => {
                it.next();
                let body = self.block(it.next().expect("body"))?;
                let mut t = TryStmt {
                    body,
                    catch: None,
                    finally: None,
                };
                for part in it {
                    let r = part.as_rule();
                    let mut pi = part.into_inner();
                    pi.next(); // keyword
                    if r == Rule::catch_part {
                        let first = pi.next().expect("catch body");
                        let (var, body) = if first.as_rule() == Rule::ident {
                            (Some(self.var(first)), pi.next().expect("catch body"))
                        } else {
                            (None, first)
                        };
                        t.catch = Some((var, self.block(body)?));
                    } else {
                        t.finally = Some(self.block(pi.next().expect("finally body"))?);
                    }
                }
                if t.catch.is_none() && t.finally.is_none() {
                    return Err(SyntaxError {
                        message: "expected `catch` or `finally` after `try { ... }`".into(),
                        span,
                        incomplete: false,
                    });
                }
                Stmt::Try(Box::new(t))
            }
            Rule::with_stmt => {
                it.next();
                let subject = self.expr(it.next().expect("subject"))?;
                let mut next = it.next().expect("body");
                let mut name = None;
                if next.as_rule() == Rule::kw_as {
                    name = Some(self.var(it.next().expect("as name")));
                    next = it.next().expect("body");
                }
                Stmt::With(subject, name, self.block(next)?, span)
            }
            Rule::return_stmt => {
                if !self.scope.get().in_fn {
                    return Err(SyntaxError {
                        message: "`return` outside a function".into(),
                        span,
                        incomplete: false,
                    });
                }
                it.next();
                Stmt::Return(it.next().map(|e| self.expr(e)).transpose()?, span)
            }
            Rule::break_stmt | Rule::continue_stmt if self.scope.get().loops == 0 => {
                let kw = if rule == Rule::break_stmt {
                    "break"
                } else {
                    "continue"
                };
                return Err(SyntaxError {
                    message: format!("`{kw}` outside a loop"),
                    span,
                    incomplete: false,
                });
            }
            Rule::break_stmt => Stmt::Break(span),
            Rule::continue_stmt => Stmt::Continue(span),
            Rule::throw_stmt => {
                it.next();
                Stmt::Throw(self.expr(it.next().expect("value"))?, span)
            }
            Rule::simple_stmt => {
                let lhs_pair = it.next().expect("expr");
                let lhs = self.expr(lhs_pair.clone())?;
                match it.next() {
                    None => Stmt::Expr(lhs),
                    Some(op) => {
                        let op_span = self.span(&op);
                        let op = match op.as_str() {
                            "=" => None,
                            "+=" => Some(BinOp::Add),
                            "-=" => Some(BinOp::Sub),
                            "*=" => Some(BinOp::Mul),
                            "/=" => Some(BinOp::Div),
                            "//=" => Some(BinOp::FloorDiv),
                            _ => Some(BinOp::Rem),
                        };
                        let rhs = self.expr(it.next().expect("rhs"))?;
                        let lv = match lhs {
                            Expr::Var(v) => LValue::Var(v),
                            Expr::Index(o, i, s) => LValue::Index(o, i, s),
                            Expr::Field(o, n, s) => LValue::Field(o, n, s),
                            _ => {
                                return self.err(
                                    &lhs_pair,
                                    "cannot assign to this expression (expected a name, `x[i]` or `x.field`)",
                                )
                            }
                        };
                        Stmt::Assign(lv, op, rhs, op_span)
                    }
                }
            }
            r => unreachable!("statement rule {r:?}"),
        })
    }

    fn target(&self, p: Pair<Rule>) -> PResult<Target> {
        let inner = p.into_inner().next().expect("target inner");
        Ok(match inner.as_rule() {
            Rule::ident => Target::Var(self.var(inner)),
            _ => {
                let span = self.span(&inner);
                Target::List(inner.into_inner().map(|v| self.var(v)).collect(), span)
            }
        })
    }

    fn fn_def(&self, name: Sym, span: Span, mut it: Pairs<Rule>) -> PResult<Rc<FnDef>> {
        let params_pair = it.next().expect("params");
        let mut params = Vec::new();
        let mut seen_default = false;
        for p in params_pair.into_inner() {
            let mut pi = p.clone().into_inner();
            let var = self.var(pi.next().expect("param name"));
            if params.iter().any(|q: &Param| q.var.name == var.name) {
                return self.err(&p, format!("duplicate parameter `{}`", var.name));
            }
            let default = pi.next().map(|e| self.expr(e)).transpose()?;
            if default.is_some() {
                seen_default = true;
            } else if seen_default {
                return self.err(
                    &p,
                    "a parameter without a default cannot follow one with a default",
                );
            }
            params.push(Param { var, default });
        }
        let body = self.in_function(|| self.block(it.next().expect("body")))?;
        Ok(Rc::new(FnDef {
            name,
            params,
            body,
            span,
            nslots: 0,
            captures: Vec::new(),
            globals: Vec::new(),
            dynamic: Vec::new(),
        }))
    }

    fn expr(&self, p: Pair<Rule>) -> PResult<Expr> {
        let pairs = p.into_inner();
        let first = pairs.peek().expect("non-empty expr");
        let ops = pairs
            .clone()
            .filter(|p| p.as_rule() != Rule::postfix_expr)
            .count();
        self.deeper(ops + 1, &first, || self.pratt_expr(pairs))
    }

    /// Runs `f` one level `n` operators deeper, or fails if that is too deep.
    fn deeper<T>(&self, n: usize, at: &Pair<Rule>, f: impl FnOnce() -> PResult<T>) -> PResult<T> {
        let outer = self.depth.get();
        if outer + n > MAX_EXPR_DEPTH {
            return self.err(
                at,
                format!("expression nested too deeply (more than {MAX_EXPR_DEPTH} operators deep)"),
            );
        }
        self.depth.set(outer + n);
        let r = f();
        self.depth.set(outer);
        r
    }

    fn pratt_expr(&self, pairs: Pairs<Rule>) -> PResult<Expr> {
        pratt()
            .map_primary(|p| self.postfix_expr(p))
            .map_prefix(|op, rhs| {
                let span = self.span(&op);
                Ok(match op.as_rule() {
                    Rule::neg => match rhs? {
                        Expr::Int(n) => Expr::Int(-n),
                        Expr::Float(f) => Expr::Float(-f),
                        e => Expr::Neg(Box::new(e), span),
                    },
                    _ => Expr::Not(Box::new(rhs?)),
                })
            })
            .map_infix(|lhs, op, rhs| {
                let span = self.span(&op);
                let (l, r) = (Box::new(lhs?), Box::new(rhs?));
                let bin = match op.as_rule() {
                    Rule::or_op => return Ok(Expr::Or(l, r)),
                    Rule::and_op => return Ok(Expr::And(l, r)),
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::in_op => BinOp::In,
                    Rule::not_in => BinOp::NotIn,
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::floordiv => BinOp::FloorDiv,
                    _ => BinOp::Rem,
                };
                Ok(Expr::Binary(bin, l, r, span))
            })
            .parse(pairs)
    }

    fn args(&self, p: Pair<Rule>) -> PResult<Vec<Arg>> {
        let mut args = Vec::new();
        let mut named_seen = false;
        for a in p.into_inner() {
            if a.as_rule() == Rule::named_arg {
                let mut ai = a.into_inner();
                let name: Sym = ai.next().expect("arg name").as_str().into();
                named_seen = true;
                args.push(Arg {
                    name: Some(name),
                    value: self.expr(ai.next().expect("arg value"))?,
                });
            } else {
                if named_seen {
                    return self.err(&a, "a positional argument cannot follow a named one");
                }
                args.push(Arg {
                    name: None,
                    value: self.expr(a)?,
                });
            }
        }
        Ok(args)
    }

    fn postfix_expr(&self, p: Pair<Rule>) -> PResult<Expr> {
        let ops = p.clone().into_inner().count() - 1;
        if ops == 0 {
            return self.postfix_chain(p);
        }
        let at = p.clone();
        self.deeper(ops, &at, || self.postfix_chain(p))
    }

    fn postfix_chain(&self, p: Pair<Rule>) -> PResult<Expr> {
        let start = p.as_span().start();
        let mut it = p.into_inner().peekable();
        let mut e = self.primary(it.next().expect("primary"))?;
        while let Some(post) = it.next() {
            // A call points at the start of what is called.
            let span = Span::new(self.src, start, post.as_span().end());
            match post.as_rule() {
                Rule::call_args => {
                    let args = self.args(post)?;
                    e = Expr::Call(Box::new(e), args, span);
                }
                Rule::field => {
                    // Errors point at the name after the dot.
                    let name_pair = post.into_inner().next().expect("field name");
                    let name_span = self.span(&name_pair);
                    let name: Sym = name_pair.as_str().into();
                    if it.peek().map(|n| n.as_rule()) == Some(Rule::call_args) {
                        let call = it.next().expect("call args");
                        let span = name_span.to(self.span(&call));
                        let args = self.args(call)?;
                        e = Expr::Method(Box::new(e), name, args, span);
                    } else {
                        e = Expr::Field(Box::new(e), name, name_span);
                    }
                }
                Rule::index => {
                    // Errors point at the `[`.
                    let span = self.span(&post);
                    let mut lo = None;
                    let mut hi = None;
                    let mut colon = false;
                    for part in post.into_inner() {
                        match part.as_rule() {
                            Rule::slice_colon => colon = true,
                            _ if colon => hi = Some(Box::new(self.expr(part)?)),
                            _ => lo = Some(Box::new(self.expr(part)?)),
                        }
                    }
                    if colon {
                        e = Expr::Slice(Box::new(e), lo, hi, span);
                    } else {
                        match lo {
                            Some(i) => e = Expr::Index(Box::new(e), i, span),
                            None => {
                                return Err(SyntaxError {
                                    message: "expected an index inside `[ ]`".into(),
                                    span,
                                    incomplete: false,
                                })
                            }
                        }
                    }
                }
                r => unreachable!("postfix rule {r:?}"),
            }
        }
        Ok(e)
    }

    fn primary(&self, p: Pair<Rule>) -> PResult<Expr> {
        let span = self.span(&p);
        Ok(match p.as_rule() {
            Rule::number => self.number(p)?,
            Rule::string => self.string(p)?,
            Rule::raw_string => {
                let s = p.as_str();
                let body = &s[1..s.len() - 1];
                Expr::Str(
                    body.replace("\\\\", "\u{0}")
                        .replace("\\'", "'")
                        .replace('\u{0}', "\\")
                        .into(),
                )
            }
            Rule::kw_nil => Expr::Nil,
            Rule::kw_true => Expr::Bool(true),
            Rule::kw_false => Expr::Bool(false),
            Rule::ident => Expr::Var(self.var(p)),
            Rule::paren => self.expr(p.into_inner().next().expect("paren inner"))?,
            Rule::list_lit => Expr::List(
                p.into_inner()
                    .map(|e| self.expr(e))
                    .collect::<PResult<_>>()?,
            ),
            Rule::map_lit => {
                let mut pairs = Vec::new();
                for kv in p.into_inner() {
                    let mut ki = kv.into_inner();
                    let k = self.expr(ki.next().expect("key"))?;
                    let v = self.expr(ki.next().expect("value"))?;
                    pairs.push((k, v));
                }
                Expr::Map(pairs, span)
            }
            Rule::fn_lit => {
                let mut it = p.into_inner();
                it.next(); // fn
                Expr::Fn(self.fn_def("<fn>".into(), span, it)?)
            }
            Rule::spawn_expr => {
                let mut it = p.into_inner();
                let daemon = it.next().expect("kw").as_rule() == Rule::kw_daemon;
                let body = it.next().expect("spawn body");
                let body = if body.as_rule() == Rule::block {
                    SpawnBody::Block(self.in_function(|| self.block(body))?)
                } else {
                    let bp = body.clone();
                    match self.postfix_expr(body)? {
                        Expr::Call(callee, args, _) => SpawnBody::Call(*callee, args),
                        Expr::Method(obj, name, args, s) => {
                            // `spawn obj.method(..)`: the callee is the field.
                            SpawnBody::Call(Expr::Field(obj, name, s), args)
                        }
                        _ => {
                            let kw = if daemon { "daemon" } else { "spawn" };
                            return self.err(
                                &bp,
                                format!("`{kw}` expects a call like `f(x)` or a block `{{ ... }}`"),
                            );
                        }
                    }
                };
                Expr::Spawn(Box::new(Spawn { daemon, body, span }))
            }
            Rule::join_expr => {
                let mut it = p.into_inner();
                it.next();
                Expr::Join(
                    Box::new(self.postfix_expr(it.next().expect("join operand"))?),
                    span,
                )
            }
            r => unreachable!("primary rule {r:?}"),
        })
    }

    fn number(&self, p: Pair<Rule>) -> PResult<Expr> {
        let inner = p.into_inner().next().expect("number inner");
        let text: String = inner.as_str().chars().filter(|c| *c != '_').collect();
        let too_big = || {
            self.err(
                &inner,
                format!("number `{}` does not fit in a 64-bit int", inner.as_str()),
            )
        };
        Ok(match inner.as_rule() {
            Rule::hex => match i64::from_str_radix(&text[2..], 16) {
                Ok(n) => Expr::Int(n),
                Err(_) => return too_big(),
            },
            Rule::float => Expr::Float(text.parse().unwrap_or(f64::NAN)),
            _ => match text.parse::<i64>() {
                Ok(n) => Expr::Int(n),
                Err(_) => return too_big(),
            },
        })
    }

    fn string(&self, p: Pair<Rule>) -> PResult<Expr> {
        let mut parts: Vec<StrPart> = Vec::new();
        let mut lit = String::new();
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::str_text => lit.push_str(part.as_str()),
                Rule::str_escape => {
                    let s = part.as_str();
                    match s {
                        "{{" => lit.push('{'),
                        "}}" => lit.push('}'),
                        _ => match &s[1..] {
                            "n" => lit.push('\n'),
                            // A backslash at the end of a line continues the
                            // string on the next one, without the line break.
                            "\n" => {}
                            "t" => lit.push('\t'),
                            "r" => lit.push('\r'),
                            "0" => lit.push('\0'),
                            "\\" => lit.push('\\'),
                            "\"" => lit.push('"'),
                            "{" => lit.push('{'),
                            "}" => lit.push('}'),
                            "'" => lit.push('\''),
                            other => {
                                return self.err(&part, format!("unknown escape `\\{other}` (known: \\n \\t \\r \\0 \\\\ \\\" \\{{ \\}})"))
                            }
                        },
                    }
                }
                _ => {
                    let span = self.span(&part);
                    if !lit.is_empty() {
                        parts.push(StrPart::Lit(std::mem::take(&mut lit).into()));
                    }
                    let mut it = part.into_inner();
                    let e = self.expr(it.next().expect("interp expr"))?;
                    let spec = it.next().map(|s| -> Sym {
                        s.into_inner().next().map_or("", |t| t.as_str()).into()
                    });
                    parts.push(StrPart::Expr(e, spec, span));
                }
            }
        }
        if parts.is_empty() {
            return Ok(Expr::Str(lit.into()));
        }
        if !lit.is_empty() {
            parts.push(StrPart::Lit(lit.into()));
        }
        Ok(Expr::Interp(parts))
    }
}

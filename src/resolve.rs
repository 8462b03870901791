//! Names -> slots, before anything runs. Each `let` gets its own slot in the
//! enclosing function's frame (or among the top-level variables); each name use is
//! bound to a local (depth, slot), a global slot, a builtin, or — when nothing
//! declares it yet — a dynamic lookup among top-level names at run time, which
//! raises NameError if it is still missing. Each function records exactly what it
//! reaches outside itself: that is what travels when it crosses a process boundary.

use crate::syntax::ast::*;
use std::collections::HashMap;
use std::rc::Rc;

type Scope = HashMap<Sym, u32>;

#[derive(Default)]
struct FnCtx {
    scopes: Vec<Scope>,
    nslots: u32,
    captures: Vec<(u16, u32)>,
    globals: Vec<u32>,
    dynamic: Vec<Sym>,
}

/// The resolver keeps the top-level scope between programs, so a REPL session
/// (or a later `-c` snippet) sees the names declared before.
pub struct Resolver {
    global_scopes: Vec<Scope>,
    global_count: u32,
    funcs: Vec<FnCtx>,
    builtins: HashMap<&'static str, u32>,
    /// Names used but not declared anywhere when they were resolved (for
    /// `--check`'s warnings; at run time they are dynamic lookups).
    pub dynamic: Vec<(Sym, crate::syntax::Span)>,
}

impl Resolver {
    pub fn new(builtin_names: impl IntoIterator<Item = &'static str>) -> Resolver {
        Resolver {
            global_scopes: vec![Scope::new()],
            global_count: 0,
            funcs: Vec::new(),
            builtins: builtin_names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n, i as u32))
                .collect(),
            dynamic: Vec::new(),
        }
    }

    /// How many top-level slots exist (the interpreter sizes its globals to this).
    pub fn global_count(&self) -> usize {
        self.global_count as usize
    }

    /// The slot of a top-level name, for dynamic lookups at run time.
    pub fn global_slot(&self, name: &str) -> Option<u32> {
        self.global_scopes[0].get(name).copied()
    }

    /// Every name the session knows (for REPL completion).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.global_scopes[0]
            .keys()
            .map(|k| &**k)
            .chain(self.builtins.keys().copied())
    }

    /// Declares a top-level name (e.g. `argv`) and returns its slot.
    pub fn declare_global(&mut self, name: &str) -> u32 {
        let slot = self.global_count;
        self.global_count += 1;
        self.global_scopes[0].insert(name.into(), slot);
        slot
    }

    pub fn resolve_program(&mut self, program: &mut Program) {
        // Top-level statements live in the persistent scope: no new scope here.
        self.hoist(&mut program.body);
        for s in &mut program.body.stmts {
            self.stmt(s);
        }
    }

    fn declare(&mut self, var: &mut Var) {
        match self.funcs.last_mut() {
            Some(f) => {
                let slot = f.nslots;
                f.nslots += 1;
                f.scopes
                    .last_mut()
                    .expect("fn scope")
                    .insert(var.name.clone(), slot);
                var.res = Binding::Local { depth: 0, slot };
            }
            None => {
                let slot = self.global_count;
                self.global_count += 1;
                self.global_scopes
                    .last_mut()
                    .expect("global scope")
                    .insert(var.name.clone(), slot);
                var.res = Binding::Global(slot);
            }
        }
    }

    fn push_scope(&mut self) {
        match self.funcs.last_mut() {
            Some(f) => f.scopes.push(Scope::new()),
            None => self.global_scopes.push(Scope::new()),
        }
    }

    fn pop_scope(&mut self) {
        match self.funcs.last_mut() {
            Some(f) => {
                f.scopes.pop();
            }
            None => {
                self.global_scopes.pop();
            }
        }
    }

    fn lookup(&mut self, var: &mut Var) {
        let n = self.funcs.len();
        for k in (0..n).rev() {
            let found = self.funcs[k]
                .scopes
                .iter()
                .rev()
                .find_map(|s| s.get(&var.name).copied());
            if let Some(slot) = found {
                let depth = (n - 1 - k) as u16;
                for j in k + 1..n {
                    let cap = ((j - k) as u16, slot);
                    if !self.funcs[j].captures.contains(&cap) {
                        self.funcs[j].captures.push(cap);
                    }
                }
                var.res = Binding::Local { depth, slot };
                return;
            }
        }
        if let Some(slot) = self
            .global_scopes
            .iter()
            .rev()
            .find_map(|s| s.get(&var.name).copied())
        {
            for f in &mut self.funcs {
                if !f.globals.contains(&slot) {
                    f.globals.push(slot);
                }
            }
            var.res = Binding::Global(slot);
            return;
        }
        if let Some(&i) = self.builtins.get(&*var.name) {
            var.res = Binding::Builtin(i);
            return;
        }
        var.res = Binding::Dynamic;
        for f in &mut self.funcs {
            if !f.dynamic.contains(&var.name) {
                f.dynamic.push(var.name.clone());
            }
        }
        self.dynamic.push((var.name.clone(), var.span));
    }

    /// Names used somewhere that no top-level declaration provides, even later.
    pub fn undefined_names(&self) -> Vec<(Sym, crate::syntax::Span)> {
        self.dynamic
            .iter()
            .filter(|(n, _)| self.global_slot(n).is_none())
            .cloned()
            .collect()
    }

    /// `fn` declarations are visible in their whole block.
    fn hoist(&mut self, block: &mut Block) {
        for s in &mut block.stmts {
            if let Stmt::Fn(var, _) = s {
                self.declare(var);
            }
        }
    }

    fn block(&mut self, block: &mut Block) {
        self.push_scope();
        self.hoist(block);
        for s in &mut block.stmts {
            self.stmt(s);
        }
        self.pop_scope();
    }

    fn target(&mut self, t: &mut Target) {
        match t {
            Target::Var(v) => self.declare(v),
            Target::List(vs, _) => vs.iter_mut().for_each(|v| self.declare(v)),
        }
    }

    fn stmt(&mut self, s: &mut Stmt) {
        match s {
            Stmt::Let(target, value, _) => {
                self.expr(value);
                self.target(target);
            }
            Stmt::Assign(lv, _, value, _) => {
                self.expr(value);
                match lv {
                    LValue::Var(v) => self.lookup(v),
                    LValue::Index(o, i, _) => {
                        self.expr(o);
                        self.expr(i);
                    }
                    LValue::Field(o, _, _) => self.expr(o),
                }
            }
            Stmt::Expr(e) => self.expr(e),
            Stmt::Fn(_, def) => self.function(def),
            Stmt::If(branches, otherwise) => {
                for (c, b) in branches {
                    self.expr(c);
                    self.block(b);
                }
                if let Some(b) = otherwise {
                    self.block(b);
                }
            }
            Stmt::While(c, b) => {
                self.expr(c);
                self.block(b);
            }
            Stmt::For(target, iter, body, _) => {
                self.expr(iter);
                self.push_scope();
                self.target(target);
                self.block(body);
                self.pop_scope();
            }
            Stmt::Try(t) => {
                self.block(&mut t.body);
                if let Some((var, body)) = &mut t.catch {
                    self.push_scope();
                    if let Some(v) = var {
                        self.declare(v);
                    }
                    self.block(body);
                    self.pop_scope();
                }
                if let Some(f) = &mut t.finally {
                    self.block(f);
                }
            }
            Stmt::With(subject, name, body, _) => {
                self.expr(subject);
                self.push_scope();
                if let Some(v) = name {
                    self.declare(v);
                }
                self.block(body);
                self.pop_scope();
            }
            Stmt::Return(e, _) => {
                if let Some(e) = e {
                    self.expr(e);
                }
            }
            Stmt::Break(_) | Stmt::Continue(_) => {}
            Stmt::Throw(e, _) => self.expr(e),
        }
    }

    fn function(&mut self, def: &mut Rc<FnDef>) {
        let def = Rc::get_mut(def).expect("a freshly parsed function is not shared");
        self.funcs.push(FnCtx {
            scopes: vec![Scope::new()],
            ..FnCtx::default()
        });
        for p in &mut def.params {
            self.declare(&mut p.var);
        }
        for p in &mut def.params {
            if let Some(d) = &mut p.default {
                self.expr(d);
            }
        }
        // The body shares the parameters' scope, so `let` can shadow a parameter.
        self.hoist(&mut def.body);
        for s in &mut def.body.stmts {
            self.stmt(s);
        }
        let ctx = self.funcs.pop().expect("fn ctx");
        def.nslots = ctx.nslots;
        def.captures = ctx.captures;
        def.globals = ctx.globals;
        def.dynamic = ctx.dynamic;
        // What this function captures from its parent is also reached by the parent
        // (one frame further out) — recorded in lookup already.
    }

    fn args(&mut self, args: &mut [Arg]) {
        for a in args {
            self.expr(&mut a.value);
        }
    }

    fn expr(&mut self, e: &mut Expr) {
        match e {
            Expr::Nil | Expr::Bool(_) | Expr::Int(_) | Expr::Float(_) | Expr::Str(_) => {}
            Expr::Interp(parts) => {
                for p in parts {
                    if let StrPart::Expr(e, _, _) = p {
                        self.expr(e);
                    }
                }
            }
            Expr::List(xs) => xs.iter_mut().for_each(|x| self.expr(x)),
            Expr::Map(kvs, _) => {
                for (k, v) in kvs {
                    self.expr(k);
                    self.expr(v);
                }
            }
            Expr::Var(v) => self.lookup(v),
            Expr::Neg(x, _) | Expr::Not(x) => self.expr(x),
            Expr::Binary(_, l, r, _) | Expr::And(l, r) | Expr::Or(l, r) => {
                self.expr(l);
                self.expr(r);
            }
            Expr::Call(callee, args, _) => {
                self.expr(callee);
                self.args(args);
            }
            Expr::Method(obj, _, args, _) => {
                self.expr(obj);
                self.args(args);
            }
            Expr::Field(obj, _, _) => self.expr(obj),
            Expr::Index(o, i, _) => {
                self.expr(o);
                self.expr(i);
            }
            Expr::Slice(o, lo, hi, _) => {
                self.expr(o);
                if let Some(lo) = lo {
                    self.expr(lo);
                }
                if let Some(hi) = hi {
                    self.expr(hi);
                }
            }
            Expr::Fn(def) => self.function(def),
            Expr::Spawn(sp) => match &mut sp.body {
                SpawnBody::Call(callee, args) => {
                    self.expr(callee);
                    self.args(args);
                }
                SpawnBody::Block(b) => self.block(b),
            },
            Expr::Join(x, _) => self.expr(x),
        }
    }
}

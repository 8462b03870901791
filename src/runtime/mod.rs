//! The runtime: values, the tree-walking evaluator, and the builtins.

pub mod builtins;
pub mod error;
pub mod format;
pub mod interp;
pub mod ops;
pub mod output;
pub mod value;
pub mod wire;

use crate::resolve::Resolver;
use crate::syntax::{self, SyntaxError};
use error::{Res, RtError, Unwind};
use std::collections::HashMap;
use value::Value;

/// How one program run ended.
pub enum Outcome {
    /// The program's value (the last expression statement's).
    Value(Value),
    Error(RtError),
    Syntax(SyntaxError),
    Exit(i32),
}

/// The interpreter: top-level variables, the resolver's persistent scope, output,
/// and the process-wide state builtins keep.
pub struct Interp {
    pub globals: Vec<Value>,
    pub resolver: Resolver,
    pub out: output::Output,
    /// User function calls in progress (for the recursion limit).
    pub depth: u32,
    /// `on_signal` handlers by signal number.
    pub signal_handlers: HashMap<i32, Value>,
    /// The script's name, for messages.
    pub script: String,
    /// Set when SIGINT (with no handler) unwound the running code: the REPL
    /// reports it and goes on.
    pub interrupted: bool,
    /// The signal (SIGINT, SIGTERM, SIGHUP, with no handler) that is ending the
    /// program, if one is: the end of the script then stops its children
    /// instead of waiting for them, and a child process dies by it.
    pub exit_signal: Option<i32>,
    /// Children and naming: see `builtins::process`.
    pub procs: builtins::process::ProcState,
    /// `os::process::reaped_count()` when exited children were last collected.
    pub seen_reaped: u64,
    /// Finished call frames kept for reuse (saves an allocation per call).
    pub frame_pool: Vec<std::rc::Rc<value::Frame>>,
}

/// The deepest user-level recursion before a RecursionError.
pub const MAX_DEPTH: u32 = 5_000;

impl Interp {
    pub fn new(script: &str, argv: Vec<String>) -> Interp {
        let mut resolver = Resolver::new(builtins::table().iter().map(|b| b.name));
        let argv_slot = resolver.declare_global("argv");
        let mut interp = Interp {
            globals: Vec::new(),
            resolver,
            out: output::Output::stdout(),
            depth: 0,
            signal_handlers: HashMap::new(),
            script: script.to_string(),
            interrupted: false,
            exit_signal: None,
            procs: builtins::process::ProcState::default(),
            seen_reaped: 0,
            frame_pool: Vec::new(),
        };
        interp.grow_globals();
        interp.globals[argv_slot as usize] =
            Value::list(argv.into_iter().map(|a| Value::Str(a.into())).collect());
        interp
    }

    fn grow_globals(&mut self) {
        let n = self.resolver.global_count();
        if self.globals.len() < n {
            self.globals.resize(n, Value::Undefined);
        }
    }

    /// Parses, resolves and runs one piece of top-level code.
    pub fn run_source(&mut self, name: &str, text: &str) -> Outcome {
        let src = syntax::span::add_source(name, text);
        let mut program = match syntax::parse_program(src, text) {
            Ok(p) => p,
            Err(e) => return Outcome::Syntax(e),
        };
        self.resolver.resolve_program(&mut program);
        self.grow_globals();
        let program = std::rc::Rc::new(program);
        match self.exec_top(&program.body) {
            Ok(v) => Outcome::Value(v),
            Err(Unwind::Error(e)) => Outcome::Error(*e),
            Err(Unwind::Exit(code)) => Outcome::Exit(code),
            Err(Unwind::Return(v)) => Outcome::Value(v),
            Err(Unwind::Break | Unwind::Continue) => Outcome::Value(Value::Nil),
        }
    }

    /// Runs the handlers of pending signals; SIGINT / SIGTERM without a handler
    /// end the program (130 / 143).
    pub fn handle_signals(&mut self) -> Res<()> {
        for signo in crate::os::signal::take() {
            match self.signal_handlers.get(&signo).cloned() {
                Some(handler) => {
                    let name = crate::os::signal::name(signo);
                    let short = name.trim_start_matches("SIG").to_string();
                    self.call(&handler, value::Args::new([Value::Str(short.into())]))?;
                }
                None if signo == libc::SIGINT => {
                    self.interrupted = true;
                    self.exit_signal = Some(signo);
                    return Err(Unwind::Exit(130));
                }
                None if signo == libc::SIGTERM || signo == libc::SIGHUP => {
                    self.exit_signal = Some(signo);
                    return Err(Unwind::Exit(128 + signo));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Checks for signals between statements (two atomic loads when none):
    /// reaps children that have exited, then runs pending signals' handlers.
    #[inline]
    pub fn poll_signals(&mut self) -> Res<()> {
        if crate::os::signal::pending()
            || crate::os::signal::child_exited()
            || crate::os::process::reaped_count() != self.seen_reaped
        {
            self.poll_signals_slow()?;
        }
        Ok(())
    }

    #[cold]
    fn poll_signals_slow(&mut self) -> Res<()> {
        crate::os::process::sweep_if_signalled();
        // Children may also have been reaped inside a sleep or another wait.
        let reaped = crate::os::process::reaped_count();
        if reaped != self.seen_reaped {
            self.seen_reaped = reaped;
            builtins::process::collect_exited(self);
        }
        if crate::os::signal::pending() {
            self.handle_signals()?;
        }
        Ok(())
    }
}

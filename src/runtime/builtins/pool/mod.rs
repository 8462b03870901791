//! Process pools (SPEC §10): `pool(n, maxtasksperchild)`, the `pool` handle,
//! `future`s and the lazy `imap` iterators.
//!
//! A pool is a set of pre-started worker processes, each forked with
//! `fork_child` and talking to the parent over its own pair of pipes (see
//! `os::pool` and `proto`). The parent is single-threaded: whenever a script
//! waits on the pool (`get`, `join`, `map`, iterating an `imap`, ...), `engine::drive`
//! moves jobs to workers and results back with `poll` over the workers' pipes
//! and the signal wake-up descriptor, runs callbacks one at a time, and
//! handles signals promptly. Submitting (`apply_async`) hands work to idle
//! workers at once, without waiting.
//!
//! What a script sees and what was chosen where the SPEC is silent is in
//! `docs/pool.md`.

mod codec;
mod engine;
mod funcs;
mod proto;
mod worker;

use crate::runtime::builtins::core::{collect, seconds};
use crate::runtime::error::{fail, Res, Unwind};
use crate::runtime::format::display;
use crate::runtime::value::{Args, Builtin, Object, RangeVal, Value};
use crate::runtime::Interp;
use engine::{drive, Driven, FutState, ImapAcc, Job, JobArgs, MapAcc, Phase, Shared, Sink};
use funcs::FuncData;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::io::IsTerminal;
use std::rc::Rc;
use std::time::Instant;

pub static BUILTINS: &[Builtin] = &[Builtin {
    name: "pool",
    func: pool,
}];

/// At interpreter exit: pools still open are terminated (no worker outlives
/// the script).
pub fn at_exit(_interp: &mut Interp) {
    engine::terminate_all_pools();
}

fn pool(interp: &mut Interp, args: Args) -> Res<Value> {
    let [n, maxtasks] = args.bind("pool", ["n", "maxtasksperchild"], 0)?;
    let size = match n {
        None | Some(Value::Nil) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        Some(Value::Int(k)) if k >= 1 => k as usize,
        Some(Value::Int(k)) => {
            return fail(
                "ValueError",
                format!("pool() needs at least 1 worker, got {k}"),
            )
        }
        Some(other) => {
            return fail(
                "TypeError",
                format!("pool(): n must be an int, not {}", other.type_name()),
            )
        }
    };
    let maxtasks = match maxtasks {
        None | Some(Value::Nil) => None,
        Some(Value::Int(k)) if k >= 1 => Some(k as u64),
        Some(other) => {
            return fail(
                "ValueError",
                format!(
                    "pool(): maxtasksperchild must be a positive int or nil, got {}",
                    crate::runtime::format::repr(&other)
                ),
            )
        }
    };
    let sh = Shared::start(interp, size, maxtasks)?;
    Ok(Value::object(Pool { sh }))
}

fn callable(func: &str, v: Option<Value>) -> Res<Value> {
    match v {
        Some(f @ (Value::Func(_) | Value::Builtin(_))) => Ok(f),
        Some(other) => fail(
            "TypeError",
            format!("{func}() needs a function, not {}", other.type_name()),
        ),
        None => fail("TypeError", format!("{func}() missing argument `f`")),
    }
}

fn opt_callable(func: &str, what: &str, v: Option<Value>) -> Res<Value> {
    match v {
        None | Some(Value::Nil) => Ok(Value::Nil),
        Some(f @ (Value::Func(_) | Value::Builtin(_))) => Ok(f),
        Some(other) => fail(
            "TypeError",
            format!(
                "{func}(): {what} must be a function or nil, not {}",
                other.type_name()
            ),
        ),
    }
}

fn deadline(func: &str, timeout: Option<Value>) -> Res<Option<Instant>> {
    match timeout {
        None | Some(Value::Nil) => Ok(None),
        Some(t) => {
            let d = seconds(func, &t)?;
            Ok(Some(Instant::now().checked_add(d).unwrap_or_else(|| {
                Instant::now() + std::time::Duration::from_secs(1 << 40)
            })))
        }
    }
}

/// The `pool` handle.
struct Pool {
    sh: Rc<Shared>,
}

impl Object for Pool {
    fn type_name(&self) -> &'static str {
        "pool"
    }

    fn repr(&self) -> String {
        let n = self.sh.size;
        let w = if n == 1 { "worker" } else { "workers" };
        match self.sh.phase() {
            Phase::Running => format!("<pool {n} {w}>"),
            Phase::Closed => format!("<pool {n} {w} closed>"),
            Phase::Terminated => format!("<pool {n} {w} terminated>"),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        let sh = &self.sh;
        sh.check_owner()?;
        match name {
            "apply" => {
                let [f, a] = args.bind("apply", ["f", "args"], 1)?;
                let fs = submit_one(interp, sh, "apply", f, a, Value::Nil, Value::Nil)?;
                let fu = Future {
                    sh: sh.clone(),
                    st: fs,
                };
                fu.get(interp, None, "apply")
            }
            "apply_async" => {
                let [f, a, cb, ecb] = args.bind(
                    "apply_async",
                    ["f", "args", "callback", "error_callback"],
                    1,
                )?;
                let cb = opt_callable("apply_async", "callback", cb)?;
                let ecb = opt_callable("apply_async", "error_callback", ecb)?;
                let fs = submit_one(interp, sh, "apply_async", f, a, cb, ecb)?;
                Ok(Value::object(Future {
                    sh: sh.clone(),
                    st: fs,
                }))
            }
            "map" => {
                let [f, xs, cs, progress] =
                    args.bind("map", ["f", "xs", "chunksize", "progress"], 2)?;
                map(interp, sh, "map", false, f, xs, cs, progress)
            }
            "starmap" => {
                let [f, xs, cs, progress] =
                    args.bind("starmap", ["f", "arg_lists", "chunksize", "progress"], 2)?;
                map(interp, sh, "starmap", true, f, xs, cs, progress)
            }
            "imap" => {
                let [f, xs, cs] = args.bind("imap", ["f", "xs", "chunksize"], 2)?;
                imap(interp, sh, "imap", true, f, xs, cs)
            }
            "imap_unordered" => {
                let [f, xs, cs] = args.bind("imap_unordered", ["f", "xs", "chunksize"], 2)?;
                imap(interp, sh, "imap_unordered", false, f, xs, cs)
            }
            "close" => {
                args.bind("close", [], 0)?;
                close(sh);
                Ok(Value::Nil)
            }
            "join" => {
                args.bind("join", [], 0)?;
                join(interp, sh)?;
                Ok(Value::Nil)
            }
            "terminate" => {
                args.bind("terminate", [], 0)?;
                sh.terminate();
                Ok(Value::Nil)
            }
            _ => fail("TypeError", format!("pool has no method `{name}`")),
        }
    }

    fn enter(&self, _interp: &mut Interp, this: &Value) -> Res<Value> {
        self.sh.check_owner()?;
        Ok(this.clone())
    }

    /// `with pool(n) as p { }`: close, then join. When a signal is ending the
    /// program (Ctrl-C, SIGTERM) the pool is terminated instead of waiting for
    /// its work.
    fn exit(&self, interp: &mut Interp) -> Res<()> {
        if self.sh.check_owner().is_err() {
            return Ok(());
        }
        if interp.interrupted || interp.exit_signal.is_some() {
            self.sh.terminate();
        } else {
            close(&self.sh);
        }
        join(interp, &self.sh)
    }
}

fn close(sh: &Shared) {
    let mut st = sh.st.borrow_mut();
    if st.phase == Phase::Running {
        st.phase = Phase::Closed;
    }
}

/// Waits for the workers to finish their work and exit (after `close`), or to
/// be gone (after `terminate`); runs the callbacks still due.
fn join(interp: &mut Interp, sh: &Shared) -> Res<()> {
    if sh.phase() == Phase::Running {
        return fail("ValueError", "join(): call close() or terminate() first");
    }
    drive(interp, sh, None, |sh| {
        let st = sh.st.borrow();
        st.unfinished == 0
            && sh.workers_alive() == 0
            && (sh.in_callback.get() || st.callbacks.is_empty())
    })?;
    Ok(())
}

/// Submits one call (`apply`, `apply_async`); the arguments are copied now.
fn submit_one(
    interp: &mut Interp,
    sh: &Shared,
    name: &str,
    f: Option<Value>,
    a: Option<Value>,
    callback: Value,
    error_callback: Value,
) -> Res<Rc<RefCell<FutState>>> {
    let f = callable(name, f)?;
    let a = match a {
        None | Some(Value::Nil) => Value::list(Vec::new()),
        Some(l @ Value::List(_)) => l,
        Some(other) => {
            return fail(
                "TypeError",
                format!("{name}(): args must be a list, not {}", other.type_name()),
            )
        }
    };
    sh.check_running(name)?;
    let func = sh.func(interp, &f)?;
    let mut bytes = Vec::new();
    codec::encode(interp, &[a], &mut bytes)?;
    let fs = Rc::new(RefCell::new(FutState {
        outcome: None,
        callback,
        error_callback,
    }));
    sh.submit(
        interp,
        [Job {
            func,
            star: true,
            args: JobArgs::Bytes(bytes),
            n: 1,
            sink: Sink::Future(fs.clone()),
        }],
    )?;
    Ok(fs)
}

/// Python's default: about four chunks per worker.
fn default_chunksize(n: usize, workers: usize) -> usize {
    let per = workers.max(1) * 4;
    n / per + usize::from(!n.is_multiple_of(per))
}

fn chunksize_arg(func: &str, v: Option<Value>) -> Res<Option<usize>> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Int(k)) if k >= 1 => Ok(Some(k as usize)),
        Some(Value::Int(k)) => fail(
            "ValueError",
            format!("{func}(): chunksize must be at least 1, got {k}"),
        ),
        Some(other) => fail(
            "TypeError",
            format!(
                "{func}(): chunksize must be an int, not {}",
                other.type_name()
            ),
        ),
    }
}

fn progress_bar(n: usize) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let bar = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed} < {eta}, {rate}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let r = s.per_sec();
                let _ = if r >= 10.0 {
                    write!(w, "{r:.0}/s")
                } else {
                    write!(w, "{r:.1}/s")
                };
            },
        );
    bar.set_style(style);
    bar
}

#[allow(clippy::too_many_arguments)]
fn map(
    interp: &mut Interp,
    sh: &Shared,
    name: &str,
    star: bool,
    f: Option<Value>,
    xs: Option<Value>,
    chunksize: Option<Value>,
    progress: Option<Value>,
) -> Res<Value> {
    let f = callable(name, f)?;
    let chunksize = chunksize_arg(name, chunksize)?;
    sh.check_running(name)?;
    // A range is sent as slices of itself, never built.
    let (items, range) = match xs.unwrap_or_default() {
        Value::Range(r) if !star => (Vec::new(), Some(*r)),
        xs => (collect(interp, &xs)?, None),
    };
    if star {
        if let Some((i, bad)) = items
            .iter()
            .enumerate()
            .find(|(_, x)| !matches!(x, Value::List(_)))
        {
            return fail(
                "TypeError",
                format!(
                    "starmap() needs a list of argument lists; item {i} is {}",
                    bad.type_name()
                ),
            );
        }
    }
    let n = range.map_or(items.len(), |r| r.len());
    if n == 0 {
        return Ok(Value::list(Vec::new()));
    }
    let cs = chunksize.unwrap_or_else(|| default_chunksize(n, sh.size));
    let func = sh.func(interp, &f)?;
    let bar = (progress.is_some_and(|p| p.truthy()) && std::io::stderr().is_terminal())
        .then(|| progress_bar(n));
    let acc = Rc::new(RefCell::new(MapAcc {
        results: vec![Value::Nil; n],
        first_error: None,
        remaining: n,
        bar,
    }));
    let mut jobs = Vec::with_capacity(n.div_ceil(cs));
    let mut it = items.into_iter();
    let mut off = 0;
    while off < n {
        let k = cs.min(n - off);
        let args = match range {
            Some(r) => JobArgs::Range {
                start: r.get(off),
                step: r.step,
                count: k,
            },
            None => JobArgs::Items(it.by_ref().take(k).collect()),
        };
        jobs.push(Job {
            func: func.clone(),
            star,
            args,
            n: k,
            sink: Sink::Map(acc.clone(), off),
        });
        off += k;
    }
    sh.submit(interp, jobs)?;
    let r = drive(interp, sh, None, |_| acc.borrow().remaining == 0);
    let mut acc = acc.borrow_mut();
    if let Some(bar) = acc.bar.take() {
        if r.is_ok() {
            bar.finish();
        } else {
            bar.abandon();
        }
        // Leave the bar on its own line, as tqdm does.
        eprintln!();
    }
    r?;
    if let Some((_, e)) = acc.first_error.take() {
        return Err(e.into());
    }
    Ok(Value::list(std::mem::take(&mut acc.results)))
}

/// What an `imap` pulls its items from, lazily.
enum Source {
    Items(std::vec::IntoIter<Value>),
    Range(RangeVal, usize),
    Iter(Value),
    Done,
}

fn imap(
    interp: &mut Interp,
    sh: &Rc<Shared>,
    name: &str,
    ordered: bool,
    f: Option<Value>,
    xs: Option<Value>,
    chunksize: Option<Value>,
) -> Res<Value> {
    let f = callable(name, f)?;
    let cs = chunksize_arg(name, chunksize)?.unwrap_or(1);
    sh.check_running(name)?;
    let src = match xs.unwrap_or_default() {
        Value::List(l) => Source::Items(l.borrow().clone().into_iter()),
        Value::Range(r) => Source::Range(*r, 0),
        o @ Value::Object(_) => Source::Iter(o),
        other @ (Value::Str(_) | Value::Map(_)) => {
            Source::Items(collect(interp, &other)?.into_iter())
        }
        other => {
            return fail(
                "TypeError",
                format!("{name}(): cannot iterate over {}", other.type_name()),
            )
        }
    };
    let func = sh.func(interp, &f)?;
    let it = Imap {
        sh: sh.clone(),
        name: if ordered { "imap" } else { "imap_unordered" },
        acc: Rc::new(RefCell::new(ImapAcc {
            ordered,
            ..ImapAcc::default()
        })),
        src: RefCell::new(src),
        func,
        chunksize: cs,
        next_index: Cell::new(0),
        window: sh.size.saturating_mul(64).saturating_mul(cs),
    };
    // Start the workers on the first items at once (not for a source that
    // may block, such as stdin or a queue: that is read as the loop runs).
    if !matches!(*it.src.borrow(), Source::Iter(_)) {
        it.refill(interp)?;
    }
    Ok(Value::object(it))
}

/// The iterator `imap` / `imap_unordered` return. Items are pulled from the
/// source only while workers have room and at most `window` results wait to
/// be taken, so a huge (or endless) input is never read all up front.
struct Imap {
    sh: Rc<Shared>,
    name: &'static str,
    acc: Rc<RefCell<ImapAcc>>,
    src: RefCell<Source>,
    func: Rc<FuncData>,
    chunksize: usize,
    next_index: Cell<usize>,
    window: usize,
}

impl Imap {
    fn exhausted(&self) -> bool {
        matches!(*self.src.borrow(), Source::Done)
    }

    fn can_refill(&self) -> bool {
        !self.exhausted() && self.acc.borrow().outstanding < self.window && self.sh.hungry()
    }

    fn pull(&self, interp: &mut Interp) -> Res<Option<Value>> {
        let obj = {
            let mut src = self.src.borrow_mut();
            match &mut *src {
                Source::Items(it) => return Ok(it.next()),
                Source::Range(r, i) => {
                    if *i >= r.len() {
                        return Ok(None);
                    }
                    *i += 1;
                    return Ok(Some(Value::Int(r.get(*i - 1))));
                }
                Source::Iter(o) => o.clone(),
                Source::Done => return Ok(None),
            }
        };
        // No borrow is held while the source runs (it may be another imap).
        match &obj {
            Value::Object(o) => o.next_item(interp),
            _ => Ok(None),
        }
    }

    fn submit(&self, interp: &mut Interp, chunk: Vec<Value>) -> Res<()> {
        let k = chunk.len();
        let off = self.next_index.get();
        self.next_index.set(off + k);
        {
            let mut acc = self.acc.borrow_mut();
            acc.outstanding += k;
            if acc.ordered {
                acc.slots.extend(std::iter::repeat_with(|| None).take(k));
            }
        }
        self.sh.submit(
            interp,
            [Job {
                func: self.func.clone(),
                star: false,
                args: JobArgs::Items(chunk),
                n: k,
                sink: Sink::Imap(self.acc.clone(), off),
            }],
        )
    }

    /// Pulls items from the source while workers have room.
    fn refill(&self, interp: &mut Interp) -> Res<()> {
        let mut chunk = Vec::new();
        loop {
            if self.exhausted() {
                break;
            }
            if self.sh.phase() == Phase::Terminated {
                *self.src.borrow_mut() = Source::Done;
                return fail(
                    "Cancelled",
                    "the task was cancelled: the pool was terminated",
                );
            }
            let room = self.acc.borrow().outstanding + chunk.len() < self.window;
            if !room || (chunk.is_empty() && !self.sh.hungry()) {
                break;
            }
            match self.pull(interp) {
                Ok(Some(x)) => {
                    chunk.push(x);
                    if chunk.len() >= self.chunksize {
                        self.submit(interp, std::mem::take(&mut chunk))?;
                    }
                }
                Ok(None) => *self.src.borrow_mut() = Source::Done,
                Err(e) => {
                    *self.src.borrow_mut() = Source::Done;
                    if !chunk.is_empty() {
                        self.submit(interp, chunk)?;
                    }
                    return Err(e);
                }
            }
        }
        if !chunk.is_empty() {
            self.submit(interp, chunk)?;
        }
        Ok(())
    }

    fn take_next(&self) -> Option<Res<Value>> {
        let mut acc = self.acc.borrow_mut();
        let r = if acc.ordered {
            if !matches!(acc.slots.front(), Some(Some(_))) {
                return None;
            }
            acc.base += 1;
            acc.slots.pop_front().flatten()?
        } else {
            acc.ready.pop_front()?
        };
        acc.outstanding -= 1;
        Some(r.map_err(Unwind::from))
    }
}

impl Object for Imap {
    fn type_name(&self) -> &'static str {
        "iterator"
    }

    fn repr(&self) -> String {
        format!("<{} iterator>", self.name)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn next_item(&self, interp: &mut Interp) -> Res<Option<Value>> {
        self.sh.check_owner()?;
        loop {
            if let Some(r) = self.take_next() {
                return r.map(Some);
            }
            if self.acc.borrow().outstanding == 0 && self.exhausted() {
                return Ok(None);
            }
            self.refill(interp)?;
            if self.acc.borrow().has_next() {
                continue;
            }
            let d = drive(interp, &self.sh, None, |_| {
                self.acc.borrow().has_next() || self.can_refill()
            })?;
            if d == Driven::Idle && !self.acc.borrow().has_next() && !self.can_refill() {
                // Nothing in flight and nothing to pull: the source is done.
                if self.acc.borrow().outstanding == 0 {
                    *self.src.borrow_mut() = Source::Done;
                }
            }
        }
    }
}

/// The `future` an `apply_async` returns.
struct Future {
    sh: Rc<Shared>,
    st: Rc<RefCell<FutState>>,
}

impl Future {
    fn settled(&self) -> bool {
        self.st.borrow().outcome.is_some()
    }

    /// Waits (at most until `deadline`); true when the task has finished.
    fn wait(&self, interp: &mut Interp, deadline: Option<Instant>) -> Res<bool> {
        self.sh.check_owner()?;
        let st = self.st.clone();
        drive(interp, &self.sh, deadline, |_| {
            st.borrow().outcome.is_some()
        })?;
        Ok(self.settled())
    }

    fn get(&self, interp: &mut Interp, timeout: Option<Value>, func: &str) -> Res<Value> {
        let shown = timeout.as_ref().map(display);
        let dl = deadline(func, timeout)?;
        if !self.wait(interp, dl)? {
            return fail(
                "Timeout",
                format!(
                    "{func}() timed out after {} s",
                    shown.unwrap_or_else(|| "?".into())
                ),
            );
        }
        match self.st.borrow().outcome.clone() {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(e.into()),
            None => fail("Cancelled", "the task can never finish"),
        }
    }
}

impl Object for Future {
    fn type_name(&self) -> &'static str {
        "future"
    }

    fn repr(&self) -> String {
        match &self.st.borrow().outcome {
            None => "<future pending>".into(),
            Some(Ok(_)) => "<future done>".into(),
            Some(Err(e)) if &*e.kind == "Cancelled" => "<future cancelled>".into(),
            Some(Err(_)) => "<future failed>".into(),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn call_method(&self, interp: &mut Interp, name: &str, args: Args) -> Res<Value> {
        match name {
            "get" => {
                let [t] = args.bind("get", ["timeout"], 0)?;
                self.get(interp, t, "get")
            }
            "wait" => {
                let [t] = args.bind("wait", ["timeout"], 0)?;
                let dl = deadline("wait", t)?;
                Ok(Value::Bool(self.wait(interp, dl)?))
            }
            "ready" => {
                args.bind("ready", [], 0)?;
                Ok(Value::Bool(self.wait(interp, Some(Instant::now()))?))
            }
            "successful" => {
                args.bind("successful", [], 0)?;
                if !self.wait(interp, Some(Instant::now()))? {
                    return fail("ValueError", "successful(): the task has not finished");
                }
                Ok(Value::Bool(matches!(self.st.borrow().outcome, Some(Ok(_)))))
            }
            _ => fail("TypeError", format!("future has no method `{name}`")),
        }
    }
}

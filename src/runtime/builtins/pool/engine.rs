//! The parent's side of a pool: its workers, the queue of jobs, and the one
//! loop (`drive`) that moves jobs to workers and results back, polling the
//! workers' result pipes and the signal wake-up descriptor together.
//!
//! Everything happens on the interpreter's thread. No user code (callbacks,
//! signal handlers, an iterator's source) runs while the pool's state is
//! borrowed: `drive` runs it between steps. No borrow is held across a fork.

use super::codec;
use super::funcs::{FuncCache, FuncData};
use super::proto::*;
use super::worker;
use crate::os::pool as chan;
use crate::os::process::{self, ExitStatus, Pid};
use crate::os::signal;
use crate::runtime::builtins::process::fork_child;
use crate::runtime::error::{fail, Res, RtError, Unwind};
use crate::runtime::value::{Args, ErrorVal, Value};
use crate::runtime::Interp;
use indicatif::ProgressBar;
use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::os::fd::{IntoRawFd, RawFd};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// A task's outcome: its value, or the error it raised.
pub type Outcome = Result<Value, RtError>;

/// A job's results as they came back from its worker.
pub enum Results {
    /// One value per item; the items listed (ascending) failed, and hold
    /// their error as a `Value::Error`.
    Items(Vec<Value>, Vec<u32>),
    /// A map's values, written straight into its result slots; the items
    /// listed failed (their slots hold the error).
    Placed(Vec<u32>),
    /// Every item failed with this error (a lost worker, a cancelled job).
    All(RtError),
}

impl Results {
    fn outcomes(self, n: usize) -> Box<dyn Iterator<Item = Outcome>> {
        match self {
            Results::All(e) => Box::new(std::iter::repeat_n(Err(e), n)),
            Results::Items(values, fails) => {
                let mut fails = fails.into_iter().peekable();
                Box::new(values.into_iter().enumerate().map(move |(i, v)| {
                    if fails.next_if_eq(&(i as u32)).is_some() {
                        Err(error_of(v))
                    } else {
                        Ok(v)
                    }
                }))
            }
            // Only a map's results are placed, and `finish` takes those directly.
            Results::Placed(_) => Box::new(std::iter::empty()),
        }
    }
}

/// The error a failed item's slot holds.
fn error_of(v: Value) -> RtError {
    match v {
        Value::Error(ev) => ev.err.clone(),
        _ => RtError::new("Error", "the task failed"),
    }
}

fn too_few() -> Outcome {
    Err(RtError::new(
        "ValueError",
        "a pool worker sent too few results",
    ))
}

/// How much work (by the measured time per job) a worker is given at once:
/// enough to hide the round trip to the parent for tiny tasks, little enough
/// that work stays spread evenly.
const QUEUE_BUDGET_US: f64 = 10_000.0;
/// Jobs longer than this are handed out one at a time: nothing waits behind
/// a long job while another worker could take it.
const LONG_JOB_US: f64 = 50_000.0;
/// Jobs in flight per worker, at most.
const MAX_DEPTH: usize = 64;
/// How long terminate() gives workers to stop after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);
/// A worker whose result pipe closed but which has not exited after this is
/// killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    Running,
    Closed,
    Terminated,
}

/// Where a job's results go.
pub enum Sink {
    Future(Rc<RefCell<FutState>>),
    Map(Rc<RefCell<MapAcc>>, usize),
    Imap(Rc<RefCell<ImapAcc>>, usize),
}

pub enum JobArgs {
    /// Items, encoded when the job is dispatched (again, if a worker dies
    /// before it starts on them).
    Items(Vec<Value>),
    /// `count` ints from `start` by `step` (a slice of a `range`).
    Range { start: i64, step: i64, count: usize },
    /// The items already encoded (a `codec` payload).
    Bytes(Vec<u8>),
}

/// One task frame's worth of work: a function and one or more items.
pub struct Job {
    pub func: Rc<FuncData>,
    pub star: bool,
    pub args: JobArgs,
    pub n: usize,
    pub sink: Sink,
}

/// The state behind a `future`.
#[derive(Default)]
pub struct FutState {
    pub outcome: Option<Outcome>,
    pub callback: Value,
    pub error_callback: Value,
}

/// The results of one `map` / `starmap`.
pub struct MapAcc {
    pub results: Vec<Value>,
    /// The failed item with the smallest index.
    pub first_error: Option<(usize, RtError)>,
    pub remaining: usize,
    pub bar: Option<ProgressBar>,
}

/// The results of one `imap` / `imap_unordered` not yet taken by the loop.
#[derive(Default)]
pub struct ImapAcc {
    pub ordered: bool,
    /// Ordered: outcomes from index `base` on (None: not back yet).
    pub slots: VecDeque<Option<Outcome>>,
    pub base: usize,
    /// Unordered: outcomes in the order they came back.
    pub ready: VecDeque<Outcome>,
    /// Items submitted and not yet handed to the loop.
    pub outstanding: usize,
}

impl ImapAcc {
    pub fn has_next(&self) -> bool {
        if self.ordered {
            matches!(self.slots.front(), Some(Some(_)))
        } else {
            !self.ready.is_empty()
        }
    }
}

struct Worker {
    pid: Pid,
    /// The process that owns the descriptors (a forked copy must not close them).
    owner: Pid,
    task_w: RawFd,
    result_r: RawFd,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    inflight: VecDeque<Job>,
    /// When the worker started on the job at the front of `inflight`.
    front_since: Instant,
    sent: u64,
    known: HashSet<u32>,
    stopping: bool,
    /// Its task pipe is broken (it is exiting); nothing more is written.
    write_broken: bool,
    /// When its result pipe reached end-of-file (it is exiting).
    eof_at: Option<Instant>,
    killed: bool,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.owner != std::process::id() as Pid {
            return;
        }
        for fd in [self.task_w, self.result_r] {
            chan::untrack(fd);
            // SAFETY: the worker's parent-side descriptors, owned by this struct.
            unsafe { libc::close(fd) };
        }
    }
}

impl Worker {
    /// The work (µs) it still has queued, by the mean job time: what a new
    /// job would wait for behind it.
    fn backlog(&self, mean_us: Option<f64>, now: Instant) -> f64 {
        let n = self.inflight.len() as f64;
        match mean_us {
            None => n,
            Some(_) if n == 0.0 => 0.0,
            Some(m) => {
                let done = now.duration_since(self.front_since).as_secs_f64() * 1e6;
                n * m - done.min(0.95 * m)
            }
        }
    }

    fn accepting(&self, limit: Option<u64>) -> bool {
        !self.stopping
            && !self.write_broken
            && self.eof_at.is_none()
            && limit.is_none_or(|k| self.sent < k)
    }
}

pub struct State {
    pub phase: Phase,
    workers: Vec<Worker>,
    pending: VecDeque<Job>,
    funcs: FuncCache,
    /// Exponentially weighted mean of a job's run time in a worker (µs).
    ewma_us: Option<f64>,
    pub callbacks: VecDeque<(Value, Value)>,
    /// Jobs submitted and not finished.
    pub unfinished: usize,
    /// Bumped whenever a job finishes or a worker leaves (so `step` knows
    /// not to block before the caller has looked).
    events: u64,
}

pub struct Shared {
    pub owner: Pid,
    pub size: usize,
    pub maxtasks: Option<u64>,
    pub st: RefCell<State>,
    pub in_callback: Cell<bool>,
}

thread_local! {
    /// Every pool this process made, so that the ones still open are stopped
    /// when the interpreter exits.
    static POOLS: RefCell<Vec<Weak<Shared>>> = const { RefCell::new(Vec::new()) };
}

pub fn me() -> Pid {
    std::process::id() as Pid
}

impl Shared {
    /// Starts a pool of `size` workers.
    pub fn start(interp: &mut Interp, size: usize, maxtasks: Option<u64>) -> Res<Rc<Shared>> {
        let sh = Rc::new(Shared {
            owner: me(),
            size,
            maxtasks,
            st: RefCell::new(State {
                phase: Phase::Running,
                workers: Vec::with_capacity(size.min(256)),
                pending: VecDeque::new(),
                funcs: FuncCache::default(),
                ewma_us: None,
                callbacks: VecDeque::new(),
                unfinished: 0,
                events: 0,
            }),
            in_callback: Cell::new(false),
        });
        POOLS.with(|p| {
            let mut p = p.borrow_mut();
            p.retain(|w| w.strong_count() > 0);
            p.push(Rc::downgrade(&sh));
        });
        for _ in 0..size {
            match start_worker(interp, &sh) {
                Ok(w) => sh.st.borrow_mut().workers.push(w),
                Err(e) => {
                    sh.terminate();
                    return Err(e);
                }
            }
        }
        Ok(sh)
    }

    /// A pool may be used only by the process that made it (a forked child
    /// has a copy of the handle, but the workers are not its children).
    pub fn check_owner(&self) -> Res<()> {
        if self.owner != me() {
            return fail(
                "ProcessError",
                "a pool can only be used by the process that created it",
            );
        }
        Ok(())
    }

    pub fn check_running(&self, what: &str) -> Res<()> {
        self.check_owner()?;
        match self.st.borrow().phase {
            Phase::Running => Ok(()),
            Phase::Closed => fail("ValueError", format!("{what}(): the pool is closed")),
            Phase::Terminated => fail("ValueError", format!("{what}(): the pool is terminated")),
        }
    }

    /// The cached encoding of `f` for this pool's workers.
    pub fn func(&self, interp: &Interp, f: &Value) -> Res<Rc<FuncData>> {
        let mut st = self.st.borrow_mut();
        let (data, evicted) = st.funcs.resolve(interp, f)?;
        for id in evicted {
            for w in &mut st.workers {
                if w.known.remove(&id) && !w.write_broken {
                    let s = chan::begin_frame(&mut w.wbuf, T_FORGET);
                    w.wbuf.extend_from_slice(&id.to_le_bytes());
                    chan::end_frame(&mut w.wbuf, s);
                }
            }
        }
        Ok(data)
    }

    /// Queues jobs and hands what workers can take now (without waiting).
    /// What the script printed so far is written first, so it comes before
    /// anything the tasks print.
    pub fn submit(&self, interp: &mut Interp, jobs: impl IntoIterator<Item = Job>) -> Res<()> {
        interp.out.flush()?;
        let mut st = self.st.borrow_mut();
        for j in jobs {
            st.unfinished += 1;
            st.pending.push_back(j);
        }
        st.dispatch(interp, self);
        st.flush_writes();
        Ok(())
    }

    /// Stops the workers now: SIGTERM, then SIGKILL after a grace period.
    /// Unfinished jobs are cancelled (their callbacks do not run).
    pub fn terminate(&self) {
        if self.owner != me() {
            return;
        }
        let (pids, jobs) = {
            let mut st = self.st.borrow_mut();
            st.phase = Phase::Terminated;
            let pids: Vec<Pid> = st.workers.iter().map(|w| w.pid).collect();
            let mut jobs: Vec<Job> = st.pending.drain(..).collect();
            for w in &mut st.workers {
                jobs.extend(w.inflight.drain(..));
            }
            (pids, jobs)
        };
        if !pids.is_empty() {
            process::terminate_all(&pids, TERM_GRACE);
            for &p in &pids {
                process::forget(p);
            }
        }
        let mut st = self.st.borrow_mut();
        st.workers.clear();
        for job in jobs {
            let e = RtError::new(
                "Cancelled",
                "the task was cancelled: the pool was terminated",
            );
            st.finish(job, Results::All(e), false);
        }
    }

    pub fn workers_alive(&self) -> usize {
        self.st.borrow().workers.len()
    }

    pub fn phase(&self) -> Phase {
        self.st.borrow().phase
    }

    /// Free places in the workers' queues beyond the jobs already pending.
    pub fn hungry(&self) -> bool {
        let st = self.st.borrow();
        let depth = st.depth();
        let room: usize = st
            .workers
            .iter()
            .filter(|w| w.accepting(self.maxtasks))
            .map(|w| {
                let left = self.maxtasks.map_or(usize::MAX, |k| (k - w.sent) as usize);
                depth.saturating_sub(w.inflight.len()).min(left)
            })
            .sum();
        st.phase != Phase::Terminated && room > st.pending.len()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.owner != me() {
            // A forked copy: the workers are not ours (and `Worker::drop`
            // leaves their descriptors alone).
            return;
        }
        // Nobody can use the pool any more: stop its workers without waiting
        // (the child table reaps them).
        if let Ok(mut st) = self.st.try_borrow_mut() {
            for w in st.workers.drain(..) {
                let _ = process::kill(w.pid, libc::SIGKILL);
                process::forget(w.pid);
            }
        }
    }
}

/// At interpreter exit: pools still open are terminated, so no worker
/// outlives the script.
pub fn terminate_all_pools() {
    let pools: Vec<Rc<Shared>> = POOLS.with(|p| {
        p.borrow_mut()
            .drain(..)
            .filter_map(|w| w.upgrade())
            .collect()
    });
    for sh in pools {
        if sh.owner == me() && !sh.st.borrow().workers.is_empty() {
            sh.terminate();
        }
    }
}

fn start_worker(interp: &mut Interp, sh: &Shared) -> Res<Worker> {
    let pipes = match chan::worker_pipes() {
        Ok(p) => p,
        Err(e) => {
            return fail(
                "ProcessError",
                format!("cannot make a pool worker's pipes: {e}"),
            )
        }
    };
    let chan::Pipes {
        task_r,
        task_w,
        result_r,
        result_w,
    } = pipes;
    let (task_w, result_r) = (task_w.into_raw_fd(), result_r.into_raw_fd());
    let limit = sh.maxtasks;
    // The worker's ends move into the closure: the parent's copies close when
    // it is dropped here after the fork.
    let pid = fork_child(interp, move |ip| worker::main(ip, task_r, result_w, limit));
    let w = Worker {
        pid: pid.as_ref().copied().unwrap_or(-1),
        owner: me(),
        task_w,
        result_r,
        rbuf: Vec::new(),
        wbuf: Vec::new(),
        wpos: 0,
        inflight: VecDeque::new(),
        front_since: Instant::now(),
        sent: 0,
        known: HashSet::new(),
        stopping: false,
        write_broken: false,
        eof_at: None,
        killed: false,
    };
    pid?;
    Ok(w)
}

impl State {
    /// Jobs in flight a worker may hold.
    fn depth(&self) -> usize {
        match self.ewma_us {
            // Until a task has been timed, one at a time: a long first task
            // must not hold others back.
            None => 1,
            Some(t) if t >= LONG_JOB_US => 1,
            // One queued behind the running one at least, so a worker never
            // waits for the parent between jobs.
            Some(t) => ((QUEUE_BUDGET_US / t.max(1.0)) as usize).clamp(2, MAX_DEPTH),
        }
    }

    /// Workers to start now (replacing ones that exited).
    fn wanted(&self, size: usize) -> usize {
        let want = match self.phase {
            Phase::Running => true,
            Phase::Closed => !self.pending.is_empty(),
            Phase::Terminated => false,
        };
        if want {
            size.saturating_sub(self.workers.len())
        } else {
            0
        }
    }

    /// Nothing will change until something is submitted: no work, no callback
    /// due, and no worker starting, exiting or being replaced.
    fn idle(&self, sh: &Shared) -> bool {
        self.unfinished == 0
            && self.callbacks.is_empty()
            && self.wanted(sh.size) == 0
            && (self.workers.is_empty()
                || (self.phase == Phase::Running
                    && self.workers.iter().all(|w| w.accepting(sh.maxtasks))))
    }

    /// Delivers a job's results to its sink; queues callbacks when
    /// `callbacks`.
    fn finish(&mut self, job: Job, results: Results, callbacks: bool) {
        self.unfinished = self.unfinished.saturating_sub(1);
        self.events += 1;
        let n = job.n;
        if let (Sink::Map(acc, off), Results::Placed(fails)) = (&job.sink, &results) {
            // The values are in their slots already; the failed ones hold errors.
            let mut acc = acc.borrow_mut();
            for &i in fails {
                let k = off + i as usize;
                if let Some(slot) = acc.results.get_mut(k) {
                    let e = error_of(std::mem::take(slot));
                    if acc.first_error.as_ref().is_none_or(|(j, _)| k < *j) {
                        acc.first_error = Some((k, e));
                    }
                }
            }
            acc.remaining = acc.remaining.saturating_sub(n);
            if let Some(bar) = &acc.bar {
                bar.inc(n as u64);
            }
            return;
        }
        let mut outcomes = results.outcomes(n);
        match job.sink {
            Sink::Future(fs) => {
                let r = outcomes.next().unwrap_or_else(too_few);
                let mut f = fs.borrow_mut();
                if callbacks {
                    match &r {
                        Ok(v) if !matches!(f.callback, Value::Nil) => {
                            self.callbacks.push_back((f.callback.clone(), v.clone()))
                        }
                        Err(e) if !matches!(f.error_callback, Value::Nil) => {
                            self.callbacks.push_back((
                                f.error_callback.clone(),
                                Value::Error(Rc::new(ErrorVal { err: e.clone() })),
                            ))
                        }
                        _ => {}
                    }
                }
                f.outcome = Some(r);
            }
            Sink::Map(acc, off) => {
                let mut acc = acc.borrow_mut();
                for i in 0..n {
                    match outcomes.next().unwrap_or_else(too_few) {
                        Ok(v) => {
                            if let Some(slot) = acc.results.get_mut(off + i) {
                                *slot = v;
                            }
                        }
                        Err(e) => {
                            if acc.first_error.as_ref().is_none_or(|(j, _)| off + i < *j) {
                                acc.first_error = Some((off + i, e));
                            }
                        }
                    }
                }
                acc.remaining = acc.remaining.saturating_sub(n);
                if let Some(bar) = &acc.bar {
                    bar.inc(n as u64);
                }
            }
            Sink::Imap(acc, off) => {
                let mut acc = acc.borrow_mut();
                for i in 0..n {
                    let r = outcomes.next().unwrap_or_else(too_few);
                    if acc.ordered {
                        let k = (off + i).wrapping_sub(acc.base);
                        if let Some(slot) = acc.slots.get_mut(k) {
                            *slot = Some(r);
                        }
                    } else {
                        acc.ready.push_back(r);
                    }
                }
            }
        }
    }

    /// Hands pending jobs to workers with room, each to the one that will be
    /// free soonest (by its queued work, counting what its running job has
    /// done already); when the pool is closed and all work is done, tells the
    /// workers to stop.
    fn dispatch(&mut self, interp: &Interp, sh: &Shared) {
        let depth = self.depth();
        let now = Instant::now();
        while !self.pending.is_empty() {
            let mean = self.ewma_us;
            let Some(wi) = self
                .workers
                .iter()
                .enumerate()
                .filter(|(_, w)| w.accepting(sh.maxtasks) && w.inflight.len() < depth)
                .min_by(|(_, a), (_, b)| {
                    a.backlog(mean, now)
                        .total_cmp(&b.backlog(mean, now))
                        .then(a.inflight.len().cmp(&b.inflight.len()))
                })
                .map(|(i, _)| i)
            else {
                break;
            };
            let Some(job) = self.pending.pop_front() else {
                break;
            };
            let w = &mut self.workers[wi];
            let mark = w.wbuf.len();
            let known = w.known.contains(&job.func.id);
            if !known {
                let s = chan::begin_frame(&mut w.wbuf, T_FUNC);
                w.wbuf.extend_from_slice(&job.func.id.to_le_bytes());
                w.wbuf.extend_from_slice(&job.func.bytes);
                chan::end_frame(&mut w.wbuf, s);
            }
            let s = chan::begin_frame(&mut w.wbuf, T_TASK);
            w.wbuf.extend_from_slice(&job.func.id.to_le_bytes());
            w.wbuf.push(if job.star { MODE_STAR } else { MODE_ONE });
            let encoded = match &job.args {
                JobArgs::Items(items) => codec::encode(interp, items, &mut w.wbuf),
                JobArgs::Range { start, step, count } => {
                    codec::encode_range(*start, *step, *count, &mut w.wbuf);
                    Ok(())
                }
                JobArgs::Bytes(b) => {
                    w.wbuf.extend_from_slice(b);
                    Ok(())
                }
            };
            if let Err(e) = encoded {
                // An item that cannot be sent fails the job (never the pool).
                w.wbuf.truncate(mark);
                let e = match e {
                    Unwind::Error(e) => *e,
                    _ => RtError::new("ValueError", "cannot send the task"),
                };
                self.finish(job, Results::All(e), true);
                continue;
            }
            if !known {
                w.known.insert(job.func.id);
            }
            chan::end_frame(&mut w.wbuf, s);
            w.sent += 1;
            if w.inflight.is_empty() {
                w.front_since = now;
            }
            w.inflight.push_back(job);
        }
        if self.phase == Phase::Closed && self.unfinished == 0 {
            for w in &mut self.workers {
                if !w.stopping && !w.write_broken {
                    w.stopping = true;
                    let s = chan::begin_frame(&mut w.wbuf, T_STOP);
                    chan::end_frame(&mut w.wbuf, s);
                }
            }
        }
    }

    /// Writes what the workers' pipes take now.
    fn flush_writes(&mut self) {
        for w in &mut self.workers {
            while w.wpos < w.wbuf.len() && !w.write_broken {
                match chan::write_some(w.task_w, &w.wbuf[w.wpos..]) {
                    chan::Io::Done(n) => w.wpos += n,
                    chan::Io::Interrupted => continue,
                    chan::Io::WouldBlock => break,
                    chan::Io::Closed | chan::Io::Failed(_) => {
                        // The worker is exiting; its result pipe will say so.
                        w.write_broken = true;
                    }
                }
            }
            if w.wpos == w.wbuf.len() || w.write_broken {
                w.wbuf.clear();
                w.wpos = 0;
            }
        }
    }

    /// Deals with workers whose result pipe closed, once they have exited:
    /// the job that was running fails with WorkerLost, the ones queued behind
    /// it go back to the queue, and the worker leaves (a replacement is
    /// started by `step`).
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.workers.len() {
            let w = &mut self.workers[i];
            let Some(at) = w.eof_at else {
                i += 1;
                continue;
            };
            let Some(status) = process::try_status(w.pid) else {
                if at.elapsed() > EXIT_GRACE && !w.killed {
                    w.killed = true;
                    let _ = process::kill(w.pid, libc::SIGKILL);
                }
                i += 1;
                continue;
            };
            process::forget(w.pid);
            self.events += 1;
            let mut w = self.workers.remove(i);
            if let Some(job) = w.inflight.pop_front() {
                let how = match status {
                    ExitStatus::Signal(_) => format!("was {}", signal::describe(status)),
                    ExitStatus::Code(_) => signal::describe(status),
                };
                let e = RtError::new(
                    "WorkerLost",
                    format!("pool worker pid={} {how} while running this task", w.pid),
                );
                self.finish(job, Results::All(e), true);
            }
            while let Some(job) = w.inflight.pop_back() {
                self.pending.push_front(job);
            }
        }
    }

    /// Reads what a worker sent and takes the jobs whose result frames are
    /// complete off its queue (so new work can go out before they are
    /// decoded). Returns them with where their bodies are in `rbuf`, and how
    /// much of `rbuf` they use.
    fn read_frames(&mut self, wi: usize) -> Arrival {
        let w = &mut self.workers[wi];
        let mut eof = false;
        loop {
            let room = READ_CHUNK.max(chan::frame_missing(&w.rbuf));
            match chan::read_into(w.result_r, &mut w.rbuf, room) {
                chan::Io::Done(_) | chan::Io::Interrupted => continue,
                chan::Io::WouldBlock => break,
                chan::Io::Closed | chan::Io::Failed(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let mut pos = 0;
        let mut jobs = Vec::new();
        let mut corrupt = false;
        loop {
            match chan::next_frame(&w.rbuf[pos..]) {
                Ok(Some((kind, b, e))) => {
                    if kind != R_RESULT {
                        corrupt = true;
                        break;
                    }
                    let Some(job) = w.inflight.pop_front() else {
                        corrupt = true;
                        break;
                    };
                    w.front_since = Instant::now();
                    if let Some(us) = chan::get_u32(&w.rbuf[pos + b..pos + e], 0) {
                        let us = f64::from(us);
                        self.ewma_us = Some(self.ewma_us.map_or(us, |m| 0.8 * m + 0.2 * us));
                    }
                    jobs.push((job, pos + b..pos + e));
                    pos += e;
                }
                Ok(None) => break,
                Err(chan::BadFrame) => {
                    corrupt = true;
                    break;
                }
            }
        }
        if corrupt && !w.killed {
            w.killed = true;
            let _ = process::kill(w.pid, libc::SIGKILL);
        }
        if eof && w.eof_at.is_none() {
            w.eof_at = Some(Instant::now());
        }
        Arrival {
            wi,
            jobs,
            used: pos,
        }
    }

    /// Decodes the results `read_frames` found and delivers them.
    fn deliver(&mut self, interp: &mut Interp, a: Arrival) {
        let buf = std::mem::take(&mut self.workers[a.wi].rbuf);
        for (job, body) in a.jobs {
            let results = decode_result(interp, &buf[body], &job);
            self.finish(job, results, true);
        }
        let mut buf = buf;
        buf.drain(..a.used);
        self.workers[a.wi].rbuf = buf;
    }
}

/// Result frames read from one worker, not decoded yet.
struct Arrival {
    wi: usize,
    jobs: Vec<(Job, std::ops::Range<usize>)>,
    used: usize,
}

/// Reads a result frame's body: `[u32 µs][u32 n][u32 index]*n [payload]`.
/// A map's values are decoded straight into its result slots.
fn decode_result(interp: &mut Interp, body: &[u8], job: &Job) -> Results {
    let bad = |msg: &str| Results::All(RtError::new("ValueError", msg));
    let Some(nfail) = chan::get_u32(body, 4) else {
        return bad("a pool worker sent a malformed result");
    };
    let start = 8 + 4 * nfail as usize;
    let Some(payload) = body.get(start..) else {
        return bad("a pool worker sent a malformed result");
    };
    let mut fails: Vec<u32> = (0..nfail as usize)
        .filter_map(|k| chan::get_u32(body, 8 + 4 * k))
        .filter(|&i| (i as usize) < job.n)
        .collect();
    fails.sort_unstable();
    fails.dedup();
    let failed = |e: Unwind| match e {
        Unwind::Error(e) => Results::All(*e),
        _ => bad("cannot receive a task's result"),
    };
    if let Sink::Map(acc, off) = &job.sink {
        let mut acc = acc.borrow_mut();
        if let Some(slots) = acc.results.get_mut(*off..*off + job.n) {
            return match codec::decode_into(interp, payload, slots) {
                Ok(()) => Results::Placed(fails),
                Err(e) => failed(e),
            };
        }
    }
    match codec::decode(interp, payload) {
        Ok(items) if items.len() == job.n => Results::Items(items, fails),
        Ok(_) => bad("a pool worker sent a malformed result"),
        Err(e) => failed(e),
    }
}

/// How `drive` ended.
#[derive(PartialEq, Eq, Debug)]
pub enum Driven {
    Done,
    TimedOut,
    /// Nothing in the pool can make `done` true (no work left).
    Idle,
}

/// Runs callbacks that are due, one at a time (never nested in another).
pub fn run_callbacks(interp: &mut Interp, sh: &Shared) -> Res<()> {
    if sh.in_callback.get() {
        return Ok(());
    }
    loop {
        let Some((f, v)) = sh.st.borrow_mut().callbacks.pop_front() else {
            return Ok(());
        };
        sh.in_callback.set(true);
        let r = interp.call(&f, Args::new([v]));
        sh.in_callback.set(false);
        r?;
    }
}

/// Runs the pool until `done` holds (checked after due callbacks have run),
/// `deadline` passes (after at least one step), or nothing is left to wait
/// for. Signals are handled as they arrive; one that ends the program
/// (Ctrl-C) terminates the pool first.
pub fn drive(
    interp: &mut Interp,
    sh: &Shared,
    deadline: Option<Instant>,
    mut done: impl FnMut(&Shared) -> bool,
) -> Res<Driven> {
    let mut stepped = false;
    loop {
        run_callbacks(interp, sh)?;
        if done(sh) {
            return Ok(Driven::Done);
        }
        if let Err(e) = interp.poll_signals() {
            if matches!(e, Unwind::Exit(_)) {
                sh.terminate();
            }
            return Err(e);
        }
        if sh.st.borrow().idle(sh) {
            return Ok(Driven::Idle);
        }
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let now = Instant::now();
                if stepped && now >= d {
                    return Ok(Driven::TimedOut);
                }
                Some(d.saturating_duration_since(now))
            }
        };
        step(interp, sh, timeout)?;
        stepped = true;
    }
}

/// One round: start replacement workers, hand out jobs, then wait (at most
/// `timeout`) for results, room in a task pipe, a worker's exit or a signal.
fn step(interp: &mut Interp, sh: &Shared, timeout: Option<Duration>) -> Res<()> {
    let want = sh.st.borrow().wanted(sh.size);
    for _ in 0..want {
        let w = start_worker(interp, sh)?;
        sh.st.borrow_mut().workers.push(w);
    }
    let mut st = sh.st.borrow_mut();
    // New workers change what the caller may be waiting for (room to submit).
    let before = st.events.wrapping_sub(want as u64);
    signal::drain_wake();
    if process::sweep_if_signalled() {
        // Spawned children reaped here need their result pipes closed too.
        crate::runtime::builtins::process::collect_exited(interp);
    }
    st.reap();
    st.dispatch(interp, sh);
    st.flush_writes();
    if signal::pending() || st.events != before || st.wanted(sh.size) > 0 {
        return Ok(());
    }
    let mut watch = vec![chan::Watch {
        fd: signal::wake_fd(),
        read: true,
        write: false,
    }];
    let mut dying = false;
    for w in &st.workers {
        dying |= w.eof_at.is_some();
        // A closed pipe reports POLLHUP / POLLERR for ever: leave it out (-1
        // is ignored by poll) once that has been seen.
        watch.push(chan::Watch {
            fd: if w.eof_at.is_none() { w.result_r } else { -1 },
            read: true,
            write: false,
        });
        let writing = w.wpos < w.wbuf.len() && !w.write_broken;
        watch.push(chan::Watch {
            fd: if writing { w.task_w } else { -1 },
            read: false,
            write: true,
        });
    }
    let mut timeout = timeout;
    if dying {
        // An exiting worker is reaped on SIGCHLD; look again soon anyway.
        let nap = Duration::from_millis(20);
        timeout = Some(timeout.map_or(nap, |t| t.min(nap)));
    }
    let ready = match chan::poll(&watch, timeout) {
        Ok(r) => r,
        Err(e) => return fail("IOError", format!("pool: poll failed: {e}")),
    };
    let mut arrivals = Vec::new();
    for (wi, pair) in ready[1..].chunks(2).enumerate() {
        let (r, wr) = (pair[0], pair[1]);
        if r.read || r.hup {
            arrivals.push(st.read_frames(wi));
        }
        if wr.hup {
            st.workers[wi].write_broken = true;
        }
    }
    // Workers that just finished get their next jobs before the results
    // are decoded, so they do not wait for that.
    st.dispatch(interp, sh);
    st.flush_writes();
    for a in arrivals {
        st.deliver(interp, a);
    }
    Ok(())
}

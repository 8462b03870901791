//! The example programs: every `scripts/*.proc` runs through the real binary, with
//! a timeout, and its output is checked.
//!
//! - Deterministic programs are compared with their sidecar `scripts/<name>.stdout`
//!   (pids written `pid=123` are normalised to `pid=PID`, as in `tests/golden.rs`);
//!   their stderr must be empty and their exit status 0.
//!   `PROC_BLESS=1 cargo test --test examples` rewrites those sidecars.
//! - The others are checked by property: every item consumed exactly once, tickets
//!   never oversold, a child's parent pid is the script's pid, and so on.
//!
//! Every script also must leave no process behind in its process group, and
//! `every_script_has_a_test` fails when a script is added without a test here.
//!
//! The interpreter runs in a child process, never inside this (multithreaded) test
//! process, so nothing here forks.

mod support;
use support::normalise;

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Each script runs in a few seconds; this bounds a hang, with room for a loaded
/// machine and a debug build.
const TIMEOUT: Duration = Duration::from_secs(60);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Outcome {
    name: String,
    stdout: String,
    stderr: String,
    /// The exit code, `None` when killed by a signal or by the timeout.
    code: Option<i32>,
    elapsed: Duration,
}

impl Outcome {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Panics unless the script exited 0 (stderr is shown to explain why).
    fn assert_ok(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "{} exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            self.code,
            self.stdout,
            self.stderr
        );
    }

    /// Panics unless the script exited 0 with nothing on stderr.
    fn assert_clean(&self) {
        self.assert_ok();
        assert_eq!(self.stderr, "", "{}: unexpected stderr", self.name);
    }

    /// The number of lines equal to `line`.
    fn count(&self, line: &str) -> usize {
        self.stdout.lines().filter(|l| *l == line).count()
    }

    fn has(&self, line: &str) {
        assert!(
            self.stdout.lines().any(|l| l == line),
            "{}: no line {line:?} in\n{}",
            self.name,
            self.stdout
        );
    }
}

fn read_in_thread(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Whether any process is left in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence; no signal is sent.
    unsafe { libc::killpg(pgid, 0) == 0 }
}

fn kill_group(pgid: i32) {
    // SAFETY: the group was created for this script's run alone.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// Runs `scripts/<name>.proc ARGS` from the repository root, in a process group
/// of its own, with stdin on /dev/null. Output is returned as written (pids
/// included); see `run` for the normalised form.
fn run_raw(name: &str, args: &[&str]) -> Outcome {
    let script = format!("scripts/{name}.proc");
    let mut argv = vec![script.as_str()];
    argv.extend_from_slice(args);
    run_binary(name, &argv)
}

/// Runs the proc binary with `argv`; `name` labels the failures.
fn run_binary(name: &str, argv: &[&str]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proc"));
    cmd.args(argv)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the proc binary: {e}"));
    let pgid = child.id() as i32;
    let out = read_in_thread(child.stdout.take().expect("piped stdout"));
    let err = read_in_thread(child.stderr.take().expect("piped stderr"));

    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > TIMEOUT => {
                kill_group(pgid);
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {name}: {e}"),
        }
    };
    let elapsed = start.elapsed();

    // Once the script has exited, its children must be gone too: joined, or
    // terminated if they were daemons. Give the last ones a moment to be reaped.
    let grace = Instant::now() + Duration::from_secs(3);
    while group_alive(pgid) && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(20));
    }
    let leaked = group_alive(pgid);
    if leaked {
        kill_group(pgid);
    }
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        let bytes = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let outcome = Outcome {
        name: name.to_string(),
        stdout: collect(out),
        stderr: collect(err),
        code: status.and_then(|s| s.code()),
        elapsed,
    };
    assert!(
        status.is_some(),
        "{name} did not finish within {TIMEOUT:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        outcome.stdout,
        outcome.stderr
    );
    assert!(
        !leaked,
        "{name} left processes running after it exited\n--- stdout ---\n{}",
        outcome.stdout
    );
    outcome
}

/// `run_raw` with pids normalised (`pid=123` becomes `pid=PID`).
fn run(name: &str, args: &[&str]) -> Outcome {
    let mut o = run_raw(name, args);
    o.stdout = normalise(&o.stdout);
    o.stderr = normalise(&o.stderr);
    o
}

/// Every `pid=N` in `line`, in order.
fn pids(line: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("pid=") {
        rest = &rest[i + 4..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            found.push(n);
        }
    }
    found
}

/// The pids in the one line that starts with `prefix`.
fn pids_of(o: &Outcome, prefix: &str) -> Vec<u32> {
    let hits: Vec<&str> = o
        .lines()
        .into_iter()
        .filter(|l| l.starts_with(prefix))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{}: expected one line starting {prefix:?} in\n{}",
        o.name,
        o.stdout
    );
    pids(hits[0])
}

/// Runs a deterministic script and compares its stdout with `scripts/<name>.stdout`.
fn exact(name: &str) {
    let o = run(name, &[]);
    let sidecar = root().join(format!("scripts/{name}.stdout"));
    if std::env::var_os("PROC_BLESS").is_some() {
        o.assert_clean();
        std::fs::write(&sidecar, &o.stdout).expect("write the sidecar");
        return;
    }
    let want = std::fs::read_to_string(&sidecar)
        .unwrap_or_else(|e| panic!("{}: {e} (PROC_BLESS=1 writes it)", sidecar.display()));
    o.assert_clean();
    assert_eq!(
        o.stdout,
        want,
        "{name}: stdout differs from {}",
        sidecar.display()
    );
}

/// Lines of `o` that start with `prefix`, in order.
fn starting<'a>(o: &'a Outcome, prefix: &str) -> Vec<&'a str> {
    o.stdout.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// Asserts that `lines` are exactly `want`, in that order.
fn assert_seq(o: &Outcome, lines: Vec<&str>, want: &[String]) {
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_eq!(lines, want, "{}: full stdout:\n{}", o.name, o.stdout);
}

// ---------------------------------------------------------------------------
// The list of tested scripts: a script in scripts/ that is missing here fails.

const TESTED: &[&str] = &[
    "daemon_process",
    "fork_basics",
    "main_and_child",
    "manager_dict_list",
    "memory_isolation",
    "nested_processes",
    "pipe_oneway",
    "pipe_pingpong",
    "pool_apply",
    "pool_apply_async",
    "pool_callback",
    "pool_map",
    "pool_queue",
    "popen_communicate",
    "process_args",
    "process_attributes",
    "process_basics",
    "process_join",
    "process_order",
    "process_pids",
    "producer_consumer",
    "queue_basics",
    "queue_bounded",
    "queue_writer_reader",
    "subprocess_call",
    "terminate",
    "threading_as_processes",
    "ticket_lock",
    "tour",
    "unix_daemon",
    "value_array",
    "zombie_reaping",
];

#[test]
fn every_script_has_a_test() {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("scripts")).expect("scripts/") {
        let path: PathBuf = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "proc") {
            let stem = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            found.insert(stem);
        }
    }
    let tested: BTreeSet<String> = TESTED.iter().map(|s| s.to_string()).collect();
    let untested: Vec<_> = found.difference(&tested).collect();
    let missing: Vec<_> = tested.difference(&found).collect();
    assert!(
        untested.is_empty(),
        "scripts without a test in tests/examples.rs: {untested:?}"
    );
    assert!(
        missing.is_empty(),
        "tests for scripts that do not exist: {missing:?}"
    );
}

// ---------------------------------------------------------------------------
// Deterministic scripts: exact output.

#[test]
fn process_args() {
    exact("process_args");
}

#[test]
fn memory_isolation() {
    exact("memory_isolation");
}

#[test]
fn zombie_reaping() {
    exact("zombie_reaping");
}

#[test]
fn queue_basics() {
    exact("queue_basics");
}

#[test]
fn queue_bounded() {
    exact("queue_bounded");
}

#[test]
fn pipe_pingpong() {
    exact("pipe_pingpong");
}

#[test]
fn pipe_oneway() {
    exact("pipe_oneway");
}

#[test]
fn pool_apply() {
    exact("pool_apply");
}

#[test]
fn pool_map() {
    exact("pool_map");
}

#[test]
fn value_array() {
    exact("value_array");
}

#[test]
fn subprocess_call() {
    exact("subprocess_call");
}

#[test]
fn popen_communicate() {
    exact("popen_communicate");
}

#[test]
fn process_attributes() {
    exact("process_attributes");
}

#[test]
fn threading_as_processes() {
    exact("threading_as_processes");
}

#[test]
fn tour() {
    exact("tour");
}

// ---------------------------------------------------------------------------
// Scripts whose output varies: checked by property.

/// `n` lines `this is <task>: i` per task, in order within each task.
fn check_tasks(name: &str, tasks: &[&str], n: usize) {
    let o = run(name, &[]);
    o.assert_clean();
    for task in tasks {
        let prefix = format!("this is {task}:");
        let want: Vec<String> = (0..n).map(|i| format!("{prefix} {i}")).collect();
        assert_seq(&o, starting(&o, &prefix), &want);
    }
    assert_eq!(
        o.lines().len(),
        n * tasks.len(),
        "{name}: stray lines:\n{}",
        o.stdout
    );
}

#[test]
fn process_basics() {
    check_tasks("process_basics", &["task 1", "task 2"], 5);
}

#[test]
fn process_order() {
    check_tasks("process_order", &["task 1", "task 2"], 10);
}

#[test]
fn main_and_child() {
    let o = run("main_and_child", &[]);
    o.assert_clean();
    assert_eq!(o.count("the child process is running"), 3);
    assert_eq!(o.count("the main process is running"), 3);
    assert_eq!(o.lines().len(), 6, "stray lines:\n{}", o.stdout);
}

#[test]
fn process_pids() {
    let o = run_raw("process_pids", &[]);
    o.assert_clean();
    // show() prints a title, then the parent's pid, then its own.
    let lines = o.lines();
    let at = |title: &str| {
        let i = lines
            .iter()
            .position(|l| *l == title)
            .unwrap_or_else(|| panic!("no {title:?} in\n{}", o.stdout));
        let parent = pids(lines[i + 1]);
        let this = pids(lines[i + 2]);
        assert!(lines[i + 1].starts_with("  parent process: pid="));
        assert!(lines[i + 2].starts_with("  this process:   pid="));
        (parent[0], this[0])
    };
    let (_, main) = at("hello, it's me (the main script)");
    let (parent, child) = at("hello, it's me (the child)");
    assert_eq!(parent, main, "the child's parent is the main script");
    assert_ne!(child, main, "the child has a pid of its own");
    assert_eq!(pids_of(&o, "the main script spawned"), vec![child]);
    o.has("ok");
}

#[test]
fn process_join() {
    let o = run_raw("process_join", &[]);
    o.assert_clean();
    let lines = o.lines();
    assert_eq!(lines.len(), 4, "{}", o.stdout);
    assert!(lines[0].starts_with("current process: pid="));
    assert_eq!(lines[1], "starting the child");
    assert!(lines[2].starts_with("child (test): pid="));
    assert_eq!(
        lines[3], "the child has finished",
        "join waits for the child"
    );
    let main = pids(lines[0])[0];
    let child = pids(lines[2]);
    assert_ne!(child[0], main);
    assert_eq!(child[1], main, "the child's parent is the main script");
}

#[test]
fn fork_basics() {
    let o = run_raw("fork_basics", &[]);
    o.assert_clean();
    let main = pids_of(&o, "process pid=");
    let child = pids_of(&o, "child pid=");
    let parent = pids_of(&o, "parent pid=");
    assert_eq!(o.lines().len(), 3, "{}", o.stdout);
    assert_eq!(
        child[1], main[0],
        "getppid() in the child is the parent's pid"
    );
    assert_eq!(parent[0], main[0]);
    assert_eq!(parent[1], child[0], "the handle holds the child's pid");
    assert_ne!(child[0], main[0]);
}

#[test]
fn terminate() {
    let o = run("terminate", &[]);
    o.assert_clean();
    let lines = o.lines();
    let n = lines.len();
    assert!(n >= 3, "{}", o.stdout);
    assert_eq!(
        lines[n - 3..],
        [
            "alive after terminate and join: false",
            "exit code (killed by SIGTERM): -15",
            "stopped before its 10 rounds: true",
        ]
    );
    // Whatever the child managed to print before SIGTERM (its buffered output may
    // be lost with it) is well formed and short of 10 rounds.
    let rounds = o.count("child running... name=no-brain, age=18, pid=PID");
    assert!(rounds < 10, "{}", o.stdout);
    for l in &lines[..n - 3] {
        assert!(
            l.starts_with("child running...") || l.starts_with("[\"big brother\""),
            "stray line {l:?}"
        );
    }
}

#[test]
fn queue_writer_reader() {
    let o = run("queue_writer_reader", &[]);
    o.assert_clean();
    let puts: Vec<String> = ["A", "B", "C"]
        .iter()
        .map(|x| format!("put {x} into the queue"))
        .collect();
    assert_seq(&o, starting(&o, "put "), &puts);
    o.has("writer process: pid=PID");
    o.has(r#"the reader read ["A", "B", "C"] and was terminated: -15"#);
    // The reader's own lines, if they survived SIGTERM, are in order.
    let reads = starting(&o, "read the value:");
    let want: Vec<String> = ["A", "B", "C"][..reads.len()]
        .iter()
        .map(|x| format!("read the value: {x}"))
        .collect();
    assert_seq(&o, reads, &want);
}

#[test]
fn producer_consumer() {
    let o = run("producer_consumer", &[]);
    o.assert_clean();
    let mut items = Vec::new();
    for food in ["bun", "soup", "cake"] {
        for i in 0..3 {
            items.push(format!("{food}{i}"));
        }
    }
    // Every producer made its three items, in order.
    for (name, food) in [("egon", "bun"), ("yang", "soup"), ("hou", "cake")] {
        let want: Vec<String> = (0..3).map(|i| format!("{name} made {food}{i}")).collect();
        assert_seq(&o, starting(&o, &format!("{name} made")), &want);
    }
    // Every item was eaten exactly once (the record is kept by the queue's
    // consumers in a shared list; the main script prints it sorted).
    let mut sorted = items.clone();
    sorted.sort();
    let quoted: Vec<String> = sorted.iter().map(|s| format!("\"{s}\"")).collect();
    o.has(&format!("main: eaten 9 items: [{}]", quoted.join(", ")));
    // The consumers' own lines (daemons: their last output may be cut off) never
    // mention an item twice.
    let mut seen = BTreeSet::new();
    for l in o.lines() {
        if let Some((_, item)) = l.split_once(" ate ") {
            assert!(items.iter().any(|i| i == item), "unknown item in {l:?}");
            assert!(
                seen.insert(item.to_string()),
                "{item} eaten twice:\n{}",
                o.stdout
            );
        }
    }
}

#[test]
fn daemon_process() {
    let o = run("daemon_process", &[]);
    o.assert_clean();
    o.has("a daemon that tries to spawn gets: ProcessError");
    o.has("daemon flags: true false");
    o.has("main");
    o.has("the normal child is running");
    o.has("the normal child is done");
    // Seed 002: a daemon dies when the main script's code is done, before the
    // children still running are joined (Python's order too); so the daemon,
    // which sleeps as long as the normal child, never finishes.
    assert_eq!(
        o.count("the daemon is done"),
        0,
        "the daemon was not terminated when the main script's code ended:\n{}",
        o.stdout
    );
    assert_eq!(o.count("a grandchild is running"), 0);
}

#[test]
fn ticket_lock() {
    let o = run_raw("ticket_lock", &[]);
    o.assert_clean();
    let lines = o.lines();
    let mut looked = 0;
    let mut bought = BTreeSet::new();
    let mut refused = BTreeSet::new();
    for l in &lines {
        let (pid, what) = l.split_once(' ').unwrap_or(("", l));
        if pid.parse::<u32>().is_err() {
            continue;
        }
        if what == "bought a ticket" {
            assert!(bought.insert(pid), "{pid} bought twice");
        } else if what == "found no ticket left" {
            assert!(refused.insert(pid), "{pid} refused twice");
        } else {
            let left: i64 = what
                .strip_prefix("sees ")
                .and_then(|w| w.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("stray line {l:?}"));
            assert!((0..=3).contains(&left), "{l}");
            looked += 1;
        }
    }
    assert_eq!(looked, 10, "every buyer looked:\n{}", o.stdout);
    assert_eq!(
        bought.len(),
        3,
        "exactly the 3 tickets were sold:\n{}",
        o.stdout
    );
    assert_eq!(refused.len(), 7);
    assert!(bought.is_disjoint(&refused));
    o.has("tickets sold: 3");
    o.has("tickets left: 0");
}

#[test]
fn manager_dict_list() {
    let o = run_raw("manager_dict_list", &[]);
    o.assert_clean();
    let lines = o.lines();
    let n = lines.len();
    assert!(n >= 5, "{}", o.stdout);
    assert_eq!(
        lines[n - 3..],
        [
            "10 entries in each: true",
            "the dict holds every child's pid: true",
            "and so does the list: true",
        ]
    );
    // The children's own views of the list grow: each holds 1 to 10 pids.
    let views: Vec<&&str> = lines[..n - 5].iter().collect();
    assert_eq!(views.len(), 10, "{}", o.stdout);
    let mut sizes: Vec<usize> = views.iter().map(|l| l.matches(',').count() + 1).collect();
    sizes.sort();
    assert!(sizes.iter().all(|s| (1..=10).contains(s)), "{sizes:?}");
    assert!(sizes.contains(&10), "the last child sees all 10: {sizes:?}");
}

#[test]
fn pool_apply_async() {
    let o = run_raw("pool_apply_async", &[]);
    o.assert_clean();
    let main = pids_of(&o, "current process:")[0];
    let mut workers = BTreeSet::new();
    for i in 0..10 {
        let runs = pids_of(&o, &format!("task {i} runs in"));
        assert_ne!(runs[0], main, "task {i} ran in a worker");
        workers.insert(runs[0]);
        let ran = starting(&o, &format!("task {i} ran for "));
        assert_eq!(ran.len(), 1, "{}", o.stdout);
    }
    assert!(
        workers.len() <= 3,
        "a pool of 3 used {} processes",
        workers.len()
    );
    o.has("waiting for all the tasks to finish...");
    assert_eq!(o.lines().last(), Some(&"all tasks done"));
    assert_eq!(o.lines().len(), 23, "{}", o.stdout);
}

#[test]
fn pool_callback() {
    let o = run_raw("pool_callback", &[]);
    o.assert_clean();
    let main = pids_of(&o, "main process:")[0];
    // Each task's value reached the callback once, in the main process.
    let mut args = Vec::new();
    for l in starting(&o, "in end - pid=") {
        assert_eq!(
            pids(l),
            vec![main],
            "the callback ran in the main process: {l}"
        );
        args.push(l.rsplit(' ').next().unwrap_or("").to_string());
    }
    args.sort();
    let want: Vec<String> = (1000..1010).map(|n| n.to_string()).collect();
    assert_eq!(args, want, "{}", o.stdout);
    // The workers printed 0..9, once each.
    let mut printed: Vec<&str> = o
        .lines()
        .into_iter()
        .filter(|l| l.parse::<u32>().is_ok())
        .collect();
    printed.sort_by_key(|l| l.parse::<u32>().unwrap_or(0));
    let want: Vec<String> = (0..10).map(|n| n.to_string()).collect();
    assert_eq!(printed, want);
    o.has("end ---");
    o.has("results: [1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009]");
    o.has(r#"error callback got: ["ValueError: bad input"]"#);
    o.has("join before close: ValueError");
}

#[test]
fn pool_queue() {
    let o = run_raw("pool_queue", &[]);
    o.assert_clean();
    let lines = o.lines();
    let main = pids(lines[0]);
    assert!(lines[0].starts_with("process pid=") && lines[0].ends_with(" start"));
    assert_eq!(lines.last().map(|l| pids(l)), Some(main.clone()));
    assert!(lines.last().is_some_and(|l| l.ends_with(" end")));
    o.has("the reader got: tuling");
    let want: Vec<String> = "tuling"
        .chars()
        .map(|c| format!("reader got from the queue: {c}"))
        .collect();
    assert_seq(&o, starting(&o, "reader got from"), &want);
    for who in ["reader started in", "writer started in"] {
        let p = pids_of(&o, who);
        assert_ne!(p[0], main[0], "{who} a worker");
    }
}

#[test]
fn nested_processes() {
    let o = run_raw("nested_processes", &[]);
    o.assert_clean();
    let mut pids_seen = BTreeSet::new();
    for i in 0..10 {
        let p = pids_of(&o, &format!("ok cf{i} "));
        assert!(pids_seen.insert(p[0]), "each runs in its own process");
        assert_eq!(o.count(&format!("hi cf{i}")), 1, "{}", o.stdout);
    }
    assert_eq!(o.lines().len(), 21);
    // Ten children of two 0.3 s waits each, all at once: far below the 6 s they
    // would take one after the other.
    let elapsed: f64 = starting(&o, "elapsed: ")[0]
        .trim_start_matches("elapsed: ")
        .trim_end_matches(" s")
        .parse()
        .expect("elapsed seconds");
    assert!(
        elapsed < 4.0,
        "the processes did not run concurrently: {elapsed} s"
    );
}

#[test]
fn unix_daemon() {
    let dir = std::env::temp_dir().join(format!("proc-unix-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let d = dir.to_string_lossy().into_owned();
    let o = run_raw("unix_daemon", &[&d]);
    o.assert_clean();
    assert!(
        o.elapsed < Duration::from_secs(10),
        "the launcher exits at once"
    );
    let launcher = pids_of(&o, "launcher pid=")[0];
    assert_eq!(
        o.lines().len(),
        1,
        "the daemon's stdout is /dev/null:\n{}",
        o.stdout
    );

    // The daemon goes on alone and writes its log.
    let log = dir.join("unix_daemon.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.ends_with("done\n") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "the daemon's log:\n{text}");
    assert_eq!(lines[1..], ["tick 0", "tick 1", "tick 2", "done"]);
    let ids = pids(lines[0]);
    assert_eq!(ids.len(), 3, "{}", lines[0]);
    let (daemon, parent) = (ids[0], ids[1]);
    assert_eq!(ids[2], launcher);
    assert_ne!(daemon, launcher, "the daemon is another process");
    assert_ne!(parent, launcher, "the launcher is no longer its parent");
    let pidfile = std::fs::read_to_string(dir.join("unix_daemon.pid")).unwrap_or_default();
    assert_eq!(
        pidfile.trim(),
        daemon.to_string(),
        "the pidfile names the daemon"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

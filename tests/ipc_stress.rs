//! Queues, pipes, locks and shared memory under load, through the real binary:
//! many producers and consumers with exact counts, 64 MiB items, a lock whose
//! holder is SIGKILLed, a counter under a lock, and no descriptor, mapping or
//! /dev/shm entry left behind by thousands of queues and pipes.
//!
//! The interpreter runs in its own process (never forked from this
//! multithreaded test harness).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn proc_bin() -> &'static str {
    env!("CARGO_BIN_EXE_proc")
}

/// Runs `code` with `proc -c`; returns stdout, failing on a non-zero exit or
/// stderr output.
fn run(code: &str, limit: Duration) -> String {
    let start = Instant::now();
    let out = Command::new(proc_bin())
        .arg("-c")
        .arg(code)
        .stdin(Stdio::null())
        .output()
        .expect("run proc");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stderr.is_empty(),
        "proc failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        start.elapsed() < limit,
        "took {:?} (limit {limit:?})",
        start.elapsed()
    );
    stdout
}

#[test]
fn four_producers_three_consumers_100k_each() {
    let out = run(
        r#"
fn produce(q, id, n) {
    for i in range(n) { q.put([id, i]) }
}
fn consume(q, out) {
    let count = 0
    let total = 0
    let disorder = 0
    let last = [-1, -1, -1, -1]
    for item in q {
        let [id, i] = item
        if i <= last[id] { disorder += 1 }
        last[id] = i
        count += 1
        total += id * 100000 + i
    }
    out.put([count, total, disorder])
}
let n = 100000
let q = queue(1000)
let out = queue()
let ps = []
for id in range(4) { ps.push(spawn produce(q, id, n)) }
let cs = []
for k in range(3) { cs.push(spawn consume(q, out)) }
join ps
q.close()
join cs
let count = 0
let total = 0
let disorder = 0
for k in range(3) {
    let [c, t, d] = out.get()
    count += c
    total += t
    disorder += d
}
print(count, total, disorder, q.qsize())
"#,
        Duration::from_secs(120),
    );
    let n: u64 = 400_000;
    assert_eq!(out.trim(), format!("{n} {} 0 0", n * (n - 1) / 2));
}

#[test]
fn a_64_mib_item_through_queue_and_pipe() {
    let out = run(
        r#"
let mib = 1024 * 1024
let q = queue()
let [a, b] = pipe()
let p = spawn {
    let big = "q" * (64 * mib)
    q.put(big)
    b.send(big + "!")
    let back = b.recv()
    len(back)
}
let x = q.get()
let y = a.recv()
print(len(x), len(y), x == "q" * (64 * mib), y == x + "!")
a.send([x, 1])
print(join p)
"#,
        Duration::from_secs(120),
    );
    assert_eq!(out, "67108864 67108865 true true\n2\n");
}

#[test]
fn a_lock_whose_holder_is_killed_is_acquired_within_a_second() {
    let out = run(
        r#"
let l = lock()
let held = event()
let holder = spawn {
    l.acquire()
    held.set()
    sleep(60)
}
held.wait()
print(l.locked(), l.acquire(block = false))
let waiter = spawn {
    let t0 = monotonic()
    let ok = l.acquire(timeout = 10)
    [ok, monotonic() - t0]
}
sleep(0.1)
let t0 = monotonic()
holder.kill()
let [ok, waited] = join waiter
print(ok, monotonic() - t0 < 1, waited < 10)
"#,
        Duration::from_secs(30),
    );
    assert_eq!(out, "true false\ntrue true true\n");
}

#[test]
fn counters_under_locks_are_exact_with_four_processes() {
    let out = run(
        r#"
fn work(l, v, w, n) {
    for i in range(n) {
        with l { v.value += 1 }
        with w { w.value += 1 }
        w.add(1)
    }
}
let l = lock()
let v = value(0)
let w = value(0)
let ps = []
for i in range(4) { ps.push(spawn work(l, v, w, 10000)) }
join ps
print(v.value, w.value)
"#,
        Duration::from_secs(120),
    );
    assert_eq!(out, "40000 80000\n");
}

/// Descriptors, mappings and /dev/shm entries of a running interpreter.
fn resources(pid: u32) -> (usize, usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .count();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .expect("maps")
        .lines()
        .count();
    let shm = std::fs::read_dir(Path::new("/dev/shm")).map_or(0, |d| d.count());
    (fds, maps, shm)
}

#[test]
fn ten_thousand_queues_and_pipes_leave_nothing_behind() {
    let code = r#"
fn cycle(n) {
    for i in range(n) {
        let q = queue(2)
        q.put(i)
        q.get()
        q.close()
        let [a, b] = pipe()
        a.send(i)
        b.recv()
        a.close()
        b.close()
        let [r, w] = pipe(duplex = false)
        w.send(i)
        r.recv()
    }
}
cycle(10)
print("warm")
input()
cycle(10000)
print("done")
input()
"#;
    let mut child = Command::new(proc_bin())
        .arg("-c")
        .arg(code)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run proc");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || lines.next().expect("a line").expect("read");
    assert_eq!(next(), "warm");
    let before = resources(pid);
    stdin.write_all(b"\n").expect("write");
    assert_eq!(next(), "done");
    let after = resources(pid);
    stdin.write_all(b"\n").expect("write");
    drop(stdin);
    assert!(child.wait().expect("wait").success());
    assert_eq!(before, after, "(fds, mappings, /dev/shm entries)");
}

//! Pools seen from outside, through the real binary: Ctrl-C and SIGTERM during
//! pool work (exit 130 / 143, no worker left behind), a worker killed with
//! SIGKILL mid-task (WorkerLost, the rest completes), pools still open at exit,
//! and the progress bar on a terminal.
//!
//! Workers are found by scanning /proc for processes whose parent is the
//! interpreter; "left behind" means such a process still exists once the
//! interpreter has exited (same pid and start time).

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_proc"))
}

fn script(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pool-tests");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write script");
    p
}

/// Starts the interpreter on `path` in its own process group.
fn start(path: &Path) -> Child {
    Command::new(bin())
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .process_group(0)
        .spawn()
        .expect("start proc")
}

/// (pid, start time) of every process whose parent is `ppid`.
fn children_of(ppid: u32) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some((parent, start, _)) = stat(pid) {
            if parent == ppid {
                out.push((pid, start));
            }
        }
    }
    out
}

/// (ppid, start time, state) from /proc/PID/stat.
fn stat(pid: u32) -> Option<(u32, u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    Some((f.get(1)?.parse().ok()?, f.get(19)?.parse().ok()?, state))
}

/// Waits until `ppid` has `n` children; returns them.
fn wait_children(ppid: u32, n: usize) -> Vec<(u32, u64)> {
    let t0 = Instant::now();
    loop {
        let c = children_of(ppid);
        if c.len() >= n || t0.elapsed() > Duration::from_secs(10) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_gone(procs: &[(u32, u64)]) {
    // Reaped children vanish at once; give the kernel a moment anyway.
    let t0 = Instant::now();
    loop {
        let left: Vec<_> = procs
            .iter()
            .filter(|(pid, start)| stat(*pid).is_some_and(|(_, s, _)| s == *start))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "workers left behind: {:?}",
            left.iter().map(|(p, _)| (p, stat(*p))).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the child, at most `limit`; kills its group if it hangs.
fn finish(mut child: Child, limit: Duration) -> (i32, String, String) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            let mut out = String::new();
            let mut err = String::new();
            if let Some(mut o) = child.stdout.take() {
                let _ = o.read_to_string(&mut out);
            }
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (st.code().unwrap_or(-1), out, err);
        }
        if t0.elapsed() > limit {
            // SAFETY: killing the test's own child process group.
            unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            panic!("proc did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads stderr lines until one starts with `prefix`; returns it.
fn read_until(err: &mut BufReader<std::process::ChildStderr>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = err.read_line(&mut line).expect("read stderr");
        assert!(n > 0, "stderr ended before `{prefix}`");
        if line.starts_with(prefix) {
            return line.trim().to_string();
        }
    }
}

fn signal_run(name: &str, text: &str, sig: i32, group: bool, code: i32) {
    let path = script(name, text);
    let mut child = start(&path);
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    read_until(&mut err, "ready");
    let workers = wait_children(pid, 2);
    assert_eq!(workers.len(), 2, "expected 2 workers");
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    // SAFETY: signalling our own child (or its process group).
    unsafe {
        if group {
            libc::killpg(pid as i32, sig);
        } else {
            libc::kill(pid as i32, sig);
        }
    }
    child.stderr = Some(err.into_inner());
    let (status, _out, stderr) = finish(child, Duration::from_secs(10));
    assert_eq!(status, code, "exit status; stderr: {stderr}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?} to stop",
        t0.elapsed()
    );
    assert_gone(&workers);
}

const MAP_FOREVER: &str = r#"
let p = pool(2)
eprint("ready")
p.map(fn(x) { sleep(60); x }, range(4), chunksize = 1)
print("not reached")
"#;

#[test]
fn sigint_during_map_exits_130_without_leftovers() {
    signal_run("int_map.proc", MAP_FOREVER, libc::SIGINT, false, 130);
}

#[test]
fn ctrl_c_to_the_group_exits_130_without_leftovers() {
    signal_run("int_group.proc", MAP_FOREVER, libc::SIGINT, true, 130);
}

#[test]
fn sigint_in_with_block_while_sleeping() {
    let text = r#"
with pool(2) as p {
    p.apply_async(sleep, [60])
    eprint("ready")
    sleep(60)
}
"#;
    signal_run("int_with.proc", text, libc::SIGINT, false, 130);
}

#[test]
fn sigterm_in_with_block_exits_143_promptly() {
    let text = r#"
with pool(2) as p {
    let f = p.apply_async(sleep, [60])
    eprint("ready")
    sleep(60)
}
"#;
    signal_run("term_with.proc", text, libc::SIGTERM, false, 143);
}

#[test]
fn sigkill_of_a_worker_fails_only_its_task() {
    let path = script(
        "kill_worker.proc",
        r#"
let p = pool(2)
let fs = []
for i in range(6) {
    fs.push(p.apply_async(fn(x) {
        if x == 3 { eprint("victim", getpid()); sleep(60) }
        x
    }, [i]))
}
for f in fs {
    try { print(f.get()) } catch e { print(e.kind, e.message) }
}
print(p.map(fn(x) { x * 2 }, [1, 2, 3]))
p.close()
p.join()
"#,
    );
    let mut child = start(&path);
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let line = read_until(&mut err, "victim");
    let victim: i32 = line["victim ".len()..].parse().expect("victim pid");
    // SAFETY: killing a worker of our own child.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    child.stderr = Some(err.into_inner());
    let (status, out, stderr) = finish(child, Duration::from_secs(20));
    assert_eq!(status, 0, "stderr: {stderr}");
    let want = format!(
        "0\n1\n2\nWorkerLost pool worker pid={victim} was killed by signal 9 (SIGKILL) while running this task\n4\n5\n[2, 4, 6]\n"
    );
    assert_eq!(out, want);
}

#[test]
fn open_pools_are_terminated_at_exit() {
    let path = script(
        "open_at_exit.proc",
        r#"
let p = pool(2)
let f = p.apply_async(sleep, [60])
let q = pool(1)
q.map(fn(x) { x }, [1])
q.close()
eprint("ready")
sleep(0.3)
print("end of script")
"#,
    );
    let mut child = start(&path);
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    read_until(&mut err, "ready");
    let workers = wait_children(pid, 3);
    assert_eq!(workers.len(), 3);
    let t0 = Instant::now();
    child.stderr = Some(err.into_inner());
    let (status, out, stderr) = finish(child, Duration::from_secs(10));
    assert_eq!(
        (status, out.as_str()),
        (0, "end of script\n"),
        "stderr: {stderr}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_gone(&workers);
}

#[test]
fn uncaught_error_with_open_pool_exits_1_without_leftovers() {
    let path = script(
        "error_at_exit.proc",
        r#"
let p = pool(2)
p.apply_async(sleep, [60])
eprint("ready")
sleep(0.3)
throw error("ValueError", "bye")
"#,
    );
    let mut child = start(&path);
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    read_until(&mut err, "ready");
    let workers = wait_children(pid, 2);
    child.stderr = Some(err.into_inner());
    let (status, _, stderr) = finish(child, Duration::from_secs(10));
    assert_eq!(status, 1);
    assert!(stderr.contains("error[ValueError]: bye"), "{stderr}");
    assert_gone(&workers);
}

#[test]
fn sigkill_of_the_interpreter_takes_the_workers_along() {
    let path = script(
        "kill_parent.proc",
        r#"
let p = pool(2)
p.apply_async(sleep, [60])
eprint("ready")
sleep(60)
"#,
    );
    let mut child = start(&path);
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    read_until(&mut err, "ready");
    let workers = wait_children(pid, 2);
    assert_eq!(workers.len(), 2);
    // SAFETY: killing our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert_gone(&workers);
}

#[test]
fn progress_bar_on_a_terminal() {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty fills in two new descriptors.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty");
    // SAFETY: both descriptors were just created and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let path = script(
        "progress.proc",
        r#"
with pool(2) as p {
    print(sum(p.map(fn(x) { sleep(0.002); x }, range(300), chunksize = 10, progress = true)))
}
"#,
    );
    let child = Command::new(bin())
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("start proc");
    // Drain the terminal while the child runs, so it never blocks on it.
    let reader = std::thread::spawn(move || {
        let mut drawn = Vec::new();
        let mut f = std::fs::File::from(master);
        let mut buf = [0u8; 4096];
        // Ends with EIO once the child (the slave's last holder) has exited.
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            drawn.extend_from_slice(&buf[..n]);
        }
        drawn
    });
    let (status, out, _) = finish(child, Duration::from_secs(20));
    assert_eq!((status, out.as_str()), (0, "44850\n"));
    let drawn = reader.join().expect("reader");
    let drawn = String::from_utf8_lossy(&drawn);
    assert!(drawn.contains("300/300"), "progress bar output: {drawn:?}");
}

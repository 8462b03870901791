//! OS-level checks of `spawn` / `join` through the real binary: no zombies, no
//! orphans, signal cleanup and exit codes, no descriptor leak, `daemonize`.
//! Each test runs a script in its own `proc` process and inspects it from the
//! outside through /proc (nothing here forks inside the test process).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("proc-osrt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running interpreter with piped stdin and stdout.
struct Interp {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Interp {
    fn start(script: &Path, args: &[&str]) -> Interp {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_proc"));
        cmd.arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("NO_COLOR", "1");
        // SAFETY: only async-signal-safe calls between fork and exec. Whoever ran
        // the tests may have left SIGINT ignored (a background job), which the
        // interpreter would then keep; these tests need the default.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start proc");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Interp {
            child,
            stdin,
            stdout,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line the script prints (it must flush: `sleep`, `join` and
    /// `input` do).
    fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).expect("read stdout");
        s.trim_end().to_string()
    }

    fn send_line(&mut self, s: &str) {
        let w = self.stdin.as_mut().expect("stdin");
        writeln!(w, "{s}").expect("write stdin");
        w.flush().expect("flush stdin");
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits (at most `limit`) for the exit; the code, or 128 + the signal.
    fn wait(mut self, limit: Duration) -> i32 {
        drop(self.stdin.take());
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                use std::os::unix::process::ExitStatusExt;
                return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("proc did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Interp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn write_script(dir: &Scratch, text: &str) -> PathBuf {
    let p = dir.path("script.proc");
    std::fs::write(&p, text).expect("write script");
    p
}

/// (state, ppid) of a process from /proc/PID/stat, None if it is gone.
fn stat(pid: i32) -> Option<(char, i32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let _pgrp = f.next()?;
    let session = f.next()?.parse().ok()?;
    Some((state, ppid, session))
}

/// Every process whose parent is `pid`, with its state.
fn children_of(pid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Some((state, ppid, _)) = stat(p) {
            if ppid == pid {
                out.push((p, state));
            }
        }
    }
    out
}

/// True once `pid` has exited. A zombie counts as gone: after the interpreter
/// is SIGKILLed its children are reaped by init, which may take its time.
fn gone(pid: i32) -> bool {
    !matches!(stat(pid), Some((s, _, _)) if s != 'Z' && s != 'X')
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .count()
}

#[test]
fn no_zombies_after_200_unjoined_children() {
    let dir = Scratch::new("zombies");
    let script = write_script(
        &dir,
        "for i in range(200) { spawn { i } }\nprint(\"spawned\")\nsleep(30)\n",
    );
    let mut it = Interp::start(&script, &[]);
    assert_eq!(it.line(), "spawned");
    let pid = it.pid();
    // All 200 exit at once; each is reaped as it does, while the script sleeps.
    let clean = wait_until(Duration::from_secs(3), || children_of(pid).is_empty());
    assert!(clean, "children left: {:?}", children_of(pid));
    // And the script's descriptors are back to normal (no result pipe kept).
    assert!(fd_count(pid) < 20, "fds: {}", fd_count(pid));
    it.signal(libc::SIGTERM);
    assert_eq!(it.wait(Duration::from_secs(5)), 143);
}

const TREE: &str = r#"
let dir = argv[0]
fn sleeper() { sleep(60) }
let ps = [spawn sleeper(), spawn sleeper(), daemon sleeper()]
let mid = spawn {
  let g = spawn sleeper()
  write_file(dir + "/grandchild", str(g.pid))
  join g
}
ps.push(mid)
let pids = []
for p in ps { pids.push(str(p.pid)) }
while not exists(dir + "/grandchild") { sleep(0.01) }
pids.push(read_file(dir + "/grandchild"))
write_file(dir + "/pids", ",".join(pids))
print("ready")
join ps
"#;

fn tree_pids(dir: &Scratch) -> Vec<i32> {
    std::fs::read_to_string(dir.path("pids"))
        .expect("pids file")
        .split(',')
        .map(|p| p.trim().parse().expect("pid"))
        .collect()
}

#[test]
fn no_orphans_after_sigkill() {
    let dir = Scratch::new("sigkill");
    let script = write_script(&dir, TREE);
    let mut it = Interp::start(&script, &[dir.0.to_str().expect("utf-8 path")]);
    assert_eq!(it.line(), "ready");
    let pids = tree_pids(&dir);
    assert_eq!(pids.len(), 5);
    assert!(
        pids.iter().all(|&p| !gone(p)),
        "all running before the kill"
    );
    it.signal(libc::SIGKILL);
    assert_eq!(it.wait(Duration::from_secs(5)), 128 + libc::SIGKILL);
    let all_gone = wait_until(Duration::from_millis(1500), || {
        pids.iter().all(|&p| gone(p))
    });
    let left: Vec<_> = pids.iter().filter(|&&p| !gone(p)).collect();
    assert!(all_gone, "orphans left: {left:?}");
}

fn signal_cleanup(sig: i32, code: i32) {
    let dir = Scratch::new(&format!("sig{sig}"));
    let script = write_script(&dir, TREE);
    let mut it = Interp::start(&script, &[dir.0.to_str().expect("utf-8 path")]);
    assert_eq!(it.line(), "ready");
    let pids = tree_pids(&dir);
    let start = Instant::now();
    it.signal(sig);
    assert_eq!(it.wait(Duration::from_secs(5)), code);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "slow: {:?}",
        start.elapsed()
    );
    // The interpreter waited for them: not even zombies are left.
    let left: Vec<_> = pids.iter().filter(|&&p| stat(p).is_some()).collect();
    assert!(left.is_empty(), "children left: {left:?}");
}

#[test]
fn sigint_stops_children_and_exits_130() {
    signal_cleanup(libc::SIGINT, 130);
}

#[test]
fn sigterm_stops_children_and_exits_143() {
    signal_cleanup(libc::SIGTERM, 143);
}

#[test]
fn fd_count_constant_over_10000_spawn_join_cycles() {
    let dir = Scratch::new("fds");
    let script = write_script(
        &dir,
        r#"
fn cycles(n) {
  let total = 0
  for i in range(n) { total += join spawn { 1 } }
  total
}
print(cycles(100))
input()
print(cycles(10000))
input()
"#,
    );
    let mut it = Interp::start(&script, &[]);
    assert_eq!(it.line(), "100");
    let before = fd_count(it.pid());
    it.send_line("go");
    assert_eq!(it.line(), "10000");
    let after = fd_count(it.pid());
    it.send_line("done");
    assert_eq!(it.wait(Duration::from_secs(5)), 0);
    assert_eq!(
        before, after,
        "descriptors leaked over 10,000 spawn/join cycles"
    );
}

#[test]
fn sigint_interrupts_input() {
    let dir = Scratch::new("input");
    let script = write_script(
        &dir,
        "print(\"reading\")\nlet l = input()\nprint(\"got\", l)\n",
    );
    let mut it = Interp::start(&script, &[]);
    assert_eq!(it.line(), "reading");
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    it.signal(libc::SIGINT);
    // stdin stays open (and empty): only the signal can end the read.
    let stdin = it.stdin.take();
    let code = it.wait(Duration::from_secs(3));
    drop(stdin);
    assert_eq!(code, 130);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn daemonize_detaches() {
    let dir = Scratch::new("daemonize");
    let script = write_script(
        &dir,
        r#"
let dir = argv[0]
print("before")
daemonize(pidfile = dir + "/pidfile")
print("to /dev/null")
write_file(dir + "/info", str([getpid(), getppid()]))
let p = spawn { "children work" }
write_file(dir + "/child", join p)
sleep(30)
"#,
    );
    let mut it = Interp::start(&script, &[dir.0.to_str().expect("utf-8 path")]);
    assert_eq!(it.line(), "before");
    let me = it.pid();
    assert_eq!(
        it.wait(Duration::from_secs(3)),
        0,
        "the original exits 0 at once"
    );
    let pid: i32 = std::fs::read_to_string(dir.path("pidfile"))
        .expect("pidfile written before the original exits")
        .trim()
        .parse()
        .expect("pid");
    assert_ne!(pid, me);
    assert!(wait_until(Duration::from_secs(3), || dir
        .path("child")
        .exists()));
    assert_eq!(
        std::fs::read_to_string(dir.path("child")).expect("child"),
        "children work"
    );
    let (_, _, session) = stat(pid).expect("daemon running");
    let (_, _, my_session) = stat(std::process::id() as i32).expect("self");
    assert_ne!(session, my_session, "in a new session");
    let out = std::fs::read_link(format!("/proc/{pid}/fd/1")).expect("fd 1");
    assert_eq!(out, Path::new("/dev/null"));
    // SAFETY: kill(2) on the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

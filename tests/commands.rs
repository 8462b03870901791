//! External commands through the real binary (SPEC §12): what golden files cannot
//! show — timing, processes left behind, descriptors, signals, a closed stdout,
//! a terminal. (The examples of `docs/commands.md` run in `tests/docs.rs`.)
//!
//! The interpreter runs as a child of the test (never inside it), so libtest's
//! threads are fine here.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_proc"))
}

fn proc_c(code: &str) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("-c").arg(code).env("NO_COLOR", "1");
    cmd
}

fn wait_limited(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("proc still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Live (not zombie) processes with `needle` as one of their arguments.
fn live_with_arg(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        if state != Some('Z')
            && cmdline
                .split(|&b| b == 0)
                .any(|arg| arg == needle.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}

/// Waits up to `limit` for every process with `needle` among its arguments to go.
fn gone_within(needle: &str, limit: Duration) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let left = live_with_arg(needle);
        if left.is_empty() || start.elapsed() > limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A number no other test (or run) uses, to find our `sleep`s by their argument.
fn marker(base: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{base}.{}{}", std::process::id(), nanos % 1000)
}

#[test]
fn timeout_with_a_grandchild_holding_the_pipe_returns_promptly_and_leaves_nothing() {
    let m = marker(900);
    // The grandchild `sleep` inherits the command's stdout pipe and keeps it
    // open: waiting for end of file would take as long as it sleeps.
    let code = format!(
        r#"
let t0 = monotonic()
try {{
    run(["sh", "-c", "sleep {m} & sleep {m}"], timeout = 0.3)
}} catch e {{
    print(e.kind, monotonic() - t0)
}}
sleep(1.5)
"#
    );
    let mut child = proc_c(&code)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("Timeout"), "{line}");
    let took: f64 = words.next().unwrap().parse().unwrap();
    assert!(took < 1.0, "the timeout took {took}s");
    // The interpreter is still running (sleeping): nothing of the command's
    // process group may be left.
    let left = gone_within(&m, Duration::from_secs(1));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(wait_limited(&mut child, Duration::from_secs(10)), Some(0));
}

#[test]
fn descriptors_do_not_leak_over_ten_thousand_commands() {
    // The test counts the interpreter's descriptors from outside while the
    // script waits on `input()`, with no command running, before and after.
    let code = r#"
fn step(k) {
    if k < 5 {
        run(["true"])
    } else if k == 5 {
        try { run(["no-such-program-anywhere"]) } catch e { }
    } else if k == 6 {
        let p = popen(["cat"], stdin = "pipe", stdout = "pipe", stderr = "pipe")
        p.stdin.write("x")
        p.communicate()
    } else if k == 7 {
        pipeline(["echo", "x"], ["cat"], "wc -c")
    } else if k == 8 {
        try { run(["sleep", "5"], timeout = 0) } catch e { }
    } else {
        # Dropped without a wait: closed here, reaped by the child table.
        let p = popen(["true"], stdout = "pipe")
        let q = popen(["cat"], stdin = p.stdout, stdout = "null")
        let r = popen(["sh", "-c", "echo x; exit 3"], stdout = "pipe")
        for line in r.stdout { }
    }
}
step(0)
input("ready\n")
for i in range(10000) { step(i % 10) }
input("done\n")
"#;
    let mut child = proc_c(code)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let count = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let before = count();
    writeln!(stdin).unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "done\n");
    let after = count();
    writeln!(stdin).unwrap();
    assert_eq!(wait_limited(&mut child, Duration::from_secs(30)), Some(0));
    assert_eq!(
        before, after,
        "descriptors before and after 10,000 commands"
    );
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = std::env::temp_dir().join(format!("proc-sigpipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status_file = dir.join("status");
    let script = format!(
        "seq 1 300000 | {{ '{bin}' -c 'for l in lines() {{ print(l) }}'; echo $? > '{status}'; }} | head -1",
        bin = bin().display(),
        status = status_file.display(),
    );
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "not quiet");
    let status = std::fs::read_to_string(&status_file).unwrap();
    // As a program killed by SIGPIPE would end (in a shell's words).
    assert_eq!(status.trim(), "141");

    // A command writing to the inherited stdout dies of SIGPIPE as it would in
    // a shell pipeline, and the script goes on.
    let script = format!(
        "'{bin}' -c 'let r = run([\"yes\"], stdout = \"inherit\"); eprint(r.code)' | head -2",
        bin = bin().display(),
    );
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "y\ny\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "-13\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigint_during_a_wait_stops_the_command_and_exits_130() {
    let m = marker(901);
    for call in [
        format!(r#"run(["sleep", "{m}"])"#),
        format!(r#"popen(["sleep", "{m}"]).wait()"#),
        format!(r#"pipeline(["sleep", "{m}"], "cat")"#),
    ] {
        let mut child = proc_c(&format!("{call}\nprint(\"not reached\")"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the command is running, then interrupt the interpreter.
        let start = Instant::now();
        while live_with_arg(&m).is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{call} never started"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = Instant::now();
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        assert_eq!(
            wait_limited(&mut child, Duration::from_secs(5)),
            Some(130),
            "{call}"
        );
        assert!(t.elapsed() < Duration::from_secs(1), "{call}: slow to stop");
        let mut rest = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut rest)
            .unwrap();
        assert_eq!(rest, "", "{call}");
        // `run` and `pipeline` kill their command; a popen's command dies with
        // the interpreter's process group or is left to the child table, but
        // must not outlive the interpreter.
        let left = gone_within(&m, Duration::from_secs(2));
        assert!(left.is_empty(), "{call} left {left:?}");
    }
}

/// On a terminal, a command that reads it must not be stopped by SIGTTIN: it
/// stays in the terminal's foreground process group. Needs util-linux `script`
/// for a pseudo-terminal; skipped without it.
#[test]
fn a_command_can_read_the_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to make a terminal");
        return;
    }
    let code = r#"print(sh("read x; echo got $x").stdout.strip())"#;
    let inner = format!("'{}' -c '{}'", bin().display(), code.replace('\'', r"'\''"));
    let mut child = Command::new("script")
        .args(["-qc", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    writeln!(stdin, "typed").unwrap();
    let status = wait_limited(&mut child, Duration::from_secs(20));
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("got typed"), "{out:?}");
}

//! OS-level checks of `os::command`: real programs, real pipes, real signals.
//!
//! `harness = false`: forking inside libtest's threads is unsafe, so this is a
//! plain program running each check in turn on the main thread. Pass a word to
//! run only the checks whose names contain it.

use std::cell::RefCell;
use std::ffi::CString;
use std::io::Write;
use std::time::{Duration, Instant};

use proc::os::command::{
    run, run_pipeline, spawn, split_command, CommandError, CommandSpec, Output, Stdio, Stream,
};
use proc::os::process::{self, ExitStatus};
use proc::os::signal;

thread_local! {
    static NOTES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// A measurement to print under the check's name (printed, never asserted).
fn note(line: String) {
    NOTES.with(|n| n.borrow_mut().push(line));
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn cmd(words: &[&str]) -> CommandSpec {
    CommandSpec::new(argv(words))
}

fn piped(words: &[&str]) -> CommandSpec {
    cmd(words).stdio(Stdio::Inherit, Stdio::Pipe, Stdio::Pipe)
}

fn go_on() -> bool {
    true
}

fn run_ok(spec: CommandSpec, input: Option<&[u8]>) -> Output {
    match run(spec, input, Some(Duration::from_secs(60)), &mut go_on) {
        Ok(out) => out,
        Err(e) => panic!("run failed: {e}"),
    }
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("utf-8 output")
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Live (not zombie) processes whose command line contains `needle`.
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

// ---------------------------------------------------------------------------

fn split_honours_quotes() {
    let words = split_command(r#"grep -e 'a b' "c d" e\ f $HOME *.rs"#).unwrap();
    assert_eq!(words, ["grep", "-e", "a b", "c d", "e f", "$HOME", "*.rs"]);
    let e = split_command("echo 'unclosed").unwrap_err();
    assert!(matches!(e, CommandError::Parse { .. }), "{e:?}");
    assert!(matches!(
        split_command("   ").unwrap_err(),
        CommandError::Parse { .. }
    ));
}

fn argv_command() {
    let out = run_ok(piped(&["printf", "%s|", "a b", "", "c"]), None);
    assert_eq!(out.status, ExitStatus::Code(0));
    assert_eq!(text(&out.stdout), "a b||c|");
    assert!(out.pid > 0);
}

fn string_command_with_quotes() {
    let spec = CommandSpec::parse(r#"sh -c 'echo "$0" $1' 'x  y' z"#)
        .unwrap()
        .stdio(Stdio::Inherit, Stdio::Pipe, Stdio::Pipe);
    let out = run_ok(spec, None);
    assert_eq!(text(&out.stdout), "x  y z\n");
}

fn env_replaced() {
    let mut spec = piped(&["env"]);
    spec.env = Some(vec![("FOO".into(), "bar baz".into())]);
    let out = run_ok(spec, None);
    // Only what we gave; `env` was found through the default PATH.
    assert_eq!(text(&out.stdout), "FOO=bar baz\n");
}

fn cwd_set() {
    let mut spec = piped(&["pwd"]);
    spec.cwd = Some("/usr/share".into());
    assert_eq!(text(&run_ok(spec, None).stdout), "/usr/share\n");
}

fn missing_program() {
    let e = spawn(cmd(&["frobnicate", "--now"])).unwrap_err();
    assert_eq!(e.to_string(), "no such program: `frobnicate`");
    let e = spawn(cmd(&["/no/such/frobnicate"])).unwrap_err();
    assert_eq!(e.to_string(), "no such program: `/no/such/frobnicate`");
    let e = spawn(cmd(&["/etc/passwd"])).unwrap_err();
    assert_eq!(e.to_string(), "cannot run `/etc/passwd`: permission denied");
    let e = spawn(CommandSpec::new(Vec::new())).unwrap_err();
    assert!(matches!(e, CommandError::Parse { .. }), "{e:?}");
}

fn bad_cwd() {
    let mut spec = cmd(&["true"]);
    spec.cwd = Some("/nope".into());
    let e = spawn(spec).unwrap_err();
    assert_eq!(e.to_string(), "no such directory: `/nope`");
}

fn stdout_stderr_pipe_null() {
    let script = "echo out; echo err >&2";
    let out = run_ok(
        cmd(&["sh", "-c", script]).stdio(Stdio::Null, Stdio::Pipe, Stdio::Null),
        None,
    );
    assert_eq!((text(&out.stdout), text(&out.stderr)), ("out\n", ""));
    let out = run_ok(
        cmd(&["sh", "-c", script]).stdio(Stdio::Null, Stdio::Null, Stdio::Pipe),
        None,
    );
    assert_eq!((text(&out.stdout), text(&out.stderr)), ("", "err\n"));
}

fn inherit_and_null_streams() {
    // `-ef`: the child's fd and ours (or /dev/null) are the same file.
    let me = std::process::id();
    let same = |fd: u32, other: String, stdio: [Stdio; 3]| {
        let [i, o, e] = stdio;
        let check = format!("[ /proc/self/fd/{fd} -ef {other} ]");
        run_ok(cmd(&["sh", "-c", &check]).stdio(i, o, e), None).status
    };
    let ours = |fd| format!("/proc/{me}/fd/{fd}");
    use Stdio::{Inherit as I, Null as N};
    for fd in 0..3 {
        assert_eq!(
            same(fd, ours(fd), [I, I, I]),
            ExitStatus::Code(0),
            "fd {fd}"
        );
    }
    assert_eq!(same(0, "/dev/null".into(), [N, I, I]), ExitStatus::Code(0));
    assert_eq!(same(1, "/dev/null".into(), [I, N, I]), ExitStatus::Code(0));
    assert_eq!(same(2, "/dev/null".into(), [I, I, N]), ExitStatus::Code(0));
}

fn stderr_to_stdout() {
    let spec = cmd(&["sh", "-c", "echo a; echo b >&2; echo c"]).stdio(
        Stdio::Inherit,
        Stdio::Pipe,
        Stdio::ToStdout,
    );
    let out = run_ok(spec, None);
    assert_eq!(text(&out.stdout), "a\nb\nc\n");
    assert!(out.stderr.is_empty());
    let bad = cmd(&["true"]).stdio(Stdio::ToStdout, Stdio::Inherit, Stdio::Inherit);
    assert!(matches!(spawn(bad), Err(CommandError::Usage(_))));
}

fn child_is_set_up() {
    // Its own process group, no ignored or blocked signals (Rust ignores
    // SIGPIPE in us; we ignore SIGUSR2 here too).
    unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
    let mut child = spawn(cmd(&["sleep", "5"])).unwrap();
    unsafe { libc::signal(libc::SIGUSR2, libc::SIG_DFL) };
    let pid = child.pid();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
    assert_eq!(fields[2], pid.to_string(), "pgrp");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for key in ["SigIgn", "SigBlk"] {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    // Beyond 0, 1 and 2 it has only what we were given without FD_CLOEXEC
    // (whoever started the tests may pass some): none of our pipes or pidfds.
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let fd: i32 = entry
            .unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert!(fd < 3 || flags == 0, "fd {fd} leaked (flags {flags})");
    }
    child.kill().unwrap();
    assert_eq!(child.wait(None).unwrap(), ExitStatus::Signal(libc::SIGKILL));
}

fn without_a_process_group() {
    let mut spec = cmd(&["sleep", "5"]);
    spec.process_group = false;
    let mut child = spawn(spec).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.pid())).unwrap();
    let pgrp: i32 = stat
        .rsplit(") ")
        .next()
        .unwrap()
        .split(' ')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pgrp, unsafe { libc::getpgrp() });
    child.kill().unwrap();
    assert_eq!(child.wait(None).unwrap(), ExitStatus::Signal(libc::SIGKILL));
    child.kill().unwrap();
}

fn communicate_64mib_both_ways() {
    let input: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    let spec = cmd(&["sh", "-c", "cat; head -c 3000000 /dev/zero >&2"]).stdio(
        Stdio::Pipe,
        Stdio::Pipe,
        Stdio::Pipe,
    );
    let mut child = spawn(spec).unwrap();
    let t = Instant::now();
    let (out, err) = child.communicate(Some(&input), None).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(child.status(), Some(ExitStatus::Code(0)));
    assert!(out == input, "stdout differs ({} bytes)", out.len());
    assert_eq!(err.len(), 3_000_000);
    note(format!(
        "64 MiB in and out of cat: {secs:.3} s ({:.0} MiB/s each way)",
        64.0 / secs
    ));
}

fn communicate_resumes_after_timeout() {
    // Output before the timeout, input that cannot all fit in the pipe yet.
    let input: Vec<u8> = (0..1u32 << 20).map(|i| (i % 13) as u8 + b'a').collect();
    let spec = cmd(&["sh", "-c", "echo early; sleep 0.4; cat; echo late >&2"]).stdio(
        Stdio::Pipe,
        Stdio::Pipe,
        Stdio::Pipe,
    );
    let mut child = spawn(spec).unwrap();
    let t = Instant::now();
    let e = child
        .communicate(Some(&input), Some(Duration::from_millis(150)))
        .unwrap_err();
    assert!(matches!(e, CommandError::Timeout { .. }), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(child.try_wait().unwrap(), None);
    // More input now is a mistake; the kept input is still on its way.
    assert!(matches!(
        child.communicate(Some(b"more"), Some(Duration::ZERO)),
        Err(CommandError::Usage(_))
    ));
    let (out, err) = child.communicate(None, None).unwrap();
    let mut expected = b"early\n".to_vec();
    expected.extend_from_slice(&input);
    assert!(out == expected, "stdout differs ({} bytes)", out.len());
    assert_eq!(text(&err), "late\n");
    assert_eq!(child.status(), Some(ExitStatus::Code(0)));
}

fn timeout_kills_grandchildren_promptly() {
    let t = Instant::now();
    let e = run(
        piped(&["sh", "-c", "sleep 9.8765 & sleep 9.8764"]),
        None,
        Some(Duration::from_millis(300)),
        &mut go_on,
    )
    .unwrap_err();
    let took = t.elapsed();
    assert!(matches!(e, CommandError::Timeout { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "command `sh -c 'sleep 9.8765 & sleep 9.8764'` timed out after 0.3s"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    note(format!(
        "returned after {:.0} ms",
        took.as_secs_f64() * 1000.0
    ));
    // SIGKILL is asynchronous for the grandchild, which we cannot reap.
    let gone = Instant::now() + Duration::from_secs(2);
    while !(live_with_arg("9.8765").is_empty() && live_with_arg("9.8764").is_empty()) {
        assert!(Instant::now() < gone, "a sleep survived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn check_failure_names_command_and_stderr() {
    let out = run_ok(piped(&["sort", "-x"]), Some(b""));
    assert_eq!(out.status, ExitStatus::Code(2));
    let msg = out.check().unwrap_err().to_string();
    assert!(
        msg.starts_with("command `sort -x` exited with code 2\n--- stderr\nsort: "),
        "{msg}"
    );
    assert!(run_ok(piped(&["true"]), None).check().is_ok());
}

fn killed_by_signal() {
    let out = run_ok(piped(&["sh", "-c", "kill -9 $$"]), None);
    assert_eq!(out.status, ExitStatus::Signal(9));
    assert_eq!(out.status.code(), -9);
    let msg = out.check().unwrap_err().to_string();
    assert_eq!(
        msg,
        "command `sh -c 'kill -9 $$'` killed by signal 9 (SIGKILL)"
    );

    let mut child = spawn(cmd(&["sleep", "10"])).unwrap();
    child.terminate().unwrap();
    assert_eq!(child.wait(None).unwrap(), ExitStatus::Signal(libc::SIGTERM));
    // Signalling a finished command is harmless.
    child.kill().unwrap();
}

fn wait_with_timeout() {
    let mut child = spawn(cmd(&["sleep", "0.3"])).unwrap();
    let e = child.wait(Some(Duration::from_millis(50))).unwrap_err();
    assert!(matches!(e, CommandError::Timeout { .. }), "{e:?}");
    assert_eq!(child.try_wait().unwrap(), None);
    assert_eq!(
        child.wait(Some(Duration::from_secs(5))).unwrap(),
        ExitStatus::Code(0)
    );
    assert_eq!(child.try_wait().unwrap(), Some(ExitStatus::Code(0)));
}

fn popen_style_streams() {
    let mut child = spawn(cmd(&["cat"]).stdio(Stdio::Pipe, Stdio::Pipe, Stdio::Null)).unwrap();
    child.write_stdin(b"hello\nwor").unwrap();
    assert_eq!(
        child.read_line(Stream::Stdout).unwrap().unwrap(),
        b"hello\n"
    );
    child.write_stdin(b"ld\nlast").unwrap();
    assert_eq!(
        child.read_line(Stream::Stdout).unwrap().unwrap(),
        b"world\n"
    );
    child.close_stdin().unwrap();
    child.close_stdin().unwrap();
    assert_eq!(child.read_line(Stream::Stdout).unwrap().unwrap(), b"last");
    assert_eq!(child.read_line(Stream::Stdout).unwrap(), None);
    assert_eq!(child.read_all(Stream::Stdout).unwrap(), b"");
    assert_eq!(child.wait(None).unwrap(), ExitStatus::Code(0));
    assert!(matches!(
        child.read_line(Stream::Stderr),
        Err(CommandError::Usage(_))
    ));
    // Writing to a command that is gone is an error, not a SIGPIPE.
    let mut child = spawn(cmd(&["true"]).stdio(Stdio::Pipe, Stdio::Null, Stdio::Null)).unwrap();
    child.wait(None).unwrap();
    let e = child.write_stdin(&[b'x'; 100_000]).unwrap_err();
    assert!(matches!(e, CommandError::Io { .. }), "{e:?}");
}

fn popen_connected_directly() {
    let mut producer =
        spawn(cmd(&["printf", "x\\ny\\n"]).stdio(Stdio::Null, Stdio::Pipe, Stdio::Inherit))
            .unwrap();
    let fd = producer.take_stream(Stream::Stdout).unwrap();
    let mut consumer =
        spawn(cmd(&["tr", "a-z", "A-Z"]).stdio(Stdio::Fd(fd), Stdio::Pipe, Stdio::Inherit))
            .unwrap();
    assert_eq!(consumer.read_line(Stream::Stdout).unwrap().unwrap(), b"X\n");
    assert_eq!(consumer.read_all(Stream::Stdout).unwrap(), b"Y\n");
    assert_eq!(producer.wait(None).unwrap(), ExitStatus::Code(0));
    assert_eq!(consumer.wait(None).unwrap(), ExitStatus::Code(0));
}

fn input_to_a_command_that_stops_reading() {
    // With SIGPIPE at its default, a write to a closed pipe would kill us.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let big = vec![b'z'; 8 << 20];
    let out = run_ok(piped(&["head", "-c", "10"]), Some(&big));
    unsafe { libc::signal(libc::SIGPIPE, old) };
    assert_eq!(out.stdout, b"zzzzzzzzzz");
    assert_eq!(out.status, ExitStatus::Code(0));
}

fn pipeline_three_stages() {
    let specs = vec![
        cmd(&["printf", "b\\na\\n"]),
        cmd(&["sort"]),
        piped(&["sh", "-c", "cat; exit 3"]),
    ];
    let out = run_pipeline(specs, None, Some(Duration::from_secs(10)), &mut go_on).unwrap();
    assert_eq!(text(&out.stdout), "a\nb\n");
    let codes: Vec<i32> = out.statuses.iter().map(|s| s.code()).collect();
    assert_eq!(codes, [0, 0, 3]);
    let msg = out.check().unwrap_err().to_string();
    assert_eq!(msg, "command `sh -c 'cat; exit 3'` exited with code 3");

    // Input to the first stage, stderr from each, `producer | head` is fine.
    let specs = vec![
        cmd(&["sh", "-c", "cat; echo one >&2"]).stdio(Stdio::Inherit, Stdio::Inherit, Stdio::Pipe),
        cmd(&["tr", "a-z", "A-Z"]),
        piped(&["sh", "-c", "cat; echo three >&2"]),
    ];
    let out = run_pipeline(specs, Some(b"abc\n"), None, &mut go_on).unwrap();
    assert_eq!(text(&out.stdout), "ABC\n");
    let errs: Vec<&str> = out.stderrs.iter().map(|e| text(e)).collect();
    assert_eq!(errs, ["one\n", "", "three\n"]);
    let specs = vec![cmd(&["yes"]), piped(&["head", "-n", "2"])];
    let out = run_pipeline(specs, None, None, &mut go_on).unwrap();
    assert_eq!(text(&out.stdout), "y\ny\n");
    assert_eq!(out.statuses[0], ExitStatus::Signal(libc::SIGPIPE));
    assert!(out.check().is_ok());

    // Nothing starts when a program is missing.
    let specs = vec![cmd(&["sleep", "7.6543"]), cmd(&["frobnicate"])];
    let e = run_pipeline(specs, None, None, &mut go_on).unwrap_err();
    assert_eq!(e.to_string(), "no such program: `frobnicate`");
    assert!(live_with_arg("7.6543").is_empty());
}

fn pipeline_moves_data_directly() {
    let specs = vec![
        cmd(&["head", "-c", "100M", "/dev/zero"]),
        piped(&["wc", "-c"]),
    ];
    let out = run_pipeline(specs, None, Some(Duration::from_secs(30)), &mut go_on).unwrap();
    assert_eq!(text(&out.stdout).trim(), "104857600");
    assert!(out.check().is_ok());
}

fn pipeline_timeout_kills_every_stage() {
    let specs = vec![
        cmd(&["sh", "-c", "sleep 8.7654 & yes"]),
        cmd(&["sh", "-c", "cat >/dev/null; sleep 8.7653"]),
        piped(&["sleep", "8.7652"]),
    ];
    let t = Instant::now();
    let e = run_pipeline(specs, None, Some(Duration::from_millis(200)), &mut go_on).unwrap_err();
    assert!(matches!(e, CommandError::Timeout { .. }), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let gone = Instant::now() + Duration::from_secs(2);
    while ["8.7654", "8.7653", "8.7652"]
        .iter()
        .any(|a| !live_with_arg(a).is_empty())
    {
        assert!(Instant::now() < gone, "a stage survived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn no_command_outlives_a_killed_interpreter() {
    // A stand-in interpreter starts a command, then is SIGKILLed.
    let (r, mut w) = os_pipe::pipe().unwrap();
    let helper = process::fork_with(move || {
        let child = spawn(cmd(&["sleep", "6.5432"])).unwrap();
        let _ = writeln!(w, "{}", child.pid());
        drop(w);
        std::thread::sleep(Duration::from_secs(30));
        0
    })
    .unwrap();
    let mut line = String::new();
    std::io::Read::read_to_string(&mut { r }, &mut line).unwrap();
    assert!(!live_with_arg("6.5432").is_empty(), "the command never ran");
    unsafe { libc::kill(helper, libc::SIGKILL) };
    assert_eq!(
        process::wait(helper, None).unwrap(),
        ExitStatus::Signal(libc::SIGKILL)
    );
    let gone = Instant::now() + Duration::from_secs(2);
    while !live_with_arg("6.5432").is_empty() {
        assert!(Instant::now() < gone, "the command outlived its parent");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn fd_count_constant_over_10000_runs() {
    let run_once = || {
        let mut c =
            spawn(cmd(&["/bin/true"]).stdio(Stdio::Null, Stdio::Pipe, Stdio::Pipe)).unwrap();
        let (out, err) = c.communicate(None, None).unwrap();
        assert!(out.is_empty() && err.is_empty());
        assert_eq!(c.status(), Some(ExitStatus::Code(0)));
    };
    run_once();
    let before = open_fds();
    for _ in 0..10_000 {
        run_once();
    }
    assert_eq!(open_fds(), before);
}

/// CPU time of this process and its reaped children: steadier than wall time
/// on a shared machine.
fn cpu_time() -> Duration {
    let of = |who| {
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(u.ru_utime) + tv(u.ru_stime)
    };
    of(libc::RUSAGE_SELF) + of(libc::RUSAGE_CHILDREN)
}

/// Runs `f` and gives (wall, cpu) microseconds per iteration.
fn per_spawn(n: usize, f: fn(usize)) -> (f64, f64) {
    let (t, c) = (Instant::now(), cpu_time());
    f(n);
    let us = |d: Duration| d.as_secs_f64() / n as f64 * 1e6;
    (us(t.elapsed()), us(cpu_time() - c))
}

/// `posix_spawn` + `waitpid` straight from libc: the floor to compare with.
fn raw_posix_spawn(n: usize) {
    extern "C" {
        static environ: *const *mut libc::c_char;
    }
    let path = CString::new("/bin/true").unwrap();
    let argv = [path.as_ptr() as *mut libc::c_char, std::ptr::null_mut()];
    for _ in 0..n {
        let mut pid = 0;
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv.as_ptr(),
                environ,
            )
        };
        assert_eq!(rc, 0);
        let mut st = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    }
}

fn ours(n: usize) {
    for _ in 0..n {
        let mut c = spawn(cmd(&["/bin/true"])).unwrap();
        assert_eq!(c.wait(None).unwrap(), ExitStatus::Code(0));
    }
}

fn spawn_latency() {
    // Interleaved short rounds: other work on a shared machine hits both alike.
    let (rounds, n) = (20, 100);
    raw_posix_spawn(20);
    ours(20);
    let (mut raw, mut mine) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.push(per_spawn(n, raw_posix_spawn));
        mine.push(per_spawn(n, ours));
    }
    let median = |v: &[(f64, f64)], cpu: bool| {
        let mut x: Vec<f64> = v.iter().map(|p| if cpu { p.1 } else { p.0 }).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let (ow, rw) = (median(&mine, false), median(&raw, false));
    let (oc, rc) = (median(&mine, true), median(&raw, true));
    note(format!(
        "/bin/true spawn+wait, median of {rounds}x{n} interleaved: wall ours {ow:.1} us vs \
         libc posix_spawn+waitpid {rw:.1} us (x{:.3}); cpu ours {oc:.1} us vs {rc:.1} us (x{:.3})",
        ow / rw,
        oc / rc
    ));
}

fn gib_throughput() {
    // (wall, cpu of us and our children) seconds.
    let ours = || {
        let (t, c) = (Instant::now(), cpu_time());
        let specs = vec![
            cmd(&["head", "-c", "1G", "/dev/zero"]),
            piped(&["wc", "-c"]),
        ];
        match run_pipeline(specs, None, Some(Duration::from_secs(10)), &mut go_on) {
            Ok(out) => {
                assert_eq!(text(&out.stdout).trim(), "1073741824");
                Some((t.elapsed().as_secs_f64(), (cpu_time() - c).as_secs_f64()))
            }
            Err(CommandError::Timeout { .. }) => None,
            Err(e) => panic!("{e}"),
        }
    };
    let shell = || {
        let (t, c) = (Instant::now(), cpu_time());
        let out = run_ok(piped(&["sh", "-c", "head -c 1G /dev/zero | wc -c"]), None);
        assert_eq!(text(&out.stdout).trim(), "1073741824");
        (t.elapsed().as_secs_f64(), (cpu_time() - c).as_secs_f64())
    };
    // Best of three, interleaved: the machine may be shared.
    let best = |a: (f64, f64), b: (f64, f64)| (a.0.min(b.0), a.1.min(b.1));
    let (mut best_ours, mut best_shell) = ((f64::MAX, f64::MAX), (f64::MAX, f64::MAX));
    for _ in 0..3 {
        let Some(o) = ours() else {
            note("1 GiB took over 10 s: skipped".into());
            return;
        };
        best_ours = best(best_ours, o);
        best_shell = best(best_shell, shell());
    }
    note(format!(
        "1 GiB head | wc -c, best of 3: ours {:.3} s ({:.2} GiB/s, cpu {:.3} s), \
         sh -c {:.3} s ({:.2} GiB/s, cpu {:.3} s)",
        best_ours.0,
        1.0 / best_ours.0,
        best_ours.1,
        best_shell.0,
        1.0 / best_shell.0,
        best_shell.1
    ));
}

fn main() {
    signal::install();
    let checks: &[(&str, fn())] = &[
        ("split_honours_quotes", split_honours_quotes),
        ("argv_command", argv_command),
        ("string_command_with_quotes", string_command_with_quotes),
        ("env_replaced", env_replaced),
        ("cwd_set", cwd_set),
        ("missing_program", missing_program),
        ("bad_cwd", bad_cwd),
        ("stdout_stderr_pipe_null", stdout_stderr_pipe_null),
        ("inherit_and_null_streams", inherit_and_null_streams),
        ("stderr_to_stdout", stderr_to_stdout),
        ("child_is_set_up", child_is_set_up),
        ("without_a_process_group", without_a_process_group),
        ("communicate_64mib_both_ways", communicate_64mib_both_ways),
        (
            "communicate_resumes_after_timeout",
            communicate_resumes_after_timeout,
        ),
        (
            "timeout_kills_grandchildren_promptly",
            timeout_kills_grandchildren_promptly,
        ),
        (
            "check_failure_names_command_and_stderr",
            check_failure_names_command_and_stderr,
        ),
        ("killed_by_signal", killed_by_signal),
        ("wait_with_timeout", wait_with_timeout),
        ("popen_style_streams", popen_style_streams),
        ("popen_connected_directly", popen_connected_directly),
        (
            "input_to_a_command_that_stops_reading",
            input_to_a_command_that_stops_reading,
        ),
        ("pipeline_three_stages", pipeline_three_stages),
        ("pipeline_moves_data_directly", pipeline_moves_data_directly),
        (
            "pipeline_timeout_kills_every_stage",
            pipeline_timeout_kills_every_stage,
        ),
        (
            "no_command_outlives_a_killed_interpreter",
            no_command_outlives_a_killed_interpreter,
        ),
        (
            "fd_count_constant_over_10000_runs",
            fd_count_constant_over_10000_runs,
        ),
        ("spawn_latency", spawn_latency),
        ("gib_throughput", gib_throughput),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        print!("test {name} ... ");
        let _ = std::io::stdout().flush();
        match std::panic::catch_unwind(check) {
            Ok(()) => {
                println!("ok");
                passed += 1;
            }
            Err(_) => {
                println!("FAILED");
                failed += 1;
            }
        }
        for line in NOTES.with(|n| std::mem::take(&mut *n.borrow_mut())) {
            println!("    {line}");
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

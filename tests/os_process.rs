//! OS-level checks of `os::process` and `os::signal`: exit statuses, waits with
//! timeouts, zombies, descriptor leaks, PDEATHSIG, signals, escalation.
//!
//! These fork, which is unsafe in libtest's multithreaded harness, so this is a
//! plain `fn main()` (`harness = false` in Cargo.toml) running one check after
//! another on the main thread.

use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proc::os::process::{self, ExitStatus, Pid, WaitError};
use proc::os::signal;

const SEC: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn getpid() -> Pid {
    unsafe { libc::getpid() }
}

/// Waits with a generous timeout, retrying after interruptions.
fn join(pid: Pid) -> ExitStatus {
    let deadline = Instant::now() + 10 * SEC;
    loop {
        match process::wait(
            pid,
            Some(deadline.saturating_duration_since(Instant::now())),
        ) {
            Ok(st) => return st,
            Err(WaitError::Interrupted) => {
                signal::take();
            }
            Err(e) => panic!("wait({pid}): {e:?}"),
        }
    }
}

/// Waits without touching pending signals (which `join` would take).
fn join_leaving_signals(pid: Pid) -> ExitStatus {
    let deadline = Instant::now() + 10 * SEC;
    loop {
        if let Some(st) = process::try_status(pid) {
            return st;
        }
        assert!(Instant::now() < deadline, "{pid} did not exit");
        std::thread::sleep(ms(5));
    }
}

/// A child's state letter from /proc/<pid>/stat, or None if it no longer exists.
fn proc_state(pid: Pid) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": comm may hold spaces, so look after the last ')'.
    s[s.rfind(')')? + 1..].trim_start().chars().next()
}

fn stat_field(pid: Pid, n: usize) -> Option<i64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after comm start at field 3 (state).
    s[s.rfind(')')? + 1..]
        .split_whitespace()
        .nth(n - 3)?
        .parse()
        .ok()
}

/// Reaped: waitpid no longer knows it.
fn reaped(pid: Pid) -> bool {
    let mut st = 0;
    let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(SEC);
    }
}

// ---------------------------------------------------------------------------

fn exit_status_decoding() {
    let p = process::fork_with(|| 7).unwrap();
    let st = join(p);
    assert_eq!(st, ExitStatus::Code(7));
    assert_eq!(st.code(), 7);
    assert!(!st.success());
    assert_eq!(st.to_string(), "exited with code 7");

    let p = process::fork_with(|| {
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        0
    })
    .unwrap();
    let st = join(p);
    assert_eq!(st, ExitStatus::Signal(9));
    assert_eq!(st.code(), -9);
    assert_eq!(signal::describe(st), "killed by signal 9 (SIGKILL)");

    let p = process::fork_with(|| 0).unwrap();
    assert!(join(p).success());

    // Joining twice gives the same status.
    assert_eq!(
        process::wait(p, Some(Duration::ZERO)).unwrap(),
        ExitStatus::Code(0)
    );
    assert_eq!(process::try_status(p), Some(ExitStatus::Code(0)));
    process::forget(p);
    assert_eq!(process::try_status(p), None);
    assert!(matches!(
        process::wait(p, Some(Duration::ZERO)),
        Err(WaitError::NotAChild)
    ));
}

fn panic_in_child_exits_101() {
    let p = process::fork_with(|| {
        panic::set_hook(Box::new(|_| {}));
        panic!("boom")
    })
    .unwrap();
    assert_eq!(join(p), ExitStatus::Code(101));
}

fn die_by_signal() {
    let p = process::fork_with(|| signal::die_by(libc::SIGTERM)).unwrap();
    assert_eq!(join(p), ExitStatus::Signal(libc::SIGTERM));
    // SIGCHLD's default action is to ignore: falls back to 128 + n.
    let p = process::fork_with(|| signal::die_by(libc::SIGCHLD)).unwrap();
    assert_eq!(join(p), ExitStatus::Code(128 + libc::SIGCHLD));
}

fn signal_names() {
    assert_eq!(signal::by_name("KILL"), Some(9));
    assert_eq!(signal::by_name("SIGKILL"), Some(9));
    assert_eq!(signal::by_name("sigusr1"), Some(libc::SIGUSR1));
    assert_eq!(signal::by_name("usr2"), Some(libc::SIGUSR2));
    assert_eq!(signal::by_name("15"), Some(15));
    assert_eq!(signal::by_name("0"), Some(0));
    assert_eq!(signal::by_name("IOT"), Some(libc::SIGABRT));
    assert_eq!(signal::by_name("CLD"), Some(libc::SIGCHLD));
    assert_eq!(signal::by_name("WINCH"), Some(libc::SIGWINCH));
    assert_eq!(signal::by_name("RTMIN"), Some(libc::SIGRTMIN()));
    assert_eq!(signal::by_name("SIGRTMIN+3"), Some(libc::SIGRTMIN() + 3));
    assert_eq!(signal::by_name("rtmax-2"), Some(libc::SIGRTMAX() - 2));
    for bad in [
        "", "SIG", "bogus", "99", "-9", "RTMIN+", "RTMIN-1", "RTMAX+1", "RTMIN+99",
    ] {
        assert_eq!(signal::by_name(bad), None, "{bad:?}");
    }
    assert_eq!(signal::name(9), "SIGKILL");
    assert_eq!(signal::name(libc::SIGTERM), "SIGTERM");
    assert_eq!(signal::name(libc::SIGSYS), "SIGSYS");
    assert_eq!(signal::name(libc::SIGRTMIN() + 1), "SIGRTMIN+1");
    assert_eq!(signal::name(libc::SIGRTMAX()), "SIGRTMAX");
    assert_eq!(signal::name(999), "signal 999");
    assert_eq!(
        signal::describe(ExitStatus::Signal(999)),
        "killed by signal 999"
    );
    // Every name round-trips.
    for s in 1..=libc::SIGRTMAX() {
        let n = signal::name(s);
        if n.starts_with("SIG") {
            assert_eq!(signal::by_name(&n), Some(s), "{n}");
        }
    }
}

fn wait_with_timeout() {
    let p = process::fork_with(|| {
        std::thread::sleep(ms(400));
        3
    })
    .unwrap();
    assert_eq!(process::try_status(p), None);
    let t = Instant::now();
    assert!(matches!(
        process::wait(p, Some(ms(50))),
        Err(WaitError::TimedOut)
    ));
    let waited = t.elapsed();
    assert!(waited >= ms(50) && waited < ms(350), "{waited:?}");
    assert!(process::children().contains(&p));
    assert_eq!(
        process::wait(p, Some(5 * SEC)).unwrap(),
        ExitStatus::Code(3)
    );
    // Returned promptly after the exit (at ~400ms), woken by SIGCHLD rather than
    // by the 1s poll cap.
    assert!(t.elapsed() < ms(950), "{:?}", t.elapsed());
    assert!(!process::children().contains(&p));
    process::forget(p);
}

fn zero_timeout_polls_once() {
    let p = process::fork_with(|| sleep_forever()).unwrap();
    let t = Instant::now();
    assert!(matches!(
        process::wait(p, Some(Duration::ZERO)),
        Err(WaitError::TimedOut)
    ));
    assert!(t.elapsed() < ms(100), "{:?}", t.elapsed());
    process::kill(p, libc::SIGKILL).unwrap();
    assert_eq!(join(p), ExitStatus::Signal(9));
    // Signalling a reaped child is a no-op, not a shot at a reused pid.
    process::kill(p, libc::SIGKILL).unwrap();
    assert!(process::kill(0, libc::SIGTERM).is_err());
    assert!(process::kill(-1, libc::SIGTERM).is_err());
    process::forget(p);
}

fn two_hundred_children_never_waited_are_not_zombies() {
    let pids: Vec<Pid> = (0..200)
        .map(|_| process::fork_with(|| 0).unwrap())
        .collect();
    // Never wait: only let the SIGCHLD-driven sweep run, as between statements.
    let deadline = Instant::now() + 10 * SEC;
    loop {
        let _ = signal::sleep(ms(20));
        process::sweep_if_signalled();
        let left = pids.iter().filter(|&&p| proc_state(p).is_some()).count();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} children still exist");
    }
    for &p in &pids {
        assert!(proc_state(p) != Some('Z'), "{p} is a zombie");
        assert!(reaped(p), "{p} not reaped");
        assert_eq!(process::try_status(p), Some(ExitStatus::Code(0)));
        process::forget(p);
    }
    assert!(process::children().is_empty());
}

fn forgotten_running_child_is_still_reaped() {
    let p = process::fork_with(|| {
        std::thread::sleep(ms(100));
        0
    })
    .unwrap();
    process::forget(p);
    assert!(process::children().contains(&p));
    let deadline = Instant::now() + 5 * SEC;
    while proc_state(p).is_some() {
        let _ = signal::sleep(ms(20));
        assert!(Instant::now() < deadline, "not reaped");
    }
    assert!(reaped(p));
    assert_eq!(process::try_status(p), None);
    assert!(!process::children().contains(&p));
}

fn fd_count_constant_over_2000_forks() {
    // Warm up whatever is allocated once (the self-pipe).
    let p = process::fork_with(|| 0).unwrap();
    join(p);
    process::forget(p);
    let before = fd_count();
    for i in 0..2000 {
        let p = process::fork_with(move || i % 3).unwrap();
        assert_eq!(join(p), ExitStatus::Code(i % 3));
        process::forget(p);
    }
    assert_eq!(fd_count(), before);
    assert!(process::children().is_empty());
}

fn grandchild_dies_with_sigkilled_parent() {
    // Orphans come to us instead of init, so B can be reaped and its fate seen.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (mut r, w) = os_pipe::pipe().unwrap();
    let a = process::fork_with(move || {
        // B reports its own pid: by then its PDEATHSIG is set. (Were A killed
        // before that, B would see a new parent at its re-check and exit 1.)
        process::fork_with(move || {
            let mut w = w;
            w.write_all(&unsafe { libc::getpid() }.to_ne_bytes())
                .unwrap();
            drop(w);
            sleep_forever()
        })
        .unwrap();
        sleep_forever()
    })
    .unwrap();
    let mut buf = [0u8; 4];
    r.read_exact(&mut buf).unwrap();
    let b = Pid::from_ne_bytes(buf);
    assert_eq!(stat_field(b, 4), Some(a as i64), "B's parent is A");
    process::kill(a, libc::SIGKILL).unwrap();
    assert_eq!(join(a), ExitStatus::Signal(9));
    // B was reparented to us; `wait` adopts it.
    let t = Instant::now();
    let st = process::wait(b, Some(SEC)).expect("B still alive 1s after A died");
    assert_eq!(st, ExitStatus::Signal(libc::SIGKILL));
    assert!(t.elapsed() < SEC);
    process::forget(a);
    process::forget(b);
}

fn sleep_interrupted_by_watched_usr1() {
    signal::watch(libc::SIGUSR1);
    signal::take();
    let parent = getpid();
    let p = process::fork_with(move || {
        std::thread::sleep(ms(100));
        unsafe { libc::kill(parent, libc::SIGUSR1) };
        0
    })
    .unwrap();
    let t = Instant::now();
    assert_eq!(signal::sleep(5 * SEC), Err(()));
    assert!(t.elapsed() < 2 * SEC, "{:?}", t.elapsed());
    assert!(signal::pending());
    assert_eq!(signal::take(), vec![libc::SIGUSR1]);
    assert!(!signal::pending());
    assert_eq!(join(p), ExitStatus::Code(0));
    process::forget(p);
}

/// A child exiting during a sleep is reaped at once, and the sleep hands control
/// back (with no signal pending) so the runtime can release the child's pipes.
fn sleep_returns_when_children_are_reaped() {
    let p = process::fork_with(|| {
        std::thread::sleep(ms(50));
        0
    })
    .unwrap();
    let t = Instant::now();
    assert_eq!(signal::sleep(ms(3000)), Err(()));
    assert!(t.elapsed() < ms(2000), "{:?}", t.elapsed());
    assert!(
        !signal::pending(),
        "no signal is pending: the child was reaped"
    );
    // The sleep reaped the child.
    assert!(reaped(p), "child left a zombie during sleep");
    assert_eq!(process::try_status(p), Some(ExitStatus::Code(0)));
    process::forget(p);
}

fn pending_order_and_core_signals() {
    signal::watch(libc::SIGUSR1);
    signal::watch(libc::SIGUSR2);
    signal::take();
    let parent = getpid();
    let p = process::fork_with(move || {
        unsafe { libc::kill(parent, libc::SIGUSR2) };
        std::thread::sleep(ms(50));
        unsafe { libc::kill(parent, libc::SIGUSR1) };
        0
    })
    .unwrap();
    join_leaving_signals(p);
    process::forget(p);
    // Both have arrived by now (the child sent them before exiting).
    assert_eq!(signal::take(), vec![libc::SIGUSR2, libc::SIGUSR1]);

    // INT/TERM/HUP are pending; SIGCHLD only wakes.
    unsafe { libc::raise(libc::SIGCHLD) };
    assert!(!signal::pending());
    unsafe { libc::raise(libc::SIGTERM) };
    unsafe { libc::raise(libc::SIGINT) };
    assert_eq!(signal::take(), vec![libc::SIGTERM, libc::SIGINT]);
    unsafe { libc::raise(libc::SIGHUP) };
    assert_eq!(signal::take(), vec![libc::SIGHUP]);

    // Uncatchable or dangerous signals are refused.
    assert!(signal::try_watch(libc::SIGKILL).is_err());
    assert!(signal::try_watch(libc::SIGSEGV).is_err());
    assert!(signal::try_watch(0).is_err());
    signal::unwatch(libc::SIGUSR2);
    signal::drain_wake();
}

fn wait_interrupted_then_resumed() {
    signal::watch(libc::SIGUSR1);
    signal::take();
    let parent = getpid();
    let p = process::fork_with(move || {
        std::thread::sleep(ms(100));
        unsafe { libc::kill(parent, libc::SIGUSR1) };
        std::thread::sleep(ms(200));
        5
    })
    .unwrap();
    let t = Instant::now();
    assert!(matches!(
        process::wait(p, None),
        Err(WaitError::Interrupted)
    ));
    assert!(t.elapsed() < ms(290), "{:?}", t.elapsed());
    assert_eq!(signal::take(), vec![libc::SIGUSR1]);
    assert_eq!(process::wait(p, None).unwrap(), ExitStatus::Code(5));
    process::forget(p);
}

fn child_gets_fresh_signal_state() {
    let parent_fd = signal::wake_fd();
    let inode = |fd| {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
        st.st_ino
    };
    let parent_ino = inode(parent_fd);
    // Something pending in the parent is not inherited.
    unsafe { libc::raise(libc::SIGTERM) };
    let p = process::fork_with(move || {
        let fd = signal::wake_fd();
        let fresh = fd >= 0 && inode(fd) != parent_ino;
        let clean = !signal::pending();
        if fresh && clean {
            0
        } else {
            1
        }
    })
    .unwrap();
    assert_eq!(join_leaving_signals(p), ExitStatus::Code(0));
    process::forget(p);
    assert_eq!(signal::take(), vec![libc::SIGTERM]);
    assert_eq!(inode(signal::wake_fd()), parent_ino);
}

fn reset_for_exec_restores_defaults() {
    signal::watch(libc::SIGUSR1);
    let p = process::fork_with(|| {
        signal::reset_for_exec();
        let is_default = |s| {
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            unsafe { libc::sigaction(s, std::ptr::null(), &mut old) };
            old.sa_sigaction == libc::SIG_DFL
        };
        let all = [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGCHLD,
            libc::SIGUSR1,
            libc::SIGPIPE,
        ]
        .iter()
        .all(|&s| is_default(s));
        i32::from(!all)
    })
    .unwrap();
    assert_eq!(join(p), ExitStatus::Code(0));
    process::forget(p);
    // An exec'd shell gets default TERM handling.
    let p = process::fork_with(|| {
        signal::reset_for_exec();
        let argv = [
            c"sh".as_ptr(),
            c"-c".as_ptr(),
            c"kill -TERM $$".as_ptr(),
            std::ptr::null(),
        ];
        unsafe { libc::execv(c"/bin/sh".as_ptr(), argv.as_ptr()) };
        127
    })
    .unwrap();
    assert_eq!(join(p), ExitStatus::Signal(libc::SIGTERM));
    process::forget(p);
}

fn terminate_all_escalates_to_sigkill() {
    let (mut r, w) = os_pipe::pipe().unwrap();
    let w2 = w.try_clone().unwrap();
    // Ignores SIGTERM.
    let stubborn = process::fork_with(move || {
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
        let mut w = w;
        w.write_all(b"s").unwrap();
        drop(w);
        sleep_forever()
    })
    .unwrap();
    // Dies of SIGTERM.
    let polite = process::fork_with(move || {
        signal::reset_for_exec();
        let mut w = w2;
        w.write_all(b"p").unwrap();
        drop(w);
        sleep_forever()
    })
    .unwrap();
    let mut buf = [0u8; 2];
    r.read_exact(&mut buf).unwrap();
    let t = Instant::now();
    let got = process::terminate_all(&[polite, stubborn], ms(300));
    let took = t.elapsed();
    assert_eq!(
        got,
        vec![
            (polite, ExitStatus::Signal(libc::SIGTERM)),
            (stubborn, ExitStatus::Signal(libc::SIGKILL)),
        ]
    );
    assert!(took >= ms(300) && took < 3 * SEC, "{took:?}");
    assert!(reaped(polite) && reaped(stubborn));

    // All polite: returns well before the grace period.
    let p = process::fork_with(|| {
        signal::reset_for_exec();
        sleep_forever()
    })
    .unwrap();
    std::thread::sleep(ms(50));
    let t = Instant::now();
    assert_eq!(
        process::terminate_all(&[p], 5 * SEC),
        vec![(p, ExitStatus::Signal(libc::SIGTERM))]
    );
    assert!(t.elapsed() < SEC, "{:?}", t.elapsed());
    for q in [polite, stubborn, p] {
        process::forget(q);
    }
}

fn daemonize_detaches() {
    let dir = std::env::temp_dir().join(format!("proc-os-test-{}", getpid()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile: PathBuf = dir.join("d.pid");
    let marker = dir.join("marker");
    let (pf, mk) = (pidfile.clone(), marker.clone());
    let my_sid = unsafe { libc::getsid(0) };
    let p = process::fork_with(move || {
        if process::daemonize(Some(&pf)).is_err() {
            return 3;
        }
        // Only the grandchild gets here.
        let fd0 = std::fs::read_link("/proc/self/fd/0").unwrap_or_default();
        let fd2 = std::fs::read_link("/proc/self/fd/2").unwrap_or_default();
        let sid = unsafe { libc::getsid(0) };
        let ok = fd0 == std::path::Path::new("/dev/null")
            && fd2 == std::path::Path::new("/dev/null")
            && sid != my_sid
            && process::children().is_empty();
        std::thread::sleep(ms(100));
        std::fs::write(&mk, if ok { "ok" } else { "bad" }).unwrap();
        0
    })
    .unwrap();
    // The original exits 0, and only once the pidfile is there.
    assert_eq!(join(p), ExitStatus::Code(0));
    let text = std::fs::read_to_string(&pidfile).expect("pidfile written before exit");
    let g: Pid = text.trim().parse().unwrap();
    assert_ne!(g, p);
    // Adopted by us (a subreaper since the PDEATHSIG check), not killed with p.
    let st = process::wait(g, Some(5 * SEC)).expect("daemon finishes");
    assert_eq!(st, ExitStatus::Code(0));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ok");
    process::forget(p);
    process::forget(g);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------

fn main() {
    signal::install();
    let checks: &[(&str, fn())] = &[
        ("exit_status_decoding", exit_status_decoding),
        ("panic_in_child_exits_101", panic_in_child_exits_101),
        ("die_by_signal", die_by_signal),
        ("signal_names", signal_names),
        ("wait_with_timeout", wait_with_timeout),
        ("zero_timeout_polls_once", zero_timeout_polls_once),
        (
            "two_hundred_children_never_waited_are_not_zombies",
            two_hundred_children_never_waited_are_not_zombies,
        ),
        (
            "forgotten_running_child_is_still_reaped",
            forgotten_running_child_is_still_reaped,
        ),
        (
            "fd_count_constant_over_2000_forks",
            fd_count_constant_over_2000_forks,
        ),
        (
            "grandchild_dies_with_sigkilled_parent",
            grandchild_dies_with_sigkilled_parent,
        ),
        (
            "sleep_interrupted_by_watched_usr1",
            sleep_interrupted_by_watched_usr1,
        ),
        (
            "sleep_returns_when_children_are_reaped",
            sleep_returns_when_children_are_reaped,
        ),
        (
            "pending_order_and_core_signals",
            pending_order_and_core_signals,
        ),
        (
            "wait_interrupted_then_resumed",
            wait_interrupted_then_resumed,
        ),
        (
            "child_gets_fresh_signal_state",
            child_gets_fresh_signal_state,
        ),
        (
            "reset_for_exec_restores_defaults",
            reset_for_exec_restores_defaults,
        ),
        (
            "terminate_all_escalates_to_sigkill",
            terminate_all_escalates_to_sigkill,
        ),
        ("daemonize_detaches", daemonize_detaches),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks {
        match panic::catch_unwind(AssertUnwindSafe(check)) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
        // Nothing one check left behind may leak into the next.
        signal::take();
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

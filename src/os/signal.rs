//! Signals: the interpreter's handlers, the pending set, and the wake-up fd that
//! every blocking wait polls so a signal interrupts it promptly.
//!
//! PLACEHOLDER IMPLEMENTATION: the signatures below are the contract other modules
//! code against; the bodies are being replaced by the real design.

use std::os::fd::RawFd;
use std::time::Duration;

/// Installs the interpreter's handlers (SIGCHLD, SIGINT, SIGTERM, SIGHUP) and the
/// self-pipe. Called once at start-up, and again in a forked child that needs a
/// fresh self-pipe.
pub fn install() {}

/// True when a signal that the interpreter must act on (a handler registered with
/// `watch`, SIGINT, SIGTERM) has arrived and not yet been taken.
pub fn pending() -> bool {
    false
}

/// Takes the pending signals (signal numbers, oldest first) and clears them.
pub fn take() -> Vec<i32> {
    Vec::new()
}

/// A descriptor that becomes readable whenever a signal arrives (SIGCHLD included).
/// Blocking waits add it to their `poll` set; `drain_wake` empties it.
pub fn wake_fd() -> RawFd {
    -1
}

/// Empties the wake-up descriptor.
pub fn drain_wake() {}

/// Starts catching `signo` so that it becomes pending instead of taking its
/// default action (for `on_signal`).
pub fn watch(_signo: i32) {}

/// Sleeps for `d`, returning `Err(())` early if a signal becomes pending.
pub fn sleep(d: Duration) -> Result<(), ()> {
    std::thread::sleep(d);
    Ok(())
}

/// The signal number for a name: "USR1", "SIGUSR1", "usr1" or "10".
pub fn by_name(name: &str) -> Option<i32> {
    let n = name.trim_start_matches("SIG").to_ascii_uppercase();
    Some(match n.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        _ => return n.parse().ok(),
    })
}

/// The short name of a signal ("SIGKILL"), for messages.
pub fn name(signo: i32) -> String {
    match signo {
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGUSR1 => "SIGUSR1".into(),
        libc::SIGUSR2 => "SIGUSR2".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        _ => format!("signal {signo}"),
    }
}

//! The REPL (SPEC §14) for real, in a pseudo-terminal: each test starts the
//! binary inside its own tmux server, types keys with `send-keys` and reads the
//! screen with `capture-pane`. Skipped, with a note, only where tmux is missing
//! (CI installs it: see .ci/run).
//!
//! Lines are typed one at a time, each after the prompt for it appears: like a
//! person, not like a paste (rustyline drops type-ahead between entries).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{scratch, BIN};

const WAIT: Duration = Duration::from_secs(30);

/// One REPL session in a private tmux server.
struct Session {
    socket: PathBuf,
    /// Where the session's exit status is written when the REPL ends.
    status_file: PathBuf,
}

fn have_tmux() -> bool {
    if support::have("tmux") {
        return true;
    }
    eprintln!("note: tmux is not installed; skipping the REPL tests");
    false
}

impl Session {
    /// Starts the REPL with `HOME` = `home`, and `XDG_STATE_HOME` = `state` when
    /// given, and waits for its first prompt.
    fn start(name: &str, home: &Path, state: Option<&Path>) -> Session {
        let socket = std::env::temp_dir().join(format!("proc-repl-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let status_file = home.join("exit-status");
        let _ = std::fs::remove_file(&status_file);
        let env = match state {
            Some(st) => format!(
                "HOME='{}' XDG_STATE_HOME='{}' NO_COLOR=1",
                home.display(),
                st.display()
            ),
            None => format!("-u XDG_STATE_HOME HOME='{}' NO_COLOR=1", home.display()),
        };
        let shell = format!("env {env} '{BIN}'; echo $? > '{}'", status_file.display());
        let s = Session {
            socket,
            status_file,
        };
        s.tmux(&[
            "new-session",
            "-d",
            "-s",
            "repl",
            "-x",
            "120",
            "-y",
            "40",
            &shell,
        ]);
        s.wait_for("the first prompt", |screen| screen.ends_with("proc>"));
        s
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["has-session", "-t", "repl"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The visible screen, trailing blank lines dropped.
    fn screen(&self) -> String {
        let s = self.tmux(&["capture-pane", "-p", "-t", "repl"]);
        s.trim_end().to_string()
    }

    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if start.elapsed() > WAIT {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Keys by tmux name (`Enter`, `Tab`, `C-c`, `Up`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "repl"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Text typed literally.
    fn text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "repl", "-l", text]);
    }

    fn prompts(screen: &str) -> usize {
        screen.matches("proc>").count()
    }

    /// Types a complete entry and waits until the REPL is done with it (the
    /// next `proc> ` prompt appears). Returns the screen.
    fn enter(&self, line: &str) -> String {
        let before = Self::prompts(&self.screen());
        self.text(line);
        self.keys(&["Enter"]);
        self.wait_for(&format!("the prompt after `{line}`"), |s| {
            Self::prompts(s) > before && s.ends_with("proc>")
        })
    }

    /// Types a line of an unfinished entry and waits for the `...> ` prompt.
    fn enter_more(&self, line: &str) -> String {
        let before = self.screen().matches("...>").count();
        self.text(line);
        self.keys(&["Enter"]);
        self.wait_for(&format!("the continuation prompt after `{line}`"), |s| {
            s.matches("...>").count() > before && s.ends_with("...>")
        })
    }

    /// What the last entry printed: the lines between its prompt and the next.
    fn output_of(&self, line: &str) -> String {
        let screen = self.enter(line);
        let lines: Vec<&str> = screen.lines().collect();
        let at = lines
            .iter()
            .rposition(|l| *l == format!("proc> {line}"))
            .unwrap_or_else(|| panic!("`{line}` is not on the screen:\n{screen}"));
        lines[at + 1..lines.len() - 1].join("\n")
    }

    /// Waits for the REPL to end and returns its exit status.
    fn exit_status(&self) -> i32 {
        let start = Instant::now();
        while self.alive() || !self.status_file.exists() {
            if start.elapsed() > WAIT {
                panic!("the REPL did not leave; the screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let s = std::fs::read_to_string(&self.status_file).unwrap_or_default();
        s.trim().parse().unwrap_or(-1)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn fresh(name: &str) -> (PathBuf, Session) {
    let dir = scratch(&format!("repl_{name}"));
    let state = dir.join("state");
    let s = Session::start(name, &dir, Some(&state));
    (dir, s)
}

#[test]
fn values_are_shown_but_not_nil() {
    if !have_tmux() {
        return;
    }
    let (_dir, s) = fresh("values");
    assert_eq!(s.screen(), "proc>");
    assert_eq!(s.output_of("1 + 2"), "3");
    assert_eq!(s.output_of("nil"), "");
    assert_eq!(s.output_of("\"text\""), "\"text\"");
    assert_eq!(
        s.output_of("[1, \"a\", {\"k\": 2.0}]"),
        "[1, \"a\", {\"k\": 2.0}]"
    );
    assert_eq!(s.output_of("print(\"printed\")"), "printed");
    assert_eq!(s.output_of("let x = 5"), "");
    assert_eq!(s.output_of("x * 2"), "10");
    assert_eq!(s.output_of("fn twice(n) { n * 2 }"), "");
    assert_eq!(s.output_of("twice(x) + 1"), "11");
    assert_eq!(s.output_of("x = x + 1; x"), "6");
}

#[test]
fn unfinished_entries_continue() {
    if !have_tmux() {
        return;
    }
    let (_dir, s) = fresh("continuation");
    s.enter("let base = 5");
    let screen = s.enter_more("fn f() {");
    assert!(screen.ends_with("proc> fn f() {\n...>"), "{screen}");
    s.enter_more("  base + 1");
    s.enter("}");
    assert_eq!(s.output_of("f()"), "6");
    // Open brackets and a trailing operator continue too.
    s.enter_more("[1,");
    let screen = s.enter("2]");
    assert!(screen.contains("...> 2]\n[1, 2]\n"), "{screen}");
    s.enter_more("10 +");
    let screen = s.enter("1");
    assert!(screen.contains("...> 1\n11\n"), "{screen}");
}

#[test]
fn errors_are_shown_and_the_session_goes_on() {
    if !have_tmux() {
        return;
    }
    let (_dir, s) = fresh("errors");
    let out = s.output_of("1 + \"a\"");
    assert!(
        out.starts_with("error[TypeError]: cannot add int and str\n --> <repl:"),
        "{out}"
    );
    assert!(out.ends_with("1 | 1 + \"a\"\n  |   ^"), "{out}");
    let out = s.output_of("let = 1");
    assert!(
        out.starts_with("error[SyntaxError]: expected name"),
        "{out}"
    );
    let out = s.output_of("nope");
    assert!(
        out.starts_with("error[NameError]: `nope` is not defined"),
        "{out}"
    );
    // A failed `let` leaves the name declared but unset.
    let out = s.output_of("let y = 1 / 0");
    assert!(out.starts_with("error[ZeroDivisionError]"), "{out}");
    let out = s.output_of("y");
    assert!(
        out.starts_with("error[NameError]: `y` is not defined"),
        "{out}"
    );
    assert_eq!(s.output_of("let y = 2; y"), "2");
    assert_eq!(s.output_of("\"still here\""), "\"still here\"");
}

#[test]
fn tab_completes_keywords_builtins_and_session_names() {
    if !have_tmux() {
        return;
    }
    let (_dir, s) = fresh("completion");
    s.text("pri");
    s.keys(&["Tab"]);
    s.wait_for("`pri` completed", |scr| scr.ends_with("proc> print"));
    s.text("(7)");
    s.keys(&["Enter"]);
    s.wait_for("print(7)", |scr| scr.contains("proc> print(7)\n7\nproc>"));

    s.enter("let my_long_name = 3");
    s.text("my_lo");
    s.keys(&["Tab"]);
    s.wait_for("`my_lo` completed", |scr| {
        scr.ends_with("proc> my_long_name")
    });
    s.keys(&["Enter"]);
    s.wait_for("the value", |scr| {
        scr.contains("proc> my_long_name\n3\nproc>")
    });

    s.text("whi");
    s.keys(&["Tab"]);
    s.wait_for("`whi` completed", |scr| scr.ends_with("proc> while"));
    s.keys(&["C-c"]);
    s.wait_for("the line dropped", |scr| {
        scr.ends_with("proc> while\nproc>")
    });
}

#[test]
fn ctrl_c_drops_the_line() {
    if !have_tmux() {
        return;
    }
    let (_dir, s) = fresh("ctrl_c_line");
    s.text("this is not run");
    s.keys(&["C-c"]);
    s.wait_for("a fresh prompt", |scr| {
        scr.ends_with("proc> this is not run\nproc>")
    });
    // Also in the middle of an unfinished entry.
    s.enter_more("fn g() {");
    s.keys(&["C-c"]);
    s.wait_for("a fresh prompt", |scr| scr.ends_with("...>\nproc>"));
    let out = s.output_of("g");
    assert!(
        out.starts_with("error[NameError]: `g` is not defined"),
        "{out}"
    );
    assert_eq!(s.output_of("1"), "1");
}

#[test]
fn ctrl_c_interrupts_running_code() {
    if !have_tmux() {
        return;
    }
    let (_dir, s) = fresh("ctrl_c_running");
    s.enter("let kept = 41");
    for code in [
        "while true { }",
        "sleep(100)",
        "for i in range(1000000000) { }",
        "fn spin() { while true { } }; spin()",
    ] {
        let before = Session::prompts(&s.screen());
        s.text(code);
        s.keys(&["Enter"]);
        s.wait_for("the code to start", |scr| scr.ends_with(code));
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        s.keys(&["C-c"]);
        let screen = s.wait_for("the interrupt", |scr| {
            Session::prompts(scr) > before && scr.ends_with("proc>")
        });
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "slow to interrupt `{code}`"
        );
        assert!(
            screen.ends_with("interrupted\nproc>"),
            "`{code}`:\n{screen}"
        );
    }
    assert_eq!(s.output_of("kept + 1"), "42");
}

#[test]
fn ctrl_d_leaves() {
    if !have_tmux() {
        return;
    }
    let (_dir, s) = fresh("ctrl_d");
    s.enter("1");
    s.keys(&["C-d"]);
    assert_eq!(s.exit_status(), 0);
    // `exit(n)` leaves with n.
    let (_dir, s) = fresh("exit_n");
    s.text("exit(3)");
    s.keys(&["Enter"]);
    assert_eq!(s.exit_status(), 3);
}

#[test]
fn history_persists_across_sessions() {
    if !have_tmux() {
        return;
    }
    let dir = scratch("repl_history");
    let state = dir.join("state");
    let s = Session::start("history1", &dir, Some(&state));
    s.enter("40 + 2");
    s.enter("let h = 1");
    s.keys(&["C-d"]);
    assert_eq!(s.exit_status(), 0);
    drop(s);
    let history = std::fs::read_to_string(state.join("proc/history")).expect("the history file");
    assert!(history.contains("40 + 2\n"), "{history}");
    assert!(history.contains("let h = 1"), "{history}");

    let s = Session::start("history2", &dir, Some(&state));
    s.keys(&["Up"]);
    s.wait_for("the last entry recalled", |scr| {
        scr.ends_with("proc> let h = 1")
    });
    s.keys(&["Up"]);
    s.wait_for("the entry before", |scr| scr.ends_with("proc> 40 + 2"));
    s.keys(&["Enter"]);
    s.wait_for("its value", |scr| scr.contains("proc> 40 + 2\n42\nproc>"));
}

#[test]
fn history_defaults_to_home_local_state() {
    if !have_tmux() {
        return;
    }
    let dir = scratch("repl_history_home");
    let s = Session::start("history_home", &dir, None);
    s.enter("\"saved under HOME\"");
    s.keys(&["C-d"]);
    assert_eq!(s.exit_status(), 0);
    let history = std::fs::read_to_string(dir.join(".local/state/proc/history"))
        .expect("the history file under $HOME/.local/state");
    assert!(history.contains("\"saved under HOME\""), "{history}");
}

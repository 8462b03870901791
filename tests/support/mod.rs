//! Running the real `proc` binary from a test: with arguments, stdin and
//! environment, under a time limit (a hang kills it and fails the test).
//! Shared by tests/cli.rs, tests/repl.rs, tests/docs.rs, tests/golden.rs and
//! tests/examples.rs.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_proc");

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Output {
    /// The exit code; None when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// Asserts an exit code, showing everything when it differs.
    pub fn expect_code(&self, code: i32) -> &Output {
        assert_eq!(self.code, Some(code), "unexpected exit status: {self:#?}");
        self
    }
}

/// A command line for the binary (or another program), run with a time limit.
pub struct Run {
    cmd: Command,
    stdin: Vec<u8>,
    limit: Duration,
}

pub fn proc<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut r = Run::program(BIN);
    r.cmd.args(args);
    r
}

impl Run {
    pub fn program(program: impl AsRef<std::ffi::OsStr>) -> Run {
        let mut cmd = Command::new(program);
        cmd.env("NO_COLOR", "1").env_remove("PROC_BLESS");
        Run {
            cmd,
            stdin: Vec::new(),
            limit: Duration::from_secs(60),
        }
    }

    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.arg(a);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Run {
        self.stdin = bytes.into();
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.env(k, v);
        self
    }

    pub fn dir(mut self, d: impl AsRef<Path>) -> Run {
        self.cmd.current_dir(d);
        self
    }

    pub fn limit(mut self, secs: u64) -> Run {
        self.limit = Duration::from_secs(secs);
        self
    }

    /// Runs to completion; a run longer than the limit is killed and fails the test.
    pub fn run(mut self) -> Output {
        let start = Instant::now();
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("the binary starts");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = std::mem::take(&mut self.stdin);
        // The child may exit without reading (a broken pipe here is fine).
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let out_reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let err_reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break st;
            }
            if start.elapsed() > self.limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{:?} did not finish within {:?} (a hang)",
                    self.cmd, self.limit
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let _ = writer.join();
        let stdout = out_reader.join().expect("stdout reader");
        let stderr = err_reader.join().expect("stderr reader");
        Output {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }
}

/// A fresh directory for one test's files, under cargo's target tmpdir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("proc-tests-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write a test file");
    p
}

/// Tells whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Normalises what varies from run to run: the digits after `pid=` become
/// `PID` (which also catches `ppid=`). Shared by the golden and example tests.
pub fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("pid=") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n > 0 {
            out.push_str("PID");
        }
        rest = &rest[n..];
    }
    out.push_str(rest);
    out
}

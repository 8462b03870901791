//! The command line (SPEC §14) through the real binary: how a script is given
//! (FILE, `-c`, `-`, piped stdin), `--check`, `--version`, `--help`, exit codes,
//! output buffering and a closed stdout — and inputs that must never make the
//! interpreter panic, crash or hang.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{proc, scratch, write, Output, Run, BIN};

// ------------------------------------------------------------- giving a script

#[test]
fn file_args_become_argv() {
    let dir = scratch("file_args");
    let f = write(&dir, "args.proc", "print(argv, len(argv))\n");
    proc([f.as_os_str(), "a".as_ref(), "-b".as_ref(), "--c=1".as_ref()])
        .run()
        .expect_code(0);
    let out = proc([f.as_os_str(), "x y".as_ref()]).run();
    assert_eq!(out.stdout, "[\"x y\"] 1\n");
    let out = proc([f.as_os_str(), "a".as_ref(), "-b".as_ref(), "--c=1".as_ref()]).run();
    assert_eq!(out.stdout, "[\"a\", \"-b\", \"--c=1\"] 3\n");
    assert_eq!(out.stderr, "");
}

#[test]
fn dash_c_runs_code_with_args() {
    let out = proc(["-c", "print(argv); print(1 + 2)", "one", "--two"]).run();
    out.expect_code(0);
    assert_eq!(out.stdout, "[\"one\", \"--two\"]\n3\n");
    // The code may itself start with a dash.
    let out = proc(["-c", "-1 + 3"]).run();
    out.expect_code(0);
    assert_eq!(out.stdout, "");
}

#[test]
fn dash_reads_the_script_from_stdin() {
    let out = proc(["-", "x", "y"])
        .stdin("print(argv)\nprint(\"from stdin\")\n")
        .run();
    out.expect_code(0);
    assert_eq!(out.stdout, "[\"x\", \"y\"]\nfrom stdin\n");
}

#[test]
fn piped_stdin_without_args_is_the_script() {
    let out = proc::<[&str; 0], &str>([])
        .stdin("print(argv, 6 * 7)\n")
        .run();
    out.expect_code(0);
    assert_eq!(out.stdout, "[] 42\n");
    assert_eq!(out.stderr, "");
}

#[test]
fn a_shebang_line_is_a_comment() {
    let dir = scratch("shebang");
    let script = write(
        &dir,
        "hello",
        "#!/usr/bin/env proc\nprint(\"shebang ok\", argv)\n",
    );
    let out = proc([script.as_os_str(), "z".as_ref()]).run();
    out.expect_code(0);
    assert_eq!(out.stdout, "shebang ok [\"z\"]\n");

    // And the kernel runs it through `env proc` when proc is on PATH.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Run::program(&script).arg("w").env("PATH", path).run();
    out.expect_code(0);
    assert_eq!(out.stdout, "shebang ok [\"w\"]\n");
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let out = proc(["/no/such/dir/script.proc"]).run();
    out.expect_code(2);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error[UsageError]: cannot read /no/such/dir/script.proc: no such file or directory\n"
    );
    let dir = scratch("missing");
    let out = proc([dir.as_os_str()]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("is a directory"), "{out:#?}");
}

#[test]
fn an_unknown_option_is_a_usage_error() {
    for flag in ["--bogus", "-x", "--chek"] {
        let out = proc([flag, "file.proc"]).run();
        out.expect_code(2);
        assert!(
            out.stderr
                .starts_with(&format!("error[UsageError]: unknown option `{flag}`")),
            "{out:#?}"
        );
    }
    // `-c` without its code.
    let out = proc(["-c"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("-c"), "{out:#?}");
}

#[test]
fn version_and_help() {
    let out = proc(["--version"]).run();
    out.expect_code(0);
    assert_eq!(out.stdout, format!("proc {}\n", env!("CARGO_PKG_VERSION")));
    for flag in ["--help", "-h"] {
        let out = proc([flag]).run();
        out.expect_code(0);
        assert!(out.stdout.contains("Usage: proc"), "{out:#?}");
        assert!(out.stdout.contains("-c <CODE>"), "{out:#?}");
        assert!(out.stdout.contains("--check"), "{out:#?}");
        assert!(out.stdout.contains("--version"), "{out:#?}");
    }
}

// ------------------------------------------------------------------- --check

#[test]
fn check_an_ok_file_exits_0_without_running_it() {
    let dir = scratch("check_ok");
    let f = write(
        &dir,
        "ok.proc",
        "print(\"must not run\")\nfn f() { later(argv) }\nfn later(x) { x }\nexit(3)\n",
    );
    let out = proc(["--check".as_ref(), f.as_os_str()]).run();
    out.expect_code(0);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "");
}

#[test]
fn check_a_syntax_error_exits_2_with_the_diagnostic() {
    let dir = scratch("check_syntax");
    let ok = write(&dir, "ok.proc", "print(1)\n");
    let bad = write(&dir, "bad.proc", "let x = 1\nlet = 2\n");
    let out = proc(["--check".as_ref(), ok.as_os_str(), bad.as_os_str()]).run();
    out.expect_code(2);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "error[SyntaxError]: expected name or `[names]`, found `=`\n --> {}:2:5\n  |\n2 | let = 2\n  |     ^\n",
            bad.display()
        )
    );
}

#[test]
fn check_warns_about_undefined_names_and_exits_0() {
    let dir = scratch("check_names");
    let f = write(
        &dir,
        "names.proc",
        "fn f() {\n  print(undefined_thing)\n}\n",
    );
    let out = proc(["--check".as_ref(), f.as_os_str()]).run();
    out.expect_code(0);
    assert_eq!(
        out.stderr,
        format!(
            "warning[NameError]: `undefined_thing` is not defined\n --> {}:2:9\n  |\n2 |   print(undefined_thing)\n  |         ^\n",
            f.display()
        )
    );
    // Running it is fine until the name is reached.
    proc([f.as_os_str()]).run().expect_code(0);
}

#[test]
fn check_needs_a_file() {
    let out = proc(["--check"]).run();
    out.expect_code(2);
    assert!(
        out.stderr.contains("--check needs at least one FILE"),
        "{out:#?}"
    );
}

// ---------------------------------------------------------------- exit codes

#[test]
fn exit_codes() {
    proc(["-c", ""]).run().expect_code(0);
    proc(["-c", "print(1)"]).run().expect_code(0);
    proc(["-c", "exit()"]).run().expect_code(0);
    proc(["-c", "exit(7)"]).run().expect_code(7);
    proc(["-c", "exit(255)"]).run().expect_code(255);
    let out = proc(["-c", "print(\"x\")\nlet y = 1 + \"a\""]).run();
    out.expect_code(1);
    assert_eq!(out.stdout, "x\n");
    assert!(out
        .stderr
        .starts_with("error[TypeError]: cannot add int and str\n"));
    let out = proc(["-c", "print(\"x\")\nlet = 1"]).run();
    out.expect_code(2);
    assert_eq!(out.stdout, "", "a syntax error runs nothing");
    assert!(out.stderr.starts_with("error[SyntaxError]: "));
    // `finally` runs on exit(n), and the code stands.
    let out = proc(["-c", "try { exit(4) } finally { print(\"cleanup\") }"]).run();
    out.expect_code(4);
    assert_eq!(out.stdout, "cleanup\n");
}

#[test]
fn sigint_exits_130_and_sigterm_143() {
    // Also the regression test for `while true { }` ignoring Ctrl-C: an empty
    // loop body has no statements, so signals were never looked at.
    let dir = scratch("signals");
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let ready = dir.join(format!("ready-{sig}"));
        let mut child = Command::new(BIN)
            .args([
                "-c",
                "print(\"ready\")\nwrite_file(argv[0], \"\")\nwhile true { }",
            ])
            .arg(&ready)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The script is running (its signal handlers installed) once it wrote the file.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "the script never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let killed = Command::new("kill")
            .args([format!("-{sig}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("SIG{sig} did not stop `while true {{ }}`");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(code), "SIG{sig}");
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ready\n",
            "flushed on the way out"
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

// ------------------------------------------------------------------- output

#[test]
fn a_closed_stdout_ends_quietly() {
    let script = format!("'{BIN}' -c 'for i in range(1000000) {{ print(i) }}' | head -1");
    let out = Run::program("sh").arg("-c").arg(&script).limit(60).run();
    out.expect_code(0);
    assert_eq!(out.stdout, "0\n");
    assert_eq!(out.stderr, "", "nothing on stderr");
    // Also when the output is printed in one piece at exit.
    let script = format!("'{BIN}' -c 'print(\"a\\nb\")' | true");
    let out = Run::program("sh").arg("-c").arg(&script).run();
    assert_eq!(out.stderr, "");
}

/// A closed stdout used to end the script by joining its children, one of which
/// waited for the script itself: a hang. Now they are stopped, as SIGPIPE would.
#[test]
fn closed_stdout_does_not_wait_for_children_waiting_on_the_script() {
    let dir = scratch("brokenpipe");
    let f = write(
        &dir,
        "bp.proc",
        "let [a, b] = pipe()\nlet child = spawn { b.recv() }\nprint(\"first line\")\nprint(\"x\" * 100000)\na.send(\"stop\")\njoin child\n",
    );
    let script = format!("'{BIN}' '{}' | head -1", f.display());
    let out = Run::program("sh").arg("-c").arg(&script).limit(20).run();
    assert_eq!(out.stdout, "first line\n");
    assert_eq!(out.stderr, "", "nothing on stderr");
}

#[test]
fn stdout_is_block_buffered_when_not_a_terminal() {
    let dir = scratch("buffered");
    let ready = dir.join("ready");
    let go = dir.join("go");
    let f = write(
        &dir,
        "buf.proc",
        "print(\"a\")\nwrite_file(argv[0], \"\")\nwhile not exists(argv[1]) { }\nprint(\"b\")\n",
    );
    let mut child = Command::new(BIN)
        .arg(&f)
        .arg(&ready)
        .arg(&go)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 64];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the script never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
    // "a" was printed before `ready` was written, and must still be buffered.
    let early = rx.recv_timeout(Duration::from_millis(300));
    std::fs::write(&go, "").unwrap();
    assert!(early.is_err(), "output arrived before exit: {early:?}");
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut all = Vec::new();
    while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(5)) {
        all.extend(chunk);
    }
    assert_eq!(String::from_utf8_lossy(&all), "a\nb\n", "flushed at exit");
}

#[test]
fn stdout_is_flushed_before_error_messages() {
    let dir = scratch("flush_order");
    let f = write(
        &dir,
        "order.proc",
        "print(\"one\")\neprint(\"two\")\nprint(\"three\")\nlet x = 1 + \"a\"\n",
    );
    // stdout and stderr into one pipe, as `2>&1` does.
    let out = Run::program("sh")
        .arg("-c")
        .arg(format!("'{BIN}' '{}' 2>&1", f.display()))
        .run();
    out.expect_code(1);
    assert!(
        out.stdout
            .starts_with("one\ntwo\nthree\nerror[TypeError]: cannot add int and str\n"),
        "{out:#?}"
    );
}

#[test]
fn everything_is_flushed_at_exit() {
    let out = proc(["-c", "for i in range(100000) { print(i) }\nexit(3)"]).run();
    out.expect_code(3);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 100_000);
    assert_eq!(lines[99_999], "99999");
}

// --------------------------------------------- never panic, never hang

/// Runs a script file and asserts a clean end: exit 0, 1 or 2, no panic, an
/// `error[...]` diagnostic when it failed, within the time limit.
fn clean(name: &str, bytes: impl AsRef<[u8]>) -> Output {
    let dir = scratch(&format!("clean_{name}"));
    let f = write(&dir, &format!("{name}.proc"), bytes);
    let out = proc([f.as_os_str()]).limit(60).run();
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("overflow"),
        "{name}: {}",
        &out.stderr[..out.stderr.len().min(2000)]
    );
    match out.code {
        Some(0) => {}
        Some(1 | 2) => assert!(
            out.stderr.starts_with("error["),
            "{name}: {}",
            &out.stderr[..out.stderr.len().min(2000)]
        ),
        other => panic!(
            "{name}: exit status {other:?}: {}",
            &out.stderr[..out.stderr.len().min(2000)]
        ),
    }
    // A diagnostic shows a window of a long line, not the whole line.
    assert!(
        out.stderr.lines().all(|l| l.len() < 1000),
        "{name}: a diagnostic line of {} bytes",
        out.stderr.lines().map(str::len).max().unwrap_or(0)
    );
    out
}

const MB: usize = 1 << 20;

#[test]
fn deep_nesting_is_a_syntax_error() {
    let parens = format!("print({}1{})\n", "(".repeat(10_000), ")".repeat(10_000));
    let out = clean("parens", parens);
    out.expect_code(2);
    assert!(out.stderr.contains("nesting too deep"), "{}", out.stderr);

    let brackets = format!("let x = {}\n", "[".repeat(10_000));
    clean("brackets", brackets).expect_code(2);
    let maps = format!("let x = {}\n", "{\"a\": ".repeat(10_000));
    clean("maps", maps).expect_code(2);
    let blocks = "if true { ".repeat(10_000);
    clean("blocks", blocks).expect_code(2);
    let fns = "fn() { ".repeat(10_000);
    clean("fn_literals", fns).expect_code(2);
    let interp = format!("print({})\n", "\"{".repeat(10_000));
    clean("interpolations", interp).expect_code(2);
}

#[test]
fn long_operator_chains_do_not_overflow() {
    let n = MB / 2;
    let chain = format!("print(1{})\n", "+1".repeat(n));
    let out = clean("plus_chain", chain);
    out.expect_code(2);
    assert!(out.stderr.contains("nested too deeply"), "{}", out.stderr);
    clean("neg_chain", format!("print({}1)\n", "- ".repeat(n / 2))).expect_code(2);
    clean("not_chain", format!("print({}1)\n", "not ".repeat(n / 4))).expect_code(2);
    clean(
        "index_chain",
        format!("let a = [1]\nprint(a{})\n", "[0]".repeat(n / 3)),
    )
    .expect_code(2);
    clean(
        "call_chain",
        format!("fn f() {{ f }}\nprint(f{})\n", "()".repeat(n / 2)),
    )
    .expect_code(2);
    clean(
        "field_chain",
        format!("let m = {{}}\nprint(m{})\n", ".a".repeat(n / 2)),
    )
    .expect_code(2);
    // Chains nested in brackets count together.
    let mut e = String::from("1");
    for _ in 0..150 {
        e = format!("({e}{})", "+1".repeat(100));
    }
    clean("nested_chains", format!("print({e})\n")).expect_code(2);
    // Long but reasonable chains run.
    let out = clean("ok_chain", format!("print(0{})\n", "+1".repeat(1000)));
    out.expect_code(0);
    assert_eq!(out.stdout, "1000\n");
}

#[test]
fn one_megabyte_lines() {
    let s = "a".repeat(MB);
    let out = clean("long_string", format!("let s = \"{s}\"\nprint(len(s))\n"));
    out.expect_code(0);
    assert_eq!(out.stdout, format!("{MB}\n"));
    let out = clean("long_comment", format!("#{s}\nprint(\"after\")\n"));
    out.expect_code(0);
    assert_eq!(out.stdout, "after\n");
    // An error on a 1 MB line: the diagnostic shows a window with the true column.
    let out = clean("long_line_error", format!("let s = \"{s}\" + 1\n"));
    out.expect_code(1);
    assert!(
        out.stderr.contains(&format!(":1:{}\n", MB + 12)),
        "{}",
        out.stderr
    );
    let out = clean("unterminated_long_string", format!("let s = \"{s}\n"));
    out.expect_code(2);
}

#[test]
fn a_huge_list_literal() {
    let items: Vec<String> = (0..200_000).map(|i| i.to_string()).collect();
    let out = clean(
        "huge_list",
        format!(
            "let xs = [{}]\nprint(len(xs), xs[-1], sum(xs))\n",
            items.join(", ")
        ),
    );
    out.expect_code(0);
    assert_eq!(out.stdout, "200000 199999 19999900000\n");
}

#[test]
fn empty_and_comment_only_files() {
    let out = clean("empty", "");
    out.expect_code(0);
    assert_eq!(out.stdout, "");
    let out = clean("comments", "# one\n   # two\n#!/not/a/shebang here\n\n");
    out.expect_code(0);
    assert_eq!(out.stdout, "");
    clean("only_separators", ";;\n;\n\n").expect_code(0);
}

#[test]
fn invalid_utf8_is_a_usage_error() {
    let out = clean("invalid_utf8", b"print(\"a\")\n\xff\xfe\x00 \xc3\x28\n");
    out.expect_code(2);
    assert!(out.stderr.contains("is not valid UTF-8"), "{}", out.stderr);
    let out = proc(["-"]).stdin(&b"print(\xff)"[..]).run();
    out.expect_code(2);
    assert!(out.stderr.starts_with("error["), "{out:#?}");
}

/// A small deterministic generator (a 64-bit LCG, Knuth's constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes() {
    for seed in 1..=4u64 {
        let mut r = Lcg(seed);
        let bytes: Vec<u8> = (0..4096).map(|_| r.next() as u8).collect();
        clean(&format!("random_bytes_{seed}"), bytes);
    }
    // Random printable ASCII and some multi-byte characters: these get past the
    // UTF-8 check and reach the layout pass and the grammar.
    for seed in 1..=6u64 {
        let mut r = Lcg(seed * 7919);
        let alphabet: Vec<char> = " \n\t(){}[]\"'#\\:;,.=+-*/%<>!_0123456789abcxyzé€"
            .chars()
            .collect();
        let text: String = (0..4096)
            .map(|_| alphabet[r.below(alphabet.len())])
            .collect();
        clean(&format!("random_text_{seed}"), text);
    }
}

#[test]
fn random_token_soup() {
    const TOKENS: &[&str] = &[
        "let",
        "fn",
        "return",
        "if",
        "else",
        "while",
        "for",
        "in",
        "break",
        "continue",
        "try",
        "catch",
        "finally",
        "throw",
        "with",
        "as",
        "and",
        "or",
        "not",
        "nil",
        "true",
        "false",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        ";",
        "\n",
        "=",
        "+=",
        "-=",
        "*=",
        "//=",
        "%=",
        "==",
        "!=",
        "<",
        ">",
        "<=",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "//",
        "%",
        ".",
        "x",
        "y",
        "f",
        "print",
        "len",
        "range",
        "0",
        "1",
        "-1",
        "9223372036854775807",
        "2.5",
        "1e308",
        "\"s{x}\"",
        "\"a\\n\"",
        "'r'",
        "\"{x:>5}\"",
        "#c",
        "0x1f",
        "1_0",
        "\"\\q\"",
        "str",
        "sorted",
        "\"{{\"",
        "error(\"K\", \"m\")",
        "[1, 2]",
        "{\"k\": 1}",
    ];
    let mut r = Lcg(2024);
    let mut programs = String::new();
    for i in 0..40 {
        let n = 1 + r.below(60);
        let prog: Vec<&str> = (0..n).map(|_| TOKENS[r.below(TOKENS.len())]).collect();
        let prog = prog.join(" ");
        // Each program runs on its own; a syntax error is fine.
        let out = clean(&format!("soup_{i}"), &prog);
        programs.push_str(&format!("{:?} -> {:?}\n", prog, out.code));
    }
    assert!(!programs.is_empty());
}

#[test]
fn deep_recursion_is_a_recursion_error() {
    let out = clean("recursion", "fn f(n) { f(n + 1) }\nf(0)\n");
    out.expect_code(1);
    assert!(
        out.stderr
            .starts_with("error[RecursionError]: maximum recursion depth"),
        "{}",
        out.stderr
    );
    // Caught, the program goes on; mutual recursion too.
    let out = clean(
        "recursion_caught",
        "fn a(n) { b(n + 1) }\nfn b(n) { a(n + 1) }\ntry { a(0) } catch e { print(e.kind) }\nprint(\"still here\")\n",
    );
    out.expect_code(0);
    assert_eq!(out.stdout, "RecursionError\nstill here\n");
    // Recursion just under the limit works, with deep expressions in each frame.
    let body = format!(
        "fn g(n) {{ if n == 0 {{ 0 }} else {{ g(n - 1) + ({}) }} }}\nprint(g(4000))\n",
        "1+".repeat(500) + "0"
    );
    let out = clean("deep_but_allowed", body);
    out.expect_code(0);
    assert_eq!(out.stdout, format!("{}\n", 4000 * 500));
}

#[test]
fn deeply_nested_values() {
    // Built by a loop, not written out: no parser limit applies.
    let out = clean(
        "nested_values",
        "let x = []\nlet y = []\nfor i in range(50000) { x = [x]; y = [y] }\nprint(x == y, x <= y)\nlet m = {}\nfor i in range(200000) { m = {\"m\": m} }\nprint(len(str(m)) > 0)\nx = nil\nm = nil\nprint(\"dropped\")\n",
    );
    out.expect_code(0);
    assert_eq!(out.stdout, "true true\ntrue\ndropped\n");
    // A list that contains itself prints, compares and goes away.
    let out = clean(
        "cyclic_values",
        "let x = [1]\nx.push(x)\nlet y = [1]\ny.push(y)\nprint(len(str(x)) > 0, x == x, x == y)\n",
    );
    out.expect_code(0);
    assert_eq!(out.stdout, "true true false\n");
}

#[test]
fn huge_numbers_and_ranges() {
    let out = clean(
        "huge_ranges",
        "let r = range(-9223372036854775807 - 1, 9223372036854775807)\nprint(r[-1], 0 in r, 9223372036854775806 in range(0, 9223372036854775807, 9223372036854775806))\ntry { len(r) } catch e { print(e.kind) }\ntry { list(r) } catch e { print(e.kind) }\n",
    );
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "9223372036854775806 true true\nValueError\nValueError\n"
    );
    let out = clean("huge_format", "print(\"{1.5:.999999}\")\n");
    out.expect_code(1);
    assert!(
        out.stderr.starts_with("error[ValueError]"),
        "{}",
        out.stderr
    );
}

//! Executable docs: every ```proc block in docs/pool.md is a complete program,
//! followed by a ```text block with exactly what it prints. Each runs through
//! the real binary.

use std::path::Path;
use std::process::{Command, Stdio};

/// (line, program, expected output) for each example.
fn examples(md: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    let block = |start: usize| -> (String, usize) {
        let mut body = String::new();
        let mut j = start;
        while j < lines.len() && lines[j].trim_end() != "```" {
            body.push_str(lines[j]);
            body.push('\n');
            j += 1;
        }
        (body, j + 1)
    };
    while i < lines.len() {
        if lines[i].trim_end() == "```proc" {
            let line = i + 1;
            let (code, next) = block(i + 1);
            let mut k = next;
            while k < lines.len() && lines[k].trim().is_empty() {
                k += 1;
            }
            assert!(
                k < lines.len() && lines[k].trim_end() == "```text",
                "docs/pool.md:{line}: a proc example must be followed by a ```text block"
            );
            let (want, after) = block(k + 1);
            out.push((line, code, want));
            i = after;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn pool_docs_examples_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let md = std::fs::read_to_string(root.join("docs/pool.md")).expect("docs/pool.md");
    let ex = examples(&md);
    assert!(
        ex.len() >= 6,
        "expected the pool examples, found {}",
        ex.len()
    );
    let mut failures = Vec::new();
    for (line, code, want) in ex {
        let out = Command::new(env!("CARGO_BIN_EXE_proc"))
            .arg("-c")
            .arg(&code)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1")
            .output()
            .expect("run proc");
        let got = String::from_utf8_lossy(&out.stdout);
        if got != want || !out.status.success() {
            failures.push(format!(
                "docs/pool.md:{line}: status {:?}\n--- expected ---\n{want}--- got ---\n{got}--- stderr ---\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Executable docs: every ```proc block of every `docs/*.md` file is a complete
//! program, run through the real binary; the ```text block that follows it (if
//! any) is what it must print, stdout and stderr together as a terminal shows
//! them. So the guide cannot drift from the implementation.
//!
//! The convention, between the two blocks (blank lines allowed):
//!
//! - `<!-- exit: N -->`: the program must exit with N (default 0). Use it for
//!   examples that fail on purpose; the text block then ends with the diagnostic.
//! - `<!-- args: a b c -->`: arguments after the script (`argv`), split on spaces.
//! - `<!-- stdin: text -->`: what the program reads on stdin (`\n` for a newline).
//!
//! A proc block without a text block after it is run and must exit 0 (or N).
//! Each program runs as `proc example.proc` in a fresh directory, so that
//! diagnostics name `example.proc` and relative paths stay inside that directory.

mod support;

use std::path::{Path, PathBuf};
use support::{scratch, write, Run, BIN};

#[derive(Debug)]
struct Example {
    file: PathBuf,
    line: usize,
    code: String,
    expected: Option<String>,
    exit: i32,
    args: Vec<String>,
    stdin: String,
}

fn fence_info(line: &str) -> Option<&str> {
    line.trim_start().strip_prefix("```").map(str::trim)
}

/// Reads a fenced block's lines from `lines[i]` (the line after the opening
/// fence) up to the closing fence; returns the text and the index after it.
fn block(lines: &[&str], mut i: usize, file: &Path, start: usize) -> (String, usize) {
    let mut text = String::new();
    while i < lines.len() {
        if lines[i].trim() == "```" {
            return (text, i + 1);
        }
        text.push_str(lines[i]);
        text.push('\n');
        i += 1;
    }
    panic!("{}:{start}: a code block is not closed", file.display());
}

fn extract(file: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(file).expect("a docs file");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = fence_info(lines[i]) else {
            i += 1;
            continue;
        };
        let start = i + 1;
        let (code, next) = block(&lines, i + 1, file, start);
        i = next;
        if info != "proc" {
            continue;
        }
        let mut ex = Example {
            file: file.to_path_buf(),
            line: start,
            code,
            expected: None,
            exit: 0,
            args: Vec::new(),
            stdin: String::new(),
        };
        // Directives and the expected output.
        while i < lines.len() {
            let l = lines[i].trim();
            if l.is_empty() {
                i += 1;
            } else if let Some(d) = l.strip_prefix("<!--").and_then(|d| d.strip_suffix("-->")) {
                let (key, value) = d.split_once(':').unwrap_or((d, ""));
                let value = value.trim();
                match key.trim() {
                    "exit" => {
                        ex.exit = value.parse().unwrap_or_else(|_| {
                            panic!("{}:{}: bad exit code {value:?}", file.display(), i + 1)
                        })
                    }
                    "args" => ex.args = value.split_whitespace().map(String::from).collect(),
                    "stdin" => ex.stdin = value.replace("\\n", "\n"),
                    other => panic!(
                        "{}:{}: unknown directive {other:?} (exit, args, stdin)",
                        file.display(),
                        i + 1
                    ),
                }
                i += 1;
            } else if fence_info(lines[i]) == Some("text") {
                let (expected, next) = block(&lines, i + 1, file, i + 1);
                ex.expected = Some(expected);
                i = next;
                break;
            } else {
                break;
            }
        }
        out.push(ex);
    }
    out
}

fn run(ex: &Example) -> Result<(), String> {
    let stem = ex.file.file_stem().unwrap_or_default().to_string_lossy();
    let dir = scratch(&format!("docs_{stem}_{}", ex.line));
    write(&dir, "example.proc", &ex.code);
    // stdout and stderr into one pipe, in the order a terminal would show them.
    let mut r = Run::program("sh")
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&1")
        .arg(BIN)
        .arg("example.proc")
        .dir(&dir)
        .stdin(ex.stdin.as_bytes());
    for a in &ex.args {
        r = r.arg(a);
    }
    let out = r.run();
    let mut problems = Vec::new();
    if out.code != Some(ex.exit) {
        problems.push(format!("exit status {:?}, expected {}", out.code, ex.exit));
    }
    if let Some(want) = &ex.expected {
        if &out.stdout != want {
            problems.push(format!(
                "--- expected ---\n{want}--- actual ---\n{}--- end ---",
                out.stdout
            ));
        }
    } else if out.code != Some(ex.exit) {
        problems.push(format!("output:\n{}", out.stdout));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}:{}: {}",
            ex.file.display(),
            ex.line,
            problems.join("\n")
        ))
    }
}

fn docs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_docs_example_runs_as_shown() {
    let mut examples = Vec::new();
    for f in docs() {
        examples.extend(extract(&f));
    }
    let failures: Vec<String> = examples.iter().filter_map(|e| run(e).err()).collect();
    eprintln!(
        "{} examples from docs/*.md, {} failed",
        examples.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn the_language_guide_has_its_examples() {
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md");
    let examples = extract(&guide);
    assert!(examples.len() >= 40, "only {} examples", examples.len());
    assert!(
        examples.iter().any(|e| e.exit != 0),
        "no example of an error"
    );
}

#[test]
fn the_extractor_reads_the_convention() {
    let dir = scratch("docs_extractor");
    let md = write(
        &dir,
        "x.md",
        "# T\n\n```proc\nprint(1)\n```\n\n```text\n1\n```\n\n```proc\nexit(3)\n```\n<!-- exit: 3 -->\n<!-- args: a b -->\n<!-- stdin: x\\ny -->\n\n```text\n```\n\n```sh\nnot proc\n```\n\n```proc\nprint(2)\n```\nprose\n\n```text\nnot its output\n```\n",
    );
    let ex = extract(&md);
    assert_eq!(ex.len(), 3);
    assert_eq!(ex[0].code, "print(1)\n");
    assert_eq!(ex[0].expected.as_deref(), Some("1\n"));
    assert_eq!(ex[1].exit, 3);
    assert_eq!(ex[1].args, ["a", "b"]);
    assert_eq!(ex[1].stdin, "x\ny");
    assert_eq!(ex[1].expected.as_deref(), Some(""));
    assert_eq!(ex[2].expected, None, "prose in between: no expected output");
    for e in &ex {
        assert_eq!(run(e), Ok(()), "{e:?}");
    }
}

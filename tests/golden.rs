//! Golden tests: every `tests/scripts/**/*.proc` runs through the real binary
//! (`scripts/*.proc` are checked by tests/examples.rs); its stdout, stderr and exit
//! status are compared with the sidecar files `.stdout`, `.stderr`, `.status`
//! (a missing `.stderr` means "must be empty"; a missing `.status` means 0).
//! A `.stdin` sidecar is fed to the script; a `.args` sidecar holds its arguments,
//! one per line.
//!
//! `PROC_BLESS=1 cargo test --test golden` rewrites the expected files from the
//! actual output — review the diff before committing it.

mod support;
use support::normalise;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "proc") {
            out.push(p);
        }
    }
}

fn sidecar(p: &Path, ext: &str) -> PathBuf {
    p.with_extension(ext)
}

fn run_one(bin: &Path, script: &Path, bless: bool) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rel = script.strip_prefix(root).unwrap_or(script);
    let mut cmd = Command::new(bin);
    cmd.arg(rel).current_dir(root);
    if let Ok(args) = std::fs::read_to_string(sidecar(script, "args")) {
        cmd.args(args.lines());
    }
    let stdin_file = sidecar(script, "stdin");
    cmd.stdin(if stdin_file.exists() {
        Stdio::from(std::fs::File::open(&stdin_file).map_err(|e| e.to_string())?)
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env("NO_COLOR", "1").env_remove("PROC_BLESS");
    let start = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if start.elapsed() > Duration::from_secs(60) {
        return Err(format!("{} took {:?}", rel.display(), start.elapsed()));
    }
    let stdout = normalise(&String::from_utf8_lossy(&out.stdout));
    let stderr = normalise(&String::from_utf8_lossy(&out.stderr));
    let status = out
        .status
        .code()
        .map_or_else(|| "signal".to_string(), |c| c.to_string());
    let expected = [("stdout", stdout), ("stderr", stderr), ("status", status)];
    let mut failures = Vec::new();
    for (ext, actual) in &expected {
        let path = sidecar(script, ext);
        let default = match *ext {
            "status" => "0".to_string(),
            _ => String::new(),
        };
        let want = std::fs::read_to_string(&path).map(|s| {
            if *ext == "status" {
                s.trim().to_string()
            } else {
                s
            }
        });
        if bless {
            if actual.is_empty() || (*ext == "status" && actual == "0") {
                let _ = std::fs::remove_file(&path);
            } else {
                let body = if *ext == "status" {
                    format!("{actual}\n")
                } else {
                    actual.clone()
                };
                std::fs::write(&path, body).map_err(|e| e.to_string())?;
            }
            continue;
        }
        let want = want.unwrap_or(default);
        if &want != actual {
            failures.push(format!(
                "--- {} {ext}: expected ---\n{want}\n--- actual ---\n{actual}\n",
                rel.display()
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join(""))
    }
}

#[test]
fn golden_scripts() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_proc"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts = Vec::new();
    collect(&root.join("tests/scripts"), &mut scripts);
    assert!(!scripts.is_empty(), "no golden scripts found");
    let bless = std::env::var_os("PROC_BLESS").is_some();
    let mut failed = Vec::new();
    for s in &scripts {
        if let Err(e) = run_one(&bin, s, bless) {
            failed.push(e);
        }
    }
    eprintln!("{} golden scripts, {} failed", scripts.len(), failed.len());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

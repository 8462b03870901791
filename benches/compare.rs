//! `cargo bench --bench compare [-- OPTIONS]`: the benchmark harness.
//!
//! Cargo builds `proc` for this bench with the bench profile, which inherits
//! `[profile.release]` and writes to `target/release/proc`; this program then
//! hands over to `benches/run.py` (python3, stdlib only), which times proc
//! against CPython and C/shell baselines and prints the table. It measures
//! nothing itself. OPTIONS are run.py's: `--only NAME`, `--rounds N`, `--quick`,
//! `--markdown`, `--verbose`; see `python3 benches/run.py --help`.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let proc_bin = env!("CARGO_BIN_EXE_proc");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/run.py");
    // `cargo bench` passes `--bench` to every bench binary; run.py has no use for it.
    let args = std::env::args().skip(1).filter(|a| a != "--bench");
    let err = Command::new("python3")
        .arg(script)
        .arg("--proc")
        .arg(proc_bin)
        .args(args)
        .exec();
    eprintln!("compare: cannot run python3 {script}: {err}");
    ExitCode::FAILURE
}

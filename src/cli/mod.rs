//! The command line: argument parsing, exit codes and the REPL.

pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}

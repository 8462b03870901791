//! Running a script and turning its outcome into an exit code: 0, `exit(n)`'s n,
//! 1 for an uncaught error, 2 for a syntax or usage error, 130 on SIGINT.

use super::args::Cli;
use crate::diagnostic;
use crate::runtime::{builtins, Interp, Outcome};
use clap::Parser;
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    crate::os::signal::install();
    let code = run(cli);
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn read_stdin() -> Result<String, String> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read the script from stdin: {e}"))?;
    String::from_utf8(buf).map_err(|_| "the script on stdin is not valid UTF-8".to_string())
}

fn read_script(path: &str) -> Result<String, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read {path}: {}", builtins::core::io_msg(&e)))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{path} is not valid UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn usage_error(msg: &str) -> i32 {
    diagnostic::emit("UsageError", msg, None);
    2
}

/// The FILE argument takes values that start with `-` so that everything after
/// it reaches the script untouched; an option clap does not know lands there.
fn unknown_option(cli: &Cli) -> Option<&str> {
    let first = cli.args.first()?;
    let is_option = first.len() > 1 && first.starts_with('-');
    (is_option && cli.code.is_none()).then_some(first.as_str())
}

fn run(cli: Cli) -> i32 {
    if let Some(opt) = unknown_option(&cli) {
        return usage_error(&format!(
            "unknown option `{opt}` (see `proc --help`; a script of that name runs as `proc ./{opt}`)"
        ));
    }
    if cli.check {
        return check(&cli);
    }
    let (name, text, argv) = if let Some(code) = cli.code {
        ("<-c>".to_string(), code, cli.args)
    } else if let Some((first, rest)) = cli.args.split_first() {
        if first == "-" {
            match read_stdin() {
                Ok(t) => ("<stdin>".to_string(), t, rest.to_vec()),
                Err(e) => return usage_error(&e),
            }
        } else {
            match read_script(first) {
                Ok(t) => (first.clone(), t, rest.to_vec()),
                Err(e) => return usage_error(&e),
            }
        }
    } else if std::io::stdin().is_terminal() {
        return super::repl::run();
    } else {
        match read_stdin() {
            Ok(t) => ("<stdin>".to_string(), t, Vec::new()),
            Err(e) => return usage_error(&e),
        }
    };
    let mut interp = Interp::new(&name, argv);
    let outcome = interp.run_source(&name, &text);
    finish(&mut interp, outcome)
}

/// Reports the outcome, flushes output, stops children; returns the exit code.
pub fn finish(interp: &mut Interp, outcome: Outcome) -> i32 {
    let code = match outcome {
        Outcome::Value(_) => 0,
        Outcome::Exit(n) => n,
        Outcome::Syntax(e) => {
            let _ = interp.out.flush();
            diagnostic::emit("SyntaxError", &e.message, Some(e.span));
            2
        }
        Outcome::Error(e) => {
            let _ = interp.out.flush();
            report_error(interp, &e);
            1
        }
    };
    let code = match interp.out.flush() {
        Err(crate::runtime::error::Unwind::Exit(n)) => n,
        _ => code,
    };
    // A closed stdout ends the program as SIGPIPE would: its children are
    // stopped, not joined (one may be waiting for the script itself).
    if interp.out.is_broken() && interp.exit_signal.is_none() {
        interp.exit_signal = crate::os::signal::by_name("PIPE");
    }
    // Pools first: their workers are stopped, not waited for like other children.
    builtins::pool::at_exit(interp);
    let code = builtins::process::at_exit(interp).unwrap_or(code);
    if interp.out.is_broken() && code == 0 {
        return crate::runtime::output::BROKEN_PIPE_EXIT;
    }
    code
}

/// Prints an uncaught runtime error.
pub fn report_error(interp: &Interp, e: &crate::runtime::error::RtError) {
    let _ = interp;
    diagnostic::emit(&e.kind, &e.message, e.span);
}

fn check(cli: &Cli) -> i32 {
    let mut code = 0;
    let files: Vec<&String> = cli.args.iter().collect();
    if files.is_empty() && cli.code.is_none() {
        return usage_error("--check needs at least one FILE");
    }
    let mut inputs: Vec<(String, Result<String, String>)> = Vec::new();
    if let Some(c) = &cli.code {
        inputs.push(("<-c>".into(), Ok(c.clone())));
    }
    for f in files {
        let t = if f == "-" {
            read_stdin()
        } else {
            read_script(f)
        };
        inputs.push((f.clone(), t));
    }
    for (name, text) in inputs {
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                usage_error(&e);
                code = 2;
                continue;
            }
        };
        let mut resolver = crate::resolve::Resolver::new(builtins::table().iter().map(|b| b.name));
        resolver.declare_global("argv");
        let src = crate::syntax::span::add_source(name.as_str(), text.as_str());
        match crate::syntax::parse_program(src, &text) {
            Err(e) => {
                diagnostic::emit("SyntaxError", &e.message, Some(e.span));
                code = 2;
            }
            Ok(mut program) => {
                resolver.resolve_program(&mut program);
                for (n, span) in resolver.undefined_names() {
                    let text = diagnostic::render(
                        "NameError",
                        &format!("`{n}` is not defined"),
                        Some(span),
                        false,
                    );
                    let text = text.replacen("error[NameError]", "warning[NameError]", 1);
                    eprint!("{text}");
                }
            }
        }
    }
    code
}

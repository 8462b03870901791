//! The REPL: `proc> ` and `...> ` prompts, values shown, errors reported without
//! ending the session, history in the XDG state directory, Tab completion of
//! keywords, builtins and the session's names, Ctrl-C and Ctrl-D.

use crate::diagnostic;
use crate::runtime::{format, Interp, Outcome};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

const KEYWORDS: &[&str] = &[
    "let", "fn", "return", "if", "else", "while", "for", "in", "break", "continue", "try", "catch",
    "finally", "throw", "with", "as", "spawn", "daemon", "join", "and", "or", "not", "nil", "true",
    "false",
];

#[derive(Helper, Highlighter, Hinter, Validator)]
struct ReplHelper {
    names: Rc<RefCell<Vec<String>>>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if word.is_empty() || before[..start].ends_with('.') {
            return Ok((start, Vec::new()));
        }
        let names = self.names.borrow();
        let mut found: Vec<&str> = KEYWORDS
            .iter()
            .copied()
            .chain(names.iter().map(String::as_str))
            .filter(|n| n.starts_with(word))
            .collect();
        found.sort_unstable();
        found.dedup();
        Ok((
            start,
            found
                .into_iter()
                .map(|n| Pair {
                    display: n.to_string(),
                    replacement: n.to_string(),
                })
                .collect(),
        ))
    }
}

fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("proc").join("history"))
}

/// True when `text` is an unfinished entry (an open bracket, block or string).
pub fn is_incomplete(text: &str) -> bool {
    matches!(crate::syntax::parse_program(u32::MAX, text), Err(e) if e.incomplete)
}

pub fn run() -> i32 {
    let mut interp = Interp::new("<repl>", Vec::new());
    let names = Rc::new(RefCell::new(Vec::new()));
    let mut rl = match Editor::<ReplHelper, rustyline::history::DefaultHistory>::new() {
        Ok(rl) => rl,
        Err(e) => {
            diagnostic::emit("IOError", &format!("cannot start the REPL: {e}"), None);
            return 1;
        }
    };
    rl.set_helper(Some(ReplHelper {
        names: names.clone(),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut entry_no = 0;
    loop {
        *names.borrow_mut() = interp.resolver.names().map(String::from).collect();
        let mut text = String::new();
        let mut prompt = "proc> ";
        let entry = loop {
            match rl.readline(prompt) {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                    if is_incomplete(&text) {
                        prompt = "...> ";
                        continue;
                    }
                    break Some(text);
                }
                Err(ReadlineError::Interrupted) => break Some(String::new()),
                Err(_) => break None,
            }
        };
        let Some(entry) = entry else { break };
        if entry.trim().is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(entry.trim_end());
        if let Some(h) = &history {
            if let Some(dir) = h.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = rl.save_history(h);
        }
        entry_no += 1;
        let outcome = interp.run_source(&format!("<repl:{entry_no}>"), &entry);
        match outcome {
            Outcome::Value(v) => {
                if !matches!(v, crate::runtime::value::Value::Nil) {
                    let s = format::repr(&v);
                    let _ = interp.out.write_str(&s);
                    let _ = interp.out.write_str("\n");
                }
            }
            Outcome::Error(e) => {
                let _ = interp.out.flush();
                diagnostic::emit(&e.kind, &e.message, e.span);
            }
            Outcome::Syntax(e) => {
                let _ = interp.out.flush();
                diagnostic::emit("SyntaxError", &e.message, Some(e.span));
            }
            Outcome::Exit(code) => {
                if interp.interrupted {
                    interp.interrupted = false;
                    interp.exit_signal = None;
                    let _ = interp.out.flush();
                    // The terminal echoed `^C` with no newline after it.
                    eprintln!("\ninterrupted");
                    continue;
                }
                return super::run::finish(&mut interp, Outcome::Exit(code));
            }
        }
        let _ = interp.out.flush();
    }
    super::run::finish(
        &mut interp,
        Outcome::Value(crate::runtime::value::Value::Nil),
    )
}

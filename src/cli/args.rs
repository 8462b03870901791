//! Command-line arguments, with clap's derive API.

use clap::Parser;

/// proc: a scripting language for orchestrating real OS processes.
///
/// Runs FILE with ARGS (available to the script as `argv`); with no FILE, reads
/// the script from stdin when it is piped, or starts the REPL on a terminal.
#[derive(Parser, Debug)]
#[command(name = "proc", version, about, long_about = None)]
pub struct Cli {
    /// Run CODE instead of a file; the remaining arguments become `argv`.
    #[arg(short = 'c', value_name = "CODE", allow_hyphen_values = true)]
    pub code: Option<String>,

    /// Only parse the files and report errors and undefined names.
    #[arg(long)]
    pub check: bool,

    /// The script (`-` for stdin) followed by its arguments.
    #[arg(
        value_name = "FILE [ARGS]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

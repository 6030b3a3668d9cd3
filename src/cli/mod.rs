//! The command line: clap arguments, one file per subcommand, one table of
//! exit codes.

#[macro_use]
mod output;
mod args;
mod check;
mod exit;
mod jobs;
mod man;
mod plan;
mod resume;
mod run;
mod schema;
mod shared;
mod subset;
mod worker;

pub use args::{Cli, ColorChoice, Command};
pub use exit::ExitCode;

use clap::Parser;

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitCode::Invalid
            } else {
                ExitCode::Ok
            };
            let _ = e.print();
            return code as i32;
        }
    };
    let _ = COLOR.set(cli.color);
    let code = match cli.command {
        Command::Check(a) => check::run(&a),
        Command::Plan(a) => plan::run(&a),
        Command::Schema => schema::run(),
        Command::Run(a) => run::run(&a),
        Command::Worker => worker::run(),
        Command::Man => man::run(),
        Command::Shared(a) => shared::run(&a),
    };
    code as i32
}

/// What the checker needs beyond the file: the workers' builtins, the
/// `--set` overrides, and how to ask the Python interpreter (for a run,
/// by starting the template the run will use).
pub(crate) fn check_options(sets: &[(String, String)], for_run: bool) -> crate::spec::CheckOptions {
    crate::spec::CheckOptions {
        builtins: crate::exec::builtin_names(),
        var_overrides: sets.to_vec(),
        python_probe: Some(if for_run {
            crate::exec::python::probe_and_start
        } else {
            crate::exec::python::probe
        }),
    }
}

/// The `--color` choice of this process (`auto` until it is parsed).
static COLOR: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

/// Whether diagnostics on standard error are coloured.
pub(crate) fn stderr_color() -> bool {
    use std::io::IsTerminal;
    wants_color(std::io::stderr().is_terminal())
}

/// Whether the text format on standard output is coloured.
pub(crate) fn stdout_color() -> bool {
    use std::io::IsTerminal;
    wants_color(std::io::stdout().is_terminal())
}

/// The one place that decides colour: `--color always` and `never` as
/// said; `auto` colours a terminal, unless `NO_COLOR` is set (and not
/// empty), and colours any stream when `CLICOLOR_FORCE` is set (and not
/// empty or `0`).
fn wants_color(terminal: bool) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    match COLOR.get().copied().unwrap_or(ColorChoice::Auto) {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set("NO_COLOR") => false,
        ColorChoice::Auto if set("CLICOLOR_FORCE") => {
            std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0")
        }
        ColorChoice::Auto => terminal,
    }
}

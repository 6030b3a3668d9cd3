//! The command line: clap arguments, one file per subcommand, one table of
//! exit codes.

#[macro_use]
mod output;
mod args;
mod check;
mod exit;
mod plan;
mod resume;
mod run;
mod schema;
mod shared;
mod worker;

pub use args::{Cli, Command};
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
    let code = match cli.command {
        Command::Check(a) => check::run(&a),
        Command::Plan(a) => plan::run(&a),
        Command::Schema => schema::run(),
        Command::Run(a) => run::run(&a),
        Command::Worker => worker::run(),
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

/// Whether diagnostics on standard error may be coloured: a terminal, and
/// no `NO_COLOR`.
pub(crate) fn stderr_color() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

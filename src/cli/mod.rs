//! The command line: clap arguments, one file per subcommand, one table of
//! exit codes.

#[macro_use]
mod output;
mod args;
mod check;
mod completions;
mod exit;
mod jobs;
mod man;
mod plan;
mod report;
mod resume;
mod run;
mod schema;
mod shared;
mod subset;
mod worker;

pub use args::{Cli, ColorChoice, Command};
pub use exit::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    // clap's own help and errors follow `--color` too, so it is looked
    // for before clap parses anything.
    let early = early_color(std::env::args_os().skip(1));
    let clap_color = match early {
        Some(ColorChoice::Always) => clap::ColorChoice::Always,
        Some(ColorChoice::Never) => clap::ColorChoice::Never,
        _ => clap::ColorChoice::Auto,
    };
    let parsed = Cli::command()
        .color(clap_color)
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
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
        Command::Report(a) => report::run(&a),
        Command::Completions(a) => completions::run(&a),
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

/// `--color WHEN` or `--color=WHEN` among the raw arguments (the last
/// one), else `JOBFILE_COLOR`; `None` when neither is a valid choice.
fn early_color(args: impl Iterator<Item = std::ffi::OsString>) -> Option<ColorChoice> {
    use clap::ValueEnum;
    let mut found = std::env::var("JOBFILE_COLOR").ok();
    let mut args = args.map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--color" {
            found = args.next();
        } else if let Some(v) = arg.strip_prefix("--color=") {
            found = Some(v.to_string());
        }
    }
    found.and_then(|v| ColorChoice::from_str(&v, false).ok())
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

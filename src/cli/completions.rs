//! `jobfile completions`: a completion script for bash, zsh or fish,
//! generated from the same clap definition as the parser, so it never
//! falls behind the options.

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::{Cli, CompletionShell, CompletionsArgs};
use super::exit::ExitCode;

pub fn run(args: &CompletionsArgs) -> ExitCode {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "jobfile", &mut out);
    use std::io::Write;
    match std::io::stdout().lock().write_all(&out) {
        Ok(()) => ExitCode::Ok,
        Err(_) => ExitCode::TaskFailed,
    }
}

//! `jobfile man`: the man page, made from the same clap definitions as
//! `--help`, so the two never disagree.

use clap::CommandFactory;

use super::args::Cli;
use super::exit::ExitCode;
use super::output::print_stdout;

pub fn run() -> ExitCode {
    let mut page = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut page) {
        diag!("error: cannot make the man page: {e}");
        return ExitCode::TaskFailed;
    }
    print_stdout(&page)
}

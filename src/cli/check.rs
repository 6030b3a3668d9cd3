//! `jobfile check`: parse, validate and plan; silent when fine.

use super::args::CheckArgs;
use super::exit::ExitCode;
use super::output::diag_text;

pub fn run(args: &CheckArgs) -> ExitCode {
    let color = super::stderr_color();
    let opts = super::check_options(&[], false);
    let mut code = ExitCode::Ok;
    for path in &args.jobs {
        if let Err(e) = crate::job_file::read_job(path, &opts) {
            diag_text(&e.render(color));
            code = ExitCode::Invalid;
        }
    }
    code
}

//! `jobfile check`: parse, validate and plan; silent when fine.

use super::args::CheckArgs;
use super::exit::ExitCode;
use super::output::diag_text;

pub fn run(args: &CheckArgs) -> ExitCode {
    let color = super::stderr_color();
    let opts = super::check_options(&[], false);
    let mut code = ExitCode::Ok;
    for (n, path) in args.jobs.iter().enumerate() {
        match crate::job_file::read_job(path, &opts) {
            // The last job is left for the exit to free: dropping a job of
            // 100,000 tasks one allocation at a time costs a tenth of the
            // check, and nothing runs after it. (Earlier ones are freed, so
            // that checking many files does not add up.)
            Ok(job) if n + 1 == args.jobs.len() => std::mem::forget(job),
            Ok(_) => {}
            Err(e) => {
                diag_text(&e.render(color));
                code = ExitCode::Invalid;
            }
        }
    }
    code
}

//! `jobfile plan`: the task graph, nothing run.

use super::args::PlanArgs;
use super::exit::ExitCode;
use super::output::{diag_text, print_stdout};
use crate::plan;

pub fn run(args: &PlanArgs) -> ExitCode {
    let color = super::stderr_color();
    let (job, graph) =
        match crate::job_file::read_planned(&args.job, &super::check_options(&[], false)) {
            Ok(read) => read,
            Err(e) => {
                diag_text(&e.render(color));
                return ExitCode::Invalid;
            }
        };
    let text = plan::render(&job, &graph, args.format);
    print_stdout(text.as_bytes())
}

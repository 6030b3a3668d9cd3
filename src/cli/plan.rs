//! `jobfile plan`: the task graph, nothing run.

use std::io::Write;

use super::args::PlanArgs;
use super::exit::ExitCode;
use crate::{plan, spec};

pub fn run(args: &PlanArgs) -> ExitCode {
    let color = super::stderr_color();
    let job = match spec::read_job(&args.job, &super::check_options(&[], false)) {
        Ok(job) => job,
        Err(e) => {
            eprint!("{}", e.render(color));
            return ExitCode::Invalid;
        }
    };
    let graph = plan::Plan::new(&job);
    let text = plan::render(&job, &graph, args.format);
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::TaskFailed;
    }
    ExitCode::Ok
}

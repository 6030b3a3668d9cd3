//! A job file read whole: the spec's checks, then the graph's, every
//! problem of both in one list. This is where the job and its plan meet:
//! `spec` knows nothing of the graph, and `plan` knows nothing of the
//! file's lines; here a [`Cycle`] found by `plan` becomes a diagnostic
//! pointing into the file.

use std::path::Path;

use crate::plan::{Cycle, Plan, find_cycle};
use crate::spec::{self, CheckOptions, Diagnostic, Job, SpecError};

/// Reads and checks the job file at `path`, cycles included.
pub fn read_job(path: &Path, opts: &CheckOptions) -> Result<Job, SpecError> {
    spec::read_job_then(path, opts, cycle_diagnostics)
}

/// Reads and checks the job file at `path`, cycles included, with its task
/// graph: the graph the cycle check looks at is the one handed back, so
/// `run` and `plan` do not build the edges of every task twice.
pub fn read_planned(path: &Path, opts: &CheckOptions) -> Result<(Job, Plan), SpecError> {
    let mut plan = None;
    let job = spec::read_job_then(path, opts, |job| {
        let graph = Plan::new(job);
        let found = graph
            .find_cycle()
            .and_then(|cycle| cycle_diagnostic(job, &cycle))
            .into_iter()
            .collect();
        plan = Some(graph);
        found
    })?;
    // The checks always run the hook on a job they hand back.
    let plan = plan.unwrap_or_else(|| Plan::new(&job));
    Ok((job, plan))
}

/// Checks job-file text as if read from `path`, cycles included.
pub fn check_source(path: &Path, source: &str, opts: &CheckOptions) -> Result<Job, SpecError> {
    spec::check_source_then(path, source, opts, cycle_diagnostics)
}

/// The dependency cycle among the references that resolved, if any.
fn cycle_diagnostics(job: &Job) -> Vec<Diagnostic> {
    find_cycle(job)
        .and_then(|cycle| cycle_diagnostic(job, &cycle))
        .into_iter()
        .collect()
}

/// A cycle, at the `after` of its first task in the file (at the task's
/// header when it has no `after`: the cycle is then through results,
/// streams or a blocking task).
fn cycle_diagnostic(job: &Job, cycle: &Cycle) -> Option<Diagnostic> {
    let first = *cycle.tasks.first()?;
    let task = job.task(first);
    let message = if cycle.tasks.len() == 1 {
        format!("task `{}` depends on itself", task.id)
    } else {
        let names: Vec<String> = cycle
            .tasks
            .iter()
            .map(|t| format!("`{}`", job.task(*t).id))
            .collect();
        format!("dependency cycle: {} -> `{}`", names.join(" -> "), task.id)
    };
    let key = (!task.after().is_empty()).then_some("after");
    Some(spec::task_diagnostic(first, key, message).with_help(
        "a task cannot wait, through `after`, results, streams or a blocking task, for itself",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(message, line, column)` of each error of `text`, cycles included.
    fn errors(text: &str) -> Vec<(String, usize, usize)> {
        let opts = CheckOptions {
            builtins: vec!["noop".into()],
            ..CheckOptions::default()
        };
        match check_source(Path::new("job.toml"), text, &opts) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .errors()
                .iter()
                .map(|e| (e.message.clone(), e.line, e.column))
                .collect(),
        }
    }

    #[test]
    fn a_cycle_is_found_among_other_errors() {
        let text = "version = 1\n\
            [[task]]\nid = \"a\"\nfunction = \"noop\"\nafter = [\"b\", \"nosuch\"]\n\
            [[task]]\nid = \"b\"\nfunction = \"noop\"\nafter = [\"a\"]\n";
        assert_eq!(
            errors(text),
            [
                ("dependency cycle: `a` -> `b` -> `a`".to_string(), 5, 9),
                ("unknown task id `nosuch` in `after`".to_string(), 5, 15),
            ]
        );
    }

    #[test]
    fn a_task_that_waits_for_itself() {
        let text = "version = 1\n[[task]]\nid = \"a\"\nfunction = \"noop\"\nafter = [\"a\"]\n";
        assert_eq!(
            errors(text),
            [("task `a` depends on itself".to_string(), 5, 9)]
        );
    }

    #[test]
    fn a_cycle_through_results_points_at_the_task() {
        let text = "version = 1\n\
            [[task]]\nid = \"a\"\nfunction = \"noop\"\nargs = [{ result = \"b\" }]\n\
            [[task]]\nid = \"b\"\nfunction = \"noop\"\nargs = [{ result = \"a\" }]\n";
        assert_eq!(
            errors(text),
            [("dependency cycle: `a` -> `b` -> `a`".to_string(), 2, 1)]
        );
    }
}

//! `jobfile run`: check the job, start the pool, write the records.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use super::args::{ProgressMode, RunArgs};
use super::exit::ExitCode;
use crate::exec::{self, RunEnd, RunOptions};
use crate::plan::{ItemIter, item_call};
use crate::report::page::PageWriter;
use crate::report::screen::{self, Stream};
use crate::report::{
    Destination, Failures, Format, ItemNames, ItemShape, Progress, Sink, TeeWriter, WriterOptions,
    open_writer, open_writer_with_prints,
};
use crate::spec::{self, Arg, Job, MapSource};

pub fn run(args: &RunArgs) -> ExitCode {
    let started = Instant::now();
    let color_err = super::stderr_color();
    let checks = super::check_options(&args.set, !args.dry_run);
    // The task graph, made once: for the cycle check, `--task` and the run.
    let (job, plan) = match crate::job_file::read_planned(&args.job, &checks) {
        Ok(read) => read,
        Err(e) => {
            super::output::diag_text(&e.render(color_err));
            return ExitCode::Invalid;
        }
    };
    let subset = match args.tasks.is_empty() {
        true => Ok(Default::default()),
        false => super::subset::left_out(&job, &plan, &args.tasks),
    };
    let left_out = match subset {
        Ok(set) => set,
        Err(e) => {
            diag!("{e}");
            return ExitCode::Invalid;
        }
    };
    if args.dry_run {
        return dry_run(&job, &left_out);
    }
    let dest = match (&args.output, &job.results.path) {
        (Some(p), _) => Destination::File(p.clone()),
        (None, Some(p)) => Destination::File(p.clone()),
        (None, None) => Destination::Stdout,
    };
    let stdout_tty = std::io::stdout().is_terminal();
    let format = args.format.or(job.results.format).unwrap_or(
        if stdout_tty && matches!(dest, Destination::Stdout) {
            Format::Text
        } else {
            Format::Jsonl
        },
    );
    let order = args.order.unwrap_or(job.results.order);
    // Everything that must exist before any thread: the fork server first.
    let prepared = match exec::prepare(&job) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start the pool: {e}");
            return ExitCode::TaskFailed;
        }
    };
    let on_screen = format == Format::Text
        && matches!(dest, Destination::Stdout)
        && screen::stdout_is_terminal();
    let names = item_names(&job);
    let opts = WriterOptions {
        reproducible: args.reproducible,
        job_name: job.name.clone(),
        color: format == Format::Text
            && matches!(dest, Destination::Stdout)
            && super::stdout_color(),
        width: on_screen.then(|| screen::width(Stream::Stdout)).flatten(),
        names: names.clone(),
    };
    let results_path = dest.path().map(Path::to_path_buf);
    if args.resume && results_path.is_none() {
        eprintln!("error: --resume needs a results file: give -o PATH or [results] path");
        return ExitCode::Invalid;
    }
    if args.resume && !super::resume::readable(format) {
        eprintln!("error: --resume reads jsonl or json results, not {format}");
        return ExitCode::Invalid;
    }
    // Fingerprints for --resume, hashed on threads of a pool of their own
    // that is gone before the run starts: the engine stays single-threaded,
    // so it could fork a new fork server should the first one be killed.
    let prints = results_path
        .as_ref()
        .filter(|_| super::resume::readable(format))
        .map(|_| {
            let hash = || crate::plan::task_prints(&job);
            match rayon::ThreadPoolBuilder::new().build() {
                Ok(pool) => {
                    let fp = pool.install(hash);
                    drop(pool);
                    exec::wait_single_threaded(std::time::Duration::from_millis(500));
                    fp
                }
                Err(_) => hash(),
            }
        });
    let previous = match (&results_path, args.resume) {
        (Some(path), true) => {
            super::resume::remove_stale(path);
            super::resume::open_previous(path, &job.name)
        }
        _ => None,
    };
    // Made before the results are opened, so a bad report path leaves an
    // earlier results file as it was.
    let page = match &args.report {
        None => None,
        Some(path) => match PageWriter::create(path.clone(), &job.name) {
            Ok(page) => Some(page),
            Err(e) => {
                eprintln!("error: cannot write the report to {}: {e}", path.display());
                return ExitCode::Invalid;
            }
        },
    };
    // A resumed run writes beside the old results (and fingerprints) and
    // replaces them at the end, so an interrupted resume never loses the
    // records it kept; the old file is read back while the run goes on.
    let (write_to, prints_to) = match (&results_path, args.resume) {
        (Some(p), true) => (
            Destination::File(super::resume::temporary(p)),
            Some(super::resume::temporary(&super::resume::state_path(p))),
        ),
        (Some(p), false) => (dest.clone(), Some(super::resume::state_path(p))),
        (None, _) => (dest.clone(), None),
    };
    let prints_to = prints_to.filter(|_| prints.is_some());
    let opened = match &prints_to {
        Some(pp) => open_writer_with_prints(format, write_to.clone(), opts, pp),
        None => open_writer(format, write_to.clone(), opts),
    };
    let writer = match opened {
        Ok(w) => w,
        Err(e) => {
            let shown = match &dest {
                Destination::File(p) => p.display().to_string(),
                Destination::Stdout => "standard output".into(),
            };
            eprintln!("error: cannot write results to {shown}: {e}");
            return ExitCode::Invalid;
        }
    };
    // The report is one more writer of the same records, in the same order.
    let writer = match page {
        None => writer,
        Some(page) => Box::new(TeeWriter::new(writer, Box::new(page))),
    };
    let failures = Failures::new();
    let mut sink = Sink::new(writer, order)
        .with_names(names)
        .with_failures(failures.clone());
    let show_progress = match args.progress {
        ProgressMode::Always => true,
        ProgressMode::Never => false,
        ProgressMode::Auto => std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
    };
    if show_progress {
        let total = job
            .tasks
            .iter()
            .enumerate()
            .filter(|(i, _)| !left_out.contains(&spec::TaskId(*i)))
            .map(|(_, t)| t)
            .try_fold(0u64, |acc, t| match t.map() {
                None => Some(acc + 1),
                Some(source) => ItemIter::len_hint(source).map(|n| acc + n),
            });
        let forced = args.progress == ProgressMode::Always;
        let progress = Progress::new(total, forced, color_err);
        // On the bar's terminal only when stderr is a terminal too.
        let same_screen = on_screen && std::io::stderr().is_terminal();
        sink = sink.with_progress(progress, same_screen);
    }
    let run_opts = RunOptions {
        jobs: args.jobs.map(|j| j.processes(super::jobs::usable_cpus())),
        live: args.live,
        prints,
        previous,
        left_out,
    };
    let report = exec::run(&job, &plan, prepared, sink, run_opts);
    if let (Some(path), Destination::File(tmp), true) = (&results_path, &write_to, args.resume) {
        if report.write_error.is_some() {
            // The new results are incomplete: the earlier ones stay.
            let _ = std::fs::remove_file(tmp);
            if let Some(pp) = &prints_to {
                let _ = std::fs::remove_file(pp);
            }
            eprintln!(
                "error: --resume: the new results could not be written; {} is left as it was",
                path.display()
            );
        } else {
            // Results first, then their fingerprints: killed in between,
            // the old fingerprints do not match the new records, which then
            // run again (never kept wrongly).
            if let Err(e) = std::fs::rename(tmp, path) {
                eprintln!("error: cannot replace {}: {e}", path.display());
                return ExitCode::TaskFailed;
            }
            if let Some(pp) = &prints_to {
                if let Err(e) = std::fs::rename(pp, super::resume::state_path(path)) {
                    eprintln!("warning: cannot save fingerprints for --resume: {e}");
                }
            }
            super::resume::report(path, &report.resumed);
        }
    }
    let counts = report.counts;
    // The reader of standard output went away (`| head`): the run stopped
    // with status 1, as for any lost destination, and says nothing more.
    let reader_gone = matches!(dest, Destination::Stdout)
        && report
            .write_error
            .as_ref()
            .is_some_and(super::output::is_broken_pipe);
    if reader_gone {
        return ExitCode::TaskFailed;
    }
    // Each record not ok, with its error and the end of its stderr, also
    // when the results went to a file.
    let shown_path = results_path.as_ref().map(|p| p.display().to_string());
    let block = failures.render(
        screen::width(Stream::Stderr),
        color_err,
        shown_path.as_deref(),
    );
    if !block.is_empty() {
        super::output::diag_text(&block);
    }
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    let summary = if parts.is_empty() {
        "no tasks".to_string()
    } else {
        parts.join(", ")
    };
    let kept = match report.resumed.kept {
        0 => String::new(),
        n => format!(" ({n} kept from the earlier run)"),
    };
    diag!(
        "jobfile: {}: {summary}{kept} in {:.2}s",
        job.name,
        started.elapsed().as_secs_f64()
    );
    if let Some(e) = report.write_error {
        diag!("error: writing results: {e}");
        return ExitCode::TaskFailed;
    }
    match report.end {
        RunEnd::Signalled(nix::sys::signal::Signal::SIGINT) => ExitCode::Interrupted,
        RunEnd::Signalled(_) => ExitCode::Terminated,
        RunEnd::OutputLost => ExitCode::TaskFailed,
        RunEnd::PollFailed(e) => {
            diag!("error: the run stopped: the engine cannot poll its workers: {e}");
            ExitCode::TaskFailed
        }
        RunEnd::Completed if counts.not_ok() == 0 => ExitCode::Ok,
        RunEnd::Completed => ExitCode::TaskFailed,
    }
}

/// What each map task gives its items' calls besides the item, to name
/// its items in the text format, JUnit and `--live`.
fn item_names(job: &Job) -> ItemNames {
    ItemNames::new(job.tasks.iter().filter_map(|t| {
        let source = t.map()?;
        Some((
            t.id.clone(),
            ItemShape {
                args: t.args.len(),
                kwargs: t.kwargs().iter().map(|(k, _)| k.clone()).collect(),
                keys: match source {
                    MapSource::Product(axes) => Some(axes.iter().map(|(k, _)| k.clone()).collect()),
                    _ => None,
                },
                named: !matches!(source, MapSource::Range { .. }),
            },
        ))
    }))
}

/// `--dry-run`: each unit with its placeholders filled, nothing run.
fn dry_run(job: &Job, left_out: &std::collections::BTreeSet<spec::TaskId>) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for (i, task) in job.tasks.iter().enumerate() {
        if left_out.contains(&spec::TaskId(i)) {
            continue;
        }
        let function = job.function(task.function);
        // Values other tasks would produce are shown by name.
        let shown = |a: &Arg| match a {
            Arg::Value(v) => v.clone(),
            Arg::Result(id) => {
                serde_json::Value::String(format!("<result of {}>", job.task(*id).id))
            }
        };
        let args: Vec<serde_json::Value> = task.args.iter().map(shown).collect();
        let kwargs: serde_json::Map<String, serde_json::Value> = task
            .kwargs()
            .iter()
            .map(|(k, a)| (k.clone(), shown(a)))
            .collect();
        let line = |label: String,
                    item: Option<&serde_json::Value>,
                    a: &[serde_json::Value],
                    k: &serde_json::Map<String, serde_json::Value>| {
            let setting = exec::Setting::of_task(task, function, false);
            match exec::invocation(job, function, a, k, item, &setting) {
                Ok(inv) => format!("{label}: {}", exec::describe(&inv)),
                Err(e) => format!("{label}: error: {e}"),
            }
        };
        let text = match task.map() {
            None => line(task.id.clone(), None, &args, &kwargs),
            Some(MapSource::Result(id)) => format!(
                "{}: map over the value of `{}` (known at run time)",
                task.id,
                job.task(*id).id
            ),
            Some(MapSource::Stream(id)) => {
                let producer = job.task(*id);
                let what = match job.function(producer.function).kind {
                    spec::FunctionKind::Python(_) => "values",
                    _ => "lines",
                };
                let verb = if what == "values" { "yields" } else { "prints" };
                format!(
                    "{}: map over the {what} `{}` {verb} (known at run time)",
                    task.id, producer.id
                )
            }
            Some(source) => match ItemIter::new(source, &job.dir) {
                Ok(items) => {
                    let mut s = String::new();
                    for (i, item) in items.enumerate() {
                        let item = match item {
                            Ok(v) => v,
                            Err(e) => {
                                s.push_str(&format!("{}[{i}]: error: {e}\n", task.id));
                                break;
                            }
                        };
                        let (a, k) = item_call(&item, &args, &kwargs);
                        s.push_str(&line(format!("{}[{i}]", task.id), Some(&item), &a, &k));
                        s.push('\n');
                    }
                    s.trim_end().to_string()
                }
                Err(e) => format!("{}: error: {e}", task.id),
            },
        };
        if let Err(e) = writeln!(out, "{text}") {
            return super::output::stdout_failed(&e);
        }
    }
    ExitCode::Ok
}

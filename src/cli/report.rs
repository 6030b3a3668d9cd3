//! `jobfile report`: the HTML page of a finished run, from its results file.

use std::path::Path;

use super::args::ReportArgs;
use super::exit::ExitCode;
use crate::report::page::{read_results, render};

pub fn run(args: &ReportArgs) -> ExitCode {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.results.with_extension("html"));
    let data = match read_results(&args.results) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Invalid;
        }
    };
    if same_file(&output, &args.results) {
        eprintln!(
            "error: the page would replace the results file {}: give another path with -o",
            args.results.display()
        );
        return ExitCode::Invalid;
    }
    if data.rows.is_empty() {
        eprintln!(
            "warning: {} holds no records; the page says so",
            args.results.display()
        );
    } else if !data.timing_fields {
        eprintln!(
            "warning: the records in {} have no timing (written with --reproducible): the page has no timeline",
            args.results.display()
        );
    }
    let page = render(&data);
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(parent) {
            eprintln!("error: cannot write {}: {e}", output.display());
            return ExitCode::TaskFailed;
        }
    }
    if let Err(e) = std::fs::write(&output, &page) {
        eprintln!("error: cannot write {}: {e}", output.display());
        return ExitCode::TaskFailed;
    }
    eprintln!(
        "jobfile: wrote {} ({} records, {})",
        output.display(),
        data.rows.len(),
        size(page.len())
    );
    ExitCode::Ok
}

/// A size in bytes, for people: `21 kB`, `3.1 MB`.
fn size(bytes: usize) -> String {
    if bytes < 1_000_000 {
        format!("{} kB", bytes.div_ceil(1000))
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

/// Do `a` and `b` name one file (or would, once `a` exists)?
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

//! The job file: the only layer that knows TOML.
//!
//! [`read_job`] turns a file into a checked [`Job`], or into every error it
//! has, each with its line, column and source line.

mod check;
mod diagnostic;
mod doc_path;
mod duration;
mod file_sources;
mod job;
mod load;
mod map_source;
pub mod python;
mod raw;
pub mod template;
mod toml_tree;

use std::path::{Path, PathBuf};

pub use crate::suggest::closest;
pub use check::{CheckOptions, task_diagnostic};
pub use diagnostic::{Diagnostic, Located};
pub use duration::parse_duration;
pub use file_sources::{GlobError, glob_matches, open_lines};
pub use job::*;
pub use python::{PythonProbe, PythonReport};
pub use raw::RawJob;

use crate::suggest;
use diagnostic::Location;
use doc_path::spans_of;

/// Why a job file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read job file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_all(path, source_text, errors, false))]
    Invalid {
        path: PathBuf,
        source_text: String,
        errors: Vec<Located>,
    },
}

impl SpecError {
    /// The rendered diagnostics, optionally coloured.
    pub fn render(&self, color: bool) -> String {
        match self {
            SpecError::Read { .. } => format!("error: {self}\n"),
            SpecError::Invalid {
                path,
                source_text,
                errors,
            } => render_all(path, source_text, errors, color),
        }
    }

    /// The located errors (empty for a read error).
    pub fn errors(&self) -> &[Located] {
        match self {
            SpecError::Read { .. } => &[],
            SpecError::Invalid { errors, .. } => errors,
        }
    }
}

fn render_all(path: &Path, source: &str, errors: &[Located], color: bool) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str(&e.render(path, source, color));
        out.push_str("\n\n");
    }
    let n = errors.len();
    out.push_str(&format!(
        "error: {} has {n} error{}; nothing was run\n",
        path.display(),
        if n == 1 { "" } else { "s" }
    ));
    out
}

/// Reads and checks the job file at `path`, then runs `later`, a later
/// layer's checks, on what could be checked, so that their problems are
/// reported with the file's own.
pub fn read_job_then(
    path: &Path,
    opts: &CheckOptions,
    later: impl FnOnce(&Job) -> Vec<Diagnostic>,
) -> Result<Job, SpecError> {
    let source = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    check_source_then(path, &source, opts, later)
}

/// Checks job-file text as if read from `path` (the spec's checks only).
pub fn check_source(path: &Path, source: &str, opts: &CheckOptions) -> Result<Job, SpecError> {
    check_source_then(path, source, opts, |_| Vec::new())
}

/// Checks job-file text as if read from `path`, then runs `later` on the
/// job as far as it could be checked (every reference that resolved; it
/// is not run when the text is not a job file at all).
pub fn check_source_then(
    path: &Path,
    source: &str,
    opts: &CheckOptions,
    later: impl FnOnce(&Job) -> Vec<Diagnostic>,
) -> Result<Job, SpecError> {
    let mut loaded = load::load(source);
    let mut diagnostics = loaded.diagnostics;
    let job = if loaded.parsed && loaded.has_version {
        let (job, more) = check::check(
            &mut loaded.raw,
            loaded.tasks,
            &loaded.unreadable,
            path,
            opts,
        );
        diagnostics.extend(more);
        diagnostics.extend(later(&job));
        Some(job)
    } else {
        None
    };
    // The raw job is not needed past the checks (nor while errors are shown).
    drop(loaded.raw);
    match job {
        Some(job) if diagnostics.is_empty() => Ok(job),
        _ => {
            // Spans of the errors found by path, in one more reading.
            let wanted: Vec<(&doc_path::DocPath, doc_path::Anchor)> = diagnostics
                .iter()
                .filter_map(|d| match &d.location {
                    Location::Path(p, anchor) => Some((p, *anchor)),
                    _ => None,
                })
                .collect();
            let mut spans = if wanted.is_empty() {
                Vec::new()
            } else {
                spans_of(source, &wanted)
            }
            .into_iter();
            let lines = diagnostic::LineStarts::of(source);
            let mut errors: Vec<Located> = diagnostics
                .iter()
                .map(|d| {
                    let span = match &d.location {
                        Location::Span(s) => s.clone(),
                        Location::Path(..) => spans.next().flatten().unwrap_or(0..0),
                        Location::File => 0..0,
                    };
                    Located::with_lines(d, span, source, &lines)
                })
                .collect();
            errors.sort_by_key(|e| (e.line, e.column));
            errors.dedup();
            Err(SpecError::Invalid {
                path: path.to_path_buf(),
                source_text: source.to_string(),
                errors,
            })
        }
    }
}

/// The JSON Schema of the job file, generated from [`RawJob`].
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(RawJob);
    serde_json::to_value(&schema).unwrap_or(serde_json::Value::Null)
}

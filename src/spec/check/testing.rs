//! Test helpers: check a small job-file text, get its errors as
//! `(message, line, column)`, so each test is one line per error.

use std::path::Path;

use super::super::{CheckOptions, check_source};

/// The options of every test: the workers' builtins, from the one list
/// the command line gives the checker; no Python probe.
pub(super) fn options(sets: &[(&str, &str)]) -> CheckOptions {
    CheckOptions {
        builtins: crate::exec::builtin_names(),
        var_overrides: sets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        python_probe: None,
    }
}

/// `(message, line, column)` of every error of `text`, read as if it were
/// `dir/job.toml`, with `--set` overrides `sets`.
pub(super) fn errors_in(
    dir: &Path,
    text: &str,
    sets: &[(&str, &str)],
) -> Vec<(String, usize, usize)> {
    match check_source(&dir.join("job.toml"), text, &options(sets)) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .errors()
            .iter()
            .map(|e| (e.message.clone(), e.line, e.column))
            .collect(),
    }
}

/// `(message, line, column)` of every error of `text`, as `./job.toml`.
pub(super) fn errors(text: &str) -> Vec<(String, usize, usize)> {
    errors_in(Path::new("."), text, &[])
}

/// The `help:` of the one error of `text`.
pub(super) fn help(text: &str) -> Option<String> {
    match check_source(Path::new("job.toml"), text, &options(&[])) {
        Ok(_) => None,
        Err(e) => e.errors().first().and_then(|e| e.help.clone()),
    }
}

/// One expected error, for `assert_eq!` against [`errors`].
pub(super) fn at(message: &str, line: usize, column: usize) -> (String, usize, usize) {
    (message.to_string(), line, column)
}

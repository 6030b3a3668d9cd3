//! The checker's state and its entry point: from a [`RawJob`] to a
//! [`Job`] with every reference that resolved, and every diagnostic.
//!
//! The rules live in the sibling modules, one concept each; this file only
//! runs them in order (ids and functions before the tasks that name them)
//! and holds what they share.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::super::diagnostic::Diagnostic;
use super::super::doc_path::DocPath;
use super::super::job::{Function, FunctionId, Job, PythonSettings, ResultsSpec};
use super::super::load::{LoadedTasks, Unreadable};
use super::super::python::{self, PythonProbe};
use super::super::raw::RawJob;

/// What the checker needs to know beyond the file.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Names of the builtins the workers can run.
    pub builtins: Vec<String>,
    /// `--set NAME=VALUE` overrides of `[vars]`.
    pub var_overrides: Vec<(String, String)>,
    /// Asks the Python interpreter about the job's modules; `None` skips
    /// those checks.
    pub python_probe: Option<PythonProbe>,
}

/// Checks a raw job read from `path`: the job, with every reference that
/// resolved (a reference that did not is left out), and every diagnostic.
/// The job is usable only when there is no diagnostic; it is given anyway
/// so that a later layer (the graph's cycle check) can report its own
/// problems in the same run.
pub fn check(
    raw: &mut RawJob,
    tasks: LoadedTasks,
    unreadable: &Unreadable,
    path: &Path,
    opts: &CheckOptions,
) -> (Job, Vec<Diagnostic>) {
    let mut cx = Checker {
        opts,
        unreadable,
        diags: Vec::new(),
        dir: job_dir(path),
        functions: Vec::new(),
        function_names: HashMap::new(),
        vars: BTreeMap::new(),
        python_functions: Vec::new(),
    };
    cx.version(raw);
    let name = raw.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "job".into())
    });
    cx.vars = cx.vars(raw);
    cx.declare_functions(raw);
    let pools = cx.pools(raw);
    let results = cx.results(raw);
    let tasks = cx.tasks(tasks, &pools);
    let mut job = Job {
        name,
        path: path.to_path_buf(),
        dir: cx.dir.clone(),
        vars: std::mem::take(&mut cx.vars),
        pools,
        results,
        functions: std::mem::take(&mut cx.functions),
        tasks,
        // Moved out: the raw job is dropped after the checks.
        shared: std::mem::take(&mut raw.shared).into_iter().collect(),
        python: PythonSettings::default(),
    };
    job.python = python::settings(raw.python.as_ref(), &cx.dir);
    if let (Some(probe), false) = (cx.opts.python_probe, cx.python_functions.is_empty()) {
        let origin = python::origin(raw.python.as_ref());
        let found = python::diagnose(
            probe,
            &mut job.python,
            &job.dir,
            &cx.python_functions,
            origin,
        );
        cx.diags.extend(found);
    }
    (job, cx.diags)
}

/// The folder relative paths of the file at `path` are resolved against.
fn job_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What the rules share while a job is checked.
pub(super) struct Checker<'a> {
    pub(super) opts: &'a CheckOptions,
    /// The module of each Python function, with the place of its `python` key.
    pub(super) python_functions: Vec<(String, DocPath)>,
    pub(super) unreadable: &'a Unreadable,
    pub(super) diags: Vec<Diagnostic>,
    /// The job file's folder.
    pub(super) dir: PathBuf,
    /// Declared functions, then the builtins tasks name directly.
    pub(super) functions: Vec<Function>,
    pub(super) function_names: HashMap<String, FunctionId>,
    /// `[vars]`, after `--set`.
    pub(super) vars: BTreeMap<String, String>,
}

impl Checker<'_> {
    fn version(&mut self, raw: &RawJob) {
        if !self.unreadable.version && raw.version != 1 {
            self.diags.push(
                Diagnostic::at(
                    DocPath::root().key("version"),
                    format!(
                        "unsupported `version = {}`: expected `version = 1`",
                        raw.version
                    ),
                )
                .with_help("this jobfile reads version 1 of the format"),
            );
        }
    }

    fn results(&mut self, raw: &RawJob) -> ResultsSpec {
        let r = raw.results.clone().unwrap_or_default();
        ResultsSpec {
            path: r.path.map(|p| self.dir.join(p)),
            format: r.format,
            order: r.order.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, errors};

    #[test]
    fn only_version_1_is_read() {
        assert_eq!(
            errors("version = 2\n"),
            [at(
                "unsupported `version = 2`: expected `version = 1`",
                1,
                11
            )]
        );
    }

    #[test]
    fn a_good_job_has_no_error() {
        assert_eq!(
            errors("version = 1\n[[task]]\nfunction = \"square\"\nargs = [3]\n"),
            []
        );
    }
}

//! `[python]` and the Python functions of a job: the interpreter's
//! settings with their defaults, and what a probe of the interpreter
//! found (a missing interpreter, one older than 3.8, modules that cannot
//! be found), as diagnostics at the `python` keys.
//!
//! This layer never starts a process itself: the probe is handed in by the
//! caller ([`super::CheckOptions::python_probe`]), so checking stays a pure
//! function of the file and what the caller knows.

use std::collections::BTreeMap;
use std::path::Path;

use super::diagnostic::Diagnostic;
use super::doc_path::DocPath;
use super::job::PythonSettings;
use super::raw::RawPython;

/// The oldest Python that runs jobfile's Python side.
pub const MIN_VERSION: (u32, u32) = (3, 8);

/// What a probe of the interpreter found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PythonReport {
    /// `sys.version_info[:3]`.
    pub version: (u32, u32, u32),
    /// Modules that cannot be found, with the reason.
    pub missing: BTreeMap<String, String>,
    /// The interpreter's own program (`sys.executable`): what runs the
    /// calls, with no wrapper script (a version manager's shim) to start
    /// each time.
    pub executable: Option<String>,
}

/// Looks up `modules` with the interpreter of `settings`, without running
/// them; `Err` says why the interpreter could not be asked.
pub type PythonProbe = fn(&PythonSettings, &Path, &[String]) -> Result<PythonReport, String>;

/// The environment variable naming the default interpreter.
pub const PYTHON_ENV: &str = "JOBFILE_PYTHON";

/// `[python]` with its defaults.
pub fn settings(raw: Option<&RawPython>, dir: &Path) -> PythonSettings {
    let interpreter = raw
        .and_then(|p| p.interpreter.clone())
        .or_else(|| std::env::var(PYTHON_ENV).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "python3".to_string());
    let path = raw
        .and_then(|p| p.path.as_ref())
        .map(|paths| paths.iter().map(|p| dir.join(p)).collect())
        .unwrap_or_default();
    PythonSettings { interpreter, path }
}

/// Where the interpreter of `[python]` comes from, for messages.
pub fn origin(raw: Option<&RawPython>) -> &'static str {
    if raw.and_then(|p| p.interpreter.as_ref()).is_some() {
        "named by `[python] interpreter`"
    } else if std::env::var(PYTHON_ENV).is_ok_and(|s| !s.is_empty()) {
        "named by $JOBFILE_PYTHON"
    } else {
        "the default"
    }
}

/// Probes the interpreter for the modules of `functions` (each with the
/// place of its `python` key) and reports what is wrong there: a missing
/// module at its function's `python` key, and an interpreter that cannot
/// run or is too old at the first function's (`origin` says where the
/// interpreter was named).
pub fn diagnose(
    probe: PythonProbe,
    settings: &mut PythonSettings,
    dir: &Path,
    functions: &[(String, DocPath)],
    origin: &str,
) -> Vec<Diagnostic> {
    let Some((_, first)) = functions.first() else {
        return Vec::new();
    };
    let mut modules: Vec<String> = functions.iter().map(|(m, _)| m.clone()).collect();
    modules.sort();
    modules.dedup();
    let at = first.clone();
    let report = match probe(settings, dir, &modules) {
        Ok(report) => report,
        Err(e) => {
            return vec![
                Diagnostic::at(
                    at,
                    format!(
                        "cannot run the Python interpreter `{}` ({origin}): {e}",
                        settings.interpreter
                    ),
                )
                .with_help(format!(
                    "install Python {}.{} or newer, or name an interpreter with `[python] interpreter = \"...\"` or ${PYTHON_ENV}",
                    MIN_VERSION.0, MIN_VERSION.1
                )),
            ];
        }
    };
    if let Some(exe) = report.executable.filter(|e| !e.is_empty()) {
        settings.interpreter = exe;
    }
    let (major, minor, micro) = report.version;
    if (major, minor) < MIN_VERSION {
        return vec![
            Diagnostic::at(
                at,
                format!(
                    "`{}` ({origin}) is Python {major}.{minor}.{micro}: Python functions need Python {}.{} or newer",
                    settings.interpreter, MIN_VERSION.0, MIN_VERSION.1
                ),
            )
            .with_help("name a newer interpreter with `[python] interpreter = \"...\"`"),
        ];
    }
    functions
        .iter()
        .filter_map(|(module, path)| {
            let reason = report.missing.get(module)?;
            Some(
                Diagnostic::at(
                    path.clone(),
                    format!("cannot find the Python module `{module}`: {reason}"),
                )
                .with_help(
                    "modules are looked up in the job file's folder, the folders of `[python] path`, and the interpreter's own `sys.path`",
                ),
            )
        })
        .collect()
}

//! What a worker needs to start an interpreter, sent once per worker.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::spec::{FunctionKind, Job, PythonSettings};

/// How a worker starts its Python interpreter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PythonSetup {
    /// The interpreter program.
    pub interpreter: String,
    /// Folders put first on `sys.path` (after `dir`).
    pub path: Vec<String>,
    /// The job file's folder: always on `sys.path`, and the default working
    /// folder of calls.
    pub dir: String,
    /// The modules of the job's Python functions, imported before the first
    /// call.
    pub modules: Vec<String>,
    /// The template's socket, for workers on the engine's machine; `None`
    /// starts each interpreter fresh.
    pub template: Option<String>,
}

impl PythonSetup {
    /// The setup of `job`'s interpreters; `template` is the socket of the
    /// run's template, when workers can reach it.
    pub fn of_job(job: &Job, template: Option<&Path>) -> PythonSetup {
        let mut modules: Vec<String> = job
            .functions
            .iter()
            .filter_map(|f| match &f.kind {
                FunctionKind::Python(t) => Some(t.module.clone()),
                _ => None,
            })
            .collect();
        modules.sort();
        modules.dedup();
        PythonSetup {
            interpreter: job.python.interpreter.clone(),
            path: job
                .python
                .path
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            dir: job.dir.to_string_lossy().into_owned(),
            modules,
            template: template.map(|p| p.to_string_lossy().into_owned()),
        }
    }

    /// The setup of an interpreter with `settings`, for `modules`.
    pub(crate) fn of_settings(
        settings: &PythonSettings,
        dir: &Path,
        modules: &[String],
    ) -> PythonSetup {
        PythonSetup {
            interpreter: settings.interpreter.clone(),
            path: settings
                .path
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            dir: dir.to_string_lossy().into_owned(),
            modules: modules.to_vec(),
            template: None,
        }
    }

    /// The runtime's configuration word, as JSON. `parent` is the pid the
    /// started process must have as its parent (it dies with it).
    pub(crate) fn config(&self, parent: u32) -> String {
        serde_json::json!({
            "dir": self.dir,
            "path": self.path,
            "modules": self.modules,
            "engine": parent,
        })
        .to_string()
    }
}

//! `check`'s question to the interpreter: its version, and which modules
//! cannot be found (looked up with `importlib`'s finders, never run).

use std::path::Path;
use std::time::Duration;

use super::runtime_args;
use super::setup::PythonSetup;
use crate::exec::command::{self, CommandSpec, NoEvents};
use crate::spec::PythonSettings;
use crate::spec::python::PythonReport;

/// How long the interpreter may take to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks `settings.interpreter` about `modules`, with `dir` and the
/// settings' path first on `sys.path`.
pub fn probe(
    settings: &PythonSettings,
    dir: &Path,
    modules: &[String],
) -> Result<PythonReport, String> {
    let setup = PythonSetup::of_settings(settings, dir, modules);
    let mut argv = vec![settings.interpreter.clone()];
    argv.extend(runtime_args().map(String::from));
    argv.extend(["check".to_string(), setup.config(std::process::id())]);
    let mut spec = CommandSpec::new(argv);
    spec.timeout = Some(PROBE_TIMEOUT);
    spec.grace = Duration::from_millis(200);
    spec.capture_limit = 1024 * 1024;
    spec.cwd = Some(dir.to_path_buf());
    let out = command::run(&spec, None, &mut NoEvents).map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.timed_out {
        return Err(format!(
            "it did not answer within {}s",
            PROBE_TIMEOUT.as_secs()
        ));
    }
    let line = stdout.lines().last().unwrap_or_default().to_string();
    match parse_report(&line) {
        Ok(report) if out.success() => Ok(report),
        _ => {
            // Too old to run the probe at all, or not Python.
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
            Err(match (out.exit_code, last) {
                (_, Some(line)) => format!("it failed: {}", line.trim()),
                (Some(code), None) => format!("it exited with code {code}"),
                (None, None) => "it was killed by a signal".to_string(),
            })
        }
    }
}

/// Reads the runtime's answer to `check`.
pub(crate) fn parse_report(line: &str) -> Result<PythonReport, String> {
    let answer: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("a bad answer: {e}"))?;
    let version = answer["version"]
        .as_array()
        .map(|v| {
            let n = |i: usize| v.get(i).and_then(|x| x.as_u64()).unwrap_or(0) as u32;
            (n(0), n(1), n(2))
        })
        .unwrap_or_default();
    let missing = answer["missing"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let executable = answer["executable"].as_str().map(String::from);
    Ok(PythonReport {
        version,
        missing,
        executable,
    })
}

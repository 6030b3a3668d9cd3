//! `--resume`: which tasks keep their records from the earlier run, and
//! the fingerprints file kept beside the results for the next one.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::plan::{EdgeKind, Plan};
use crate::report::{Format, Record, Status, read_previous};
use crate::spec::{Job, TaskId};

/// The file beside the results that holds each task's fingerprint.
pub fn state_path(results: &Path) -> PathBuf {
    let name = results
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results".into());
    results.with_file_name(format!(".{name}.fingerprints"))
}

/// Reads the fingerprints of the earlier run (empty when there are none).
fn read_state(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("tasks").and_then(|t| t.as_object()).cloned())
        .map(|o| {
            o.into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Writes the fingerprints of this run, atomically.
pub fn write_state(path: &Path, job: &Job, fingerprints: &[String]) -> io::Result<()> {
    let tasks: serde_json::Map<String, serde_json::Value> = job
        .tasks
        .iter()
        .zip(fingerprints)
        .map(|(t, f)| (t.id.clone(), serde_json::Value::String(f.clone())))
        .collect();
    let doc = serde_json::json!({"version": 1, "job": job.name, "tasks": tasks});
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, format!("{doc}\n"))?;
    std::fs::rename(&tmp, path)
}

/// The tasks whose earlier records stand: every record ok and the same
/// fingerprint. A stream producer and its consumers stand or rerun together.
pub fn kept_tasks(
    job: &Job,
    plan: &Plan,
    results: &Path,
    format: Format,
    fingerprints: &[String],
) -> io::Result<HashMap<TaskId, Vec<Record>>> {
    let previous = read_previous(results, format)?;
    let old = read_state(&state_path(results));
    let mut by_task: HashMap<String, Vec<Record>> = HashMap::new();
    for r in previous {
        let base = r.task.split(':').next().unwrap_or_default().to_string();
        by_task.entry(base).or_default().push(r);
    }
    let mut keep: HashMap<TaskId, Vec<Record>> = HashMap::new();
    for (i, task) in job.tasks.iter().enumerate() {
        let Some(records) = by_task.remove(&task.id) else {
            continue;
        };
        let same = old.get(&task.id) == Some(&fingerprints[i]);
        let all_ok = !records.is_empty() && records.iter().all(|r| r.status == Status::Ok);
        if same && all_ok {
            keep.insert(TaskId(i), records);
        }
    }
    // A consumer needs its producer's lines; a producer rerun feeds its
    // consumers again.
    loop {
        let mut changed = false;
        for (i, deps) in plan.deps.iter().enumerate() {
            for e in deps.iter().filter(|e| e.kind == EdgeKind::Stream) {
                let (c, p) = (TaskId(i), e.on);
                if keep.contains_key(&c) != keep.contains_key(&p) {
                    keep.remove(&c);
                    keep.remove(&p);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    Ok(keep)
}

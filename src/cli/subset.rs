//! `--task ID`: the tasks a run keeps, as `just NAME` does: the named
//! tasks and, transitively, what they depend on (`after`, result
//! references, the producer of a `stream` map). A blocking task declared
//! earlier orders the file but is no input, so it is not pulled in; it
//! still holds back the tasks after it when both run.

use std::collections::BTreeSet;

use crate::plan::{EdgeKind, Plan};
use crate::spec::{Job, TaskId};
use crate::suggest::closest;

/// The tasks left out of a run of `wanted` (ids as written), or the error
/// for an id the job does not have.
pub fn left_out(job: &Job, plan: &Plan, wanted: &[String]) -> Result<BTreeSet<TaskId>, String> {
    let mut keep = BTreeSet::new();
    let mut todo = Vec::new();
    for id in wanted {
        match job.tasks.iter().position(|t| &t.id == id) {
            Some(i) => todo.push(TaskId(i)),
            None => return Err(unknown(job, id)),
        }
    }
    while let Some(id) = todo.pop() {
        if !keep.insert(id) {
            continue;
        }
        todo.extend(
            plan.deps[id.0]
                .iter()
                .filter(|e| e.kind != EdgeKind::Barrier)
                .map(|e| e.on),
        );
    }
    Ok((0..job.tasks.len())
        .map(TaskId)
        .filter(|id| !keep.contains(id))
        .collect())
}

/// `--task ID` names no task: say so, with the closest id as a hint.
fn unknown(job: &Job, id: &str) -> String {
    let (base, _) = crate::report::RecordKind::parse(id);
    let closest = closest(base, job.tasks.iter().map(|t| t.id.as_str()));
    let mut message = format!(
        "error: --task `{id}`: no task of that id in {}",
        job.path.display()
    );
    match closest {
        Some(t) => message.push_str(&format!("\nhelp: did you mean `{t}`?")),
        None if job.tasks.len() <= 10 => {
            let ids: Vec<String> = job.tasks.iter().map(|t| format!("`{}`", t.id)).collect();
            message.push_str(&format!("\nhelp: its tasks are {}", ids.join(", ")));
        }
        None => {}
    }
    message
}

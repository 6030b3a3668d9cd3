//! Fingerprints for `--resume`.
//!
//! A unit (a call, a map item, a callback) is found again in an earlier run
//! by its key (`report::unit_key`: its task id, args and kwargs). Whether
//! its earlier record still stands is told by its *state*: a hash of its
//! task's fingerprint (what the task runs: its function's definition, its
//! own args and kwargs, env, cwd, callbacks, `[vars]`; and, hashed as the
//! task starts, the contents of its `inputs` without per-unit
//! placeholders), of the contents of the inputs filled for that unit, and
//! of the contents of its `outputs` as the run that made them left them.
//!
//! [`task_prints`] runs on rayon threads; call it only after the fork
//! server exists.

use rayon::prelude::*;
use serde_json::Map;

use super::unit_files::{files_of, hash_file, is_per_unit};
use crate::spec::{Arg, Job, Task};

/// A 128-bit fingerprint.
pub type Digest = [u8; 16];

/// A fingerprint of nothing: units with no `inputs`, no `outputs`.
pub const NONE: Digest = [0; 16];

/// One fingerprint per task, in task order: what its units run (its
/// definition), without its map and without any file's contents (see
/// [`with_shared_inputs`] and `unit_files`).
pub fn task_prints(job: &Job) -> Vec<Digest> {
    job.tasks.par_iter().map(|t| task_print(job, t)).collect()
}

fn task_print(job: &Job, task: &Task) -> Digest {
    let mut h = blake3::Hasher::new();
    // Debug output of the checked definitions: stable for one version of
    // jobfile (a new version may rerun everything once).
    let mut put = |label: &str, text: String| {
        h.update(label.as_bytes());
        h.update(&(text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    };
    put("function", format!("{:?}", job.function(task.function)));
    let arg = |a: &Arg| match a {
        // By the task's id, not its place in the file.
        Arg::Result(id) => format!("result:{}", job.task(*id).id),
        Arg::Value(v) => v.to_string(),
    };
    put(
        "args",
        task.args.iter().map(arg).collect::<Vec<_>>().join("\u{0}"),
    );
    put(
        "kwargs",
        task.kwargs()
            .iter()
            .map(|(k, a)| format!("{k}={}", arg(a)))
            .collect::<Vec<_>>()
            .join("\u{0}"),
    );
    put("env", format!("{:?}", task.env()));
    put("cwd", format!("{:?}", task.cwd()));
    put("inputs", format!("{:?}", task.inputs()));
    put("outputs", format!("{:?}", task.outputs()));
    for f in [task.callback(), task.error_callback()] {
        put("callback", format!("{:?}", f.map(|f| job.function(f))));
    }
    put(
        "initializer",
        format!("{:?}", job.pools[task.pool.0].initializer),
    );
    put("vars", format!("{:?}", job.vars));
    truncate(h.finalize())
}

/// A task's fingerprint with the contents of its inputs that are the same
/// for every unit, hashed now: call it as the task starts, once what it
/// depends on has ended (and made those files).
pub fn with_shared_inputs(job: &Job, task: &Task, print: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(print);
    for t in task.inputs().iter().filter(|t| !is_per_unit(t)) {
        let files = files_of(job, t, &[], &Map::new(), None).unwrap_or_default();
        h.update(&(files.len() as u64).to_le_bytes());
        for p in files {
            h.update(p.to_string_lossy().as_bytes());
            h.update(&hash_file(&p));
        }
    }
    truncate(h.finalize())
}

/// A unit's state: its task's fingerprint, its own inputs' and its
/// outputs'.
pub fn unit_state(task: &Digest, inputs: &Digest, outputs: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(task);
    h.update(inputs);
    h.update(outputs);
    truncate(h.finalize())
}

pub(super) fn truncate(hash: blake3::Hash) -> Digest {
    let mut d = NONE;
    d.copy_from_slice(&hash.as_bytes()[..16]);
    d
}

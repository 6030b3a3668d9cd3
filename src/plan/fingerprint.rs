//! Fingerprints of tasks for `--resume`: a hash of what a task runs (its
//! function's definition, args, kwargs, map), of the contents of its
//! `inputs`, and of the fingerprints of the tasks it depends on, so a task
//! reruns when anything it could see has changed.
//!
//! Input files are hashed in parallel (rayon); call this only after the
//! fork server exists.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::graph::Plan;
use crate::spec::Job;

/// One hex fingerprint per task, in task order.
pub fn fingerprints(job: &Job, plan: &Plan) -> Vec<String> {
    let inputs: Vec<Vec<PathBuf>> = job
        .tasks
        .iter()
        .map(|t| input_files(&job.dir, &t.inputs))
        .collect();
    let all: Vec<&PathBuf> = inputs.iter().flatten().collect();
    let hashes: std::collections::HashMap<&PathBuf, String> =
        all.par_iter().map(|p| (*p, hash_file(p))).collect();
    let order = topological(job, plan);
    let mut out = vec![String::new(); job.tasks.len()];
    for i in order {
        let task = &job.tasks[i];
        let mut h = blake3::Hasher::new();
        // Debug output of the checked definitions: stable for one version
        // of jobfile (a new version may rerun everything once).
        h.update(format!("{:?}", job.function(task.function)).as_bytes());
        h.update(format!("{:?}", task).as_bytes());
        for f in [task.callback, task.error_callback].into_iter().flatten() {
            h.update(format!("{:?}", job.function(f)).as_bytes());
        }
        h.update(format!("{:?}", job.vars).as_bytes());
        for p in &inputs[i] {
            h.update(p.to_string_lossy().as_bytes());
            h.update(hashes.get(p).map_or("", String::as_str).as_bytes());
        }
        for e in &plan.deps[i] {
            h.update(out[e.on.0].as_bytes());
        }
        out[i] = h.finalize().to_hex().to_string();
    }
    out
}

/// The files an `inputs` list names, sorted.
fn input_files(dir: &Path, patterns: &[String]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in patterns {
        let full = if Path::new(p).is_absolute() {
            p.clone()
        } else {
            format!("{}/{p}", glob::Pattern::escape(&dir.to_string_lossy()))
        };
        if let Ok(paths) = glob::glob(&full) {
            files.extend(paths.flatten().filter(|p| p.is_file()));
        }
    }
    files.sort();
    files.dedup();
    files
}

fn hash_file(p: &Path) -> String {
    let mut h = blake3::Hasher::new();
    match std::fs::File::open(p) {
        Ok(mut f) => match std::io::copy(&mut f, &mut h) {
            Ok(_) => h.finalize().to_hex().to_string(),
            Err(e) => format!("unreadable: {e}"),
        },
        Err(e) => format!("unreadable: {e}"),
    }
}

/// Tasks ordered so every dependency comes before its dependents.
fn topological(job: &Job, plan: &Plan) -> Vec<usize> {
    let n = job.tasks.len();
    let mut pending: Vec<usize> = plan.deps.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).rev().collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop() {
        order.push(i);
        for d in &plan.dependents[i] {
            pending[d.0] -= 1;
            if pending[d.0] == 0 {
                ready.push(d.0);
            }
        }
    }
    order
}

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

use std::cell::Cell;

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
    let shared = Shared::of(job);
    job.tasks
        .par_iter()
        .map_init(Default::default, |buffers, t| {
            task_print(job, &shared, t, buffers)
        })
        .collect()
}

/// What many tasks share (functions, pools' initializers, `[vars]`),
/// hashed once per job instead of once per task: a job of 100,000 tasks of
/// one function would otherwise write and hash that function's
/// definition 100,000 times.
struct Shared {
    /// Per function: its definition, and it as a callback (`Some(..)`).
    functions: Vec<(Digest, Digest)>,
    /// No callback.
    no_callback: Digest,
    /// Per pool: its initializer.
    initializers: Vec<Digest>,
    vars: Digest,
}

impl Shared {
    fn of(job: &Job) -> Shared {
        // Debug output of the checked definitions: stable for one version
        // of jobfile (a new version may rerun everything once).
        let functions = job
            .functions
            .iter()
            .map(|f| {
                (
                    text_digest(&format!("{f:?}")),
                    text_digest(&format!("{:?}", Some(f))),
                )
            })
            .collect();
        Shared {
            functions,
            no_callback: text_digest(&format!("{:?}", None::<&crate::spec::Function>)),
            initializers: job
                .pools
                .iter()
                .map(|p| text_digest(&format!("{:?}", p.initializer)))
                .collect(),
            vars: text_digest(&format!("{:?}", job.vars)),
        }
    }
}

fn text_digest(text: &str) -> Digest {
    truncate(blake3::hash(text.as_bytes()))
}

/// `text` and `bytes` are buffers kept between the tasks of one thread.
/// Everything is hashed in one call at the end: blake3 gives the same
/// digest however its input is cut, and one call on a few hundred bytes
/// costs less than thirty calls on a few bytes each.
fn task_print(job: &Job, shared: &Shared, task: &Task, buffers: &mut (String, Vec<u8>)) -> Digest {
    use std::fmt::Write as _;
    let (text, bytes) = buffers;
    bytes.clear();
    let put = |bytes: &mut Vec<u8>, label: &str, value: &[u8]| {
        bytes.extend_from_slice(label.as_bytes());
        bytes.extend_from_slice(&(value.len() as u64).to_le_bytes());
        bytes.extend_from_slice(value);
    };
    // Writing to a String cannot fail.
    let text_of = |text: &mut String, f: &dyn Fn(&mut String) -> std::fmt::Result| {
        text.clear();
        let _ = f(text);
    };
    put(bytes, "function", &shared.functions[task.function.0].0);
    let arg = |out: &mut String, a: &Arg| match a {
        // By the task's id, not its place in the file.
        Arg::Result(id) => write!(out, "result:{}", job.task(*id).id),
        Arg::Value(v) => write!(out, "{v}"),
    };
    text_of(text, &|out| {
        for (i, a) in task.args.iter().enumerate() {
            if i > 0 {
                out.push('\u{0}');
            }
            arg(out, a)?;
        }
        Ok(())
    });
    put(bytes, "args", text.as_bytes());
    text_of(text, &|out| {
        for (i, (k, a)) in task.kwargs().iter().enumerate() {
            if i > 0 {
                out.push('\u{0}');
            }
            write!(out, "{k}=")?;
            arg(out, a)?;
        }
        Ok(())
    });
    put(bytes, "kwargs", text.as_bytes());
    // Most tasks have none of these: their Debug text is written out
    // rather than formatted (the same bytes).
    if task.env().is_empty() {
        put(bytes, "env", b"{}");
    } else {
        text_of(text, &|out| write!(out, "{:?}", task.env()));
        put(bytes, "env", text.as_bytes());
    }
    if task.cwd().is_none() {
        put(bytes, "cwd", b"None");
    } else {
        text_of(text, &|out| write!(out, "{:?}", task.cwd()));
        put(bytes, "cwd", text.as_bytes());
    }
    for (label, list) in [("inputs", task.inputs()), ("outputs", task.outputs())] {
        if list.is_empty() {
            put(bytes, label, b"[]");
        } else {
            text_of(text, &|out| write!(out, "{list:?}"));
            put(bytes, label, text.as_bytes());
        }
    }
    for f in [task.callback(), task.error_callback()] {
        let d = match f {
            Some(f) => &shared.functions[f.0].1,
            None => &shared.no_callback,
        };
        put(bytes, "callback", d);
    }
    put(bytes, "initializer", &shared.initializers[task.pool.0]);
    put(bytes, "vars", &shared.vars);
    truncate(blake3::hash(bytes))
}

/// A task's fingerprint with the contents of its inputs that are the same
/// for every unit, hashed now: call it as the task starts, once what it
/// depends on has ended (and made those files).
pub fn with_shared_inputs(job: &Job, task: &Task, print: &Digest) -> Digest {
    if task.inputs().iter().all(is_per_unit) {
        // The same digest as below with no file, in one call.
        return truncate(blake3::hash(print));
    }
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
///
/// Units of one task without files of their own all have the same state,
/// asked for once per record: the last answer is kept (per thread) and
/// given again for the same three digests, without hashing.
pub fn unit_state(task: &Digest, inputs: &Digest, outputs: &Digest) -> Digest {
    thread_local! {
        static LAST: Cell<Option<([Digest; 3], Digest)>> = const { Cell::new(None) };
    }
    let asked = [*task, *inputs, *outputs];
    if let Some((last, state)) = LAST.get() {
        if last == asked {
            return state;
        }
    }
    let mut h = blake3::Hasher::new();
    h.update(task);
    h.update(inputs);
    h.update(outputs);
    let state = truncate(h.finalize());
    LAST.set(Some((asked, state)));
    state
}

pub(super) fn truncate(hash: blake3::Hash) -> Digest {
    let mut d = NONE;
    d.copy_from_slice(&hash.as_bytes()[..16]);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashed(task: &Digest, inputs: &Digest, outputs: &Digest) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(task);
        h.update(inputs);
        h.update(outputs);
        truncate(h.finalize())
    }

    #[test]
    fn empty_parts_are_written_as_debug_formats_them() {
        let env: std::collections::BTreeMap<String, String> = Default::default();
        let cwd: Option<std::path::PathBuf> = None;
        let list: Vec<crate::spec::template::Template> = Vec::new();
        assert_eq!(format!("{env:?}"), "{}");
        assert_eq!(format!("{cwd:?}"), "None");
        assert_eq!(format!("{list:?}"), "[]");
    }

    #[test]
    fn the_kept_state_is_the_hash_of_the_same_digests() {
        let (a, b) = ([1; 16], [2; 16]);
        for (t, i, o) in [
            (a, NONE, NONE),
            (a, NONE, NONE),
            (b, NONE, NONE),
            (a, b, NONE),
            (a, NONE, b),
            (a, NONE, NONE),
        ] {
            assert_eq!(unit_state(&t, &i, &o), hashed(&t, &i, &o));
        }
        assert_ne!(unit_state(&a, &b, &NONE), unit_state(&a, &NONE, &b));
    }
}

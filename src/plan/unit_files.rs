//! The files a unit's `inputs` and `outputs` name: each pattern filled
//! with the unit's args, kwargs, item and `[vars]`, then globbed in the
//! job's folder, and what those files hold.
//!
//! Filled values are glob-escaped: an item `a[1].jpg` names that file, it
//! never becomes a wildcard. Hashing here is done on the calling thread.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::fingerprint::{Digest, NONE, truncate};
use crate::spec::template::{Bindings, Part, Template, value_text};
use crate::spec::{Job, Task};

/// Does the pattern hold a placeholder other than `{vars.NAME}` (so that
/// it names other files for each unit)?
pub fn is_per_unit(t: &Template) -> bool {
    t.parts()
        .iter()
        .any(|p| !matches!(p, Part::Literal(_) | Part::Var(_)))
}

/// The pattern as filled for a unit, relative to the job's folder as
/// written; `None` when a placeholder has no value.
pub fn fill(
    job: &Job,
    t: &Template,
    args: &[Value],
    kwargs: &Map<String, Value>,
    item: Option<&Value>,
) -> Option<String> {
    let escape = |v: &Value| Value::String(glob::Pattern::escape(&value_text(v)));
    let args: Vec<Value> = args.iter().map(escape).collect();
    let kwargs: Map<String, Value> = kwargs.iter().map(|(k, v)| (k.clone(), escape(v))).collect();
    let item = item.map(escape);
    let vars = job
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), glob::Pattern::escape(v)))
        .collect();
    let b = Bindings {
        args: &args,
        kwargs: &kwargs,
        item: item.as_ref(),
        vars: &vars,
    };
    t.render(&b).ok()
}

/// The files a filled pattern matches, sorted; `None` when the pattern
/// cannot be filled or is not a glob.
pub fn files_of(
    job: &Job,
    t: &Template,
    args: &[Value],
    kwargs: &Map<String, Value>,
    item: Option<&Value>,
) -> Option<Vec<PathBuf>> {
    let pattern = fill(job, t, args, kwargs, item)?;
    Some(glob_files(&job.dir, &pattern))
}

fn glob_files(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_string()
    } else {
        format!(
            "{}/{pattern}",
            glob::Pattern::escape(&dir.to_string_lossy())
        )
    };
    let mut files: Vec<PathBuf> = match glob::glob(&full) {
        Ok(paths) => paths.flatten().filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// The contents of a file; an unreadable file hashes as its error, so
/// it never matches a readable one.
pub fn hash_file(p: &Path) -> Digest {
    let mut h = blake3::Hasher::new();
    match std::fs::File::open(p).and_then(|mut f| std::io::copy(&mut f, &mut h)) {
        Ok(_) => truncate(h.finalize()),
        Err(e) => truncate(blake3::hash(format!("unreadable: {e}").as_bytes())),
    }
}

/// What one unit's call looks like to its files.
pub struct UnitCall<'a> {
    pub args: &'a [Value],
    pub kwargs: &'a Map<String, Value>,
    pub item: Option<&'a Value>,
}

/// The fingerprint of the inputs filled for this unit (those the same for
/// every unit are in the task's fingerprint); [`NONE`] when there are none.
pub fn unit_inputs(job: &Job, task: &Task, call: &UnitCall<'_>) -> Digest {
    let per_unit: Vec<&Template> = task.inputs().iter().filter(|t| is_per_unit(t)).collect();
    if per_unit.is_empty() {
        return NONE;
    }
    let mut h = blake3::Hasher::new();
    for t in per_unit {
        let files = files_of(job, t, call.args, call.kwargs, call.item).unwrap_or_default();
        h.update(&(files.len() as u64).to_le_bytes());
        for p in files {
            h.update(p.to_string_lossy().as_bytes());
            h.update(&hash_file(&p));
        }
    }
    truncate(h.finalize())
}

/// The fingerprint of the outputs of this unit, as they are now; the first
/// pattern that matches no file (as filled) when one is missing.
pub fn unit_outputs(job: &Job, task: &Task, call: &UnitCall<'_>) -> Result<Digest, String> {
    if task.outputs().is_empty() {
        return Ok(NONE);
    }
    let mut h = blake3::Hasher::new();
    for t in task.outputs() {
        let pattern = fill(job, t, call.args, call.kwargs, call.item).unwrap_or_default();
        let files = glob_files(&job.dir, &pattern);
        if files.is_empty() {
            return Err(unescape(&pattern));
        }
        h.update(&(files.len() as u64).to_le_bytes());
        for p in files {
            h.update(p.to_string_lossy().as_bytes());
            h.update(&hash_file(&p));
        }
    }
    Ok(truncate(h.finalize()))
}

/// A filled pattern as the user would write the path: `[[]` back to `[`.
fn unescape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while !rest.is_empty() {
        let b = rest.as_bytes();
        if b.len() >= 3 && b[0] == b'[' && b[2] == b']' && b"[]*?".contains(&b[1]) {
            out.push(b[1] as char);
            rest = &rest[3..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_gives_back_the_path() {
        let p = glob::Pattern::escape("a[1]*?.png");
        assert_eq!(unescape(&p), "a[1]*?.png");
        assert_eq!(unescape("thumbs/*.png"), "thumbs/*.png");
    }
}

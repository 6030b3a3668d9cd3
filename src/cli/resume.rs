//! `--resume` on the command line: where the fingerprints file is, the
//! earlier run opened with a clear word on standard error when it cannot
//! be used (then everything runs, the safe choice), and what became of
//! the earlier records.

use std::path::{Path, PathBuf};

use crate::exec::Resumed;
use crate::report::{Format, Previous};

/// The file beside the results that holds each record's fingerprint.
pub fn state_path(results: &Path) -> PathBuf {
    results.with_file_name(format!(".{}.fingerprints", file_name(results)))
}

/// A file beside the results that this process writes and then renames
/// over `target`.
pub fn temporary(target: &Path) -> PathBuf {
    target.with_file_name(format!(".{}.tmp-{}", file_name(target), std::process::id()))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results".into())
}

/// Removes what resumed runs that were killed (SIGKILL) left beside the
/// results: temporary files of processes that no longer exist.
pub fn remove_stale(results: &Path) {
    let Some(dir) = results.parent() else { return };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let ours = [
        format!(".{}.tmp-", file_name(results)),
        format!(".{}.tmp-", file_name(&state_path(results))),
    ];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = ours
            .iter()
            .find_map(|prefix| name.strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.parse::<i32>().ok());
        let Some(pid) = pid else { continue };
        let gone = pid != std::process::id() as i32
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH);
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Can `--resume` read results of this format back?
pub fn readable(format: Format) -> bool {
    matches!(format, Format::Jsonl | Format::Json)
}

/// The earlier run at `results`, if there is one that can be used.
pub fn open_previous(results: &Path, job_name: &str) -> Option<Previous> {
    match Previous::open(results, &state_path(results), job_name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "warning: --resume: {} cannot be resumed: {e}; every task runs again",
                results.display()
            );
            None
        }
    }
}

/// Notes on standard error about the earlier records.
pub fn report(results: &Path, r: &Resumed) {
    if r.unreadable > 0 {
        eprintln!(
            "warning: --resume: {} earlier record{} in {} did not read back as written (the file was changed, truncated or replaced); their units ran again",
            r.unreadable,
            plural(r.unreadable),
            results.display()
        );
    }
    if r.dropped > 0 {
        eprintln!(
            "note: --resume: {} earlier record{} matched no unit of this run (a task renamed or removed, an item no longer there) and {} left out",
            r.dropped,
            plural(r.dropped),
            if r.dropped == 1 { "is" } else { "are" }
        );
    }
    if r.carried > 0 {
        eprintln!(
            "note: --resume: {} earlier record{} this interrupted run did not reach {} written after its own, for the next --resume",
            r.carried,
            plural(r.carried),
            if r.carried == 1 { "is" } else { "are" }
        );
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

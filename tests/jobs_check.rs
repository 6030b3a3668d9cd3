//! Every example job in `jobs/` passes `jobfile check`.

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::jobfile;

#[test]
fn every_example_job_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut jobs: Vec<_> = std::fs::read_dir(root.join("jobs"))
        .expect("jobs/ exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    jobs.sort();
    assert!(jobs.len() >= 10, "only {} jobs found", jobs.len());
    let mut failures = Vec::new();
    for job in &jobs {
        let out = jobfile([OsStr::new("check"), job.as_os_str()]).output();
        if out.status.code() != Some(0) || !out.stderr.is_empty() {
            failures.push(format!(
                "{} (exit {:?}):\n{}",
                job.display(),
                out.status.code(),
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

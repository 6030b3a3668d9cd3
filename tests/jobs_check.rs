//! Every example job in `jobs/` passes `jobfile check`.

use std::path::Path;
use std::process::Command;

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
        let out = Command::new(env!("CARGO_BIN_EXE_jobfile"))
            .arg("check")
            .arg(job)
            .env("NO_COLOR", "1")
            .output()
            .expect("the jobfile binary runs");
        if out.status.code() != Some(0) || !out.stderr.is_empty() {
            failures.push(format!(
                "{} (exit {:?}):\n{}",
                job.display(),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

//! Pools with `backend = "slurm"`, run by the real binary against a real
//! Slurm: the same records as a forked pool, lost steps, signals, and a job
//! mixing both kinds of pool.
//!
//! They need a running Slurm (`bash ci/local-slurm.sh start`) and run only
//! with `JOBFILE_TEST_SLURM=1`; then they fail, never skip, when Slurm is
//! unusable. Without the variable each returns at once.

mod common;

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{Job, ids, record, repo_path};

/// One test at a time: their allocations would wait for each other's CPUs.
static SLURM: Mutex<()> = Mutex::new(());

fn slurm_test() -> Option<MutexGuard<'static, ()>> {
    if std::env::var("JOBFILE_TEST_SLURM").as_deref() != Ok("1") {
        return None;
    }
    Some(SLURM.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The job's text with its default pool moved to Slurm.
fn on_slurm(text: &str) -> String {
    if text.contains("\n[pool]\n") {
        text.replacen("\n[pool]\n", "\n[pool]\nbackend = \"slurm\"\n", 1)
    } else {
        format!("{text}\n[pool]\nbackend = \"slurm\"\n")
    }
}

/// Jobs named `NAME` in Slurm's queue (pending or running).
fn queued(name: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["-h", "-o", "%i %j"])
        .output()
        .expect("squeue runs");
    assert!(out.status.success(), "squeue failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(name))
        .map(str::to_string)
        .collect()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn seed_jobs_give_the_same_bytes_on_slurm_as_on_forked_workers() {
    let Some(_guard) = slurm_test() else { return };
    for seed in [
        "seed-map-square.toml",
        "seed-pool3-async.toml",
        "seed-apply-async-results.toml",
        "seed-several-functions.toml",
        "seed-queue.toml",
        "seed-shared-value-array.toml",
        "seed-manager-list.toml",
    ] {
        let text = std::fs::read_to_string(repo_path(&format!("jobs/{seed}"))).unwrap();
        let local = Job::new(&text).run(&["--reproducible"]);
        local.assert_code(0);
        let remote = Job::new(&on_slurm(&text)).run(&["--reproducible"]);
        remote.assert_code(0);
        assert_eq!(
            local.stdout, remote.stdout,
            "{seed}: forked and Slurm records differ"
        );
        remote.assert_nothing_left();
    }
}

#[test]
fn a_job_mixes_a_forked_pool_and_a_slurm_pool() {
    let Some(_guard) = slurm_test() else { return };
    let job = Job::new(
        r#"
version = 1
name = "jobfile-test-mixed"
[pools.cluster]
backend = "slurm"
processes = 2
[functions.where]
shell = 'if [ -n "$SLURM_JOB_ID" ]; then echo slurm; else echo local; fi'
[[task]]
id = "remote"
function = "where"
pool = "cluster"
map = [1, 2, 3]
[[task]]
id = "here"
function = "where"
[[task]]
id = "gather"
function = "echo"
args = [{ result = "remote" }]
"#,
    );
    let out = job.run(&["--reproducible"]);
    out.assert_code(0);
    let records = out.task_records();
    for r in records.iter().filter(|r| r.task() == "remote") {
        assert_eq!(r.value(), "slurm", "{}", r.0);
    }
    assert_eq!(record(&records, "here").value(), "local");
    assert_eq!(
        record(&records, "gather").value(),
        &serde_json::json!([["slurm", "slurm", "slurm"]])
    );
    assert!(
        queued("jobfile-jobfile-test-mixed").is_empty(),
        "the allocation was released"
    );
    out.assert_nothing_left();
}

#[test]
fn a_step_cancelled_with_scancel_is_crashed_and_the_run_goes_on() {
    let Some(_guard) = slurm_test() else { return };
    let job = Job::new(
        r#"
version = 1
name = "jobfile-test-scancel"
[pool]
backend = "slurm"
processes = 1
[functions.slow]
shell = 'touch "$1"; sleep 30'
[[task]]
id = "victim"
function = "slow"
args = ["started"]
[[task]]
id = "next"
function = "square"
args = [6]
"#,
    );
    // Commands run in the job's folder: `started` appears beside it.
    let running = job.spawn(&["--reproducible"]);
    wait_for("the task to start", || job.file("started").exists());
    let steps = Command::new("squeue")
        .args(["-h", "-s", "-o", "%i %j"])
        .output()
        .expect("squeue -s runs");
    let steps = String::from_utf8_lossy(&steps.stdout).into_owned();
    let step = steps
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|id| {
            let job_id = id.split('.').next().unwrap_or_default();
            queued("jobfile-jobfile-test-scancel")
                .iter()
                .any(|q| q.starts_with(&format!("{job_id} ")))
                && id.contains('.')
                && !id.ends_with(".extern")
        })
        .unwrap_or_else(|| panic!("no step of the run in: {steps}"))
        .to_string();
    let status = Command::new("scancel").arg(&step).status().unwrap();
    assert!(status.success(), "scancel {step}");
    let out = running.wait();
    out.assert_code(1);
    let records = out.task_records();
    assert_eq!(ids(&records), ["victim", "next"]);
    assert_eq!(
        record(&records, "victim").status(),
        "crashed",
        "{}",
        records[0].0
    );
    assert_eq!(record(&records, "next").status(), "ok");
    assert_eq!(record(&records, "next").value(), 36);
    assert!(queued("jobfile-jobfile-test-scancel").is_empty());
    out.assert_nothing_left();
}

#[test]
fn sigint_leaves_no_job_in_the_queue() {
    let Some(_guard) = slurm_test() else { return };
    let job = Job::new(
        r#"
version = 1
name = "jobfile-test-sigint"
[pool]
backend = "slurm"
processes = 2
[functions.slow]
shell = 'touch "$1"; sleep 30'
[[task]]
function = "slow"
map = ["a", "b"]
"#,
    );
    let running = job.spawn(&[]);
    wait_for("both tasks to start", || {
        job.file("a").exists() && job.file("b").exists()
    });
    assert_eq!(queued("jobfile-jobfile-test-sigint").len(), 1);
    running.signal(libc::SIGINT);
    let out = running.wait();
    out.assert_code(130);
    for r in out.task_records() {
        assert_eq!(r.status(), "cancelled", "{}", r.0);
    }
    wait_for("the allocation to go", || {
        queued("jobfile-jobfile-test-sigint").is_empty()
    });
    out.assert_nothing_left();
}

//! Pools with `backend = "slurm"`, run by the real binary against a real
//! Slurm: the same records as a forked pool, lost steps, signals, and a job
//! mixing both kinds of pool.
//!
//! They need a running multi-node Slurm (`bash ci/local-cluster.sh start`:
//! three nodes, `node1`..`node3`) and run only when built with
//! `JOBFILE_TEST_SLURM=1`; then they fail, never skip, when Slurm is
//! unusable. Without the variable they are reported as ignored. The test
//! that loses a node kills one with `ci/local-cluster.sh kill-node` (as
//! root) and brings it back.

mod common;

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{Job, ids, record, repo_path};

/// One test at a time: their allocations would wait for each other's CPUs.
static SLURM: Mutex<()> = Mutex::new(());

fn slurm_test() -> MutexGuard<'static, ()> {
    SLURM.lock().unwrap_or_else(|e| e.into_inner())
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
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn seed_jobs_give_the_same_bytes_on_slurm_as_on_forked_workers() {
    let _guard = slurm_test();
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
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_job_mixes_a_forked_pool_and_a_slurm_pool() {
    let _guard = slurm_test();
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
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_step_cancelled_with_scancel_is_crashed_and_the_run_goes_on() {
    let _guard = slurm_test();
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
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn sigint_leaves_no_job_in_the_queue() {
    let _guard = slurm_test();
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

/// The cluster's node names, sorted (`sinfo`).
fn cluster_nodes() -> Vec<String> {
    let out = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%N"])
        .output()
        .expect("sinfo runs");
    assert!(out.status.success(), "sinfo failed: {out:?}");
    let mut nodes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

/// `bash ci/local-cluster.sh ARGS...`, which must succeed.
fn local_cluster(args: &[&str]) {
    let out = Command::new("bash")
        .arg(repo_path("ci/local-cluster.sh"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "local-cluster.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until `squeue` lists no job named `name`, at most `limit`.
fn wait_queue_empty(name: &str, limit: Duration) -> Result<Duration, Vec<String>> {
    let t = Instant::now();
    loop {
        let left = queued(name);
        if left.is_empty() {
            return Ok(t.elapsed());
        }
        if t.elapsed() > limit {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const SPREAD: &str = r#"
version = 1
name = "jobfile-test-spread"
[pool]
backend = "slurm"
processes = 6
nodes = 3
[functions.square]
shell = 'sleep 0.1; echo $(($1 * $1))'
returns = "json"
[functions.where]
shell = 'sleep 0.1; hostname'
[[task]]
id = "squares"
function = "square"
map = { range = [0, 40] }
[[task]]
id = "hosts"
function = "where"
map = { range = [0, 40] }
"#;

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_map_on_three_nodes_runs_on_each_and_records_where() {
    let _guard = slurm_test();
    let nodes = cluster_nodes();
    assert!(nodes.len() >= 3, "a cluster of 3 nodes or more: {nodes:?}");
    let job = Job::new(SPREAD);
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.task_records();
    assert_eq!(records.len(), 80);
    let mut seen = std::collections::BTreeSet::new();
    for r in &records {
        let host = r
            .get("host")
            .as_str()
            .unwrap_or_else(|| panic!("no host in {}", r.0))
            .to_string();
        assert!(nodes.contains(&host), "host {host} is not a node: {}", r.0);
        if r.task() == "hosts" {
            // The value is what `hostname` printed where the unit ran.
            assert_eq!(r.value(), &serde_json::json!(host), "{}", r.0);
        }
        seen.insert(host);
    }
    assert_eq!(seen.len(), 3, "every node ran some of the work: {seen:?}");
    assert!(queued("jobfile-jobfile-test-spread").is_empty());
    out.assert_nothing_left();

    // --reproducible: no host, and the bytes of a forked pool.
    let squares_only = SPREAD.replace("map = { range = [0, 40] }\n[[task]]\nid = \"hosts\"\nfunction = \"where\"\nmap = { range = [0, 40] }\n", "map = { range = [0, 40] }\n");
    assert!(!squares_only.contains("\"hosts\""));
    let remote = Job::new(&squares_only).run(&["--reproducible"]);
    remote.assert_code(0);
    let forked = squares_only
        .replace("backend = \"slurm\"\n", "")
        .replace("nodes = 3\n", "");
    let local = Job::new(&forked).run(&["--reproducible"]);
    local.assert_code(0);
    assert!(!remote.stdout.contains("\"host\""));
    assert_eq!(
        remote.stdout, local.stdout,
        "Slurm and forked records differ"
    );
    remote.assert_nothing_left();
}

/// Loses one node of three mid-run, killed by `ci/local-cluster.sh
/// kill-node K MODE`, and checks that only the units its workers ran are
/// `crashed` and the rest end `ok` on the other nodes.
fn lose_a_node(mode: &str) {
    // Killing only slurmd leaves its steps working until Slurm declares the
    // node DOWN (about 10 s here): then six long units, one per worker,
    // are still running. Otherwise short ones, so that the replacements on
    // the nodes left run some too.
    let (items, seconds) = if mode == "slurmd" { (6, 20) } else { (14, 2) };
    let nodes = cluster_nodes();
    assert!(nodes.len() >= 3, "a cluster of 3 nodes or more: {nodes:?}");
    let victim = nodes[1].clone();
    let name = format!("jobfile-test-lost-node-{mode}");
    let job = Job::new(&format!(
        r#"
version = 1
name = "{name}"
[pool]
backend = "slurm"
processes = 6
nodes = 3
[functions.slow]
shell = 'hostname > "started-$1"; sleep {seconds}'
[[task]]
id = "work"
function = "slow"
map = {{ range = [0, {items}] }}
"#
    ));
    let running = job.spawn(&[]);
    let started = |job: &Job| {
        (0..items)
            .filter(|i| job.file(&format!("started-{i}")).exists())
            .count()
    };
    wait_for("six units to start", || started(&job) >= 6);
    let k = victim.trim_start_matches(|c: char| !c.is_ascii_digit());
    local_cluster(&["kill-node", k, mode]);
    // What had started on the victim when it was killed.
    let on_victim: Vec<u64> = (0..items)
        .filter(|i| {
            std::fs::read_to_string(job.file(&format!("started-{i}")))
                .is_ok_and(|h| h.trim() == victim)
        })
        .collect();
    let out = running.wait();
    local_cluster(&["start"]);
    out.assert_code(1);
    let records = out.task_records();
    assert_eq!(records.len() as u64, items, "{}", out.stdout);
    assert!(!on_victim.is_empty(), "no unit ran on {victim}");
    let mut crashed = 0;
    for r in &records {
        let index = r.index().expect("a map item");
        let host = r.get("host").as_str();
        if r.status() == "crashed" {
            crashed += 1;
            assert!(
                r.error().contains(&format!("node {victim} was lost")),
                "{}",
                r.0
            );
            assert_eq!(host, Some(victim.as_str()), "{}", r.0);
        } else {
            assert_eq!(r.status(), "ok", "{}", r.0);
        }
        if mode != "slurmd" {
            // Everything on the node died with it: what ran there is
            // crashed, and nothing else ran there.
            assert_eq!(
                on_victim.contains(&index),
                r.status() == "crashed",
                "{}",
                r.0
            );
        }
    }
    // Its two workers were running units when it was declared lost.
    assert!(
        (1..=2).contains(&crashed),
        "{crashed} crashed:\n{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(&format!("lost Slurm node {victim}")),
        "{}",
        out.stderr
    );
    // No replacement was sent to the lost node.
    assert!(
        !out.stderr.contains("end before they are ready"),
        "{}",
        out.stderr
    );
    assert!(queued(&name).is_empty());
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_node_whose_processes_all_die_crashes_only_the_units_it_ran() {
    let _guard = slurm_test();
    lose_a_node("all");
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_node_cut_off_the_network_crashes_only_the_units_it_ran() {
    let _guard = slurm_test();
    lose_a_node("net");
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_node_whose_slurmd_dies_crashes_only_the_units_running_when_it_is_down() {
    let _guard = slurm_test();
    lose_a_node("slurmd");
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_sigkilled_engine_leaves_no_allocation_ten_times_out_of_ten() {
    let _guard = slurm_test();
    let job = Job::new(
        r#"
version = 1
name = "jobfile-test-sigkill"
[pool]
backend = "slurm"
processes = 3
nodes = 3
[functions.slow]
shell = 'touch "started-$1"; sleep 60'
[[task]]
function = "slow"
map = [0, 1, 2]
"#,
    );
    let mut times = Vec::new();
    for trial in 0..10 {
        for i in 0..3 {
            let _ = std::fs::remove_file(job.file(&format!("started-{i}")));
        }
        let running = job.spawn(&[]);
        wait_for("the units to start", || {
            (0..3).all(|i| job.file(&format!("started-{i}")).exists())
        });
        assert_eq!(queued("jobfile-jobfile-test-sigkill").len(), 1);
        running.signal(libc::SIGKILL);
        match wait_queue_empty("jobfile-jobfile-test-sigkill", Duration::from_secs(10)) {
            Ok(t) => times.push(t),
            Err(left) => panic!("trial {trial}: still queued 10 s after SIGKILL: {left:?}"),
        }
        let out = running.wait();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{:?}", out.status);
        out.assert_nothing_left();
    }
    eprintln!("[sigkill] allocation gone after {times:?}");
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn sigterm_leaves_no_allocation_on_three_nodes() {
    let _guard = slurm_test();
    let job = Job::new(
        r#"
version = 1
name = "jobfile-test-sigterm"
[pool]
backend = "slurm"
processes = 3
nodes = 3
[functions.slow]
shell = 'touch "started-$1"; sleep 60'
[[task]]
function = "slow"
map = [0, 1, 2]
"#,
    );
    let running = job.spawn(&[]);
    wait_for("the units to start", || {
        (0..3).all(|i| job.file(&format!("started-{i}")).exists())
    });
    running.signal(libc::SIGTERM);
    let out = running.wait();
    out.assert_code(143);
    if let Err(left) = wait_queue_empty("jobfile-jobfile-test-sigterm", Duration::from_secs(10)) {
        panic!("still queued 10 s after SIGTERM: {left:?}");
    }
    for r in out.task_records() {
        assert_eq!(r.status(), "cancelled", "{}", r.0);
    }
    out.assert_nothing_left();
}

/// A job whose Slurm pool cannot work, and the error its records must say.
fn assert_pool_fails(name: &str, pool: &str, expected: &str) {
    let job = Job::new(&format!(
        r#"
version = 1
name = "jobfile-test-{name}"
[pool]
backend = "slurm"
{pool}
[[task]]
function = "square"
map = [1, 2, 3, 4]
[[task]]
id = "after"
function = "noop"
after = ["square-0"]
"#
    ));
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.task_records();
    assert_eq!(ids(&records)[..4], ["square-0"; 4], "{}", out.stdout);
    for r in &records[..4] {
        assert_eq!(r.status(), "failed", "{}", r.0);
        assert!(
            r.error().contains(expected),
            "expected {expected:?} in {}",
            r.0
        );
    }
    assert_eq!(record(&records, "after").status(), "skipped");
    assert!(queued(&format!("jobfile-jobfile-test-{name}")).is_empty());
    out.assert_nothing_left();
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_partition_that_does_not_exist_fails_the_pool_with_slurms_word() {
    let _guard = slurm_test();
    assert_pool_fails(
        "partition",
        "partition = \"no-such-partition\"\nprocesses = 2",
        "Invalid partition name",
    );
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn more_nodes_than_the_cluster_has_fail_at_once() {
    let _guard = slurm_test();
    let n = cluster_nodes().len();
    assert_pool_fails(
        "nodes",
        &format!("processes = {}\nnodes = {}", n + 2, n + 1),
        &format!("asks for {} nodes (`nodes`) but partition", n + 1),
    );
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_missing_worker_binary_fails_the_units_and_does_not_loop() {
    let _guard = slurm_test();
    assert_pool_fails(
        "binary",
        "processes = 3\nnodes = 3\nworker_binary = \"/nonexistent/jobfile\"",
        "no worker of pool `default` could start on its Slurm nodes",
    );
}

/// A folder hidden on one node: an empty folder mounted over it in the
/// mount namespace of that node's slurmd (whose steps inherit it), taken
/// away again when dropped.
struct HiddenOnNode {
    slurmd: String,
    path: std::path::PathBuf,
}

impl HiddenOnNode {
    fn new(node: &str, path: &std::path::Path, empty: &std::path::Path) -> HiddenOnNode {
        let pidfile = format!("/run/local-cluster/slurmd-{node}.pid");
        let slurmd = std::fs::read_to_string(&pidfile)
            .unwrap_or_else(|e| panic!("{pidfile} (ci/local-cluster.sh runs?): {e}"))
            .trim()
            .to_string();
        let status = Command::new("nsenter")
            .args(["-t", &slurmd, "-m", "mount", "--bind"])
            .arg(empty)
            .arg(path)
            .status()
            .expect("nsenter runs");
        assert!(status.success(), "mount in {node}'s namespace");
        HiddenOnNode {
            slurmd,
            path: path.to_path_buf(),
        }
    }
}

impl Drop for HiddenOnNode {
    fn drop(&mut self) {
        let _ = Command::new("nsenter")
            .args(["-t", &self.slurmd, "-m", "umount"])
            .arg(&self.path)
            .status();
    }
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_node_without_the_worker_binary_gets_no_workers_and_the_run_goes_on() {
    let _guard = slurm_test();
    let nodes = cluster_nodes();
    assert!(nodes.len() >= 3, "a cluster of 3 nodes or more: {nodes:?}");
    let victim = nodes[1].clone();
    let copy = tempfile::Builder::new()
        .prefix("jobfile-bin-")
        .tempdir()
        .unwrap();
    let empty = tempfile::Builder::new()
        .prefix("jobfile-empty-")
        .tempdir()
        .unwrap();
    let binary = copy.path().join("jobfile");
    std::fs::copy(common::bin(), &binary).unwrap();
    let _hidden = HiddenOnNode::new(&victim, copy.path(), empty.path());
    let job = Job::new(&format!(
        r#"
version = 1
name = "jobfile-test-binary-on-two"
[pool]
backend = "slurm"
processes = 6
nodes = 3
worker_binary = "{}"
[functions.where]
shell = 'sleep 0.2; hostname'
[[task]]
function = "where"
map = {{ range = [0, 18] }}
"#,
        binary.display()
    ));
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.task_records();
    assert_eq!(records.len(), 18);
    for r in &records {
        assert_eq!(r.status(), "ok", "{}", r.0);
        assert_ne!(r.get("host").as_str(), Some(victim.as_str()), "{}", r.0);
    }
    assert!(
        out.stderr.contains(&format!(
            "workers on Slurm node {victim} end before they are ready"
        )),
        "{}",
        out.stderr
    );
    assert!(queued("jobfile-jobfile-test-binary-on-two").is_empty());
    out.assert_nothing_left();
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn while_the_allocation_waits_the_other_pools_run_and_sigint_withdraws_it() {
    let _guard = slurm_test();
    let nodes = cluster_nodes().len();
    let cpus: usize = std::env::var("LOCAL_CLUSTER_CPUS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(4);
    // Every CPU of the cluster, so that the job's request has to wait.
    let busy = Command::new("salloc")
        .args([
            "--no-shell",
            "-N",
            &nodes.to_string(),
            &format!("--ntasks-per-node={cpus}"),
            "-J",
            "jobfile-test-busy",
        ])
        .output()
        .expect("salloc runs");
    assert!(busy.status.success(), "{busy:?}");
    let cancel_busy = || {
        for line in queued("jobfile-test-busy") {
            let id = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            let _ = Command::new("scancel").arg(id).status();
        }
    };
    let job = Job::new(
        r#"
version = 1
name = "jobfile-test-waiting"
[pools.cluster]
backend = "slurm"
processes = 3
nodes = 3
[functions.mark]
shell = 'touch "$1"'
[[task]]
id = "remote"
function = "mark"
pool = "cluster"
args = ["remote-ran"]
[[task]]
id = "local"
function = "mark"
args = ["local-ran"]
"#,
    );
    let running = job.spawn(&[]);
    // The forked pool runs while the Slurm pool's request is pending.
    wait_for("the local task", || job.file("local-ran").exists());
    wait_for("the pending request", || {
        queued("jobfile-jobfile-test-waiting").len() == 1
    });
    running.signal(libc::SIGINT);
    let out = running.wait();
    cancel_busy();
    out.assert_code(130);
    assert!(!job.file("remote-ran").exists());
    let records = out.task_records();
    // What never started is a gap, as after any interruption.
    assert_eq!(ids(&records), ["local"]);
    assert_eq!(record(&records, "local").status(), "ok");
    if let Err(left) = wait_queue_empty("jobfile-jobfile-test-waiting", Duration::from_secs(10)) {
        panic!("the pending request is still queued: {left:?}");
    }
    out.assert_nothing_left();
}

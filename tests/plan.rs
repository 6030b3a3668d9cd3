//! The task graph as `jobfile plan --format json` shows it.

mod common;

use std::path::Path;
use std::process::Command;

use common::{RunOutput, jobfile};
use serde_json::{Value, json};

/// Writes `text` as `job.toml` in a scratch folder and runs `jobfile ARGS job.toml ...`.
fn run_on(text: &str, args: &[&str]) -> RunOutput {
    let dir = tempfile::tempdir().expect("a scratch folder");
    std::fs::write(dir.path().join("job.toml"), text).expect("job written");
    let mut all = vec![args[0], "job.toml"];
    all.extend(&args[1..]);
    jobfile(&all).dir(dir.path()).output()
}

fn plan(text: &str) -> Value {
    let out = run_on(text, &["plan", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("plan prints JSON")
}

/// The `after` list of task `id`, as (task, kind) pairs.
fn deps(plan: &Value, id: &str) -> Vec<(String, String)> {
    let task = plan["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id}"));
    task["after"]
        .as_array()
        .expect("after")
        .iter()
        .map(|e| {
            (
                e["task"].as_str().expect("task").to_string(),
                e["kind"].as_str().expect("kind").to_string(),
            )
        })
        .collect()
}

fn pair(task: &str, kind: &str) -> (String, String) {
    (task.to_string(), kind.to_string())
}

#[test]
fn tasks_after_a_blocking_task_wait_for_it_and_earlier_ones_do_not() {
    let p = plan(
        r#"
version = 1
[functions.nap]
builtin = "sleep"
[[task]]
id = "early"
function = "nap"
[[task]]
id = "gate"
function = "nap"
mode = "blocking"
[[task]]
id = "late1"
function = "nap"
[[task]]
id = "late2"
function = "noop"
after = ["early"]
[[task]]
id = "gate2"
function = "nap"
mode = "blocking"
[[task]]
id = "last"
function = "noop"
"#,
    );
    assert_eq!(deps(&p, "early"), vec![]);
    assert_eq!(deps(&p, "gate"), vec![]);
    assert_eq!(deps(&p, "late1"), vec![pair("gate", "barrier")]);
    assert_eq!(
        deps(&p, "late2"),
        vec![pair("early", "after"), pair("gate", "barrier")]
    );
    assert_eq!(deps(&p, "gate2"), vec![pair("gate", "barrier")]);
    // Only the last barrier before a task: the earlier one is behind it.
    assert_eq!(deps(&p, "last"), vec![pair("gate2", "barrier")]);
    assert_eq!(p["tasks"][1]["mode"], "blocking");
}

#[test]
fn result_references_callbacks_and_streams_are_edges() {
    let p = plan(
        r#"
version = 1
[functions.say]
builtin = "echo"
[functions.lines]
shell = "echo a; echo b"
[functions.notify]
shell = 'echo "$1"'
[[task]]
id = "a"
function = "say"
args = [1]
[[task]]
id = "b"
function = "say"
args = [{ result = "a" }]
kwargs = { x = { result = "a" } }
callback = "notify"
error_callback = "notify"
[[task]]
id = "each"
function = "say"
map = { result = "b" }
[[task]]
id = "producer"
function = "lines"
[[task]]
id = "consumer"
function = "say"
map = { stream = "producer" }
[[task]]
id = "both"
function = "say"
args = [{ result = "producer" }]
map = { stream = "producer" }
"#,
    );
    assert_eq!(deps(&p, "b"), vec![pair("a", "result")]);
    assert_eq!(deps(&p, "each"), vec![pair("b", "result")]);
    assert_eq!(deps(&p, "consumer"), vec![pair("producer", "stream")]);
    // Reading the producer's value waits for its end: the stronger edge stays.
    assert_eq!(deps(&p, "both"), vec![pair("producer", "result")]);
    let b = &p["tasks"][1];
    assert_eq!(b["callback"], "notify");
    assert_eq!(b["error_callback"], "notify");
    assert_eq!(p["tasks"][0]["callback"], Value::Null);
    assert_eq!(p["tasks"][2]["items"], "result");
    assert_eq!(p["tasks"][4]["items"], "stream");
}

#[test]
fn plan_json_shape() {
    let p = plan(
        r#"
version = 1
name = "shape"
[pools.io]
processes = 2
[[task]]
id = "sq"
function = "square"
map = [1, 2, 3]
pool = "io"
"#,
    );
    assert_eq!(
        p,
        json!({
            "job": "shape",
            "tasks": [{
                "id": "sq",
                "function": "square",
                "mode": "async",
                "pool": "io",
                "after": [],
                "items": 3,
                "callback": null,
                "error_callback": null,
            }]
        })
    );
}

#[test]
fn check_names_every_task_on_a_cycle() {
    // after, a result reference and a stream, all on one loop.
    let out = run_on(
        r#"
version = 1
[functions.say]
builtin = "echo"
[[task]]
id = "free"
function = "say"
[[task]]
id = "first"
function = "say"
after = ["third"]
[[task]]
id = "second"
function = "say"
args = [{ result = "first" }]
[[task]]
id = "third"
function = "say"
map = { stream = "second" }
"#,
        &["check"],
    );
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("dependency cycle: `first` -> `third` -> `second` -> `first`"),
        "{err}"
    );
    assert!(!err.contains("`free`"), "{err}");
    assert!(err.contains(" --> job.toml:11:9\n"), "{err}");

    // An earlier task may wait for a later blocking one: that is no loop,
    // since only the tasks declared after a blocking task wait for it.
    let out = run_on(
        r#"
version = 1
[[task]]
id = "x"
function = "noop"
after = ["y"]
[[task]]
id = "y"
function = "noop"
mode = "blocking"
[[task]]
id = "z"
function = "noop"
[[task]]
id = "w"
function = "noop"
after = ["z"]
[[task]]
id = "v"
function = "noop"
"#,
        &["check"],
    );
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn a_blocking_task_on_a_cycle_is_named() {
    let out = run_on(
        r#"
version = 1
[[task]]
id = "gate"
function = "noop"
mode = "blocking"
after = ["after-gate"]
[[task]]
id = "after-gate"
function = "noop"
"#,
        &["check"],
    );
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("dependency cycle: `gate` -> `after-gate` -> `gate`"),
        "{err}"
    );
}

#[test]
fn a_ten_million_item_range_is_one_node() {
    let job = r#"
version = 1
[[task]]
id = "big"
function = "square"
map = { range = [0, 10000000] }
"#;
    let p = plan(job);
    assert_eq!(p["tasks"][0]["items"], 10_000_000);
    assert_eq!(p["tasks"].as_array().map(Vec::len), Some(1));

    // Peak memory, where /usr/bin/time can tell it: items are never made,
    // so planning stays far below what ten million values would take.
    let time = Path::new("/usr/bin/time");
    if time.exists() {
        let dir = tempfile::tempdir().expect("a scratch folder");
        std::fs::write(dir.path().join("job.toml"), job).expect("job written");
        let out = Command::new(time)
            .args([
                "-f",
                "%M",
                env!("CARGO_BIN_EXE_jobfile"),
                "plan",
                "job.toml",
            ])
            .args(["--format", "json"])
            .current_dir(dir.path())
            .output()
            .expect("/usr/bin/time runs");
        assert_eq!(out.status.code(), Some(0));
        let err = String::from_utf8_lossy(&out.stderr);
        let peak_kib: u64 = err
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no peak RSS in {err:?}"));
        assert!(peak_kib < 64 * 1024, "plan peaked at {peak_kib} KiB");
    }
}

/// The three renderings of the CI pipeline example, pinned.
#[test]
fn plan_renderings_of_the_ci_pipeline_are_stable() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
    for format in ["text", "json", "dot"] {
        let out = jobfile(["plan", "ci-pipeline.toml", "--format", format])
            .dir(&dir)
            .output();
        assert_eq!(out.status.code(), Some(0));
        let text = out.stdout;
        insta::assert_snapshot!(format!("ci-pipeline-{format}"), text);
    }
}

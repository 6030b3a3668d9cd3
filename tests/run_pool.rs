//! The pool as a user sees it: how many tasks run at once, in what order the
//! records come out, map values, named pools, worker recycling, initializers,
//! callbacks and chunks.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[test]
fn blocking_tasks_on_a_pool_of_three_never_overlap() {
    let out = run_file(&repo_path("jobs/seed-pool3-blocking.toml"), &[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(ids(&records), ["hello-0", "hello-1", "hello-2", "hello-3"]);
    for r in &records {
        assert_eq!(r.status(), "ok");
    }
    for pair in records.windows(2) {
        let (a, b) = (pair[0].interval(), pair[1].interval());
        assert!(
            b.starts_after(&a),
            "{} started before {} ended:\n{}",
            pair[1].task(),
            pair[0].task(),
            show(&records)
        );
    }
    out.assert_nothing_left();
}

#[test]
fn async_tasks_on_a_pool_of_three_run_three_at_a_time() {
    let out = run_file(&repo_path("jobs/seed-pool3-async.toml"), &[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(ids(&records), ["hello-0", "hello-1", "hello-2", "hello-3"]);
    let iv: Vec<Interval> = records.iter().map(|r| r.interval()).collect();
    // The first three start together and run side by side.
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        assert!(iv[a].overlaps(&iv[b]), "{a} and {b}:\n{}", show(&records));
        assert!(iv[a].start_gap(&iv[b]) < Duration::from_millis(150));
    }
    // The fourth waits for a free worker: it starts after one of them ended.
    let first_end = iv[..3].iter().map(|i| i.end).min().unwrap();
    assert!(
        iv[3].start + SLACK >= first_end,
        "hello-3 started before any worker was free:\n{}",
        show(&records)
    );
    // ... and never makes four at once.
    let mut at_once = 0;
    for i in 0..3 {
        if iv[3].overlaps(&iv[i]) {
            at_once += 1;
        }
    }
    assert!(at_once <= 2, "four tasks ran at once:\n{}", show(&records));
    out.assert_nothing_left();
}

const SLEEPS: &str = r#"
version = 1
[pool]
processes = 3
[functions.nap]
shell = 'sleep "$1"; echo "$1"'
[[task]]
id = "slow"
function = "nap"
args = [0.6]
[[task]]
id = "fast"
function = "nap"
args = [0.1]
[[task]]
id = "middle"
function = "nap"
args = [0.35]
"#;

#[test]
fn records_come_out_in_submission_order_by_default() {
    let job = Job::new(SLEEPS);
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(ids(&records), ["slow", "fast", "middle"]);
    // They did end in another order.
    let ends: Vec<_> = records.iter().map(|r| r.interval().end).collect();
    assert!(ends[1] < ends[2] && ends[2] < ends[0], "{}", show(&records));
    let explicit = job.run(&["--order", "submission"]);
    explicit.assert_code(0);
    assert_eq!(ids(&explicit.records()), ["slow", "fast", "middle"]);
}

/// Asserts that the records come in the order their tasks ended.
fn assert_completion_order(records: &[Record]) {
    let mut by_end: Vec<&Record> = records.iter().collect();
    by_end.sort_by_key(|r| r.interval().end);
    let by_end: Vec<&str> = by_end.iter().map(|r| r.task()).collect();
    assert_eq!(ids(records), by_end, "{}", show(records));
}

#[test]
fn order_completion_gives_records_as_tasks_end() {
    let job = Job::new(SLEEPS);
    let out = job.run(&["--order", "completion"]);
    out.assert_code(0);
    let records = out.records();
    assert_completion_order(&records);
    assert_eq!(ids(&records), ["fast", "middle", "slow"]);
}

#[test]
fn order_completion_from_the_results_table() {
    let job = Job::new(&SLEEPS.replace("[pool]", "[results]\norder = \"completion\"\n[pool]"));
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_completion_order(&records);
    assert_eq!(ids(&records), ["fast", "middle", "slow"]);
}

#[test]
fn map_square_gives_the_squares_in_order_with_any_pool_size() {
    for j in ["1", "2", "4"] {
        let out = run_file(&repo_path("jobs/seed-map-square.toml"), &["-j", j]);
        out.assert_code(0);
        let records = out.records();
        let values: Vec<_> = records.iter().map(|r| r.value().clone()).collect();
        assert_eq!(
            values,
            [0, 1, 4, 9, 16, 25, 36, 49].map(|v| json!(v)),
            "-j {j}"
        );
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.task(), "squares");
            assert_eq!(r.index(), Some(i as u64));
            assert_eq!(r.status(), "ok");
            assert_eq!(r.get("args"), &json!([i]));
        }
        out.assert_nothing_left();
    }
}

#[test]
fn minus_j_one_runs_one_task_at_a_time() {
    let out = run_file(&repo_path("jobs/seed-pool3-async.toml"), &["-j", "1"]);
    out.assert_code(0);
    let records = out.records();
    let workers: Vec<i64> = records.iter().map(|r| r.worker()).collect();
    assert!(
        workers.iter().all(|w| *w == workers[0]),
        "{}",
        show(&records)
    );
    for pair in records.windows(2) {
        assert!(pair[1].interval().starts_after(&pair[0].interval()));
    }
}

#[test]
fn every_example_job_runs_and_ends_ok() {
    let mut jobs: Vec<_> = std::fs::read_dir(repo_path("jobs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    jobs.sort();
    assert!(jobs.len() >= 10, "{jobs:?}");
    for path in jobs {
        let out = run_file(&path, &["--reproducible"]);
        out.assert_code(0);
        let records = out.records();
        assert!(!records.is_empty(), "{}: no records", path.display());
        for r in &records {
            assert_eq!(r.status(), "ok", "{}:\n{}", path.display(), show(&records));
            assert!(!r.has("worker") && !r.has("started") && !r.has("duration_ms"));
        }
        out.assert_nothing_left();
    }
}

#[test]
fn reproducible_runs_give_identical_bytes() {
    let path = repo_path("jobs/seed-several-functions.toml");
    let a = run_file(&path, &["--reproducible"]);
    let b = run_file(&path, &["--reproducible", "-j", "1"]);
    a.assert_code(0);
    b.assert_code(0);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn max_tasks_per_child_one_gives_a_new_worker_for_every_task() {
    let job = Job::new(
        r#"
version = 1
[pool]
max_tasks_per_child = 1
[functions.nap]
builtin = "sleep"
[[task]]
function = "nap"
args = [0.05]
[[task]]
function = "nap"
args = [0.05]
[[task]]
function = "nap"
args = [0.05]
[[task]]
function = "nap"
args = [0.05]
"#,
    );
    let out = job.run(&["-j", "1"]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(records.len(), 4);
    let mut workers: Vec<i64> = records.iter().map(|r| r.worker()).collect();
    workers.sort();
    workers.dedup();
    assert_eq!(
        workers.len(),
        4,
        "a worker ran two tasks:\n{}",
        show(&records)
    );
    out.assert_nothing_left();
}

#[test]
fn max_tasks_per_child_counts_map_items() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
max_tasks_per_child = 2
[functions.sq]
builtin = "square"
[[task]]
id = "sq"
function = "sq"
map = { range = [0, 6] }
chunksize = 2
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let values: Vec<_> = records.iter().map(|r| r.value().clone()).collect();
    assert_eq!(values, [0, 1, 4, 9, 16, 25].map(|v| json!(v)));
    let mut per_worker = std::collections::HashMap::new();
    for r in &records {
        *per_worker.entry(r.worker()).or_insert(0) += 1;
    }
    // Two items are two tasks: each worker runs one chunk and is replaced.
    assert_eq!(per_worker.len(), 3, "{}", show(&records));
    assert!(
        per_worker.values().all(|n| *n == 2),
        "a worker ran more than 2 items:\n{}",
        show(&records)
    );
}

#[test]
fn an_initializer_that_always_fails_fails_the_pools_tasks() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
initializer = { function = "boom" }
[functions.boom]
shell = 'echo x >> inits.txt; echo "cannot init" >&2; exit 4'
cwd = "."
[functions.sq]
builtin = "square"
[[task]]
id = "a"
function = "sq"
args = [2]
[[task]]
id = "b"
function = "sq"
args = [3]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(ids(&records), ["a", "b"], "{}", show(&records));
    for r in &records {
        assert_eq!(r.status(), "failed", "{}", show(&records));
        assert!(r.error().contains("initializer"), "{}", show(&records));
        assert!(r.error().contains("code 4"), "{}", show(&records));
    }
    // Three failed starts in a row, then the pool gave up.
    let inits = std::fs::read_to_string(job.file("inits.txt")).unwrap();
    assert_eq!(inits.lines().count(), 3);
    out.assert_nothing_left();
}

#[test]
fn an_initializer_that_fails_with_the_fail_builtin_gives_its_message() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
initializer = { function = "boom", args = ["no database"] }
[functions.boom]
builtin = "fail"
[functions.sq]
builtin = "square"
[[task]]
id = "a"
function = "sq"
args = [2]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let r = record(&out.records(), "a").clone();
    assert_eq!(r.status(), "failed");
    assert!(r.error().contains("no database"), "{}", r.0);
    out.assert_nothing_left();
}

#[test]
fn an_initializer_runs_once_in_each_new_worker() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
initializer = { function = "mark" }
[functions.mark]
shell = 'echo x >> "$COUNT_FILE"'
env = { COUNT_FILE = "inits.txt" }
cwd = "."
[functions.sq]
builtin = "square"
[[task]]
id = "sq"
function = "sq"
map = { range = [0, 4] }
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let inits = std::fs::read_to_string(job.file("inits.txt")).unwrap();
    assert_eq!(
        inits.lines().count(),
        1,
        "initializer ran {} times",
        inits.lines().count()
    );
}

#[test]
fn named_pools_have_their_own_sizes() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[pools.single]
processes = 1
[functions.nap]
shell = 'sleep 0.3'
[[task]]
id = "s1"
function = "nap"
pool = "single"
[[task]]
id = "s2"
function = "nap"
pool = "single"
[[task]]
id = "d1"
function = "nap"
[[task]]
id = "d2"
function = "nap"
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let iv = |id: &str| record(&records, id).interval();
    // The pool of one never overlaps its own tasks...
    assert!(!iv("s1").overlaps(&iv("s2")), "{}", show(&records));
    // ... while the pool of two runs both of its tasks alongside.
    assert!(iv("d1").overlaps(&iv("d2")), "{}", show(&records));
    assert!(iv("s1").overlaps(&iv("d1")), "{}", show(&records));
    // Workers are not shared between pools.
    let single: Vec<i64> = ["s1", "s2"]
        .iter()
        .map(|id| record(&records, id).worker())
        .collect();
    for id in ["d1", "d2"] {
        assert!(
            !single.contains(&record(&records, id).worker()),
            "{}",
            show(&records)
        );
    }
    out.assert_nothing_left();
}

#[test]
fn minus_j_changes_only_the_default_pool() {
    let job = Job::new(
        r#"
version = 1
[pools.single]
processes = 1
[functions.nap]
shell = 'sleep 0.3'
[[task]]
id = "s1"
function = "nap"
pool = "single"
[[task]]
id = "s2"
function = "nap"
pool = "single"
[[task]]
id = "d1"
function = "nap"
[[task]]
id = "d2"
function = "nap"
"#,
    );
    let out = job.run(&["-j", "3"]);
    out.assert_code(0);
    let records = out.records();
    let iv = |id: &str| record(&records, id).interval();
    assert!(!iv("s1").overlaps(&iv("s2")), "{}", show(&records));
    assert!(iv("d1").overlaps(&iv("d2")), "{}", show(&records));
}

#[test]
fn callbacks_are_recorded_right_after_their_task() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 3
[functions.sq]
builtin = "square"
[functions.bad]
builtin = "fail"
[functions.report]
shell = 'echo "got $1"'
[[task]]
id = "one"
function = "sq"
args = [3]
callback = "report"
error_callback = "report"
[[task]]
id = "broken"
function = "bad"
args = ["it broke"]
callback = "report"
error_callback = "report"
[[task]]
id = "last"
function = "sq"
args = [5]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(
        ids(&records),
        [
            "one",
            "one:callback",
            "broken",
            "broken:error_callback",
            "last"
        ],
        "{}",
        show(&records)
    );
    let cb = record(&records, "one:callback");
    assert_eq!(cb.status(), "ok");
    assert_eq!(cb.value(), &json!("got 9"));
    assert_eq!(cb.get("args"), &json!([9]));
    let ecb = record(&records, "broken:error_callback");
    assert_eq!(ecb.status(), "ok");
    assert!(
        ecb.value().as_str().unwrap().contains("it broke"),
        "{}",
        ecb.0
    );
}

const MAP_WITH_CALLBACK: &str = r#"
version = 1
[pool]
processes = 2
[functions.sq]
builtin = "square"
[functions.report]
shell = 'printf "%s" "$1"'
[[task]]
id = "squares"
function = "sq"
map = { range = [0, 4] }
callback = "report"
[[task]]
id = "after"
function = "sq"
args = [7]
"#;

/// Asserts that `squares:callback` comes right after the last `squares`
/// item and got the map's value.
fn assert_callback_after_last_item(records: &[Record]) {
    let got = ids(records);
    let cb = got
        .iter()
        .position(|t| t == "squares:callback")
        .expect("callback record");
    let last_item = got.iter().rposition(|t| t == "squares").unwrap();
    assert_eq!(cb, last_item + 1, "{}", show(records));
    assert_eq!(records[cb].value(), &json!("[0,1,4,9]"));
    assert_eq!(records[cb].get("args"), &json!([[0, 1, 4, 9]]));
}

#[test]
fn a_maps_callback_comes_after_its_last_item() {
    let out = Job::new(MAP_WITH_CALLBACK).run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_callback_after_last_item(&records);
    assert_eq!(
        ids(&records),
        [
            "squares",
            "squares",
            "squares",
            "squares",
            "squares:callback",
            "after"
        ]
    );
}

#[test]
fn a_maps_callback_comes_after_its_last_item_in_completion_order() {
    // "after" (0.2 s) ends while the callback (0.4 s) still runs.
    let job = Job::new(
        &MAP_WITH_CALLBACK
            .replace("printf \"%s\" \"$1\"", "sleep 0.4; printf \"%s\" \"$1\"")
            .replace("args = [7]", "args = [0.2]")
            .replace(
                "[functions.sq]\nbuiltin = \"square\"",
                "[functions.sq]\nbuiltin = \"square\"\n[functions.nap]\nbuiltin = \"sleep\"",
            )
            .replace(
                "id = \"after\"\nfunction = \"sq\"",
                "id = \"after\"\nfunction = \"nap\"",
            ),
    );
    let out = job.run(&["--order", "completion"]);
    out.assert_code(0);
    assert_callback_after_last_item(&out.records());
}

#[test]
fn chunksize_changes_neither_values_nor_order() {
    let make = |chunk: &str| {
        Job::new(&format!(
            r#"
version = 1
[pool]
processes = 2
[functions.sq]
builtin = "square"
[[task]]
id = "sq"
function = "sq"
map = {{ range = [0, 10] }}
{chunk}
"#
        ))
    };
    let plain = make("").run(&["--reproducible"]);
    let chunked_job = make("chunksize = 3");
    let chunked = chunked_job.run(&["--reproducible"]);
    plain.assert_code(0);
    chunked.assert_code(0);
    assert_eq!(plain.stdout, chunked.stdout);
    let values: Vec<_> = chunked
        .records()
        .iter()
        .map(|r| r.value().clone())
        .collect();
    assert_eq!(values, (0..10).map(|x| json!(x * x)).collect::<Vec<_>>());
    // A chunk goes to one worker: items 0..3 share a worker, and so on.
    let timed = chunked_job.run(&[]);
    let records = timed.records();
    for chunk in records.chunks(3) {
        let w = chunk[0].worker();
        assert!(chunk.iter().all(|r| r.worker() == w), "{}", show(&records));
    }
}

#[test]
fn results_go_to_the_output_path_and_its_folders_are_made() {
    let job = Job::new(&std::fs::read_to_string(repo_path("jobs/seed-map-square.toml")).unwrap());
    let out_path = job.file("deep/er/out.jsonl");
    let out = job.run(&["-o", out_path.to_str().unwrap()]);
    out.assert_code(0);
    assert_eq!(out.stdout, "", "results leaked to stdout");
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(parse_jsonl(&text).len(), 8);
}

#[test]
fn started_is_rfc3339_utc_with_milliseconds() {
    let out = run_file(&repo_path("jobs/seed-five-tasks.toml"), &[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(
        ids(&records),
        [
            "long_time_task-0",
            "long_time_task-1",
            "long_time_task-2",
            "long_time_task-3",
            "long_time_task-4"
        ]
    );
    for r in &records {
        let started = r.get("started").as_str().unwrap();
        let b = started.as_bytes();
        assert!(
            b.len() == 24 && b[10] == b'T' && b[19] == b'.' && b[23] == b'Z',
            "started {started:?}"
        );
        r.interval();
        assert!(r.get("duration_ms").as_f64().unwrap() >= 0.0);
    }
}

#[test]
fn a_chunk_never_takes_a_worker_past_max_tasks_per_child() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
max_tasks_per_child = 2
[[task]]
id = "naps"
function = "sleep"
map = [0.01, 0.01, 0.01, 0.01, 0.01]
chunksize = 3
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let workers: Vec<i64> = out.task_records().iter().map(|r| r.worker()).collect();
    assert_eq!(workers.len(), 5);
    assert_eq!(workers[0], workers[1]);
    assert_ne!(workers[1], workers[2], "a fresh worker after two items");
    assert_eq!(workers[2], workers[3]);
    assert_ne!(workers[3], workers[4]);
}

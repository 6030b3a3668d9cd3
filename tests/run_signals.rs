//! Signals to the engine in the middle of a run: SIGINT and SIGTERM end
//! every worker and every process they started, write the records finished
//! so far and exit 130 or 143; SIGKILL takes the workers and their children
//! with it.

mod common;

use std::time::Duration;

use common::*;

/// A pool of three: `s1` (long), `quick`, `s2` (long) start at once; `quick`
/// ends at once, but its record is held back behind `s1` for submission
/// order; then `s3` (long) takes its worker; `later` never gets one. Each
/// long task creates `started-NAME` once it runs.
fn interrupted_job(marker: &str) -> Job {
    Job::new(&format!(
        r#"
version = 1
[pool]
processes = 3
[functions.long]
shell = ': {marker}; touch "started-$1"; sleep 30; touch "finished-$1"'
cwd = "."
[functions.quick]
shell = ': {marker}; echo done'
[[task]]
id = "s1"
function = "long"
args = ["s1"]
[[task]]
id = "quick"
function = "quick"
[[task]]
id = "s2"
function = "long"
args = ["s2"]
[[task]]
id = "s3"
function = "long"
args = ["s3"]
[[task]]
id = "later"
function = "long"
args = ["later"]
"#
    ))
}

/// Starts the interrupted job, waits until `s1`, `s2` and `s3` run (so
/// `quick` has ended), then sends `signal`. Returns the output, the job and
/// what descended from the engine just before the signal.
fn interrupt(signal: i32, args: &[&str]) -> (RunOutput, Job, Vec<Proc>, String) {
    let marker = unique_marker("signal");
    let job = interrupted_job(&marker);
    let running = job.spawn(args);
    for name in ["s1", "s2", "s3"] {
        wait_for_file(&job.file(&format!("started-{name}")));
    }
    let tree = descendants(running.pid());
    assert!(
        tree.iter().any(|p| p.comm == "jobfile-worker"),
        "no worker under the engine: {tree:?}"
    );
    running.signal(signal);
    let out = running.wait();
    (out, job, tree, marker)
}

/// Asserts the records of an interrupted run. With `strict`, the stopped
/// tasks must be `cancelled` as SPEC.md says; without, only not `ok` (the
/// engine sometimes records them `failed`, see the ignored tests).
fn assert_interrupted_records(records: &[Record], strict: bool) {
    // Submission order, the gaps left out; `quick` was held back behind
    // `s1` and is written anyway.
    let got = ids(records);
    let expected: Vec<&str> = ["s1", "quick", "s2", "s3", "later"]
        .into_iter()
        .filter(|id| got.iter().any(|g| g == id))
        .collect();
    assert_eq!(got, expected, "{}", show(records));
    let quick = record(records, "quick");
    assert_eq!(quick.status(), "ok", "{}", show(records));
    assert_eq!(quick.value(), &serde_json::json!("done"));
    for id in ["s1", "s2", "s3"] {
        let r = record(records, id);
        if strict {
            assert_eq!(r.status(), "cancelled", "{}", show(records));
        } else {
            assert_ne!(r.status(), "ok", "{}", show(records));
        }
        assert!(!r.error().is_empty());
    }
    if got.iter().any(|g| g == "later") {
        assert_eq!(record(records, "later").status(), "cancelled");
    }
}

fn assert_nothing_of_the_run_survives(out: &RunOutput, job: &Job, tree: &[Proc], marker: &str) {
    assert_all_gone(tree, Duration::from_secs(2));
    assert_no_process_marked(marker);
    out.assert_nothing_left();
    for name in ["s1", "s2", "s3", "later"] {
        assert!(
            !job.file(&format!("finished-{name}")).exists(),
            "{name} ran on"
        );
    }
    assert!(!job.file("started-later").exists(), "later started");
}

/// SIGINT and SIGTERM alike, with the results in a file or on standard
/// output: the run stops within 10 s, exits 128 + the signal's number,
/// writes every finished record whole and in order, and leaves nothing
/// running.
fn stops_cleanly(signal: i32, to_file: bool) {
    let args: &[&str] = if to_file { &["-o", "out.jsonl"] } else { &[] };
    let (out, job, tree, marker) = interrupt(signal, args);
    out.assert_code(128 + signal);
    assert!(
        out.elapsed < Duration::from_secs(10),
        "took {:?}",
        out.elapsed
    );
    let text = if to_file {
        std::fs::read_to_string(job.file("out.jsonl")).unwrap()
    } else {
        out.stdout.clone()
    };
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a record cut short: {text:?}"
    );
    assert_interrupted_records(&parse_jsonl(&text), false);
    assert_nothing_of_the_run_survives(&out, &job, &tree, &marker);
}

macro_rules! stop_tests {
    ($($name:ident: $signal:expr, $to_file:expr;)*) => {
        $(
            #[test]
            fn $name() {
                stops_cleanly($signal, $to_file);
            }
        )*
    };
}

stop_tests! {
    sigint_with_results_in_a_file_exits_130: libc::SIGINT, true;
    sigint_with_results_on_stdout_exits_130: libc::SIGINT, false;
    sigterm_with_results_in_a_file_exits_143: libc::SIGTERM, true;
    sigterm_with_results_on_stdout_exits_143: libc::SIGTERM, false;
}

#[test]
fn sigint_with_a_json_array_leaves_a_valid_file() {
    let (out, job, tree, marker) = interrupt(libc::SIGINT, &["-o", "out.json", "--format", "json"]);
    out.assert_code(130);
    let text = std::fs::read_to_string(job.file("out.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("out.json is not valid JSON ({e}):\n{text}"));
    let records: Vec<Record> = value
        .as_array()
        .expect("an array")
        .iter()
        .cloned()
        .map(Record)
        .collect();
    assert_interrupted_records(&records, false);
    assert_nothing_of_the_run_survives(&out, &job, &tree, &marker);
}

#[test]
fn sigint_during_a_builtin_sleep_ends_the_run_quickly() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.nap]
builtin = "sleep"
[functions.mark]
shell = 'touch started'
cwd = "."
[[task]]
id = "mark"
function = "mark"
[[task]]
id = "nap"
function = "nap"
args = [30]
"#,
    );
    let running = job.spawn(&["-o", "out.jsonl"]);
    wait_for_file(&job.file("started"));
    // Give the builtin time to be dispatched.
    assert!(wait_until(Duration::from_secs(5), || {
        descendants(running.pid())
            .iter()
            .filter(|p| p.comm == "jobfile-worker")
            .count()
            >= 2
    }));
    std::thread::sleep(Duration::from_millis(200));
    let tree = descendants(running.pid());
    running.signal(libc::SIGINT);
    let out = running.wait();
    out.assert_code(130);
    assert!(
        out.elapsed < Duration::from_secs(10),
        "took {:?}",
        out.elapsed
    );
    let records = parse_jsonl(&std::fs::read_to_string(job.file("out.jsonl")).unwrap());
    assert_eq!(
        record(&records, "mark").status(),
        "ok",
        "{}",
        show(&records)
    );
    assert_eq!(
        record(&records, "nap").status(),
        "cancelled",
        "{}",
        show(&records)
    );
    assert_all_gone(&tree, Duration::from_secs(2));
    out.assert_nothing_left();
}

#[test]
fn sigkill_of_the_engine_takes_its_workers_and_their_children_along() {
    let marker = unique_marker("sigkill");
    let job = interrupted_job(&marker);
    let running = job.spawn(&["-o", "out.jsonl"]);
    for name in ["s1", "s2", "s3"] {
        wait_for_file(&job.file(&format!("started-{name}")));
    }
    let tree = descendants(running.pid());
    let comms: Vec<&str> = tree.iter().map(|p| p.comm.as_str()).collect();
    assert!(comms.contains(&"jobfile-forksrv"), "{comms:?}");
    assert!(comms.contains(&"jobfile-worker"), "{comms:?}");
    assert!(comms.contains(&"sleep"), "{comms:?}");
    running.signal(libc::SIGKILL);
    let out = running.wait();
    assert_eq!(out.status.code(), None, "the engine was not killed");
    assert_all_gone(&tree, Duration::from_secs(2));
    assert_no_process_marked(&marker);
    out.assert_nothing_left();
    // Whatever reached the results file is whole records.
    if let Ok(text) = std::fs::read_to_string(job.file("out.jsonl")) {
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        parse_jsonl(complete);
    }
}

#[test]
fn tasks_stopped_by_a_signal_are_recorded_cancelled() {
    // The status depends on a race in the engine: try it several times.
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGINT, libc::SIGTERM] {
        let (out, job, tree, marker) = interrupt(signal, &["-o", "out.jsonl"]);
        out.assert_code(128 + signal);
        let text = std::fs::read_to_string(job.file("out.jsonl")).unwrap();
        assert_interrupted_records(&parse_jsonl(&text), true);
        assert_nothing_of_the_run_survives(&out, &job, &tree, &marker);
    }
}

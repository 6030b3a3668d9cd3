//! Tasks that fail, crash their worker or time out; what happens to the
//! tasks that depend on them; retries; the failure policies of SPEC.md.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const CRASH_AMONG_OTHERS: &str = r#"
version = 1
[pool]
processes = 2
[functions.sq]
builtin = "square"
[functions.crash]
builtin = "crash"
[[task]]
id = "a"
function = "sq"
args = [2]
[[task]]
id = "boom"
function = "crash"
[[task]]
id = "b"
function = "sq"
args = [3]
[[task]]
id = "many"
function = "sq"
map = { range = [0, 6] }
"#;

#[test]
fn the_crash_builtin_crashes_one_task_and_the_run_goes_on() {
    let out = Job::new(CRASH_AMONG_OTHERS).run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(
        ids(&records),
        [
            "a", "boom", "b", "many", "many", "many", "many", "many", "many"
        ],
        "{}",
        show(&records)
    );
    let boom = record(&records, "boom");
    assert_eq!(boom.status(), "crashed", "{}", boom.0);
    assert_eq!(boom.get("signal"), &json!(9));
    assert!(!boom.error().is_empty());
    for r in records.iter().filter(|r| r.task() != "boom") {
        assert_eq!(r.status(), "ok", "{}", show(&records));
    }
    assert_eq!(record(&records, "b").value(), &json!(9));
    // The dead worker was replaced: the map still ran on two workers' worth.
    out.assert_nothing_left();
}

#[test]
fn a_crash_gives_the_same_bytes_in_two_reproducible_runs() {
    let job = Job::new(CRASH_AMONG_OTHERS);
    let a = job.run(&["--reproducible"]);
    let b = job.run(&["--reproducible"]);
    a.assert_code(1);
    b.assert_code(1);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn a_worker_killed_from_outside_gives_crashed_and_the_run_goes_on() {
    let marker = unique_marker("killed-worker");
    let job = Job::new(&format!(
        r#"
version = 1
[pool]
processes = 1
[functions.busy]
shell = ': {marker}; touch started; sleep 2; touch finished'
cwd = "."
[functions.sq]
builtin = "square"
[[task]]
id = "busy"
function = "busy"
[[task]]
id = "next"
function = "sq"
args = [4]
"#
    ));
    let running = job.spawn(&[]);
    wait_for_file(&job.file("started"));
    let sh = procs_marked(&marker)
        .into_iter()
        .find(|p| p.cmdline.contains(&marker) && p.comm != "jobfile-worker")
        .expect("the task's shell");
    let worker = read_proc(sh.ppid).expect("the shell's parent");
    assert_eq!(
        worker.comm, "jobfile-worker",
        "the shell's parent: {worker:?}"
    );
    assert!(
        descendants(running.pid())
            .iter()
            .any(|p| p.pid == worker.pid),
        "the worker is not a descendant of the engine"
    );
    send_signal(worker.pid, libc::SIGKILL);
    let out = running.wait();
    out.assert_code(1);
    let records = out.records();
    assert_eq!(ids(&records), ["busy", "next"]);
    let busy = record(&records, "busy");
    assert_eq!(busy.status(), "crashed", "{}", busy.0);
    assert_eq!(busy.get("signal"), &json!(9));
    assert_eq!(
        busy.worker(),
        worker.pid as i64,
        "`worker` is the worker's pid"
    );
    let next = record(&records, "next");
    assert_eq!(next.status(), "ok");
    assert_eq!(next.value(), &json!(16));
    assert_ne!(
        next.worker(),
        worker.pid as i64,
        "the dead worker ran a task"
    );
    // The task's own processes died with their worker.
    assert!(
        out.elapsed < Duration::from_millis(1900),
        "waited for the sleep"
    );
    assert!(!job.file("finished").exists());
    assert_no_process_marked(&marker);
    out.assert_nothing_left();
}

#[test]
fn failed_tasks_carry_their_error_and_their_dependents_are_skipped() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.sq]
builtin = "square"
[functions.bad]
builtin = "fail"
[functions.exit3]
shell = 'echo partial; echo "bad thing" >&2; exit 3'
[functions.touch]
shell = 'touch "$1"'
cwd = "."
[[task]]
id = "fails"
function = "bad"
args = ["my message"]
[[task]]
id = "exits"
function = "exit3"
[[task]]
id = "uses-value"
function = "sq"
args = [{ result = "fails" }]
[[task]]
id = "waits"
function = "touch"
args = ["waits-ran"]
after = ["exits"]
[[task]]
id = "maps-over"
function = "touch"
map = { result = "exits" }
[[task]]
id = "second-hand"
function = "touch"
args = ["second-hand-ran"]
after = ["waits"]
[[task]]
id = "fine"
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
            "fails",
            "exits",
            "uses-value",
            "waits",
            "maps-over",
            "second-hand",
            "fine"
        ],
        "{}",
        show(&records)
    );
    let fails = record(&records, "fails");
    assert_eq!(fails.status(), "failed");
    assert_eq!(fails.error(), "my message");
    let exits = record(&records, "exits");
    assert_eq!(exits.status(), "failed");
    assert_eq!(exits.get("exit_code"), &json!(3));
    assert_eq!(exits.get("signal"), &json!(null));
    assert!(exits.error().contains('3'), "{}", exits.0);
    assert_eq!(exits.stdout(), "partial\n");
    assert_eq!(exits.stderr(), "bad thing\n");
    for id in ["uses-value", "waits", "maps-over", "second-hand"] {
        let r = record(&records, id);
        assert_eq!(r.status(), "skipped", "{}", r.0);
        assert!(!r.error().is_empty(), "{}", r.0);
        assert!(!r.has("index"), "{}", r.0);
    }
    assert!(!job.file("waits-ran").exists());
    assert!(!job.file("second-hand-ran").exists());
    assert_eq!(record(&records, "fine").status(), "ok");
}

#[test]
fn only_ok_records_give_exit_zero() {
    let job = Job::new(
        r#"
version = 1
[functions.sq]
builtin = "square"
[[task]]
function = "sq"
args = [1]
"#,
    );
    job.run(&[]).assert_code(0);
}

#[test]
fn a_task_that_fails_twice_then_succeeds_ends_ok_with_three_attempts() {
    let job = Job::new(
        r#"
version = 1
[functions.flaky]
shell = '''
n=$(cat count 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > count
echo "attempt $n" >&2
[ "$n" -ge 3 ] && echo done
'''
cwd = "."
[[task]]
id = "flaky"
function = "flaky"
retries = 2
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let r = record(&out.records(), "flaky").clone();
    assert_eq!(r.status(), "ok", "{}", r.0);
    assert_eq!(r.get("attempts"), &json!(3));
    assert_eq!(r.value(), &json!("done"));
    assert_eq!(std::fs::read_to_string(job.file("count")).unwrap(), "3\n");
}

#[test]
fn retries_run_out_and_the_last_attempt_is_recorded() {
    let job = Job::new(
        r#"
version = 1
[pool]
retries = 1
[functions.never]
shell = 'echo x >> count; exit 5'
cwd = "."
[[task]]
id = "never"
function = "never"
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let r = record(&out.records(), "never").clone();
    assert_eq!(r.status(), "failed");
    assert_eq!(r.get("attempts"), &json!(2));
    assert_eq!(r.get("exit_code"), &json!(5));
    let count = std::fs::read_to_string(job.file("count")).unwrap();
    assert_eq!(count.lines().count(), 2);
}

/// A pool of two: `long` runs 0.6 s and then creates `long-done`; `bad`
/// fails after 0.15 s; `later-N` would create their files but come after,
/// when the pool is full.
fn policy_job(policy: &str, marker: &str) -> Job {
    Job::new(&format!(
        r#"
version = 1
[pool]
processes = 2
on_failure = "{policy}"
[functions.long]
shell = ': {marker}; sleep 0.6; touch long-done; echo finished'
cwd = "."
[functions.bad]
shell = ': {marker}; sleep 0.15; exit 1'
[functions.touch]
shell = ': {marker}; touch "$1"'
cwd = "."
[[task]]
id = "long"
function = "long"
[[task]]
id = "bad"
function = "bad"
[[task]]
id = "later-1"
function = "touch"
args = ["later-1"]
[[task]]
id = "later-2"
function = "touch"
args = ["later-2"]
"#
    ))
}

#[test]
fn on_failure_continue_runs_everything_else() {
    let marker = unique_marker("continue");
    let job = policy_job("continue", &marker);
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(ids(&records), ["long", "bad", "later-1", "later-2"]);
    let statuses: Vec<&str> = records.iter().map(|r| r.status()).collect();
    assert_eq!(statuses, ["ok", "failed", "ok", "ok"], "{}", show(&records));
    for f in ["long-done", "later-1", "later-2"] {
        assert!(job.file(f).exists(), "{f}");
    }
    assert_no_process_marked(&marker);
}

#[test]
fn on_failure_stop_lets_running_tasks_finish_and_cancels_the_rest() {
    let marker = unique_marker("stop");
    let job = policy_job("stop", &marker);
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(ids(&records), ["long", "bad", "later-1", "later-2"]);
    let long = record(&records, "long");
    assert_eq!(long.status(), "ok", "{}", show(&records));
    assert_eq!(long.value(), &json!("finished"));
    assert!(job.file("long-done").exists());
    assert_eq!(record(&records, "bad").status(), "failed");
    for id in ["later-1", "later-2"] {
        let r = record(&records, id);
        assert_eq!(r.status(), "cancelled", "{}", show(&records));
        assert!(!r.error().is_empty());
        assert!(!job.file(id).exists(), "{id} ran");
    }
    assert_no_process_marked(&marker);
    out.assert_nothing_left();
}

#[test]
fn on_failure_terminate_kills_running_tasks_and_starts_no_more() {
    let marker = unique_marker("terminate");
    let job = policy_job("terminate", &marker);
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(ids(&records), ["long", "bad", "later-1", "later-2"]);
    assert_eq!(record(&records, "bad").status(), "failed");
    assert_ne!(
        record(&records, "long").status(),
        "ok",
        "{}",
        show(&records)
    );
    for id in ["later-1", "later-2"] {
        let r = record(&records, id);
        assert_eq!(r.status(), "cancelled", "{}", show(&records));
        assert!(!r.error().is_empty());
    }
    assert!(!job.file("long-done").exists(), "long was not killed");
    assert!(!job.file("later-1").exists() && !job.file("later-2").exists());
    assert!(
        out.elapsed < Duration::from_millis(550),
        "waited for the running task: {:?}",
        out.elapsed
    );
    assert_no_process_marked(&marker);
    out.assert_nothing_left();
}

#[test]
fn on_failure_terminate_records_the_killed_task_cancelled() {
    let marker = unique_marker("terminate-status");
    let job = policy_job("terminate", &marker);
    // The status depends on a race in the engine: try it several times.
    for _ in 0..10 {
        let out = job.run(&[]);
        out.assert_code(1);
        let records = out.records();
        let long = record(&records, "long");
        assert_eq!(long.status(), "cancelled", "{}", show(&records));
        assert!(!long.error().is_empty());
    }
    assert_no_process_marked(&marker);
}

#[test]
fn a_builtin_sleep_past_its_timeout_ends_quickly_as_timeout() {
    let job = Job::new(
        r#"
version = 1
[functions.nap]
builtin = "sleep"
[functions.sq]
builtin = "square"
[[task]]
id = "nap"
function = "nap"
args = [5]
timeout = "300ms"
[[task]]
id = "after"
function = "sq"
args = [3]
after = ["nap"]
[[task]]
id = "other"
function = "sq"
args = [4]
"#,
    );
    let out = job.run(&["-j", "1"]);
    out.assert_code(1);
    let records = out.records();
    let nap = record(&records, "nap");
    assert_eq!(nap.status(), "timeout", "{}", nap.0);
    assert!(!nap.error().is_empty());
    assert!(
        out.elapsed < Duration::from_secs(3),
        "took {:?}",
        out.elapsed
    );
    assert_eq!(record(&records, "after").status(), "skipped");
    assert_eq!(record(&records, "other").status(), "ok");
    out.assert_nothing_left();
}

#[test]
fn a_pool_timeout_applies_to_every_task() {
    let job = Job::new(
        r#"
version = 1
[pool]
timeout = "200ms"
[functions.nap]
shell = 'sleep "$1"'
[[task]]
id = "short"
function = "nap"
args = [0.05]
[[task]]
id = "long"
function = "nap"
args = [10]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(record(&records, "short").status(), "ok");
    assert_eq!(record(&records, "long").status(), "timeout");
    assert!(
        out.elapsed < Duration::from_secs(3),
        "took {:?}",
        out.elapsed
    );
    out.assert_nothing_left();
}

#[test]
fn tasks_that_crash_or_time_out_in_a_builtin_still_say_when_they_ran() {
    let job = Job::new(
        r#"
version = 1
[functions.nap]
builtin = "sleep"
[functions.crash]
builtin = "crash"
[[task]]
id = "nap"
function = "nap"
args = [5]
timeout = "300ms"
[[task]]
id = "boom"
function = "crash"
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let nap = record(&records, "nap");
    assert_eq!(nap.status(), "timeout");
    let ms = nap.get("duration_ms").as_f64().expect("duration_ms");
    assert!((290.0..1500.0).contains(&ms), "duration_ms {ms}");
    nap.interval();
    let boom = record(&records, "boom");
    assert_eq!(boom.status(), "crashed");
    boom.interval();
}

#[test]
fn an_idle_worker_that_dies_is_replaced_and_the_run_goes_on() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.nap]
shell = 'touch started; sleep 0.6; echo "$1"'
cwd = "."
[functions.sq]
builtin = "square"
[[task]]
id = "quick"
function = "sq"
args = [1]
[[task]]
id = "slow"
function = "nap"
args = ["slow"]
[[task]]
id = "next"
function = "sq"
map = { range = [0, 4] }
after = ["slow"]
"#,
    );
    let running = job.spawn(&[]);
    wait_for_file(&job.file("started"));
    // The worker that ran `quick` is idle now: a worker with no child.
    let mut idle = None;
    assert!(
        wait_until(Duration::from_secs(2), || {
            let tree = descendants(running.pid());
            idle = tree
                .iter()
                .filter(|p| p.comm == "jobfile-worker")
                .find(|w| !tree.iter().any(|c| c.ppid == w.pid))
                .cloned();
            idle.is_some()
        }),
        "no idle worker"
    );
    let idle = idle.unwrap();
    send_signal(idle.pid, libc::SIGKILL);
    let out = running.wait();
    out.assert_code(0);
    let records = out.records();
    assert_eq!(records.len(), 6, "{}", show(&records));
    for r in &records {
        assert_eq!(r.status(), "ok", "{}", show(&records));
    }
    assert_eq!(record(&records, "quick").worker(), idle.pid as i64);
    for r in records.iter().filter(|r| r.task() == "next") {
        assert_ne!(r.worker(), idle.pid as i64, "a dead worker ran a task");
    }
    out.assert_nothing_left();
}

#[test]
fn a_crash_in_a_chunk_fails_only_the_item_that_ran() {
    // The item "x" kills its own worker ($PPID of the task's shell).
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
[functions.maybe]
shell = 'if [ "$1" = x ]; then kill -9 $PPID; sleep 1; fi; echo "$1"'
[[task]]
id = "m"
function = "maybe"
map = ["a", "x", "b", "c"]
chunksize = 4
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let statuses: Vec<&str> = records.iter().map(|r| r.status()).collect();
    assert_eq!(
        statuses,
        ["ok", "crashed", "ok", "ok"],
        "{}",
        show(&records)
    );
    let values: Vec<_> = records.iter().map(|r| r.value().clone()).collect();
    assert_eq!(values, [json!("a"), json!(null), json!("b"), json!("c")]);
    out.assert_nothing_left();
}

#[test]
fn a_crash_without_chunks_fails_only_that_item() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
[functions.maybe]
shell = 'if [ "$1" = x ]; then kill -9 $PPID; sleep 1; fi; echo "$1"'
[[task]]
id = "m"
function = "maybe"
map = ["a", "x", "b", "c"]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let statuses: Vec<&str> = records.iter().map(|r| r.status()).collect();
    assert_eq!(
        statuses,
        ["ok", "crashed", "ok", "ok"],
        "{}",
        show(&records)
    );
    out.assert_nothing_left();
}

#[test]
fn a_timeout_is_retried_like_a_failure() {
    let job = Job::new(
        r#"
version = 1
[functions.slow]
shell = 'echo x >> count; n=$(wc -l < count); [ "$n" -lt 2 ] && sleep 5; echo "run $n"'
cwd = "."
timeout = "300ms"
retries = 1
[[task]]
id = "slow"
function = "slow"
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let r = record(&out.records(), "slow").clone();
    assert_eq!(r.status(), "ok", "{}", r.0);
    assert_eq!(r.get("attempts"), &json!(2));
    assert_eq!(r.value(), &json!("run 2"));
}

#[test]
fn on_failure_stop_in_a_map_cancels_the_items_not_started() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
on_failure = "stop"
[functions.item]
shell = 'if [ "$1" = 1 ]; then exit 1; fi; sleep 0.2; echo "$1"'
[[task]]
id = "m"
function = "item"
map = { range = [0, 6] }
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let statuses: Vec<&str> = records.iter().map(|r| r.status()).collect();
    assert_eq!(
        statuses,
        [
            "ok",
            "failed",
            "cancelled",
            "cancelled",
            "cancelled",
            "cancelled"
        ],
        "{}",
        show(&records)
    );
    let indexes: Vec<_> = records.iter().map(|r| r.index()).collect();
    assert_eq!(indexes, (0..6).map(Some).collect::<Vec<_>>());
}

#[test]
fn workers_are_the_engines_children_and_a_killed_one_is_replaced() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.hold]
shell = 'touch "started-$1"; sleep 0.5; echo "$1"'
[[task]]
id = "held"
function = "hold"
map = ["a", "b"]
[[task]]
id = "after"
function = "square"
args = [5]
"#,
    );
    let running = job.spawn(&[]);
    wait_for_file(&job.file("started-a"));
    wait_for_file(&job.file("started-b"));
    let engine = running.pid();
    let workers: Vec<Proc> = descendants(engine)
        .into_iter()
        .filter(|p| p.ppid == engine && p.comm == "jobfile-worker")
        .collect();
    assert_eq!(
        workers.len(),
        2,
        "two busy workers among the engine's children"
    );
    // SAFETY: kill(2) on a process of this test's own run.
    unsafe { libc::kill(workers[0].pid, libc::SIGKILL) };
    let out = running.wait();
    out.assert_code(1);
    let records = out.task_records();
    let statuses: Vec<&str> = records.iter().map(|r| r.status()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "crashed").count(),
        1,
        "{}",
        show(&records)
    );
    assert_eq!(record(&records, "after").value(), 25, "the run went on");
    out.assert_nothing_left();
}

#[test]
fn a_killed_fork_server_is_replaced_and_the_run_goes_on() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
max_tasks_per_child = 1
[functions.nap]
shell = 'touch "started-$1"; sleep 0.2; echo "$1"'
[[task]]
id = "naps"
function = "nap"
map = ["a", "b", "c"]
"#,
    );
    // Results to a file: the run hashes fingerprints on threads first, and
    // must still be single-threaded when it forks a new fork server.
    let out_path = job.file("out.jsonl");
    let running = job.spawn(&["-o", &out_path.to_string_lossy()]);
    wait_for_file(&job.file("started-a"));
    let engine = running.pid();
    let server: Vec<Proc> = descendants(engine)
        .into_iter()
        .filter(|p| p.ppid == engine && p.comm == "jobfile-forksrv")
        .collect();
    assert_eq!(server.len(), 1);
    // SAFETY: kill(2) on a process of this test's own run.
    unsafe { libc::kill(server[0].pid, libc::SIGKILL) };
    let out = running.wait();
    out.assert_code(0);
    let records = parse_jsonl(&std::fs::read_to_string(&out_path).unwrap());
    assert_eq!(records.len(), 3, "{}", show(&records));
    assert!(
        records.iter().all(|r| r.status() == "ok"),
        "{}",
        show(&records)
    );
    out.assert_nothing_left();
}

#[test]
fn on_failure_stop_in_a_quick_map_runs_what_workers_hold_and_cancels_the_rest() {
    // Quick builtin calls are queued on the workers a few milliseconds'
    // worth at a time: those a worker holds when item 3000 fails still end
    // as they are; nothing more is handed out.
    let items: Vec<String> = (0..20_000)
        .map(|i| match i {
            3000 => "\"three thousand\"".to_string(),
            i => i.to_string(),
        })
        .collect();
    let job = Job::new(&format!(
        r#"
version = 1
[pool]
processes = 2
on_failure = "stop"
[[task]]
id = "sq"
function = "square"
map = [{}]
"#,
        items.join(", ")
    ));
    let out = job.run(&["--reproducible"]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(records.len(), 20_000);
    let indexes: Vec<_> = records.iter().map(|r| r.index()).collect();
    assert_eq!(indexes, (0..20_000).map(Some).collect::<Vec<_>>());
    for r in &records[..3000] {
        assert_eq!(r.status(), "ok", "{}", r.0);
    }
    assert_eq!(records[3000].status(), "failed");
    let after = &records[3001..];
    let ran = after.iter().filter(|r| r.status() == "ok").count();
    let cancelled = after.iter().filter(|r| r.status() == "cancelled").count();
    assert_eq!(
        ran + cancelled,
        after.len(),
        "only ok or cancelled after the failure"
    );
    // Two workers of at most 512 queued units each, and what was handed out
    // in the round the failure came back in.
    assert!(ran <= 2048, "{ran} items ran after the failure");
    // Items are handed out in order: what ran after the failure comes
    // before everything cancelled.
    assert!(cancelled > 0, "nothing was cancelled");
    assert!(
        after[..ran].iter().all(|r| r.status() == "ok"),
        "an item ran after one was cancelled"
    );
    for r in &after[..ran] {
        assert_eq!(r.value(), &json!(r.index().unwrap().pow(2)), "{}", r.0);
    }
}

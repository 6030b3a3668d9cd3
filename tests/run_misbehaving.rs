//! Fixture jobs under `tests/fixtures/run/` that misbehave on purpose: ignore
//! SIGTERM, leave a grandchild, segfault, flood both streams, never end, exit
//! 3. Each fixture's processes carry a marker (`: jobfile-fixture-NAME` in
//! the script, so in `sh -c`'s command line); besides its status, each test
//! asserts that nothing of the run is left afterwards.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// Asserts that neither the fixture's marker nor the run's is left.
fn assert_clean(fixture_marker: &str, out: &RunOutput) {
    assert_no_process_marked(fixture_marker);
    out.assert_nothing_left();
}

#[test]
fn a_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let job = Job::fixture("ignores-term.toml");
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(ids(&records), ["stubborn", "fine"]);
    let stubborn = record(&records, "stubborn");
    assert_eq!(stubborn.status(), "timeout", "{}", stubborn.0);
    assert!(!stubborn.error().is_empty());
    // SIGTERM did nothing: it took SIGKILL, after the grace period.
    assert_eq!(stubborn.get("signal"), &json!(9), "{}", stubborn.0);
    let ms = stubborn.get("duration_ms").as_f64().unwrap();
    assert!(
        ms >= 300.0 + 500.0,
        "killed without a grace period: {ms} ms"
    );
    assert!(
        out.elapsed < Duration::from_secs(10),
        "took {:?}",
        out.elapsed
    );
    assert!(job.file("started").exists());
    assert_eq!(record(&records, "fine").status(), "ok");
    assert_clean("jobfile-fixture-ignores-term", &out);
}

#[test]
fn grandchildren_left_behind_neither_hang_the_run_nor_outlive_it() {
    let out = Job::fixture("grandchild.toml").run(&[]);
    let records = out.records();
    assert_eq!(
        ids(&records),
        ["holds-pipes", "detached"],
        "{}",
        show(&records)
    );
    for r in &records {
        // The task itself exited 0; the grandchild is the engine's to clean.
        assert_eq!(r.value(), &json!("left one behind"), "{}", r.0);
    }
    // The grandchild sleeps 30 s: the run must not wait for it.
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}",
        out.elapsed
    );
    assert_clean("jobfile-fixture-grandchild", &out);
}

#[test]
fn a_grandchild_is_gone_as_soon_as_its_task_ends() {
    // The pool of one runs `detached`, then a task that looks for the
    // grandchild while the run goes on.
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
[functions.detached]
shell = '''
sh -c ': jobfile-fixture-grandchild-early; sleep 30' >/dev/null 2>&1 </dev/null &
echo "left one behind"
'''
[functions.look]
shell = 'sleep 0.3; ps -eo args | grep -c "^sh -c : jobfile-fixture-grandchild-earl[y]" || true'
[[task]]
id = "detached"
function = "detached"
[[task]]
id = "look"
function = "look"
after = ["detached"]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(
        record(&records, "look").value(),
        &json!("0"),
        "the grandchild outlived its task:\n{}",
        show(&records)
    );
    assert_clean("jobfile-fixture-grandchild-early", &out);
}

#[test]
fn a_task_that_segfaults_fails_with_signal_11() {
    let out = Job::fixture("segfault.toml").run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(ids(&records), ["segv", "fine"]);
    let segv = record(&records, "segv");
    assert_eq!(segv.status(), "failed", "{}", segv.0);
    assert_eq!(segv.get("signal"), &json!(11));
    assert_eq!(segv.get("exit_code"), &json!(null));
    assert!(!segv.error().is_empty());
    assert_eq!(segv.stdout(), "about to die\n");
    assert_eq!(record(&records, "fine").status(), "ok");
    assert_clean("jobfile-fixture-segfault", &out);
}

#[test]
fn a_task_that_floods_both_streams_is_truncated_and_does_not_hang() {
    const CAP: usize = 16 * 1024 * 1024;
    let out = Job::fixture("flood.toml").run(&[]);
    out.assert_code(0);
    let records = out.records();
    let flood = record(&records, "flood");
    assert_eq!(flood.status(), "ok");
    assert_eq!(flood.get("truncated"), &json!(true));
    let stdout = flood.stdout();
    let stderr = flood.stderr();
    assert_eq!(stdout.len(), CAP, "stdout kept");
    assert_eq!(stderr.len(), CAP, "stderr kept");
    // What is kept is the start, as written.
    assert!(stdout.starts_with("out\nout\n") && stderr.starts_with("err\nerr\n"));
    assert!(!stdout.contains("err") && !stderr.contains("out"));
    assert_clean("jobfile-fixture-flood", &out);
}

#[test]
fn a_task_under_the_cap_is_not_truncated() {
    let job = Job::new(
        r#"
version = 1
[functions.some]
shell = 'yes out | head -c 100000; yes err | head -c 100000 >&2'
returns = "none"
[[task]]
id = "some"
function = "some"
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let r = record(&out.records(), "some").clone();
    assert_eq!(r.stdout().len(), 100_000);
    assert_eq!(r.stderr().len(), 100_000);
    assert_ne!(r.get("truncated"), &json!(true));
}

#[test]
fn a_task_that_never_ends_is_stopped_by_its_timeout() {
    let out = Job::fixture("never-ends.toml").run(&[]);
    out.assert_code(1);
    let r = record(&out.records(), "forever").clone();
    assert_eq!(r.status(), "timeout", "{}", r.0);
    assert!(!r.error().is_empty());
    let ms = r.get("duration_ms").as_f64().unwrap();
    assert!((295.0..2000.0).contains(&ms), "duration_ms {ms}");
    assert!(
        out.elapsed < Duration::from_secs(3),
        "took {:?}",
        out.elapsed
    );
    assert_clean("jobfile-fixture-never-ends", &out);
}

#[test]
fn a_task_that_exits_3_fails_with_its_code_and_output() {
    let out = Job::fixture("exits-3.toml").run(&[]);
    out.assert_code(1);
    let r = record(&out.records(), "three").clone();
    assert_eq!(r.status(), "failed");
    assert_eq!(r.get("exit_code"), &json!(3));
    assert_eq!(r.get("signal"), &json!(null));
    assert_eq!(r.stdout(), "some output\n");
    assert_eq!(r.stderr(), "it went wrong\n");
    assert!(r.error().contains('3'), "{}", r.0);
    assert_clean("jobfile-fixture-exits-3", &out);
}

#[test]
fn the_output_of_concurrent_tasks_is_never_interleaved() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 4
[functions.talk]
shell = 'i=0; while [ $i -lt 200 ]; do echo "$1 line $i"; i=$((i + 1)); done'
returns = "lines"
[[task]]
id = "talkers"
function = "talk"
map = ["a", "b", "c", "d"]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    for r in out.records() {
        let who = r.get("args")[0].as_str().unwrap().to_owned();
        let lines = r.value().as_array().unwrap();
        assert_eq!(lines.len(), 200);
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line, &json!(format!("{who} line {i}")));
        }
    }
}

#[test]
fn a_grandchild_in_its_own_session_does_not_outlive_the_run() {
    let job = Job::new(
        r#"
version = 1
[functions.escape]
shell = '''
setsid sh -c ': jobfile-fixture-setsid; sleep 30' >/dev/null 2>&1 </dev/null &
echo "left one behind"
'''
[[task]]
id = "escape"
function = "escape"
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}",
        out.elapsed
    );
    assert_clean("jobfile-fixture-setsid", &out);
}

#[test]
fn a_grandchild_of_a_killed_worker_is_gone_before_the_next_task_runs() {
    // The worker names its command's process group to the engine through
    // memory they share, not a frame; killed while the command's
    // grandchild runs, its group is the engine's to kill at once. `look`
    // runs after `parent` on the next worker (a pool of one), long before
    // the run's end.
    let marker = unique_marker("orphaned-grandchild");
    let job = Job::new(&format!(
        r#"
version = 1
[pool]
processes = 1
[functions.parent]
shell = '''
sh -c ': {marker}; sleep 30' >/dev/null 2>&1 </dev/null &
touch started
wait
'''
cwd = "."
[functions.look]
shell = 'ps -eo args | grep -c "^sh -c : {marker}" || true'
[[task]]
id = "parent"
function = "parent"
[[task]]
id = "look"
function = "look"
"#
    ));
    let running = job.spawn(&[]);
    wait_for_file(&job.file("started"));
    let grandchild = procs_marked(&marker)
        .into_iter()
        .find(|p| p.cmdline.starts_with("sh -c :"))
        .expect("the grandchild");
    let shell = read_proc(grandchild.ppid).expect("the grandchild's parent");
    let worker = read_proc(shell.ppid).expect("the shell's parent");
    assert_eq!(worker.comm, "jobfile-worker", "{worker:?}");
    send_signal(worker.pid, libc::SIGKILL);
    let out = running.wait();
    let records = out.records();
    assert_eq!(
        record(&records, "parent").status(),
        "crashed",
        "{}",
        show(&records)
    );
    assert_eq!(
        record(&records, "look").value(),
        &json!("0"),
        "the grandchild outlived its worker:\n{}",
        show(&records)
    );
    assert_no_process_marked(&marker);
}

//! Python interpreters as processes: ones that die (exit, segfault,
//! SIGKILL), hang past their timeout, ignore SIGTERM, leave children and
//! daemons, fork, flood their output or close it; `max_tasks_per_child`, a
//! Python initializer, imports that cost once, imports that start threads,
//! and signals to the engine. Every test also asserts that no process of
//! the run is left (interpreters inherit the run's marker).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// A job whose Python files sit beside it.
fn py_job(toml: &str, files: &[(&str, &str)]) -> Job {
    let job = Job::new(toml);
    for (name, text) in files {
        job.write(name, text);
    }
    job
}

fn items<'a>(records: &'a [Record], id: &str) -> Vec<&'a Record> {
    records.iter().filter(|r| r.task() == id).collect()
}

/// The values of the records of `ids`, which must be process ids.
fn pids(records: &[Record], ids: &[&str]) -> Vec<i64> {
    ids.iter()
        .map(|id| {
            let r = record(records, id);
            assert_eq!(r.status(), "ok", "{}", show(records));
            r.value().as_i64().expect("a pid")
        })
        .collect()
}

fn distinct(values: &[i64]) -> bool {
    let set: std::collections::HashSet<_> = values.iter().collect();
    set.len() == values.len()
}

const DIE_PY: &str = r#"
import ctypes, os, signal, sys, time

def pid():
    return os.getpid()

def exit3():
    print("about to exit", flush=True)
    os._exit(3)

def segv():
    print("about to segfault", flush=True)
    ctypes.string_at(0)

def kill9():
    os.kill(os.getpid(), signal.SIGKILL)

def flaky(times):
    # Dies `times` times, then returns how many runs it took.
    n = 0
    if os.path.exists("runs"):
        with open("runs") as f:
            n = int(f.read())
    with open("runs", "w") as f:
        f.write(str(n + 1))
    if n < times:
        os._exit(1)
    return n + 1

def always_dies():
    os._exit(5)
"#;

#[test]
fn an_interpreter_that_dies_crashes_its_call_and_a_fresh_one_takes_its_place() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.pid]
python = "die:pid"
[functions.exit3]
python = "die:exit3"
[functions.segv]
python = "die:segv"
[functions.kill9]
python = "die:kill9"
[[task]]
id = "pid-0"
function = "pid"
[[task]]
id = "exit3"
function = "exit3"
[[task]]
id = "pid-1"
function = "pid"
[[task]]
id = "segv"
function = "segv"
[[task]]
id = "pid-2"
function = "pid"
[[task]]
id = "kill9"
function = "kill9"
[[task]]
id = "pid-3"
function = "pid"
"#,
        &[("die.py", DIE_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(
        ids(&records),
        ["pid-0", "exit3", "pid-1", "segv", "pid-2", "kill9", "pid-3"]
    );

    let exit3 = record(&records, "exit3");
    assert_eq!(exit3.status(), "crashed", "{}", exit3.0);
    assert_eq!(exit3.get("exit_code"), &json!(3), "{}", exit3.0);
    assert_eq!(exit3.get("signal"), &Value::Null, "{}", exit3.0);
    assert_eq!(exit3.stdout(), "about to exit\n");
    assert!(!exit3.error().is_empty());

    let segv = record(&records, "segv");
    assert_eq!(segv.status(), "crashed", "{}", segv.0);
    assert_eq!(segv.get("signal"), &json!(11), "{}", segv.0);
    assert_eq!(segv.get("exit_code"), &Value::Null, "{}", segv.0);
    assert_eq!(segv.stdout(), "about to segfault\n");

    let kill9 = record(&records, "kill9");
    assert_eq!(kill9.status(), "crashed", "{}", kill9.0);
    assert_eq!(kill9.get("signal"), &json!(9), "{}", kill9.0);

    // Each death gave a fresh interpreter, and the calls after it ran.
    let p = pids(&records, &["pid-0", "pid-1", "pid-2", "pid-3"]);
    assert!(distinct(&p), "an interpreter outlived its death: {p:?}");
    out.assert_nothing_left();
}

#[test]
fn retries_apply_to_an_interpreter_that_dies() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.flaky]
python = "die:flaky"
retries = 2
[functions.always_dies]
python = "die:always_dies"
retries = 1
[[task]]
id = "flaky"
function = "flaky"
args = [2]
[[task]]
id = "hopeless"
function = "always_dies"
"#,
        &[("die.py", DIE_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let flaky = record(&records, "flaky");
    assert_eq!(flaky.status(), "ok", "{}", flaky.0);
    assert_eq!(flaky.value(), &json!(3));
    assert_eq!(flaky.get("attempts"), &json!(3));
    let hopeless = record(&records, "hopeless");
    assert_eq!(hopeless.status(), "crashed", "{}", hopeless.0);
    assert_eq!(hopeless.get("attempts"), &json!(2));
    assert_eq!(hopeless.get("exit_code"), &json!(5));
    out.assert_nothing_left();
}

// ----- timeouts -----

const HANG_PY: &str = r#"
import os, signal, subprocess, time

def pid():
    return os.getpid()

def forever():
    print("hanging", flush=True)
    while True:
        time.sleep(1)

def stubborn():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open("stubborn-started", "w").close()
    while True:
        try:
            time.sleep(1)
        except BaseException:
            pass

def with_children():
    # One child in the interpreter's group, one in a session of its own.
    subprocess.Popen(["sleep", "30"])
    subprocess.Popen(["sleep", "31"], start_new_session=True)
    open("children-started", "w").close()
    time.sleep(60)
"#;

#[test]
fn a_call_that_never_returns_times_out_and_a_fresh_interpreter_serves_the_next() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.pid]
python = "hang:pid"
[functions.forever]
python = "hang:forever"
timeout = "300ms"
[[task]]
id = "pid-0"
function = "pid"
[[task]]
id = "forever"
function = "forever"
[[task]]
id = "pid-1"
function = "pid"
"#,
        &[("hang.py", HANG_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let forever = record(&records, "forever");
    assert_eq!(forever.status(), "timeout", "{}", forever.0);
    assert!(!forever.error().is_empty());
    assert_eq!(forever.stdout(), "hanging\n");
    let ms = forever.get("duration_ms").as_f64().unwrap();
    assert!((295.0..5000.0).contains(&ms), "duration_ms {ms}");
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    let p = pids(&records, &["pid-0", "pid-1"]);
    assert_ne!(p[0], p[1], "the timed-out interpreter served on");
    out.assert_nothing_left();
}

#[test]
fn a_call_that_ignores_sigterm_is_killed_after_the_grace() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.stubborn]
python = "hang:stubborn"
timeout = "300ms"
[functions.pid]
python = "hang:pid"
[[task]]
id = "stubborn"
function = "stubborn"
[[task]]
id = "after"
function = "pid"
"#,
        &[("hang.py", HANG_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let stubborn = record(&records, "stubborn");
    assert_eq!(stubborn.status(), "timeout", "{}", stubborn.0);
    assert!(job.file("stubborn-started").exists());
    // SIGTERM did nothing: SIGKILL came after a grace period.
    let ms = stubborn.get("duration_ms").as_f64().unwrap();
    assert!(
        ms >= 300.0 + 500.0,
        "killed without a grace period: {ms} ms"
    );
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
    assert_eq!(record(&records, "after").status(), "ok");
    out.assert_nothing_left();
}

#[test]
fn a_timeout_kills_everything_the_call_started() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.with_children]
python = "hang:with_children"
timeout = "1s"
[functions.pid]
python = "hang:pid"
[[task]]
id = "hang"
function = "with_children"
[[task]]
id = "after"
function = "pid"
"#,
        &[("hang.py", HANG_PY)],
    );
    let running = job.spawn(&[]);
    let marker = running.marker.clone();
    wait_for_file(&job.file("children-started"));
    let sleeps: Vec<Proc> = procs_marked(&marker)
        .into_iter()
        .filter(|p| p.comm == "sleep")
        .collect();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    let out = running.wait();
    out.assert_code(1);
    let records = out.records();
    assert_eq!(record(&records, "hang").status(), "timeout");
    assert_eq!(record(&records, "after").status(), "ok");
    assert_all_gone(&sleeps, Duration::from_secs(3));
    out.assert_nothing_left();
}

// ----- hostile calls -----

const HOSTILE_PY: &str = r#"
import os, sys, time

def pid():
    return os.getpid()

def flood(mib):
    chunk = "x" * (1024 * 1024 - 1) + "\n"
    for _ in range(mib):
        sys.stdout.write(chunk)
    return "flooded"

def close_stdout():
    print("before closing", flush=True)
    sys.stdout.close()
    os.close(1)
    os.close(2)
    return "closed"

def talk(tag):
    print("print", tag)
    os.write(1, b"raw " + tag.encode() + b"\n")
    print("err", tag, file=sys.stderr)
    return tag

def daemon():
    # The classic double fork: the daemon is in a session of its own and
    # keeps every descriptor the interpreter had.
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            with open("daemon-started.tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename("daemon-started.tmp", "daemon-started")
            while True:
                time.sleep(1)
        for _ in range(500):
            if os.path.exists("daemon-started"):
                break
            time.sleep(0.01)
        os._exit(0)
    os.waitpid(child, 0)
    return "daemonized"

def exit3():
    os._exit(3)

def fork_returns(late):
    child = os.fork()
    if child == 0:
        if late:
            time.sleep(0.5)
        return "from the child"
    if not late:
        os.waitpid(child, 0)
    return "from the parent"

def nap(seconds):
    time.sleep(seconds)
    return os.getpid()
"#;

#[test]
fn a_call_that_prints_100_mib_is_truncated_and_the_run_goes_on() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.flood]
python = "hostile:flood"
[functions.talk]
python = "hostile:talk"
[[task]]
id = "flood"
function = "flood"
args = [100]
[[task]]
id = "after"
function = "talk"
args = ["next"]
"#,
        &[("hostile.py", HOSTILE_PY)],
    );
    let out = job.run_from(job.dir.path(), &["-o", "out.jsonl"]);
    out.assert_code(0);
    let text = std::fs::read_to_string(job.file("out.jsonl")).unwrap();
    let records = parse_jsonl(&text);
    assert_eq!(ids(&records), ["flood", "after"]);
    let flood = record(&records, "flood");
    assert_eq!(flood.status(), "ok");
    assert_eq!(flood.value(), &json!("flooded"));
    assert_eq!(flood.get("truncated"), &json!(true));
    let stdout = flood.stdout();
    assert_eq!(stdout.len(), 16 * 1024 * 1024);
    assert!(stdout.bytes().all(|b| b == b'x' || b == b'\n'));
    let after = record(&records, "after");
    assert_eq!(after.stdout(), "print next\nraw next\n", "{}", after.0);
    assert_ne!(after.get("truncated"), &json!(true));
    out.assert_nothing_left();
}

#[test]
fn a_call_that_closes_its_stdout_does_not_silence_the_next_call() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.close]
python = "hostile:close_stdout"
[functions.talk]
python = "hostile:talk"
[functions.pid]
python = "hostile:pid"
[[task]]
id = "pid-0"
function = "pid"
[[task]]
id = "close"
function = "close"
[[task]]
id = "talk"
function = "talk"
args = ["again"]
[[task]]
id = "pid-1"
function = "pid"
"#,
        &[("hostile.py", HOSTILE_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let close = record(&records, "close");
    assert_eq!(close.status(), "ok", "{}", close.0);
    assert_eq!(close.value(), &json!("closed"));
    assert_eq!(close.stdout(), "before closing\n");
    let talk = record(&records, "talk");
    assert_eq!(talk.status(), "ok", "{}", talk.0);
    assert_eq!(talk.stdout(), "print again\nraw again\n", "{}", talk.0);
    assert_eq!(talk.stderr(), "err again\n", "{}", talk.0);
    let p = pids(&records, &["pid-0", "pid-1"]);
    assert_eq!(p[0], p[1], "closing stdout cost the interpreter");
    out.assert_nothing_left();
}

#[test]
fn a_daemon_started_by_a_call_does_not_outlive_the_run() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.daemon]
python = "hostile:daemon"
[functions.talk]
python = "hostile:talk"
[[task]]
id = "daemon"
function = "daemon"
[[task]]
id = "talk"
function = "talk"
args = ["after"]
"#,
        &[("hostile.py", HOSTILE_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(record(&records, "daemon").value(), &json!("daemonized"));
    assert_eq!(
        record(&records, "talk").stdout(),
        "print after\nraw after\n"
    );
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    let pid: i32 = std::fs::read_to_string(job.file("daemon-started"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || read_proc(pid)
            .is_none_or(|p| p.state == 'Z')),
        "the daemon {pid} outlived the run"
    );
    out.assert_nothing_left();
}

#[test]
fn an_interpreter_that_dies_after_starting_a_daemon_is_seen_as_crashed() {
    // The daemon holds the interpreter's descriptors (its control socket and
    // output pipes): the death must be seen all the same, at once.
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.daemon]
python = "hostile:daemon"
[functions.exit3]
python = "hostile:exit3"
timeout = "20s"
[functions.pid]
python = "hostile:pid"
[[task]]
id = "daemon"
function = "daemon"
[[task]]
id = "exit3"
function = "exit3"
[[task]]
id = "after"
function = "pid"
"#,
        &[("hostile.py", HOSTILE_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let exit3 = record(&records, "exit3");
    assert_eq!(exit3.status(), "crashed", "{}", exit3.0);
    assert_eq!(exit3.get("exit_code"), &json!(3), "{}", exit3.0);
    let ms = exit3.get("duration_ms").as_f64().unwrap();
    assert!(ms < 5000.0, "the death took {ms} ms to be seen");
    assert_eq!(record(&records, "after").status(), "ok");
    out.assert_nothing_left();
}

#[test]
fn a_forked_child_that_returns_from_the_call_gives_no_record_of_its_own() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.fork]
python = "hostile:fork_returns"
[functions.nap]
python = "hostile:nap"
[[task]]
id = "fork-waited"
function = "fork"
args = [false]
[[task]]
id = "fork-late"
function = "fork"
args = [true]
[[task]]
id = "nap"
function = "nap"
map = [0.3, 0.3, 0.3]
"#,
        &[("hostile.py", HOSTILE_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(
        ids(&records),
        ["fork-waited", "fork-late", "nap", "nap", "nap"],
        "{}",
        show(&records)
    );
    assert_eq!(
        record(&records, "fork-waited").value(),
        &json!("from the parent")
    );
    assert_eq!(
        record(&records, "fork-late").value(),
        &json!("from the parent")
    );
    // The late child returned while these ran: they are untouched.
    let naps = items(&records, "nap");
    for r in &naps {
        assert_eq!(r.status(), "ok", "{}", r.0);
        assert!(r.value().is_i64(), "{}", r.0);
        assert_eq!(r.stdout(), "", "{}", r.0);
    }
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    out.assert_nothing_left();
}

// ----- max_tasks_per_child, initializer -----

const POOL_PY: &str = r#"
import os, sys

STATE = "unset"

def init(value):
    global STATE
    STATE = value
    print("init", value)

def bad_init():
    with open("init-attempts", "a") as f:
        f.write("%d\n" % os.getpid())
    raise RuntimeError("no database")

def state(x):
    return [STATE, os.getpid(), x]

def pid(x):
    return os.getpid()
"#;

#[test]
fn max_tasks_per_child_1_gives_each_call_a_new_interpreter() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
max_tasks_per_child = 1
[functions.pid]
python = "pool:pid"
[[task]]
id = "pid"
function = "pid"
map = { range = [0, 8] }
"#,
        &[("pool.py", POOL_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let p: Vec<i64> = items(&records, "pid")
        .iter()
        .map(|r| r.value().as_i64().unwrap())
        .collect();
    assert_eq!(p.len(), 8);
    assert!(distinct(&p), "an interpreter served two calls: {p:?}");
    out.assert_nothing_left();
}

#[test]
fn max_tasks_per_child_counts_the_calls_of_an_interpreter() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
max_tasks_per_child = 3
[functions.pid]
python = "pool:pid"
[[task]]
id = "pid"
function = "pid"
map = { range = [0, 9] }
"#,
        &[("pool.py", POOL_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let p: Vec<i64> = items(&records, "pid")
        .iter()
        .map(|r| r.value().as_i64().unwrap())
        .collect();
    assert_eq!(p.len(), 9);
    for chunk in p.chunks(3) {
        assert!(chunk.iter().all(|x| *x == chunk[0]), "{p:?}");
    }
    assert!(distinct(&[p[0], p[3], p[6]]), "{p:?}");
}

#[test]
fn a_python_initializer_runs_once_in_each_new_interpreter_before_its_calls() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
max_tasks_per_child = 2
initializer = { function = "init", args = ["ready"] }
[functions.init]
python = "pool:init"
[functions.state]
python = "pool:state"
[[task]]
id = "state"
function = "state"
map = { range = [0, 8] }
"#,
        &[("pool.py", POOL_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.task_records();
    assert_eq!(ids(&records), vec!["state"; 8], "{}", show(&records));
    let mut interpreters = std::collections::HashMap::new();
    for r in &records {
        let v = r.value().as_array().unwrap();
        assert_eq!(
            v[0],
            json!("ready"),
            "a call before the initializer: {}",
            r.0
        );
        *interpreters.entry(v[1].as_i64().unwrap()).or_insert(0) += 1;
    }
    // Two calls per interpreter: at least four interpreters, each set up.
    assert!(interpreters.len() >= 4, "{interpreters:?}");
    assert!(interpreters.values().all(|n| *n <= 2), "{interpreters:?}");
    out.assert_nothing_left();
}

#[test]
fn a_failing_python_initializer_makes_the_pool_give_up_with_its_error() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
initializer = { function = "bad_init" }
[functions.bad_init]
python = "pool:bad_init"
[functions.state]
python = "pool:state"
[[task]]
id = "state"
function = "state"
map = { range = [0, 4] }
"#,
        &[("pool.py", POOL_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.task_records();
    assert_eq!(records.len(), 4, "{}", show(&records));
    for r in &records {
        assert_eq!(r.status(), "failed", "{}", r.0);
        assert!(
            r.error().contains("RuntimeError: no database"),
            "the initializer's error is not given: {}",
            r.0
        );
    }
    // Three failed starts in a row, then the pool gave up.
    let attempts = std::fs::read_to_string(job.file("init-attempts")).unwrap();
    assert_eq!(attempts.lines().count(), 3, "{attempts}");
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
    out.assert_nothing_left();
}

// ----- imports -----

/// A module that burns a second of CPU at import and notes, in
/// `imports.log` beside it, which process imported it and how long that
/// took on the wall clock. Its function returns the CPU time of the
/// interpreter that runs it: a forked interpreter starts from zero, so one
/// that imported the module itself shows a second or more.
const SLOW_IMPORT_PY: &str = r#"
import os, time

_wall = time.time()
_cpu = time.process_time()
while time.process_time() - _cpu < 1.0:
    pass
_here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_here, "imports.log"), "a") as _f:
    _f.write("%d %.3f\n" % (os.getpid(), time.time() - _wall))

def quick(x):
    return [x, os.getpid(), time.process_time()]
"#;

/// The imports `imports.log` holds: (pid, wall seconds).
fn imports(job: &Job) -> Vec<(i64, f64)> {
    std::fs::read_to_string(job.file("imports.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (pid, secs) = l.split_once(' ').expect("pid seconds");
            (pid.parse().unwrap(), secs.parse().unwrap())
        })
        .collect()
}

/// Asserts that no call ran in an interpreter that paid for the import.
fn assert_no_call_paid_the_import(calls: &[&Record]) {
    for r in calls {
        let cpu = r.value()[2].as_f64().expect("cpu seconds");
        assert!(
            cpu < 0.5,
            "this call's interpreter used {cpu} s of CPU: it imported the module itself\n{}",
            r.0
        );
    }
}

/// The run took about one import, not several: at most 3 s, or, when the
/// machine is so busy that the one import alone took longer, half as long
/// again as that import and 2 s more.
fn assert_about_one_import(out: &RunOutput, import_wall: f64) {
    let bound = Duration::from_secs_f64((import_wall * 1.5 + 2.0).max(3.0));
    assert!(
        out.elapsed < bound,
        "the run took {:?} for an import of {import_wall} s",
        out.elapsed
    );
}

#[test]
fn a_slow_import_is_paid_once_by_a_pool_of_four() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 4
[functions.quick]
python = "slow:quick"
[[task]]
id = "quick"
function = "quick"
map = { range = [0, 8] }
"#,
        &[("slow.py", SLOW_IMPORT_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let calls = items(&records, "quick");
    assert_eq!(calls.len(), 8);
    let imported = imports(&job);
    assert_eq!(imported.len(), 1, "{imported:?}");
    assert_no_call_paid_the_import(&calls);
    let p: std::collections::HashSet<i64> = calls
        .iter()
        .map(|r| r.value()[1].as_i64().unwrap())
        .collect();
    assert!(!p.contains(&imported[0].0), "a call ran in the template");
    assert_about_one_import(&out, imported[0].1);
    out.assert_nothing_left();
}

#[test]
fn replaced_interpreters_do_not_import_again() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
max_tasks_per_child = 1
[functions.quick]
python = "slow:quick"
[functions.exit]
python = "dies:exit3"
[[task]]
id = "quick"
function = "quick"
map = { range = [0, 12] }
[[task]]
id = "crash"
function = "exit"
[[task]]
id = "after"
function = "quick"
args = ["after"]
"#,
        &[
            ("slow.py", SLOW_IMPORT_PY),
            ("dies.py", "import os\ndef exit3():\n    os._exit(3)\n"),
        ],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let quick = items(&records, "quick");
    assert_eq!(quick.len(), 12);
    let p: Vec<i64> = quick
        .iter()
        .map(|r| r.value()[1].as_i64().unwrap())
        .collect();
    assert!(distinct(&p), "{p:?}");
    assert_eq!(record(&records, "crash").status(), "crashed");
    let after = record(&records, "after");
    assert_eq!(after.status(), "ok");
    let imported = imports(&job);
    assert_eq!(
        imported.len(),
        1,
        "the module was imported again: {imported:?}"
    );
    let mut all = quick.clone();
    all.push(after);
    assert_no_call_paid_the_import(&all);
    out.assert_nothing_left();
}

#[test]
fn an_import_that_starts_a_thread_still_serves_calls_and_says_so() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
max_tasks_per_child = 2
[functions.pid]
python = "threaded:pid"
[[task]]
id = "pid"
function = "pid"
map = { range = [0, 6] }
"#,
        &[(
            "threaded.py",
            r#"
import os, threading, time

threading.Thread(target=time.sleep, args=(60,), daemon=True).start()

def pid(x):
    return [x, os.getpid(), threading.active_count()]
"#,
        )],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let calls = items(&records, "pid");
    assert_eq!(calls.len(), 6);
    for (i, r) in calls.iter().enumerate() {
        let v = r.value().as_array().unwrap();
        assert_eq!(v[0], json!(i));
        // Each interpreter imported the module itself, thread and all.
        assert_eq!(v[2], json!(2), "{}", r.0);
    }
    assert!(
        out.stderr.contains("thread"),
        "no warning about the import's threads:\n{}",
        out.stderr
    );
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
    out.assert_nothing_left();
}

// ----- signals to the engine -----

const LONG_PY: &str = r#"
import os, subprocess, time

def long(name):
    subprocess.Popen(["sleep", "30"])
    open("started-" + name, "w").close()
    time.sleep(30)
    open("finished-" + name, "w").close()

def quick():
    return "done"
"#;

const LONG_JOB: &str = r#"
version = 1
[pool]
processes = 3
[functions.long]
python = "long:long"
[functions.quick]
python = "long:quick"
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
"#;

/// Starts the long job, waits until s1, s2 and s3 run, and returns it with
/// the Python processes under the engine then.
fn start_long(args: &[&str]) -> (Running, Job, Vec<Proc>) {
    let job = py_job(LONG_JOB, &[("long.py", LONG_PY)]);
    let running = job.spawn(args);
    for name in ["s1", "s2", "s3"] {
        wait_for_file(&job.file(&format!("started-{name}")));
    }
    let tree = descendants(running.pid());
    let pythons = tree.iter().filter(|p| p.comm.starts_with("python")).count();
    // The template and three interpreters at least.
    assert!(pythons >= 4, "{tree:?}");
    (running, job, tree)
}

fn assert_stopped(job: &Job, out: &RunOutput, tree: &[Proc]) {
    let text = std::fs::read_to_string(job.file("out.jsonl")).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
    let records = parse_jsonl(&text);
    let got = ids(&records);
    let expected: Vec<&str> = ["s1", "quick", "s2", "s3", "later"]
        .into_iter()
        .filter(|id| got.iter().any(|g| g == id))
        .collect();
    assert_eq!(got, expected, "{}", show(&records));
    assert_eq!(record(&records, "quick").value(), &json!("done"));
    for id in ["s1", "s2", "s3"] {
        let r = record(&records, id);
        assert_eq!(r.status(), "cancelled", "{}", show(&records));
    }
    if got.iter().any(|g| g == "later") {
        assert_eq!(record(&records, "later").status(), "cancelled");
    }
    assert_all_gone(tree, Duration::from_secs(3));
    out.assert_nothing_left();
    for name in ["s1", "s2", "s3", "later"] {
        assert!(!job.file(&format!("finished-{name}")).exists());
    }
    assert!(!job.file("started-later").exists());
}

#[test]
fn sigint_of_the_engine_cancels_running_calls_and_leaves_no_interpreter() {
    let (running, job, tree) = start_long(&["-o", "out.jsonl"]);
    running.signal(libc::SIGINT);
    let out = running.wait();
    out.assert_code(130);
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    assert_stopped(&job, &out, &tree);
}

#[test]
fn sigterm_of_the_engine_cancels_running_calls_and_leaves_no_interpreter() {
    let (running, job, tree) = start_long(&["-o", "out.jsonl"]);
    running.signal(libc::SIGTERM);
    let out = running.wait();
    out.assert_code(143);
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    assert_stopped(&job, &out, &tree);
}

#[test]
fn sigkill_of_the_engine_leaves_no_interpreter() {
    let (running, _job, tree) = start_long(&["-o", "out.jsonl"]);
    let marker = running.marker.clone();
    running.signal(libc::SIGKILL);
    let out = running.wait();
    assert_eq!(out.status.code(), None, "the engine was not killed");
    assert_all_gone(&tree, Duration::from_secs(5));
    assert_no_process_marked(&marker);
}

// ----- chunks, failure policies -----

#[test]
fn a_crash_in_a_chunk_of_python_calls_fails_only_the_call_that_ran() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.f]
python = "chunky:f"
[[task]]
id = "c"
function = "f"
map = [1, 2, 3, 4, 5, 6, 7, 8]
chunksize = 4
"#,
        &[(
            "chunky.py",
            "import os\ndef f(x):\n    if x == 3:\n        os._exit(3)\n    return [x, os.getpid()]\n",
        )],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let c = items(&records, "c");
    assert_eq!(c.len(), 8, "{}", show(&records));
    for (i, r) in c.iter().enumerate() {
        assert_eq!(r.index(), Some(i as u64));
        if i == 2 {
            assert_eq!(r.status(), "crashed", "{}", r.0);
            assert_eq!(r.get("exit_code"), &json!(3));
        } else {
            assert_eq!(r.status(), "ok", "{}", r.0);
            assert_eq!(r.value()[0], json!(i + 1));
        }
    }
    // The calls after the crash ran in a new interpreter.
    assert_ne!(c[1].value()[1], c[3].value()[1], "{}", show(&records));
    out.assert_nothing_left();
}

#[test]
fn on_failure_terminate_kills_running_calls_even_when_they_ignore_sigterm() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 3
on_failure = "terminate"
[functions.stubborn]
python = "term:stubborn"
[functions.fail]
python = "term:fail"
[[task]]
id = "s1"
function = "stubborn"
args = ["s1"]
[[task]]
id = "s2"
function = "stubborn"
args = ["s2"]
[[task]]
id = "fail"
function = "fail"
[[task]]
id = "later"
function = "fail"
"#,
        &[(
            "term.py",
            r#"
import os, signal, time

def stubborn(name):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    open("started-" + name, "w").close()
    while True:
        time.sleep(1)

def fail():
    while not (os.path.exists("started-s1") and os.path.exists("started-s2")):
        time.sleep(0.01)
    raise ValueError("first failure")
"#,
        )],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(ids(&records), ["s1", "s2", "fail", "later"]);
    assert_eq!(
        record(&records, "fail").error(),
        "ValueError: first failure"
    );
    for id in ["s1", "s2", "later"] {
        assert_eq!(
            record(&records, id).status(),
            "cancelled",
            "{}",
            show(&records)
        );
    }
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
    out.assert_nothing_left();
}

#[test]
fn sigterm_of_the_engine_ends_calls_that_ignore_sigterm_and_sigint() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.stubborn]
python = "term:stubborn"
[[task]]
id = "s1"
function = "stubborn"
args = ["s1"]
[[task]]
id = "s2"
function = "stubborn"
args = ["s2"]
"#,
        &[(
            "term.py",
            r#"
import signal, time

def stubborn(name):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    open("started-" + name, "w").close()
    while True:
        time.sleep(1)
"#,
        )],
    );
    let running = job.spawn(&["-o", "out.jsonl"]);
    wait_for_file(&job.file("started-s1"));
    wait_for_file(&job.file("started-s2"));
    let tree = descendants(running.pid());
    running.signal(libc::SIGTERM);
    let out = running.wait();
    out.assert_code(143);
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
    let records = parse_jsonl(&std::fs::read_to_string(job.file("out.jsonl")).unwrap());
    assert_eq!(ids(&records), ["s1", "s2"]);
    for r in &records {
        assert_eq!(r.status(), "cancelled", "{}", r.0);
    }
    assert_all_gone(&tree, Duration::from_secs(3));
    out.assert_nothing_left();
}

#[test]
fn a_stream_producer_that_times_out_still_feeds_what_it_yielded() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.gen]
python = "slowgen:gen"
timeout = "1s"
[functions.read]
python = "slowgen:read"
[[task]]
id = "gen"
function = "gen"
[[task]]
id = "read"
function = "read"
map = { stream = "gen" }
"#,
        &[(
            "slowgen.py",
            "import time\ndef gen():\n    yield 1\n    yield 2\n    time.sleep(30)\n    yield 3\ndef read(x):\n    return x * 10\n",
        )],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(record(&records, "gen").status(), "timeout");
    let read: Vec<_> = items(&records, "read")
        .iter()
        .map(|r| (r.status().to_owned(), r.value().clone()))
        .collect();
    assert_eq!(
        read,
        [("ok".to_owned(), json!(10)), ("ok".to_owned(), json!(20))],
        "{}",
        show(&records)
    );
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    out.assert_nothing_left();
}

#[test]
fn a_python_initializer_that_kills_its_interpreter_makes_the_pool_give_up() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
initializer = { function = "init" }
[functions.init]
python = "initdies:init"
[functions.work]
python = "initdies:work"
[[task]]
id = "w"
function = "work"
map = [1, 2]
"#,
        &[(
            "initdies.py",
            "import os\ndef init():\n    os._exit(9)\ndef work(x):\n    return x\n",
        )],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(records.len(), 2, "{}", show(&records));
    for r in &records {
        assert_eq!(r.status(), "failed", "{}", r.0);
        assert!(r.error().contains("initializer"), "{}", r.0);
    }
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
    out.assert_nothing_left();
}

#[test]
fn when_the_template_is_killed_workers_start_fresh_interpreters() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.pid]
python = "gate:pid"
[functions.gate]
python = "gate:gate"
[[task]]
id = "before"
function = "pid"
args = [0]
[[task]]
id = "gate"
function = "gate"
[[task]]
id = "after"
function = "pid"
map = [1, 2, 3, 4]
"#,
        &[(
            "gate.py",
            r#"
import os, time

def pid(x):
    return os.getpid()

def gate():
    open("waiting", "w").close()
    while not os.path.exists("go"):
        time.sleep(0.01)
    return os.getpid()
"#,
        )],
    );
    let running = job.spawn(&[]);
    wait_for_file(&job.file("waiting"));
    // The template: the engine's Python child.
    let engine = running.pid();
    let template = descendants(engine)
        .into_iter()
        .find(|p| p.ppid == engine && p.comm.starts_with("python"))
        .expect("a template interpreter under the engine");
    send_signal(template.pid, libc::SIGKILL);
    assert_all_gone(std::slice::from_ref(&template), Duration::from_secs(3));
    std::fs::write(job.file("go"), "").unwrap();
    let out = running.wait();
    let records = out.records();
    assert_eq!(
        ids(&records),
        ["before", "gate", "after", "after", "after", "after"]
    );
    assert_eq!(record(&records, "before").status(), "ok");
    // The gate's interpreter went with the template that forked it.
    assert_ne!(
        record(&records, "gate").status(),
        "ok",
        "{}",
        show(&records)
    );
    let before = record(&records, "before").value().clone();
    let after = items(&records, "after");
    for r in &after {
        assert_eq!(r.status(), "ok", "{}", show(&records));
        assert_ne!(r.value(), &before, "{}", show(&records));
    }
    out.assert_code(1);
    out.assert_nothing_left();
}

#[test]
fn an_idle_interpreter_that_dies_costs_no_call() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.pid]
python = "idle:pid"
[functions.slow]
python = "idle:slow"
[[task]]
id = "quick"
function = "pid"
args = [0]
[[task]]
id = "slow"
function = "slow"
[[task]]
id = "next"
function = "pid"
map = { range = [1, 5] }
after = ["quick", "slow"]
"#,
        &[(
            "idle.py",
            r#"
import os, time

def pid(x):
    return os.getpid()

def slow():
    with open("waiting.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename("waiting.tmp", "waiting")
    while not os.path.exists("go"):
        time.sleep(0.01)
    return os.getpid()
"#,
        )],
    );
    let running = job.spawn(&[]);
    wait_for_file(&job.file("waiting"));
    let slow: i32 = std::fs::read_to_string(job.file("waiting"))
        .unwrap()
        .parse()
        .unwrap();
    // The other interpreter ran `quick` (or is about to): wait until it
    // has, then kill it while it is idle.
    let engine = running.pid();
    let mut idle = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let tree = descendants(engine);
            let Some(template) = tree
                .iter()
                .find(|p| p.ppid == engine && p.comm.starts_with("python"))
            else {
                return false;
            };
            idle = tree
                .iter()
                .find(|p| p.ppid == template.pid && p.pid != slow)
                .cloned();
            idle.is_some()
        }),
        "no second interpreter"
    );
    let idle = idle.unwrap();
    std::thread::sleep(Duration::from_millis(300));
    send_signal(idle.pid, libc::SIGKILL);
    assert_all_gone(std::slice::from_ref(&idle), Duration::from_secs(3));
    std::fs::write(job.file("go"), "").unwrap();
    let out = running.wait();
    let records = out.records();
    assert_eq!(
        record(&records, "quick").value(),
        &json!(idle.pid),
        "{}",
        show(&records)
    );
    // The dead interpreter ran nothing more: no call is charged for it.
    for r in &records {
        assert_eq!(r.status(), "ok", "{}", show(&records));
    }
    for r in items(&records, "next") {
        assert_ne!(r.value(), &json!(idle.pid));
    }
    out.assert_code(0);
    out.assert_nothing_left();
}

//! The scheduler without processes: workers are threads that answer the
//! engine's calls from a script, behind the [`Launcher`] seam, and the
//! records are collected in memory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use super::launcher::{LaunchError, Launcher, Started};
use super::prepare::Prepared;
use super::supervisor::{RunEnd, RunOptions, run};
use crate::exec::fork_server::WorkerExit;
use crate::exec::protocol::{
    CallOutcome, Conn, FromWorker, Invocation, LineStream, ToWorker, encode,
};
use crate::exec::signals::SignalPipe;
use crate::plan::Plan;
use crate::report::{Record, RecordWriter, Sink, Status};
use crate::spec::{CheckOptions, Order};

/// What a fake worker does with a call.
enum Reply {
    Ok(Value),
    Fail(String),
    /// The worker dies (its connection closes) with SIGKILL.
    Crash,
    /// Prints these lines on stdout, then ends ok.
    Lines(Vec<String>),
    /// Runs until the engine cancels it.
    Hang,
}

/// Builtin `name`'s `args`, and how many times this same call came before.
type Script = dyn Fn(&str, &[Value], u32) -> Reply + Send + Sync;

/// The default script: `noop` and `echo` end ok, `fail` fails, `crash`
/// kills its worker, `flaky N` fails its first N attempts, `lines N`
/// prints N lines, `hang` runs until it is cancelled, `nap N` ends ok after
/// N ms, `slow` echoes its args after 300 ms.
fn script(name: &str, args: &[Value], seen: u32) -> Reply {
    let n = || args.first().and_then(Value::as_u64).unwrap_or(0) as u32;
    match name {
        "noop" => Reply::Ok(Value::Null),
        "echo" => Reply::Ok(Value::Array(args.to_vec())),
        "fail" => Reply::Fail(format!("failed: {args:?}")),
        "crash" => Reply::Crash,
        "flaky" if seen < n() => Reply::Fail(format!("attempt {}", seen + 1)),
        "flaky" => Reply::Ok(json!(seen + 1)),
        "lines" => Reply::Lines((0..n()).map(|i| format!("line {i}")).collect()),
        "hang" => Reply::Hang,
        "nap" => {
            std::thread::sleep(std::time::Duration::from_millis(n().into()));
            Reply::Ok(Value::Null)
        }
        "slow" => {
            std::thread::sleep(std::time::Duration::from_millis(300));
            Reply::Ok(Value::Array(args.to_vec()))
        }
        other => Reply::Fail(format!("the fake worker has no `{other}`")),
    }
}

/// What the fake workers did, for the tests to look at.
#[derive(Default)]
struct Seen {
    /// Workers started.
    spawned: u32,
    /// Starts asked for while the gate was closed.
    refused: u32,
    /// Each call's builtin name, in the order the workers got them.
    calls: Vec<String>,
    /// Times each call (name and args) came.
    counts: HashMap<String, u32>,
    /// Workers that have ended, and how.
    exits: HashMap<u32, WorkerExit>,
}

/// Workers that are threads, with pids no process has (from 1,000,000 on,
/// never signalled for real).
struct Threads {
    seen: Arc<Mutex<Seen>>,
    script: Arc<Script>,
    conns: HashMap<u32, UnixStream>,
    /// While set, no worker starts ("not yet"): it opens once its pipe
    /// has a byte, as a Slurm allocation is granted.
    gate: Option<OwnedFd>,
}

const FIRST_PID: u32 = 1_000_000;

impl Launcher for Threads {
    fn spawn(&mut self) -> Result<Started, LaunchError> {
        if self.gate.is_some() {
            self.seen.lock().unwrap().refused += 1;
            return Err(LaunchError::Pending);
        }
        let failed = |e: std::io::Error| LaunchError::Failed(e.to_string());
        let (engine, worker) = UnixStream::pair().map_err(failed)?;
        let pid = {
            let mut seen = self.seen.lock().unwrap();
            seen.spawned += 1;
            FIRST_PID + seen.spawned
        };
        self.conns.insert(pid, worker.try_clone().map_err(failed)?);
        let seen = Arc::clone(&self.seen);
        let script = Arc::clone(&self.script);
        let end = worker.try_clone().map_err(failed)?;
        std::thread::spawn(move || {
            let exit = serve(pid, worker, &seen, &*script);
            // Its connection closes, whoever else holds the socket.
            let _ = end.shutdown(std::net::Shutdown::Both);
            seen.lock().unwrap().exits.insert(pid, exit);
        });
        Ok(Started {
            pid,
            conn: Conn::new(OwnedFd::from(engine), None).map_err(failed)?,
            remote: false,
        })
    }

    fn signal(&mut self, pid: u32, signal: Signal) {
        if let Some(conn) = self.conns.get(&pid) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        let mut seen = self.seen.lock().unwrap();
        seen.exits
            .entry(pid)
            .or_insert(WorkerExit::Killed(signal as i32));
    }

    fn try_exit(&mut self, pid: u32) -> Option<WorkerExit> {
        self.seen.lock().unwrap().exits.get(&pid).copied()
    }

    fn wait(&mut self, _pid: u32) {}

    fn exit_fd(&mut self, _pid: u32) -> Option<OwnedFd> {
        None
    }

    fn end(&mut self) {}

    fn pending(&self) -> Option<(BorrowedFd<'_>, Instant)> {
        let gate = self.gate.as_ref()?;
        Some((gate.as_fd(), Instant::now() + Duration::from_secs(5)))
    }

    fn advance(&mut self) -> Option<Result<(), String>> {
        let gate = self.gate.as_ref()?;
        let mut fds = [PollFd::new(gate.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(1) => {
                self.gate = None;
                Some(Ok(()))
            }
            _ => None,
        }
    }
}

/// A fake worker's loop: answers each call of each `run` frame.
fn serve(pid: u32, stream: UnixStream, seen: &Mutex<Seen>, script: &Script) -> WorkerExit {
    let Ok(mut out) = stream.try_clone() else {
        return WorkerExit::Exited(1);
    };
    let mut send = |frame: &FromWorker| out.write_all(&encode(frame)).is_ok();
    if !send(&FromWorker::Ready { pid, host: None }) {
        return WorkerExit::Exited(1);
    }
    let mut lines = BufReader::new(stream).lines();
    while let Some(Ok(line)) = lines.next() {
        let Ok(ToWorker::Run { calls }) = serde_json::from_str::<ToWorker>(&line) else {
            continue;
        };
        for call in calls {
            let Invocation::Builtin { name, args, .. } = &call.invocation else {
                return WorkerExit::Exited(2);
            };
            let times = {
                let mut seen = seen.lock().unwrap();
                seen.calls.push(name.clone());
                let n = seen.counts.entry(format!("{name}{args:?}")).or_insert(0);
                *n += 1;
                *n - 1
            };
            let mut outcome = CallOutcome {
                started_ms: 1.0,
                ..CallOutcome::default()
            };
            match script(name, args, times) {
                Reply::Ok(v) => {
                    outcome.ok = true;
                    outcome.value = v;
                }
                Reply::Fail(e) => outcome.error = Some(e),
                Reply::Crash => return WorkerExit::Killed(Signal::SIGKILL as i32),
                Reply::Lines(lines) => {
                    for line in lines {
                        let frame = FromWorker::Line {
                            unit: call.unit,
                            stream: LineStream::Out,
                            line,
                        };
                        if !send(&frame) {
                            return WorkerExit::Exited(1);
                        }
                    }
                    outcome.ok = true;
                }
                Reply::Hang => loop {
                    match lines.next().map(|l| l.map(|l| serde_json::from_str(&l))) {
                        Some(Ok(Ok(ToWorker::Cancel))) => {
                            outcome.cancelled = true;
                            break;
                        }
                        Some(Ok(_)) => continue,
                        _ => return WorkerExit::Exited(0),
                    }
                },
            }
            if !send(&FromWorker::Done {
                unit: call.unit,
                outcome,
            }) {
                return WorkerExit::Exited(1);
            }
        }
    }
    WorkerExit::Exited(0)
}

/// Records as the sink lets them out.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Record>>>);

impl RecordWriter for Collect {
    fn write(&mut self, record: &Record) -> std::io::Result<()> {
        self.0.lock().unwrap().push(record.clone());
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a run left.
struct Ran {
    end: RunEnd,
    records: Vec<Record>,
    seen: Seen,
}

impl Ran {
    /// `task[index] status` for each record, in the order they came out.
    fn lines(&self) -> Vec<String> {
        self.records
            .iter()
            .map(|r| match r.index {
                Some(i) => format!("{}[{i}] {}", r.task, r.status.as_str()),
                None => format!("{} {}", r.task, r.status.as_str()),
            })
            .collect()
    }

    fn record(&self, task: &str) -> &Record {
        self.records
            .iter()
            .find(|r| r.task == task)
            .unwrap_or_else(|| panic!("no record of {task}: {:?}", self.lines()))
    }
}

/// Runs `toml` (a job file) on thread workers, records in submission order.
fn run_job(toml: &str) -> Ran {
    run_job_in(toml, Order::Submission)
}

/// Runs `toml` (a job file) on thread workers, records in `order`.
fn run_job_in(toml: &str, order: Order) -> Ran {
    run_job_gated(toml, order, None)
}

/// Runs `toml` on thread workers that start only once `gate` is readable.
fn run_job_gated(toml: &str, order: Order, gate: Option<OwnedFd>) -> Ran {
    let opts = CheckOptions {
        builtins: [
            "noop", "echo", "fail", "crash", "flaky", "lines", "hang", "nap", "slow",
        ]
        .map(String::from)
        .to_vec(),
        ..CheckOptions::default()
    };
    let job = match crate::spec::check_source(Path::new("/nonexistent/job.toml"), toml, &opts) {
        Ok(job) => job,
        Err(e) => panic!("{}", e.render(false)),
    };
    let plan = Plan::new(&job);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let launcher = Threads {
        seen: Arc::clone(&seen),
        script: Arc::new(script),
        conns: HashMap::new(),
        gate,
    };
    let prepared = Prepared {
        launcher: Box::new(launcher),
        shared: None,
        signals: SignalPipe::unconnected().unwrap(),
        python: None,
    };
    let collect = Collect::default();
    let sink = Sink::new(Box::new(collect.clone()), order);
    let report = run(&job, &plan, prepared, sink, RunOptions::default());
    let records = std::mem::take(&mut *collect.0.lock().unwrap());
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    Ran {
        end: report.end,
        records,
        seen,
    }
}

const HEAD: &str = r#"
version = 1
[functions.noop]
builtin = "noop"
[functions.echo]
builtin = "echo"
[functions.fail]
builtin = "fail"
[functions.crash]
builtin = "crash"
[functions.flaky]
builtin = "flaky"
[functions.lines]
builtin = "lines"
[functions.hang]
builtin = "hang"
[functions.nap]
builtin = "nap"
"#;

fn job(pool: &str, tasks: &str) -> String {
    format!("{HEAD}\n[pool]\n{pool}\n{tasks}")
}

#[test]
fn a_retried_unit_runs_again_until_it_ends_ok() {
    let ran = run_job(&job(
        "processes = 1",
        r#"
[[task]]
id = "f"
function = "flaky"
args = [2]
retries = 2
"#,
    ));
    assert_eq!(ran.end, RunEnd::Completed);
    assert_eq!(ran.lines(), ["f ok"]);
    let r = ran.record("f");
    assert_eq!((r.attempts, &r.value), (3, &json!(3)));
}

#[test]
fn retries_run_out_and_the_last_attempt_is_recorded() {
    let ran = run_job(&job(
        "processes = 2",
        r#"
[[task]]
id = "f"
function = "flaky"
args = [5]
retries = 1
[[task]]
id = "after"
function = "noop"
after = ["f"]
"#,
    ));
    assert_eq!(ran.lines(), ["f failed", "after skipped"]);
    let r = ran.record("f");
    assert_eq!((r.attempts, r.error.as_deref()), (2, Some("attempt 2")));
    assert_eq!(
        ran.seen.calls,
        ["flaky", "flaky"],
        "what is skipped never runs"
    );
}

#[test]
fn continue_runs_everything_else_and_skips_only_dependents() {
    let ran = run_job(&job(
        "processes = 1\non_failure = \"continue\"",
        r#"
[[task]]
id = "bad"
function = "fail"
[[task]]
id = "child"
function = "noop"
after = ["bad"]
[[task]]
id = "grandchild"
function = "noop"
after = ["child"]
[[task]]
id = "other"
function = "noop"
"#,
    ));
    assert_eq!(
        ran.lines(),
        [
            "bad failed",
            "child skipped",
            "grandchild skipped",
            "other ok"
        ]
    );
    assert_eq!(
        ran.record("grandchild").error.as_deref(),
        Some("dependency `child` did not end ok")
    );
}

#[test]
fn stop_starts_nothing_after_a_failure_and_cancels_the_rest() {
    let ran = run_job(&job(
        "processes = 1\non_failure = \"stop\"",
        r#"
[[task]]
id = "bad"
function = "fail"
[[task]]
id = "later"
function = "noop"
[[task]]
id = "items"
function = "echo"
map = { range = [0, 2] }
"#,
    ));
    assert_eq!(
        ran.lines(),
        [
            "bad failed",
            "later cancelled",
            "items[0] cancelled",
            "items[1] cancelled"
        ]
    );
    assert_eq!(ran.seen.calls, ["fail"]);
}

#[test]
fn a_crashed_worker_crashes_its_unit_only_and_is_replaced() {
    let ran = run_job(&job(
        "processes = 1\non_failure = \"continue\"",
        r#"
[[task]]
id = "boom"
function = "crash"
[[task]]
id = "next"
function = "noop"
"#,
    ));
    assert_eq!(ran.lines(), ["boom crashed", "next ok"]);
    let r = ran.record("boom");
    assert_eq!(r.signal, Some(9));
    assert_eq!(
        r.error.as_deref(),
        Some("the worker died: killed by signal 9 (SIGKILL)")
    );
    assert_eq!(ran.seen.spawned, 2);
}

#[test]
fn a_callback_gets_the_value_and_its_record_follows_the_task() {
    let ran = run_job(&job(
        "processes = 2",
        r#"
[[task]]
id = "m"
function = "echo"
map = { range = [0, 2] }
callback = "echo"
[[task]]
id = "bad"
function = "fail"
error_callback = "echo"
"#,
    ));
    assert_eq!(
        ran.lines(),
        [
            "m[0] ok",
            "m[1] ok",
            "m:callback ok",
            "bad failed",
            "bad:error_callback ok"
        ]
    );
    assert_eq!(ran.record("m:callback").value, json!([[[0], [1]]]));
    let error = ran.record("bad:error_callback").value.clone();
    assert!(
        error[0].as_str().is_some_and(|e| e.starts_with("failed")),
        "{error}"
    );
}

#[test]
fn in_completion_order_a_callbacks_record_follows_its_tasks_last_as_it_ends() {
    // `x` ends while the callback (300 ms) runs: its record comes out
    // before the map's last one, which waits for the callback's.
    let ran = run_job_in(
        &job(
            "processes = 2",
            r#"
[[task]]
id = "m"
function = "echo"
map = { range = [0, 2] }
callback = "slow"
[[task]]
id = "x"
function = "nap"
args = [100]
[functions.slow]
builtin = "slow"
"#,
        ),
        Order::Completion,
    );
    // Which item ends last varies; the callback's record follows it.
    let lines = ran.lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[..2].contains(&"x ok".to_string()), "{lines:?}");
    assert!(lines[2].starts_with("m["), "{lines:?}");
    assert_eq!(lines[3], "m:callback ok", "{lines:?}");
}

#[test]
fn a_blocking_task_waits_for_what_comes_before_and_holds_back_what_follows() {
    let ran = run_job(&job(
        "processes = 4",
        r#"
[[task]]
id = "a"
function = "echo"
args = ["a"]
[[task]]
id = "barrier"
function = "echo"
args = ["barrier"]
mode = "blocking"
[[task]]
id = "b"
function = "echo"
args = ["b"]
"#,
    ));
    assert_eq!(ran.lines(), ["a ok", "barrier ok", "b ok"]);
    assert_eq!(ran.seen.calls, ["echo", "echo", "echo"]);
    let order: Vec<&str> = ran
        .records
        .iter()
        .map(|r| r.value[0].as_str().unwrap_or_default())
        .collect();
    assert_eq!(order, ["a", "barrier", "b"]);
}

#[test]
fn workers_that_are_not_yet_there_start_once_their_launcher_says_so() {
    let (read, write) = nix::unistd::pipe().unwrap();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        nix::unistd::write(&write, b"x").unwrap();
    });
    let started = Instant::now();
    let ran = run_job_gated(
        &job(
            "processes = 2",
            "[[task]]\nid = \"m\"\nfunction = \"echo\"\nmap = { range = [0, 3] }\n",
        ),
        Order::Submission,
        Some(read),
    );
    opener.join().unwrap();
    // The run waited for the launcher, asleep in its poll until the gate's
    // byte (not its 5 s deadline) woke it: it asked once, then again when
    // the gate opened.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(ran.end, RunEnd::Completed);
    assert_eq!(ran.lines(), ["m[0] ok", "m[1] ok", "m[2] ok"]);
    assert_eq!(ran.seen.refused, 1);
    assert_eq!(ran.seen.spawned, 2);
}

#[test]
fn max_tasks_per_child_replaces_the_worker_after_its_limit() {
    let ran = run_job(&job(
        "processes = 1\nmax_tasks_per_child = 2",
        r#"
[[task]]
id = "m"
function = "noop"
map = { range = [0, 5] }
"#,
    ));
    assert_eq!(ran.records.len(), 5);
    assert!(ran.records.iter().all(|r| r.status == Status::Ok));
    assert_eq!(ran.seen.spawned, 3, "2 + 2 + 1 units");
    let workers: Vec<Option<u32>> = ran.records.iter().map(|r| r.worker).collect();
    let (a, b, c) = (
        Some(FIRST_PID + 1),
        Some(FIRST_PID + 2),
        Some(FIRST_PID + 3),
    );
    assert_eq!(workers, [a, a, b, b, c]);
}

#[test]
fn a_stream_consumer_gets_each_line_of_its_producer_in_order_past_the_high_water() {
    // 3000 lines: more than STREAM_HIGH_WATER wait at once, so reading
    // the producer pauses and resumes as the consumer catches up.
    let ran = run_job(&job(
        "processes = 2",
        r#"
[[task]]
id = "produce"
function = "lines"
args = [3000]
[[task]]
id = "consume"
function = "echo"
map = { stream = "produce" }
"#,
    ));
    assert_eq!(ran.end, RunEnd::Completed);
    assert_eq!(ran.records.len(), 3001);
    assert_eq!(ran.record("produce").status, Status::Ok);
    let items: Vec<&Value> = ran.records[1..].iter().map(|r| &r.value[0]).collect();
    assert_eq!(items.len(), 3000);
    assert!(
        items
            .iter()
            .enumerate()
            .all(|(i, v)| v.as_str() == Some(format!("line {i}").as_str())),
        "items in the producer's order"
    );
}

#[test]
fn terminate_cancels_what_runs_and_starts_nothing_more() {
    let ran = run_job(&job(
        "processes = 2\non_failure = \"terminate\"",
        r#"
[[task]]
id = "slow"
function = "hang"
[[task]]
id = "bad"
function = "fail"
[[task]]
id = "later"
function = "noop"
"#,
    ));
    assert_eq!(ran.end, RunEnd::Completed);
    assert_eq!(
        ran.lines(),
        ["slow cancelled", "bad failed", "later cancelled"]
    );
    // `hang` may be cancelled before its worker has read it; `later` is
    // never sent.
    let calls = &ran.seen.calls;
    assert!(calls.iter().any(|c| c == "fail"), "{calls:?}");
    assert!(
        calls.iter().all(|c| c == "fail" || c == "hang"),
        "{calls:?}"
    );
}

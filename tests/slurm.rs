//! Workers as Slurm steps, through `jobfile::exec::slurm` and a real Slurm.
//!
//! These tests need a running Slurm (`bash ci/local-cluster.sh start`, or
//! the one-node `ci/local-slurm.sh`) and run only when built with
//! `JOBFILE_TEST_SLURM=1`; then they fail, never skip, when Slurm is
//! unusable. Without the variable they are reported as ignored. Measured numbers
//! go to stderr: `cargo test --test slurm -- --nocapture`.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jobfile::exec::protocol::{CallOutcome, Conn, FromWorker};
use jobfile::exec::slurm::{Allocation, SlurmError, SlurmRequest, Step, StepMode};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde_json::json;

const WORKER: &str = env!("CARGO_BIN_EXE_jobfile");

/// How long any one frame or exit may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// Steps of one test would wait for the CPUs of another's allocation, and
/// the timings would measure that wait: one test at a time.
static SLURM: Mutex<()> = Mutex::new(());

/// The lock on the cluster.
fn slurm_test() -> MutexGuard<'static, ()> {
    SLURM.lock().unwrap_or_else(|e| e.into_inner())
}

fn request(tasks: usize, name: &str) -> SlurmRequest {
    SlurmRequest {
        partition: std::env::var("LOCAL_CLUSTER_PARTITION")
            .or_else(|_| std::env::var("LOCAL_SLURM_PARTITION"))
            .ok(),
        nodes: Some(1),
        // Bounds what a crashed test run could leave allocated.
        time: Some("5:00".into()),
        tasks,
        job_name: format!("jobfile-test-{name}"),
    }
}

fn allocate(tasks: usize, name: &str) -> Allocation {
    let t = Instant::now();
    let alloc = Allocation::request(&request(tasks, name))
        .unwrap_or_else(|e| panic!("Slurm is not usable (JOBFILE_TEST_SLURM=1): {e}"));
    eprintln!(
        "[{name}] allocation {} of {tasks} tasks granted in {:?}",
        alloc.job_id(),
        t.elapsed()
    );
    alloc
}

/// What `squeue` lists for a job: nothing once it is gone.
fn squeue_job(job_id: u32) -> String {
    let out = std::process::Command::new("squeue")
        .args(["-h", "-j", &job_id.to_string(), "-o", "%A %T"])
        .output()
        .expect("squeue runs");
    // squeue fails with "Invalid job id" once a finished job is purged.
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    } else {
        String::new()
    }
}

/// A worker step seen the way the engine sees it: frames in through a
/// line-framed connection, frames out through the step's stdin.
struct Worker {
    step_child: std::process::Child,
    name: String,
    input: Option<File>,
    output: Conn,
}

impl Worker {
    fn start(alloc: &Allocation) -> (Worker, u32, Duration) {
        let t = Instant::now();
        let Step {
            child,
            stdin,
            stdout,
            name,
            ..
        } = alloc.spawn_step(Path::new(WORKER)).expect("srun starts");
        let mut w = Worker {
            step_child: child,
            name,
            input: Some(File::from(stdin)),
            output: Conn::new(stdout, None).expect("stdout can be made non-blocking"),
        };
        let pid = match w.recv() {
            FromWorker::Ready { pid, .. } => pid,
            other => panic!("expected ready, got {other:?}"),
        };
        (w, pid, t.elapsed())
    }

    fn send(&mut self, frame: serde_json::Value) {
        let mut line = serde_json::to_vec(&frame).unwrap();
        line.push(b'\n');
        self.input
            .as_mut()
            .expect("stdin open")
            .write_all(&line)
            .expect("write to the step");
    }

    /// The next frame; fails the test after [`PATIENCE`].
    fn recv(&mut self) -> FromWorker {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(frame) = self.output.next_frame::<FromWorker>() {
                return frame.expect("a well-formed frame");
            }
            assert!(
                !self.output.at_eof(),
                "step {} closed its stdout",
                self.name
            );
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no frame from step {} within {PATIENCE:?}",
                self.name
            );
            let fd = self.output.read_fd().expect("the connection is open");
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let _ = poll(&mut fds, PollTimeout::from(ms));
            self.output.fill().expect("read from the step");
        }
    }

    /// Runs one builtin and returns its outcome.
    fn call(&mut self, unit: u64, name: &str, args: serde_json::Value) -> CallOutcome {
        self.send(json!({"run": {"calls": [
            {"unit": unit, "invocation": {"builtin": {"name": name, "args": args, "kwargs": {}}}}
        ]}}));
        match self.recv() {
            FromWorker::Done { unit: u, outcome } if u == unit => outcome,
            other => panic!("expected done of unit {unit}, got {other:?}"),
        }
    }

    /// Reads until end of file: whatever the worker still had to say.
    fn read_to_eof(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while !self.output.at_eof() {
            assert!(
                Instant::now() < deadline,
                "step {} kept its stdout open",
                self.name
            );
            let fd = self.output.read_fd().expect("the connection is open");
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            self.output.fill().expect("read from the step");
        }
    }

    /// SIGTERM to srun (what [`Step::terminate`] sends).
    fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(self.step_child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM srun");
    }

    /// Reaps srun the way the engine does, with `try_wait`.
    fn reap(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.step_child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "srun of step {} did not exit",
                self.name
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A failing test must not leave srun behind.
        if self.step_child.try_wait().ok().flatten().is_none() {
            let _ = self.step_child.kill();
            let _ = self.step_child.wait();
        }
    }
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn two_steps_answer_calls_and_end_when_their_stdin_closes() {
    let _cluster = slurm_test();
    let mut alloc = allocate(2, "roundtrip");
    let job = alloc.job_id();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (w, pid, ready) = Worker::start(&alloc);
        eprintln!(
            "[roundtrip] step {} ready (pid {pid}) {ready:?} after srun was spawned",
            w.name
        );
        assert!(pid > 0);
        workers.push(w);
    }
    for w in &mut workers {
        let outcome = w.call(1, "square", json!([7]));
        assert!(outcome.ok, "{outcome:?}");
        assert_eq!(outcome.value, json!(49));
    }
    for mut w in workers {
        let t = Instant::now();
        w.input = None;
        w.read_to_eof();
        let status = w.reap();
        eprintln!(
            "[roundtrip] step {} exited {status} {:?} after its stdin was closed",
            w.name,
            t.elapsed()
        );
        assert!(status.success(), "srun of step {} exited {status}", w.name);
    }
    alloc.release().expect("release");
    assert_eq!(squeue_job(job), "", "job {job} still listed after release");
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_step_cancelled_with_scancel_ends_its_srun_and_spares_the_other() {
    let _cluster = slurm_test();
    let mut alloc = allocate(2, "scancel");
    let job = alloc.job_id();
    let (mut a, _, _) = Worker::start(&alloc);
    let (mut b, _, _) = Worker::start(&alloc);
    let id = alloc.step_id(&a.name).expect("the step is listed");
    let t = Instant::now();
    alloc.cancel_step(&a.name).expect("scancel J.S");
    let status = a.reap();
    eprintln!(
        "[scancel] srun of step {job}.{id} exited {status} {:?} after scancel",
        t.elapsed()
    );
    assert!(!status.success());
    assert_eq!(
        b.call(1, "square", json!([7])).value,
        json!(49),
        "the other step still serves"
    );

    // Step::terminate: srun passes SIGTERM on and exits once the step is gone.
    let mut c = alloc.spawn_step(Path::new(WORKER)).expect("srun starts");
    let mut out = Conn::new(c.stdout.try_clone().unwrap(), None).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while out.next_frame::<FromWorker>().is_none() {
        assert!(Instant::now() < deadline && !out.at_eof(), "no ready line");
        std::thread::sleep(Duration::from_millis(2));
        out.fill().unwrap();
    }
    let t = Instant::now();
    c.terminate().expect("SIGTERM srun");
    let status = c.child.wait().expect("wait srun");
    eprintln!(
        "[scancel] srun exited {status} {:?} after Step::terminate",
        t.elapsed()
    );
    assert_eq!(status.code(), Some(137));

    // Step::kill (SIGKILL to srun): slurmstepd ends the task on its own.
    let t = Instant::now();
    b.step_child.kill().expect("SIGKILL srun");
    let status = b.reap();
    b.read_to_eof();
    eprintln!(
        "[scancel] srun exited {status} and the step's stdout closed {:?} after SIGKILL",
        t.elapsed()
    );

    alloc.release().expect("release");
    assert_eq!(squeue_job(job), "", "job {job} still listed after release");
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_dropped_allocation_is_cancelled() {
    let _cluster = slurm_test();
    let alloc = allocate(1, "drop");
    let job = alloc.job_id();
    assert!(!squeue_job(job).is_empty(), "a granted job is listed");
    let (mut w, _, _) = Worker::start(&alloc);
    drop(alloc);
    assert_eq!(squeue_job(job), "", "job {job} still listed after drop");
    // Its step went with it.
    w.read_to_eof();
    assert!(!w.reap().success());
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_refused_allocation_says_why() {
    let _cluster = slurm_test();
    let mut req = request(1, "refused");
    req.partition = Some("no-such-partition".into());
    match Allocation::request(&req) {
        Err(SlurmError::Refused { message, .. }) => {
            assert!(message.contains("partition"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn noop_round_trips_are_fast() {
    let _cluster = slurm_test();
    let mut alloc = allocate(1, "latency");
    let (mut w, _, _) = Worker::start(&alloc);
    let mut times = Vec::with_capacity(1000);
    for unit in 0..1000 {
        let t = Instant::now();
        let outcome = w.call(unit, "noop", json!([]));
        times.push(t.elapsed());
        assert!(outcome.ok);
    }
    times.sort();
    let (median, p99) = (times[500], times[990]);
    eprintln!(
        "[latency] 1000 noop calls through srun: median {median:?}, p99 {p99:?}, max {:?}",
        times[999]
    );
    assert!(
        median < Duration::from_millis(20),
        "median round trip {median:?}"
    );
    w.input = None;
    w.read_to_eof();
    assert!(w.reap().success());
    alloc.release().expect("release");
}

/// How a step is ended before its replacement starts.
#[derive(Debug, Clone, Copy)]
enum Ending {
    SigkillSrun,
    SigtermSrun,
    Scancel,
    CloseStdin,
    WorkerCrash,
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_killed_step_is_replaced_in_both_modes() {
    let _cluster = slurm_test();
    let endings = [
        Ending::SigkillSrun,
        Ending::SigtermSrun,
        Ending::Scancel,
        Ending::CloseStdin,
        Ending::WorkerCrash,
    ];
    for mode in [StepMode::Exact, StepMode::Overlap] {
        let mut alloc = allocate(1, "replace");
        alloc.set_step_mode(mode);
        for ending in endings {
            let (mut old, _, _) = Worker::start(&alloc);
            match ending {
                Ending::SigkillSrun => old.step_child.kill().expect("SIGKILL srun"),
                Ending::SigtermSrun => old.terminate(),
                Ending::Scancel => alloc.cancel_step(&old.name).expect("scancel J.S"),
                Ending::CloseStdin => old.input = None,
                Ending::WorkerCrash => old.send(json!({"run": {"calls": [
                    {"unit": 1, "invocation": {"builtin": {"name": "crash", "args": [], "kwargs": {}}}}
                ]}})),
            }
            let status = old.reap();
            // With --exact the new step waits for the old one's CPU.
            let (mut new, _, ready) = Worker::start(&alloc);
            eprintln!(
                "[replace] {mode:?}, {ending:?} (srun {status}): replacement ready {ready:?} later"
            );
            assert_eq!(new.call(1, "square", json!([7])).value, json!(49));
            new.input = None;
            new.read_to_eof();
            new.reap();
        }
        alloc.release().expect("release");
    }
}

#[test]
#[cfg_attr(not(jobfile_slurm_tests), ignore = "needs Slurm: JOBFILE_TEST_SLURM=1")]
fn a_request_that_waits_too_long_times_out_and_is_withdrawn() {
    let _cluster = slurm_test();
    // Every CPU of every node, so that nothing is left for the next one.
    let env_number = |names: [&str; 2], default: usize| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok()?.parse().ok())
            .unwrap_or(default)
    };
    let cpus = env_number(["LOCAL_CLUSTER_CPUS", "LOCAL_SLURM_CPUS"], 2);
    let nodes = env_number(["LOCAL_CLUSTER_NODES", "LOCAL_SLURM_NODES"], 1);
    let mut whole = request(cpus * nodes, "busy");
    whole.nodes = Some(nodes as u32);
    let mut busy = Allocation::request(&whole)
        .unwrap_or_else(|e| panic!("Slurm is not usable (JOBFILE_TEST_SLURM=1): {e}"));
    let t = Instant::now();
    let waited = Allocation::request_within(&request(1, "waiting"), Duration::from_secs(2));
    match waited {
        Err(SlurmError::TimedOut { message, .. }) => {
            eprintln!("[timeout] timed out after {:?}: {message}", t.elapsed())
        }
        other => panic!("expected a timeout while all CPUs are taken, got {other:?}"),
    }
    let listed = squeue_all();
    assert_eq!(
        listed,
        format!("{}", busy.job_id()),
        "the pending request is withdrawn"
    );
    busy.release().expect("release");
}

/// Ids of every job `squeue` lists.
fn squeue_all() -> String {
    let out = std::process::Command::new("squeue")
        .args(["-h", "-o", "%A"])
        .output()
        .expect("squeue runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

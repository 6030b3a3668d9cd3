//! Helpers shared by the integration tests: run the built `jobfile` binary
//! ([`jobfile`], the one way to start it; [`Job::run`] for a job file), parse its JSON-lines results, turn `started` and
//! `duration_ms` into intervals, and scan `/proc` for processes a run left
//! behind.
//!
//! Every run gets a unique marker in the environment variable
//! `JOBFILE_TEST_MARKER`. The engine, its fork server, its workers and every
//! process they start inherit it, so a process that carries the marker in its
//! environment (or its command line) belongs to that run, whoever its parent
//! is now.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tempfile::TempDir;

/// The name of the environment variable that marks a run's processes.
pub const MARKER_VAR: &str = "JOBFILE_TEST_MARKER";

/// A run that takes longer than this is a hang: it is killed and the test
/// fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// The built binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_jobfile")
}

/// A path under the repository (`jobs/...`, `tests/fixtures/...`).
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A string no other test (nor another run of this test) uses.
pub fn unique_marker(label: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("jfmark-{label}-{}-{n}-{nanos}", std::process::id())
}

/// A job file in its own temporary folder, with room for the files its tasks
/// read or create.
pub struct Job {
    pub dir: TempDir,
    pub path: PathBuf,
}

impl Job {
    /// Writes `toml` as `job.toml` in a new temporary folder.
    pub fn new(toml: &str) -> Job {
        let dir = tempfile::Builder::new()
            .prefix("jobfile-run-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("job.toml");
        std::fs::write(&path, toml).unwrap();
        Job { dir, path }
    }

    /// Copies a fixture from `tests/fixtures/run/` into a new temporary
    /// folder, so that the files it creates land there.
    pub fn fixture(name: &str) -> Job {
        let text = std::fs::read_to_string(repo_path(&format!("tests/fixtures/run/{name}")))
            .unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        Job::new(&text)
    }

    /// A path in the job's folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The job's folder as a string, for templates in job files.
    pub fn dir_str(&self) -> String {
        self.dir.path().to_str().unwrap().to_owned()
    }

    /// Writes a file in the job's folder (making parent folders).
    pub fn write(&self, name: &str, contents: &str) {
        let path = self.file(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, contents).unwrap();
    }

    /// `jobfile SUBCOMMAND job.toml`, from the current folder, to be
    /// given more arguments and run.
    pub fn command(&self, subcommand: &str) -> Cli {
        jobfile([OsStr::new(subcommand), self.path.as_os_str()])
    }

    /// `jobfile run job.toml ARGS...`, waited for.
    pub fn run(&self, args: &[&str]) -> RunOutput {
        self.command("run").args(args).output()
    }

    /// `jobfile run job.toml ARGS...` from the folder `cwd`, waited for.
    pub fn run_from(&self, cwd: &Path, args: &[&str]) -> RunOutput {
        Running::start(&self.path, args, cwd).wait()
    }

    /// `jobfile run job.toml ARGS...`, started and left running.
    pub fn spawn(&self, args: &[&str]) -> Running {
        Running::start(&self.path, args, self.dir.path())
    }
}

/// `jobfile run PATH ARGS...` from the current folder, waited for.
pub fn run_file(path: &Path, args: &[&str]) -> RunOutput {
    jobfile([OsStr::new("run"), path.as_os_str()])
        .args(args)
        .output()
}

/// `jobfile ARGS...` as every test starts it: from the current folder
/// unless [`Cli::dir`] says otherwise, with colours off, standard input
/// empty, both outputs captured, the run's [`MARKER_VAR`] set, and a
/// [`RUN_LIMIT`] after which it is killed and the test fails.
pub fn jobfile<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Cli {
    let mut command = Command::new(bin());
    command
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Cli { command }
}

/// A `jobfile` command line being built; see [`jobfile`].
pub struct Cli {
    command: Command,
}

impl Cli {
    /// More arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Cli {
        self.command.args(args);
        self
    }

    /// Runs from `dir`.
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Cli {
        self.command.current_dir(dir);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cli {
        self.command.env(key, value);
        self
    }

    /// Sets each of `vars`.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Cli {
        for (k, v) in vars {
            self.command.env(k, v);
        }
        self
    }

    /// Removes an environment variable (`NO_COLOR` included).
    pub fn env_remove(mut self, key: &str) -> Cli {
        self.command.env_remove(key);
        self
    }

    /// Standard output goes to `to` instead of being captured.
    pub fn stdout(mut self, to: impl Into<Stdio>) -> Cli {
        self.command.stdout(to);
        self
    }

    /// Standard error goes to `to` instead of being captured.
    pub fn stderr(mut self, to: impl Into<Stdio>) -> Cli {
        self.command.stderr(to);
        self
    }

    /// Started and left running, its captured outputs read as they come.
    pub fn spawn(self) -> Running {
        let (mut child, marker) = self.child();
        let stdout = child.stdout.take().map(read_all);
        let stderr = child.stderr.take().map(read_all);
        Running {
            child,
            marker,
            started: Instant::now(),
            stdout,
            stderr,
        }
    }

    /// Started, with its pipes left to the caller, and its marker.
    pub fn child(mut self) -> (Child, String) {
        let marker = unique_marker("run");
        let child = self
            .command
            .env(MARKER_VAR, &marker)
            .spawn()
            .expect("start jobfile");
        (child, marker)
    }

    /// Run to its end.
    pub fn output(self) -> RunOutput {
        self.spawn().wait()
    }
}

/// A `jobfile` that is still going.
pub struct Running {
    pub child: Child,
    pub marker: String,
    started: Instant,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    fn start(path: &Path, args: &[&str], cwd: &Path) -> Running {
        jobfile([OsStr::new("run"), path.as_os_str()])
            .args(args)
            .dir(cwd)
            .spawn()
    }

    /// The engine's process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the engine.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; it has not been reaped yet,
        // so the pid cannot have been reused.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Waits for the engine to exit (at most [`RUN_LIMIT`] after it started;
    /// then it is killed and the test fails).
    pub fn wait(mut self) -> RunOutput {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > RUN_LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("jobfile did not end within {RUN_LIMIT:?}: a hang");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let elapsed = self.started.elapsed();
        let stdout = self.stdout.take().map(|h| h.join().unwrap());
        let stderr = self.stderr.take().map(|h| h.join().unwrap());
        let (stdout, stderr) = (stdout.unwrap_or_default(), stderr.unwrap_or_default());
        RunOutput::new(status, stdout, stderr, self.marker.clone(), elapsed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed assertion must not leave the engine running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_all<R: Read + Send + 'static>(mut reader: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = reader.read_to_end(&mut buf);
        buf
    })
}

/// What a finished `jobfile run` left: its exit status, its output and the
/// records parsed from standard output (when it is JSON lines).
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub marker: String,
    pub elapsed: Duration,
}

impl RunOutput {
    fn new(
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        marker: String,
        elapsed: Duration,
    ) -> RunOutput {
        RunOutput {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            marker,
            elapsed,
        }
    }

    /// The exit code; panics (showing stderr) when the engine died by a
    /// signal.
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(code) => code,
            None => panic!(
                "jobfile died by {:?}; stderr:\n{}",
                self.status, self.stderr
            ),
        }
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn assert_code(&self, expected: i32) -> &RunOutput {
        assert_eq!(
            self.status.code(),
            Some(expected),
            "exit status {:?}, expected {expected}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The records on standard output (JSON lines).
    pub fn records(&self) -> Vec<Record> {
        parse_jsonl(&self.stdout)
    }

    /// The records, without the final `@shared` one.
    pub fn task_records(&self) -> Vec<Record> {
        self.records()
            .into_iter()
            .filter(|r| r.task() != "@shared")
            .collect()
    }

    /// Asserts that no process of this run is left (polls up to 3 s).
    pub fn assert_nothing_left(&self) {
        assert_no_process_marked(&self.marker);
    }
}

/// Parses JSON lines; every line must be one JSON object.
pub fn parse_jsonl(text: &str) -> Vec<Record> {
    text.lines()
        .enumerate()
        .map(|(n, line)| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line:?}", n + 1));
            assert!(value.is_object(), "line {} is not an object: {line}", n + 1);
            Record(value)
        })
        .collect()
}

/// One result record.
#[derive(Clone, Debug)]
pub struct Record(pub Value);

impl Record {
    pub fn get(&self, key: &str) -> &Value {
        self.0.get(key).unwrap_or(&Value::Null)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.get(key).is_some()
    }

    pub fn task(&self) -> &str {
        self.get("task").as_str().expect("task is a string")
    }

    pub fn status(&self) -> &str {
        self.get("status").as_str().expect("status is a string")
    }

    pub fn value(&self) -> &Value {
        self.get("value")
    }

    pub fn index(&self) -> Option<u64> {
        self.get("index").as_u64()
    }

    pub fn error(&self) -> &str {
        self.get("error").as_str().unwrap_or("")
    }

    pub fn stdout(&self) -> &str {
        self.get("stdout").as_str().unwrap_or("")
    }

    pub fn stderr(&self) -> &str {
        self.get("stderr").as_str().unwrap_or("")
    }

    pub fn worker(&self) -> i64 {
        self.get("worker").as_i64().expect("worker is a number")
    }

    /// When the task started and ended, from `started` and `duration_ms`.
    pub fn interval(&self) -> Interval {
        let started = self.get("started").as_str().expect("started is a string");
        let start = humantime::parse_rfc3339(started)
            .unwrap_or_else(|e| panic!("started {started:?} is not RFC 3339: {e}"));
        let ms = self
            .get("duration_ms")
            .as_f64()
            .expect("duration_ms is a number");
        Interval {
            start,
            end: start + Duration::from_secs_f64(ms / 1000.0),
        }
    }
}

/// The records of a run, one line each, for assertion messages.
pub fn show(records: &[Record]) -> String {
    records
        .iter()
        .map(|r| r.0.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The record of task `id` (not a map item); panics when there is not
/// exactly one.
pub fn record<'a>(records: &'a [Record], id: &str) -> &'a Record {
    let found: Vec<&Record> = records.iter().filter(|r| r.task() == id).collect();
    assert_eq!(found.len(), 1, "records of {id}:\n{}", show(records));
    found[0]
}

/// The task ids, in output order.
pub fn ids(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.task().to_owned()).collect()
}

/// The time a task ran, from its record. Timestamps have millisecond
/// precision, so comparisons allow a few milliseconds of slack.
#[derive(Clone, Copy, Debug)]
pub struct Interval {
    pub start: SystemTime,
    pub end: SystemTime,
}

/// The slack allowed when comparing intervals: `started` is rounded to the
/// millisecond and `duration_ms` to a tenth.
pub const SLACK: Duration = Duration::from_millis(5);

impl Interval {
    /// True when the two ran at the same time for more than [`SLACK`].
    pub fn overlaps(&self, other: &Interval) -> bool {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        end.duration_since(start)
            .map(|d| d > SLACK)
            .unwrap_or(false)
    }

    /// True when `self` started no earlier than `other` ended (within
    /// [`SLACK`]).
    pub fn starts_after(&self, other: &Interval) -> bool {
        self.start + SLACK >= other.end
    }

    /// How far apart the two starts are.
    pub fn start_gap(&self, other: &Interval) -> Duration {
        match self.start.duration_since(other.start) {
            Ok(d) => d,
            Err(e) => e.duration(),
        }
    }
}

/// Polls `cond` every 10 ms for up to `limit`; true when it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (up to 10 s) for a file a task creates.
pub fn wait_for_file(path: &Path) {
    assert!(
        wait_until(Duration::from_secs(10), || path.exists()),
        "{} never appeared",
        path.display()
    );
}

/// Asserts that `xml` is valid against Jenkins' JUnit schema
/// (`tests/fixtures/junit/junit-10.xsd`), when xmllint is installed.
pub fn assert_valid_junit(xml: &str) {
    let installed = Command::new("xmllint")
        .arg("--version")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("xmllint is missing; not validating");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.xml");
    std::fs::write(&report, xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(repo_path("tests/fixtures/junit/junit-10.xsd"))
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of attribute `key` of an XML start tag, entities resolved.
pub fn xml_attr(tag: &quick_xml::events::BytesStart<'_>, key: &str) -> Option<String> {
    tag.attributes()
        .flatten()
        .find(|a| a.key.into_inner() == key)
        .map(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .unwrap()
                .into_owned()
        })
}

// ----- /proc -----

/// A live process as `/proc` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub comm: String,
    pub state: char,
    /// Start time in clock ticks since boot: with the pid, it names one
    /// process even if the pid is reused.
    pub start: u64,
    pub cmdline: String,
}

/// Reads one process; `None` when it is gone (or unreadable).
pub fn read_proc(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm is in parentheses and may hold spaces or parentheses itself.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let state = rest.first()?.chars().next()?;
    let ppid = rest.get(1)?.parse().ok()?;
    // Field 22 (starttime); `rest` starts at field 3.
    let start = rest.get(19)?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    Some(Proc {
        pid,
        ppid,
        comm,
        state,
        start,
        cmdline,
    })
}

/// Every live process (zombies included).
pub fn all_procs() -> Vec<Proc> {
    let mut procs = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return procs;
    };
    for entry in dir.flatten() {
        if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            if let Some(p) = read_proc(pid) {
                procs.push(p);
            }
        }
    }
    procs
}

/// True when the process is alive and not a zombie.
pub fn is_running(p: &Proc) -> bool {
    match read_proc(p.pid) {
        Some(now) => now.start == p.start && now.state != 'Z' && now.state != 'X',
        None => false,
    }
}

/// Processes (not zombies, not this test) whose command line or environment
/// holds `marker`.
pub fn procs_marked(marker: &str) -> Vec<Proc> {
    let me = std::process::id() as i32;
    all_procs()
        .into_iter()
        .filter(|p| p.pid != me && p.state != 'Z' && p.state != 'X')
        .filter(|p| {
            if p.cmdline.contains(marker) {
                return true;
            }
            std::fs::read(format!("/proc/{}/environ", p.pid))
                .map(|env| contains(&env, marker.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that no process holds `marker` (in its command line or
/// environment), polling up to 3 s; kills the leftovers before failing so
/// they do not outlive the test.
pub fn assert_no_process_marked(marker: &str) {
    let mut left = Vec::new();
    let gone = wait_until(Duration::from_secs(3), || {
        left = procs_marked(marker);
        left.is_empty()
    });
    if !gone {
        kill_all(&left);
        panic!(
            "processes with marker {marker} still running:\n{}",
            describe(&left)
        );
    }
}

/// The live descendants of `pid` (children, their children, ...).
pub fn descendants(pid: i32) -> Vec<Proc> {
    let procs = all_procs();
    let mut children: HashMap<i32, Vec<&Proc>> = HashMap::new();
    for p in &procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![pid];
    while let Some(parent) = stack.pop() {
        for child in children.get(&parent).into_iter().flatten() {
            if seen.insert(child.pid) {
                out.push((*child).clone());
                stack.push(child.pid);
            }
        }
    }
    out
}

/// Asserts that every process in `procs` is gone (polls up to `limit`).
pub fn assert_all_gone(procs: &[Proc], limit: Duration) {
    let mut left = Vec::new();
    let gone = wait_until(limit, || {
        left = procs.iter().filter(|p| is_running(p)).cloned().collect();
        left.is_empty()
    });
    if !gone {
        kill_all(&left);
        panic!("still running after {limit:?}:\n{}", describe(&left));
    }
}

fn describe(procs: &[Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("  pid {} ppid {} ({}) {}", p.pid, p.ppid, p.comm, p.cmdline))
        .collect::<Vec<_>>()
        .join("\n")
}

fn kill_all(procs: &[Proc]) {
    for p in procs {
        if is_running(p) {
            // SAFETY: kill(2) on a pid we just checked still names the same
            // process (same start time).
            unsafe { libc::kill(p.pid, libc::SIGKILL) };
        }
    }
}

/// Sends `signal` to `pid`.
pub fn send_signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory effects; the callers pass a pid they just
    // found in /proc.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

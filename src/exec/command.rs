//! Running one external command for a worker, and supervising it until
//! nothing of it is left.
//!
//! Owns: starting the child (its own process group, `PR_SET_PDEATHSIG`,
//! stdin from `/dev/null`), reading stdout and stderr together with `poll`,
//! capping what is kept, cutting lines for the caller, waiting for the exit
//! through a pidfd, the timeout (SIGTERM to the group, SIGKILL after the
//! grace period), cancellation through a watched fd, and the final SIGKILL to
//! the whole group followed by reaping.
//!
//! Must not: start threads (workers are single-threaded and fork), install
//! signal handlers, block outside `poll`, reap any process it did not start
//! (it never waits on pid -1), or know about tasks, records or formats: it
//! returns raw bytes and an exit status, and the worker makes a record of
//! them.
//!
//! The caller must not reap children with `waitpid(-1, ..)` while [`run`] is
//! active, or the command's exit status may be lost.

use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFlags, PollTimeout};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

use super::capture::Pipe;
use super::process::pidfd_open;
use super::readiness::{poll_in, poll_timeout};
use super::spawn;

/// Bytes of stdout, and of stderr, kept by default (16 MiB each).
pub const DEFAULT_CAPTURE_LIMIT: usize = 16 * 1024 * 1024;

/// Time between SIGTERM and SIGKILL by default.
pub const DEFAULT_GRACE: Duration = super::process::GRACE;

/// How long the pipes are still read after the command's main process has
/// exited. A background process that keeps them open longer is killed
/// with the rest of the group; what it wrote until then is kept.
pub const LINGER: Duration = Duration::from_millis(100);

/// How long to wait for killed members of the group that were reparented to
/// the caller (when it is a child subreaper) to become reapable.
const REAP_WAIT: Duration = Duration::from_millis(200);

/// How long a command runs before [`Events::on_running`].
pub const RUNNING_AFTER: Duration = Duration::from_millis(2);

/// Poll interval used only when the kernel has no `pidfd_open` (before 5.3).
const FALLBACK_TICK: Duration = Duration::from_millis(10);

/// What to run and how to supervise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Program and arguments. A program without a `/` is looked up in `PATH`
    /// (the child's, if `env` sets it). Shell functions come as
    /// `["/bin/sh", "-c", script, "sh", arg1, ...]`.
    pub argv: Vec<String>,
    /// Variables added to (or replacing those of) the inherited environment.
    pub env: Vec<(String, String)>,
    /// Working directory of the child; `None` keeps the caller's.
    pub cwd: Option<PathBuf>,
    /// Wall-clock limit from the start; `None` for no limit.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when the command is stopped.
    pub grace: Duration,
    /// Bytes kept per stream; the rest is read and dropped.
    pub capture_limit: usize,
    /// Whether [`Events::on_line`] is called for each line.
    pub forward_lines: bool,
}

impl CommandSpec {
    /// A spec for `argv` with no extra environment, the caller's working
    /// directory, no timeout, [`DEFAULT_GRACE`], [`DEFAULT_CAPTURE_LIMIT`] and
    /// no line forwarding.
    pub fn new(argv: Vec<String>) -> Self {
        CommandSpec {
            argv,
            env: Vec::new(),
            cwd: None,
            timeout: None,
            grace: DEFAULT_GRACE,
            capture_limit: DEFAULT_CAPTURE_LIMIT,
            forward_lines: false,
        }
    }
}

/// One of the child's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What [`Events::on_watch`] wants done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep running and keep watching.
    Continue,
    /// Stop the command: SIGTERM to its group, SIGKILL after the grace
    /// period. The outcome is marked `cancelled`.
    Cancel,
    /// Keep running, but stop polling the watch fd for this command (for
    /// instance because it reached end of file).
    Unwatch,
}

/// Callbacks from [`run`] while the command runs. All are called on the
/// caller's thread, between polls; they should return quickly.
pub trait Events {
    /// The child has started; `pid` is also the id of its process group.
    fn on_spawn(&mut self, pid: i32) {
        let _ = pid;
    }

    /// The command has been running for [`RUNNING_AFTER`] (called once,
    /// from the poll loop, while its main process runs; never for a command
    /// that ends sooner). For news that only matters for a command that
    /// lasts: telling another process about the group wakes that process,
    /// which for a command of a millisecond costs as much as the command.
    fn on_running(&mut self, pid: i32) {
        let _ = pid;
    }

    /// A line the command wrote, without its `'\n'`. Called only when
    /// [`CommandSpec::forward_lines`] is set, in the order each stream wrote
    /// them, whether or not the capture limit was reached. A last line with
    /// no `'\n'` is delivered at the end. A line longer than the capture
    /// limit (at least 64 KiB) is delivered in pieces of that length.
    fn on_line(&mut self, stream: Stream, line: &[u8]) {
        let _ = (stream, line);
    }

    /// The watch fd is readable, hung up or in error. The callee should
    /// consume what is readable; a fd that stays readable without being
    /// read makes this be called again at once. When the fd is only hung up
    /// (no data), returning [`Control::Continue`] stops watching it.
    fn on_watch(&mut self) -> Control {
        Control::Continue
    }
}

/// [`Events`] that ignores everything and never cancels.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl Events for NoEvents {}

/// How the command ended and what it wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The exit status, when the main process exited by itself.
    pub exit_code: Option<i32>,
    /// The signal number, when the main process was killed by a signal.
    pub signal: Option<i32>,
    /// The timeout expired and the command was stopped.
    pub timed_out: bool,
    /// [`Events::on_watch`] asked to cancel and the command was stopped.
    /// At most one of `timed_out` and `cancelled` is set: the first reason
    /// to stop wins.
    pub cancelled: bool,
    /// Captured standard output, at most `capture_limit` bytes.
    pub stdout: Vec<u8>,
    /// Captured standard error, at most `capture_limit` bytes.
    pub stderr: Vec<u8>,
    /// Some output of either stream was dropped because of the limit.
    pub truncated: bool,
}

impl Outcome {
    /// Exited with status 0, and was neither timed out nor cancelled.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled
    }
}

/// Why a command could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// `argv` was empty.
    #[error("empty command: no program to run")]
    EmptyArgv,
    /// The program does not exist (or is not in `PATH`).
    #[error("no such file or directory: `{program}`")]
    NotFound {
        /// The program as given.
        program: String,
    },
    /// The program exists but may not be executed.
    #[error("permission denied: `{program}`")]
    PermissionDenied {
        /// The program as given.
        program: String,
    },
    /// The working directory does not exist or is not a directory.
    #[error("bad working directory `{}`: {source}", path.display())]
    BadCwd {
        /// The directory as given.
        path: PathBuf,
        /// What is wrong with it.
        source: io::Error,
    },
    /// An environment variable name that cannot be set.
    #[error("bad environment variable name `{name}`: it must be non-empty and hold no `=` or NUL")]
    BadEnv {
        /// The name as given.
        name: String,
    },
    /// Any other reason the program could not be started.
    #[error("could not start `{program}`: {source}")]
    Other {
        /// The program as given.
        program: String,
        /// The error from the operating system.
        source: io::Error,
    },
    /// The command started, but supervising it failed; it has been killed
    /// (its whole group) and, where possible, reaped.
    #[error("lost track of `{program}` (pid {pid}): {source}")]
    Supervise {
        /// The program as given.
        program: String,
        /// The pid (and process group) of the command.
        pid: i32,
        /// The error from the operating system.
        source: io::Error,
    },
}

/// Runs `spec` to its end and returns how it ended and what it wrote.
///
/// The child gets a process group of its own and dies with the caller
/// (`PR_SET_PDEATHSIG`). Its stdout and stderr are read together, each
/// capped at `spec.capture_limit`. It is stopped (SIGTERM to the group,
/// SIGKILL after `spec.grace`) when `spec.timeout` expires or when
/// `events.on_watch` returns [`Control::Cancel`]; `watch` is polled only
/// while the main process runs and the command is not being stopped.
///
/// Once the main process has exited, the pipes are read until end of file,
/// or for [`LINGER`] at most if a background process keeps them open. Then
/// the whole group is killed with SIGKILL, so nothing the command started
/// in its group outlives this call, and the main process is reaped. When
/// the caller is a child subreaper, killed group members reparented to it
/// are reaped too, with `waitid(P_PGID, ..)` so that no other child of the
/// caller is ever touched. Processes that left the group (`setsid`) escape
/// this; `PR_SET_PDEATHSIG` does not reach them either.
pub fn run(
    spec: &CommandSpec,
    watch: Option<BorrowedFd<'_>>,
    events: &mut dyn Events,
) -> Result<Outcome, SpawnError> {
    let child = spawn(spec)?;
    let program = spec.argv.first().cloned().unwrap_or_default();
    let pid = child.pid;
    let raw_pid = pid.as_raw();
    let mut sup = Supervisor {
        spec,
        pid,
        out: Pipe::nonblocking(
            Stream::Stdout,
            Some(child.stdout),
            spec.capture_limit,
            spec.forward_lines,
        ),
        err: Pipe::nonblocking(
            Stream::Stderr,
            Some(child.stderr),
            spec.capture_limit,
            spec.forward_lines,
        ),
        outcome: Outcome::default(),
        kill_at: None,
        killed: false,
    };
    events.on_spawn(raw_pid);

    let supervised = sup.supervise(watch, events);
    // Whatever happened, the group is killed while the main process is not
    // yet reaped: its pid, and so the group id, cannot be reused meanwhile.
    sup.kill_group(!matches!(supervised, Ok(true)));
    // Killed: the engine need not kill it again should this worker die.
    super::groups::set(0);
    sup.out.drain(&mut sup.outcome.truncated, events);
    sup.err.drain(&mut sup.outcome.truncated, events);
    sup.out.finish(events);
    sup.err.finish(events);
    let status = wait_exit(pid);
    reap_group(pid);

    let lost = |source| SpawnError::Supervise {
        program: program.clone(),
        pid: raw_pid,
        source,
    };
    supervised.map_err(lost)?;
    let (exit_code, signal) = status.map_err(lost)?;
    let mut outcome = sup.outcome;
    outcome.exit_code = exit_code;
    outcome.signal = signal;
    outcome.stdout = sup.out.captured;
    outcome.stderr = sup.err.captured;
    Ok(outcome)
}

/// Starts the child with its pipes, group and death signal.
fn spawn(spec: &CommandSpec) -> Result<spawn::Child, SpawnError> {
    let program = spec.argv.first().ok_or(SpawnError::EmptyArgv)?;
    if let Some(cwd) = &spec.cwd {
        // A missing cwd would come back from the child as the program's
        // NotFound; check first so the error names the right thing.
        match std::fs::metadata(cwd) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(SpawnError::BadCwd {
                    path: cwd.clone(),
                    source: io::Error::from(ErrorKind::NotADirectory),
                });
            }
            Err(source) => {
                return Err(SpawnError::BadCwd {
                    path: cwd.clone(),
                    source,
                });
            }
        }
    }
    if let Some((name, _)) = spec
        .env
        .iter()
        .find(|(name, _)| name.is_empty() || name.contains(['=', '\0']))
    {
        return Err(SpawnError::BadEnv { name: name.clone() });
    }
    spawn::spawn(spec).map_err(|failure| {
        let (spawn::Failure::Setup(source) | spawn::Failure::Child(source)) = failure;
        let program = program.clone();
        match source.kind() {
            ErrorKind::NotFound => SpawnError::NotFound { program },
            ErrorKind::PermissionDenied => SpawnError::PermissionDenied { program },
            _ => SpawnError::Other { program, source },
        }
    })
}

/// Reaps the main process: its exit code, or the signal that killed it.
fn wait_exit(pid: Pid) -> io::Result<(Option<i32>, Option<i32>)> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok((Some(code), None)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok((None, Some(sig as i32))),
            // Stopped or continued: not asked for; keep waiting.
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The state of one running command.
struct Supervisor<'a> {
    spec: &'a CommandSpec,
    pid: Pid,
    out: Pipe,
    err: Pipe,
    outcome: Outcome,
    /// When SIGKILL follows the SIGTERM already sent; `None` until stopping.
    kill_at: Option<Instant>,
    killed: bool,
}

impl Supervisor<'_> {
    /// Runs until the main process has exited and the pipes are closed or
    /// the linger is over. Never reaps. Returns whether the main process is
    /// known to have exited.
    fn supervise(
        &mut self,
        watch: Option<BorrowedFd<'_>>,
        events: &mut dyn Events,
    ) -> io::Result<bool> {
        let start = Instant::now();
        let deadline = self.spec.timeout.and_then(|t| start.checked_add(t));
        // Without pidfd (Linux before 5.3), fall back to checking the child
        // every FALLBACK_TICK.
        let pidfd = pidfd_open(self.pid).ok();
        let mut watching = watch.is_some();
        let mut exited_at: Option<Instant> = None;
        let mut running_at = start.checked_add(RUNNING_AFTER);

        loop {
            let now = Instant::now();
            if exited_at.is_none() {
                if running_at.is_some_and(|r| now >= r) {
                    running_at = None;
                    events.on_running(self.pid.as_raw());
                }
                if self.kill_at.is_none() && deadline.is_some_and(|d| now >= d) {
                    self.outcome.timed_out = true;
                    self.stop(now);
                }
                if !self.killed && self.kill_at.is_some_and(|k| now >= k) {
                    self.kill_group(true);
                }
            }
            let both_closed = self.out.fd.is_none() && self.err.fd.is_none();
            if let Some(at) = exited_at {
                if both_closed || now >= at + LINGER {
                    return Ok(true);
                }
            }

            // The earliest moment something must happen without a fd event.
            let mut wake: Option<Instant> = None;
            let mut wake_at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
            match exited_at {
                Some(at) => wake_at(at + LINGER),
                None => {
                    if let Some(r) = running_at {
                        wake_at(r);
                    }
                    if let (None, Some(d)) = (self.kill_at, deadline) {
                        wake_at(d);
                    }
                    if let (false, Some(k)) = (self.killed, self.kill_at) {
                        wake_at(k);
                    }
                    if pidfd.is_none() {
                        wake_at(now + FALLBACK_TICK);
                    }
                }
            }
            let timeout = wake.map_or(PollTimeout::NONE, |w| poll_timeout(w - now));

            let running = exited_at.is_none();
            let watch_fd = watch.filter(|_| running && watching && self.kill_at.is_none());
            let pid_fd = pidfd.as_ref().filter(|_| running).map(|fd| fd.as_fd());
            let fds = [
                self.out.fd.as_ref().map(|f| f.as_fd()),
                self.err.fd.as_ref().map(|f| f.as_fd()),
                pid_fd,
                watch_fd,
            ];
            if fds.iter().all(Option::is_none) && timeout == PollTimeout::NONE {
                // Nothing to wait for: cannot happen, as the pidfd (or the
                // tick) is there until the main process has exited, and
                // after that the linger bounds the wait. Guard anyway.
                return Ok(exited_at.is_some());
            }
            let ready = match poll_in(fds, timeout) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };

            if !ready[0].is_empty() {
                self.out.read_once(&mut self.outcome.truncated, events);
            }
            if !ready[1].is_empty() {
                self.err.read_once(&mut self.outcome.truncated, events);
            }
            if running {
                let exited = match &pidfd {
                    Some(_) => !ready[2].is_empty(),
                    None => has_exited(self.pid)?,
                };
                if exited {
                    exited_at = Some(Instant::now());
                }
            }
            let watch_ready = ready[3];
            if !watch_ready.is_empty() && exited_at.is_none() {
                match events.on_watch() {
                    Control::Cancel => {
                        self.outcome.cancelled = true;
                        self.stop(Instant::now());
                    }
                    Control::Unwatch => watching = false,
                    Control::Continue => {
                        if !watch_ready.contains(PollFlags::POLLIN) {
                            // Hung up or in error with nothing to read: it
                            // would be reported again at once, forever.
                            watching = false;
                        }
                    }
                }
            }
        }
    }

    /// Sends SIGTERM to the group and schedules SIGKILL after the grace.
    fn stop(&mut self, now: Instant) {
        signal_group(self.pid, Signal::SIGTERM);
        // A stopped process acts on SIGTERM only once continued.
        signal_group(self.pid, Signal::SIGCONT);
        self.kill_at = Some(now.checked_add(self.spec.grace).unwrap_or(now));
        if self.spec.grace.is_zero() {
            self.kill_group(true);
        }
    }

    /// SIGKILL to the whole group, and to the main process itself in case
    /// it left the group, unless it is known to have exited already.
    fn kill_group(&mut self, main_may_run: bool) {
        signal_group(self.pid, Signal::SIGKILL);
        if main_may_run {
            // The main process is not reaped yet, so its pid is still ours.
            let _ = kill(self.pid, Signal::SIGKILL);
        }
        self.killed = true;
    }
}

/// Sends `signal` to the process group `pgid`; a group that is already gone
/// (ESRCH) is fine.
fn signal_group(pgid: Pid, signal: Signal) {
    let _ = killpg(pgid, signal);
}

/// Whether the (unreaped) child `pid` has exited, without reaping it.
fn has_exited(pid: Pid) -> io::Result<bool> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(pid), flags) {
        Ok(WaitStatus::StillAlive) => Ok(false),
        Ok(_) => Ok(true),
        Err(Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Reaps, without blocking for long, members of the group `pgid` that were
/// reparented to the caller (it is a child subreaper, or pid 1) and have
/// been killed. `waitid(P_PGID)` touches only children in that group, which
/// are all part of this command; the caller's other children are left
/// alone. Returns at once when the caller has no child in the group, the
/// usual case; otherwise waits at most [`REAP_WAIT`] for the killed ones to
/// die (SIGKILL is not instantaneous), polling with `WNOHANG`.
fn reap_group(pgid: Pid) {
    let give_up = Instant::now() + REAP_WAIT;
    loop {
        match waitid(Id::PGid(pgid), WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG) {
            Ok(WaitStatus::StillAlive) => {
                // Killed, but not dead yet (SIGKILL is delivered
                // asynchronously). Wait a little, then leave them: they are
                // dead soon, and only a zombie would remain.
                if Instant::now() >= give_up {
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(_) | Err(Errno::EINTR) => {}
            // ECHILD: no child left in the group.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;
    use std::os::fd::OwnedFd;
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn sh(script: &str) -> CommandSpec {
        CommandSpec::new(vec!["/bin/sh".into(), "-c".into(), script.into()])
    }

    /// A number no other test (or run) uses, to find our processes in /proc.
    fn marker() -> String {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        format!(
            "{}{:04}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Pids of live processes whose command line holds `needle`.
    fn processes_with(needle: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!("{name}: {cmdline}"));
            }
        }
        found
    }

    #[derive(Default)]
    struct Recorder {
        pid: Option<i32>,
        running: Vec<i32>,
        lines: Vec<(Stream, String)>,
        watch_calls: usize,
    }

    impl Events for Recorder {
        fn on_spawn(&mut self, pid: i32) {
            self.pid = Some(pid);
        }
        fn on_running(&mut self, pid: i32) {
            self.running.push(pid);
        }
        fn on_line(&mut self, stream: Stream, line: &[u8]) {
            self.lines
                .push((stream, String::from_utf8_lossy(line).into_owned()));
        }
        fn on_watch(&mut self) -> Control {
            self.watch_calls += 1;
            Control::Continue
        }
    }

    #[test]
    fn captures_stdout_and_stderr() {
        let mut rec = Recorder::default();
        let out = run(&sh("echo hello; echo oops >&2"), None, &mut rec).unwrap();
        assert_eq!(out.stdout, b"hello\n");
        assert_eq!(out.stderr, b"oops\n");
        assert_eq!(out.exit_code, Some(0));
        assert_eq!(out.signal, None);
        assert!(out.success());
        assert!(!out.truncated && !out.timed_out && !out.cancelled);
        assert!(rec.pid.is_some_and(|p| p > 0));
    }

    #[test]
    fn on_running_comes_once_for_a_command_that_lasts_and_not_for_a_quick_one() {
        let mut rec = Recorder::default();
        run(&sh("sleep 0.2"), None, &mut rec).unwrap();
        assert_eq!(rec.running, [rec.pid.unwrap()]);
        let mut rec = Recorder::default();
        run(&CommandSpec::new(vec!["/bin/true".into()]), None, &mut rec).unwrap();
        assert!(rec.running.len() <= 1, "{:?}", rec.running);
    }

    #[test]
    fn exit_status_is_reported() {
        let out = run(&sh("exit 3"), None, &mut NoEvents).unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.signal, None);
        assert!(!out.success());
    }

    #[test]
    fn env_cwd_and_null_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh("echo \"$GREETING\"; pwd; cat; echo \"$1\"");
        spec.argv.extend(["sh".into(), "first arg".into()]);
        spec.env.push(("GREETING".into(), "hi there".into()));
        spec.cwd = Some(dir.path().to_path_buf());
        let out = run(&spec, None, &mut NoEvents).unwrap();
        let want = format!(
            "hi there\n{}\nfirst arg\n",
            dir.path().canonicalize().unwrap().display()
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
        assert_eq!(out.exit_code, Some(0));
    }

    #[test]
    fn segfault_gives_the_signal() {
        let out = run(&sh("kill -SEGV $$"), None, &mut NoEvents).unwrap();
        assert_eq!(out.signal, Some(libc::SIGSEGV));
        assert_eq!(out.exit_code, None);
    }

    #[test]
    fn timeout_terminates_the_group() {
        let mut spec = sh("sleep 30");
        spec.timeout = Some(Duration::from_millis(200));
        let started = Instant::now();
        let out = run(&spec, None, &mut NoEvents).unwrap();
        assert!(out.timed_out && !out.cancelled);
        assert_eq!(out.signal, Some(libc::SIGTERM));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn timeout_kills_a_child_that_ignores_term() {
        let m = marker();
        let mut spec = sh(&format!(
            "trap '' TERM; echo ready; sleep 30.{m}; echo late"
        ));
        spec.timeout = Some(Duration::from_millis(300));
        spec.grace = Duration::from_millis(300);
        let started = Instant::now();
        let out = run(&spec, None, &mut NoEvents).unwrap();
        let took = started.elapsed();
        assert!(out.timed_out);
        assert_eq!(out.signal, Some(libc::SIGKILL));
        assert_eq!(out.stdout, b"ready\n");
        assert!(took >= Duration::from_millis(600), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(processes_with(&format!("30.{m}")), Vec::<String>::new());
    }

    #[test]
    fn background_grandchild_is_killed() {
        let m = marker();
        let started = Instant::now();
        let out = run(&sh(&format!("sleep 30.{m} & echo hi")), None, &mut NoEvents).unwrap();
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.exit_code, Some(0));
        assert!(started.elapsed() < Duration::from_secs(5));
        // SIGKILL is delivered asynchronously: allow the kernel a moment.
        let gone = Instant::now() + Duration::from_secs(2);
        while !processes_with(&format!("30.{m}")).is_empty() && Instant::now() < gone {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(processes_with(&format!("30.{m}")), Vec::<String>::new());
    }

    #[test]
    fn grandchild_output_after_the_main_exit_is_kept() {
        // The background writer may well write after the main process has
        // exited; it does so well within the linger.
        let out = run(
            &sh("echo from-grandchild & echo from-main"),
            None,
            &mut NoEvents,
        )
        .unwrap();
        let mut lines: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
        lines.sort();
        assert_eq!(lines, [&b""[..], b"from-grandchild", b"from-main"]);
    }

    #[test]
    fn exit_is_seen_without_reaping() {
        // The check used when there is no pidfd must leave the zombie for
        // the final kill and wait.
        let mut child = Command::new("true").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let until = Instant::now() + Duration::from_secs(5);
        while !has_exited(pid).unwrap() {
            assert!(Instant::now() < until);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(has_exited(pid).unwrap());
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn subreaper_reaps_reparented_grandchildren() {
        // Process-wide and permanent for the test binary; harmless to the
        // other tests, whose groups are reaped the same way.
        nix::sys::prctl::set_child_subreaper(true).unwrap();
        let m = marker();
        let mut rec = Recorder::default();
        let out = run(&sh(&format!("sleep 30.{m} & echo hi")), None, &mut rec).unwrap();
        assert_eq!(out.stdout, b"hi\n");
        let pgid = rec.pid.unwrap();
        // No process of the group is left, not even a zombie child of ours.
        let gone = Instant::now() + Duration::from_secs(2);
        loop {
            let left = group_members(pgid);
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < gone, "left in group {pgid}: {left:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Pids whose process group is `pgid`, zombies included.
    fn group_members(pgid: i32) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the parenthesised command: state ppid pgrp ...
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(2) == Some(&pgid.to_string().as_str()) {
                found.push(stat);
            }
        }
        found
    }

    #[test]
    fn flood_on_both_streams_is_capped_without_deadlock() {
        let mut spec =
            sh("head -c 50000000 /dev/zero >&2 & head -c 50000000 /dev/zero; wait; echo done >&2");
        spec.timeout = Some(Duration::from_secs(60));
        let out = run(&spec, None, &mut NoEvents).unwrap();
        assert!(!out.timed_out);
        assert_eq!(out.exit_code, Some(0));
        assert!(out.truncated);
        assert_eq!(out.stdout.len(), DEFAULT_CAPTURE_LIMIT);
        assert_eq!(out.stderr.len(), DEFAULT_CAPTURE_LIMIT);
    }

    #[test]
    fn small_limit_keeps_the_start() {
        let mut spec = sh("printf 0123456789");
        spec.capture_limit = 4;
        let out = run(&spec, None, &mut NoEvents).unwrap();
        assert_eq!(out.stdout, b"0123");
        assert!(out.truncated);
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let spec = CommandSpec::new(vec!["convrt-no-such-program".into(), "x".into()]);
        let err = run(&spec, None, &mut NoEvents).unwrap_err();
        assert!(matches!(err, SpawnError::NotFound { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "no such file or directory: `convrt-no-such-program`"
        );
    }

    #[test]
    fn an_empty_program_is_not_found() {
        let err = run(&CommandSpec::new(vec![String::new()]), None, &mut NoEvents).unwrap_err();
        assert!(matches!(err, SpawnError::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn the_program_is_looked_up_in_the_childs_path() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("only-here");
        std::fs::write(&script, "#!/bin/sh\necho found \"$1\"\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut spec = CommandSpec::new(vec!["only-here".into(), "it".into()]);
        let missing = run(&spec, None, &mut NoEvents).unwrap_err();
        assert!(
            matches!(missing, SpawnError::NotFound { .. }),
            "{missing:?}"
        );
        let path = format!("/nonexistent:{}:/bin", dir.path().display());
        spec.env.push(("PATH".into(), path));
        let out = run(&spec, None, &mut NoEvents).unwrap();
        assert_eq!(out.stdout, b"found it\n");
    }

    #[test]
    fn a_script_without_an_interpreter_line_runs_with_sh() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("plain");
        std::fs::write(&script, "echo plain \"$1\"\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let spec = CommandSpec::new(vec![script.display().to_string(), "arg".into()]);
        let out = run(&spec, None, &mut NoEvents).unwrap();
        assert_eq!(out.stdout, b"plain arg\n");
    }

    #[test]
    fn the_child_has_its_own_group_default_signals_and_no_mask() {
        // SIGPIPE and SIGINT are ignored here as in a worker; the command
        // must not inherit that, nor a blocked signal.
        // SAFETY: setting SIGPIPE's disposition to ignore (as the Rust
        // runtime already has it); no handler is installed.
        let mut usr2 = nix::sys::signal::SigSet::empty();
        usr2.add(Signal::SIGUSR2);
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        usr2.thread_block().unwrap();
        let spec = sh("ps -o pgid= -p $$; grep -E '^(SigBlk|SigIgn)' /proc/self/status");
        let mut rec = Recorder::default();
        let out = run(&spec, None, &mut rec).unwrap();
        usr2.thread_unblock().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let pgid: i32 = lines.next().unwrap().trim().parse().unwrap();
        assert_eq!(Some(pgid), rec.pid);
        assert_ne!(pgid, nix::unistd::getpgrp().as_raw());
        for line in lines {
            let mask = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
            let pipe = 1u64 << (libc::SIGPIPE - 1);
            assert_eq!(mask & pipe, 0, "{line}");
            if line.starts_with("SigBlk") {
                assert_eq!(mask, 0, "{line}");
            }
        }
    }

    #[test]
    fn other_spawn_errors() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("not-executable");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        let spec = CommandSpec::new(vec![script.display().to_string()]);
        let err = run(&spec, None, &mut NoEvents).unwrap_err();
        assert!(
            matches!(err, SpawnError::PermissionDenied { .. }),
            "{err:?}"
        );

        let mut spec = sh("true");
        spec.cwd = Some(dir.path().join("missing"));
        let err = run(&spec, None, &mut NoEvents).unwrap_err();
        assert!(matches!(err, SpawnError::BadCwd { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with("bad working directory"),
            "{err}"
        );

        let err = run(&CommandSpec::new(vec![]), None, &mut NoEvents).unwrap_err();
        assert!(matches!(err, SpawnError::EmptyArgv));

        let mut spec = sh("true");
        spec.env.push(("A=B".into(), "x".into()));
        let err = run(&spec, None, &mut NoEvents).unwrap_err();
        assert!(matches!(err, SpawnError::BadEnv { .. }), "{err:?}");
    }

    #[test]
    fn forwards_lines_in_order_with_the_last_unterminated() {
        let mut spec = sh("printf 'a\\nb\\n'; printf 'e1\\ne2' >&2; printf 'c\\n\\nd'");
        spec.forward_lines = true;
        let mut rec = Recorder::default();
        let out = run(&spec, None, &mut rec).unwrap();
        let of = |s: Stream| -> Vec<&str> {
            rec.lines
                .iter()
                .filter(|(st, _)| *st == s)
                .map(|(_, l)| l.as_str())
                .collect()
        };
        assert_eq!(of(Stream::Stdout), ["a", "b", "c", "", "d"]);
        assert_eq!(of(Stream::Stderr), ["e1", "e2"]);
        assert_eq!(out.stdout, b"a\nb\nc\n\nd");
    }

    #[test]
    fn lines_are_forwarded_past_the_capture_limit() {
        let mut spec = sh("seq 1 20000");
        spec.forward_lines = true;
        spec.capture_limit = 10;
        let mut rec = Recorder::default();
        let out = run(&spec, None, &mut rec).unwrap();
        assert!(out.truncated);
        assert_eq!(rec.lines.len(), 20000);
        assert_eq!(rec.lines[19999].1, "20000");
    }

    /// Cancels through the watch fd once the child said it is ready.
    struct Canceller {
        trigger: Option<OwnedFd>,
        watch: OwnedFd,
    }

    impl Events for Canceller {
        fn on_line(&mut self, _: Stream, line: &[u8]) {
            if line == b"ready" {
                if let Some(w) = self.trigger.take() {
                    File::from(w).write_all(b"x").unwrap();
                }
            }
        }
        fn on_watch(&mut self) -> Control {
            let mut byte = [0u8; 1];
            let _ = nix::unistd::read(&self.watch, &mut byte);
            Control::Cancel
        }
    }

    #[test]
    fn cancel_through_the_watch_fd() {
        let m = marker();
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut spec = sh(&format!("trap '' TERM; echo ready; sleep 30.{m}"));
        spec.forward_lines = true;
        spec.grace = Duration::from_millis(200);
        let watch = r.try_clone().unwrap();
        let mut events = Canceller {
            trigger: Some(w),
            watch: r,
        };
        let started = Instant::now();
        let out = run(&spec, Some(watch.as_fd()), &mut events).unwrap();
        assert!(out.cancelled && !out.timed_out);
        assert_eq!(out.signal, Some(libc::SIGKILL));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(processes_with(&format!("30.{m}")), Vec::<String>::new());
    }

    #[test]
    fn hung_up_watch_fd_is_dropped() {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(w);
        let mut rec = Recorder::default();
        let out = run(&sh("sleep 0.2; echo ok"), Some(r.as_fd()), &mut rec).unwrap();
        assert_eq!(out.stdout, b"ok\n");
        assert_eq!(rec.watch_calls, 1);
    }
}

//! The worker: reads calls from the engine, runs them one at a time, and
//! answers with their outcomes. The same loop serves forked workers (over
//! a socket) and `jobfile worker` (over stdin/stdout).
//!
//! What a builtin or registered function writes to fd 1 and fd 2 is its
//! record's `stdout` and `stderr`: the worker points both at memory files
//! when it starts ([`OutputCapture`]), so nothing a function prints reaches
//! the engine's results or its terminal.
//!
//! A worker is single-threaded. It keeps the process group of the command
//! it runs in [`CURRENT_GROUP`], so that its SIGTERM handler (the parent
//! death signal) can kill that group before the worker exits.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use serde_json::Value;

use super::builtins::registry;
use super::command::{self, CommandSpec, Control, Events, Stream};
use super::groups;
use super::output_capture::OutputCapture;
use super::process::{GRACE, children_of, host_name, signal_name};
use super::protocol::{
    Call, CallOutcome, Frame, FromWorker, Invocation, LineStream, ToWorker, encode_into,
};
use super::python::{CallEvents, Interpreter, PythonCall, PythonSetup};
use crate::shared::SharedOp;
use crate::spec::Returns;

/// Process group of the command running now, or 0.
static CURRENT_GROUP: AtomicI32 = AtomicI32::new(0);

/// Process group of the worker's Python interpreter, or 0.
static INTERPRETER_GROUP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_term(_: libc::c_int) {
    // SAFETY: kill and _exit are async-signal-safe.
    unsafe {
        for group in [&CURRENT_GROUP, &INTERPRETER_GROUP] {
            let group = group.load(Ordering::SeqCst);
            if group > 0 {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        libc::_exit(143);
    }
}

/// Signal set-up of a worker: SIGTERM kills the running command's group
/// and ends the worker; SIGINT is left to the engine, which decides.
pub fn install_worker_signals() -> std::io::Result<()> {
    // As a subreaper the worker inherits what its commands leave behind,
    // even in a session of their own, and ends it after each command
    // (`sweep`).
    nix::sys::prctl::set_child_subreaper(true)?;
    let term = SigAction::new(
        SigHandler::Handler(on_term),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler only calls async-signal-safe functions; setting
    // dispositions in a single-threaded process is sound.
    unsafe {
        sigaction(Signal::SIGTERM, &term)?;
        sigaction(Signal::SIGINT, &ignore)?;
        sigaction(Signal::SIGPIPE, &ignore)?;
    }
    Ok(())
}

/// Serves the engine until it closes the connection. `input` and `output`
/// may be the same socket.
pub fn serve(input: OwnedFd, output: OwnedFd) -> i32 {
    // `jobfile worker` speaks on a duplicate of fd 1, so fd 1 itself is
    // free to capture. Without memory files a function's output goes where
    // the worker's went, as before.
    let capture = OutputCapture::install(command::DEFAULT_CAPTURE_LIMIT).ok();
    let mut w = Worker {
        capture,
        reader: BufReader::with_capacity(64 * 1024, File::from(input)),
        writer: File::from(output),
        pending: Vec::new(),
        held: std::collections::VecDeque::new(),
        python: None,
        interpreter: None,
        watch: None,
        last_end: None,
        anchor: (SystemTime::now(), Instant::now()),
    };
    if w.send(&FromWorker::Ready {
        pid: std::process::id(),
        host: host_name(),
    })
    .is_err()
    {
        return 1;
    }
    // Calls received and not yet run, in order.
    let mut queue: VecDeque<Call> = VecDeque::new();
    loop {
        let Some(call) = queue.pop_front() else {
            match w.next_frame() {
                Ok(Some(ToWorker::Python { setup })) => w.python = Some(setup),
                Ok(Some(ToWorker::Run { calls })) => queue.extend(calls),
                Ok(Some(ToWorker::Renew)) => w.end_interpreter(),
                Ok(Some(_)) => {}
                Ok(None) => return 0,
                Err(_) => return 1,
            }
            continue;
        };
        if w.interpreter.as_ref().is_some_and(|i| i.ahead() == 0)
            && matches!(call.invocation, Invocation::Python { .. })
        {
            // Calls the engine has sent already join the queue, so that
            // the interpreter can run them back to back.
            w.read_waiting(&mut queue);
            w.send_ahead(std::iter::once(&call).chain(queue.iter()));
            // Written to the interpreter: not back to back either.
            w.last_end = None;
        }
        let outcome = w.run(&call);
        if outcome.retire {
            // The interpreter is gone: answer, and end, so that a fresh
            // worker (and its initializer) takes over. What was queued
            // behind this call never started; the engine knows.
            let done = FromWorker::Done {
                unit: call.unit,
                outcome,
            };
            let _ = w.send(&done);
            return 0;
        }
        let slow = outcome.duration_ms > 1.0;
        let done = FromWorker::Done {
            unit: call.unit,
            outcome,
        };
        encode_into(&done, &mut w.pending);
        // Answers of quick calls go out together when nothing more is
        // waiting to be run; a slow call's answer at once.
        let more = !queue.is_empty() || !w.held.is_empty() || !w.reader.buffer().is_empty();
        if (slow || !more) && w.flush().is_err() {
            return 1;
        }
    }
}

struct Worker {
    /// Where in-process calls' fd 1 and fd 2 go, read after each call.
    capture: Option<OutputCapture>,
    reader: BufReader<File>,
    writer: File,
    /// Frames not yet written.
    pending: Vec<u8>,
    /// Frames read while waiting for something else (a shared-value reply,
    /// a cancel), to be served in order.
    held: std::collections::VecDeque<ToWorker>,
    /// How to start a Python interpreter, when the job has Python functions.
    python: Option<PythonSetup>,
    /// The interpreter, once a Python call needed it.
    interpreter: Option<Interpreter>,
    /// A second handle on the engine's connection, polled during a call
    /// (a command's or a Python one) for a cancel.
    watch: Option<File>,
    /// When the last call ended, while the next one starts right after it
    /// (nothing but its answer's encoding in between; `flush` and
    /// `read_frame` clear it): a quick call reads the clock once, not three
    /// times.
    last_end: Option<Instant>,
    /// A wall-clock time and the monotonic time it was read at, read again
    /// whenever a call starts after a wait: calls' start times are counted
    /// from it.
    anchor: (SystemTime, Instant),
}

impl Worker {
    /// Sends a frame now, after any pending ones.
    fn send(&mut self, frame: &FromWorker) -> std::io::Result<()> {
        encode_into(frame, &mut self.pending);
        self.flush()
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // A write to the engine comes between a call and the next.
        self.last_end = None;
        let result = self.writer.write_all(&self.pending);
        self.pending.clear();
        result
    }

    /// The next frame to serve: a held one first.
    fn next_frame(&mut self) -> std::io::Result<Option<ToWorker>> {
        match self.held.pop_front() {
            Some(frame) => Ok(Some(frame)),
            None => self.read_frame(),
        }
    }

    fn read_frame(&mut self) -> std::io::Result<Option<ToWorker>> {
        // So does a read, which may wait for the engine.
        self.last_end = None;
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(None);
            }
            if line.trim_ascii().is_empty() {
                continue;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            return ToWorker::read_from(&line)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
    }

    fn run(&mut self, call: &Call) -> CallOutcome {
        let clock = match self.last_end.take() {
            Some(end) => end,
            None => {
                let now = Instant::now();
                self.anchor = (SystemTime::now(), now);
                now
            }
        };
        let mut outcome = match &call.invocation {
            Invocation::Builtin { name, args, kwargs } => {
                let mut shared = |op: SharedOp| self.shared(op);
                let result = registry().call(name, args, kwargs, &mut shared);
                let mut outcome = match result {
                    Ok(value) => CallOutcome {
                        ok: true,
                        value,
                        ..CallOutcome::default()
                    },
                    Err(error) => CallOutcome {
                        error: Some(error),
                        ..CallOutcome::default()
                    },
                };
                if let Some(captured) = self.capture.as_mut().map(OutputCapture::take) {
                    outcome.stdout = String::from_utf8_lossy(&captured.stdout).into_owned();
                    outcome.stderr = String::from_utf8_lossy(&captured.stderr).into_owned();
                    outcome.truncated = captured.truncated;
                }
                outcome
            }
            Invocation::Command {
                argv,
                env,
                cwd,
                timeout_ms,
                returns,
                forward_lines,
            } => {
                let spec = CommandSpec {
                    argv: argv.clone(),
                    env: env.clone(),
                    cwd: cwd.as_ref().map(Into::into),
                    timeout: timeout_ms.map(Duration::from_millis),
                    grace: GRACE,
                    capture_limit: command::DEFAULT_CAPTURE_LIMIT,
                    forward_lines: *forward_lines,
                };
                self.command(call.unit, &spec, *returns)
            }
            Invocation::Python { .. } => match PythonCall::of(&call.invocation, GRACE) {
                Some(py) => self.python(call.unit, &py),
                None => CallOutcome::default(),
            },
        };
        let end = Instant::now();
        self.last_end = Some(end);
        // A call sent ahead to the interpreter was timed there.
        if outcome.started_ms == 0.0 {
            let started = self.anchor.0 + clock.duration_since(self.anchor.1);
            outcome.started_ms = started
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            outcome.duration_ms = end.duration_since(clock).as_secs_f64() * 1000.0;
        }
        outcome
    }

    /// Asks the engine to apply a shared-value operation.
    fn shared(&mut self, op: SharedOp) -> Result<Value, String> {
        self.send(&FromWorker::Shared { op })
            .map_err(|e| format!("cannot reach the engine: {e}"))?;
        loop {
            match self.read_frame() {
                Ok(Some(ToWorker::SharedReply { ok, error })) => {
                    return match error {
                        Some(e) => Err(e),
                        None => Ok(ok.unwrap_or(Value::Null)),
                    };
                }
                Ok(Some(other)) => self.held.push_back(other),
                Ok(None) => return Err("the engine went away".into()),
                Err(e) => return Err(format!("bad reply from the engine: {e}")),
            }
        }
    }

    /// The second handle on the engine's connection, for a call to watch
    /// for a cancel while it runs; the call puts it back in `self.watch`.
    /// It is kept between calls: a dup and a close per command were a
    /// tenth of its system calls.
    fn take_watch(&mut self) -> Option<File> {
        self.watch
            .take()
            .or_else(|| self.reader.get_ref().try_clone().ok())
    }

    fn command(&mut self, unit: u64, spec: &CommandSpec, returns: Returns) -> CallOutcome {
        let watch = self.take_watch();
        let result = match &watch {
            Some(file) => {
                let mut events = CommandEvents { worker: self, unit };
                command::run(spec, Some(file.as_fd()), &mut events)
            }
            None => command::run(spec, None, &mut command::NoEvents),
        };
        self.watch = watch;
        CURRENT_GROUP.store(0, Ordering::SeqCst);
        sweep();
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                return CallOutcome {
                    error: Some(e.to_string()),
                    exit_code: None,
                    ..CallOutcome::default()
                };
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut outcome = CallOutcome {
            ok: false,
            value: Value::Null,
            error: None,
            exit_code: out.exit_code,
            signal: out.signal,
            timed_out: out.timed_out,
            cancelled: out.cancelled,
            stdout: String::new(),
            stderr: String::new(),
            truncated: out.truncated,
            crashed: false,
            retire: false,
            unstarted: false,
            started_ms: 0.0,
            duration_ms: 0.0,
        };
        outcome.error = if out.timed_out {
            Some(match spec.timeout {
                Some(t) => format!("timed out after {}", humantime::format_duration(t)),
                None => "timed out".into(),
            })
        } else if out.cancelled {
            Some("cancelled".into())
        } else if let Some(sig) = out.signal {
            Some(format!("killed by signal {sig} ({})", signal_name(sig)))
        } else {
            out.exit_code
                .filter(|&c| c != 0)
                .map(|code| format!("exited with code {code}"))
        };
        if outcome.error.is_none() {
            match make_value(&stdout, returns) {
                Ok(v) => {
                    outcome.value = v;
                    outcome.ok = true;
                }
                Err(e) => outcome.error = Some(e),
            }
        }
        outcome.stdout = stdout;
        outcome.stderr = stderr;
        outcome
    }
}

impl Worker {
    /// Runs a Python call in this worker's interpreter, starting one first
    /// if there is none yet.
    fn python(&mut self, unit: u64, call: &PythonCall<'_>) -> CallOutcome {
        if self.interpreter.is_none() {
            let Some(setup) = &self.python else {
                return CallOutcome {
                    error: Some("this worker was given no Python set-up".into()),
                    ..CallOutcome::default()
                };
            };
            match Interpreter::start(setup, call.capture_limit) {
                Ok(interpreter) => {
                    INTERPRETER_GROUP.store(interpreter.pid(), Ordering::SeqCst);
                    self.interpreter = Some(interpreter);
                }
                Err(error) => {
                    return CallOutcome {
                        error: Some(error),
                        ..CallOutcome::default()
                    };
                }
            }
        }
        let Some(mut interpreter) = self.interpreter.take() else {
            return CallOutcome::default();
        };
        let watch = self.take_watch();
        let outcome = {
            let mut events = CommandEvents { worker: self, unit };
            let watch = watch.as_ref().map(|f| f.as_fd());
            if interpreter.ahead() == 0 && !interpreter.alive(&mut events) {
                // It died while idle: this call never ran, and goes back.
                CallOutcome {
                    error: Some("the interpreter died between calls".into()),
                    retire: true,
                    unstarted: true,
                    ..CallOutcome::default()
                }
            } else if interpreter.ahead() > 0 {
                interpreter.next_ahead(call.grace, watch, &mut events)
            } else {
                interpreter.call(call, watch, &mut events)
            }
        };
        self.watch = watch;
        self.interpreter = Some(interpreter);
        if outcome.retire {
            self.end_interpreter();
        }
        outcome
    }

    /// Ends the interpreter, if there is one, and what it left behind.
    fn end_interpreter(&mut self) {
        if let Some(interpreter) = self.interpreter.take() {
            INTERPRETER_GROUP.store(0, Ordering::SeqCst);
            drop(interpreter);
            sweep();
        }
    }
}

impl Worker {
    /// Sends the Python calls at the head of `calls` to the interpreter at
    /// once, when there are several that may run back to back (no timeout,
    /// no line forwarding) and none is in flight: the interpreter then
    /// runs them without waiting for this worker between two.
    fn send_ahead<'c>(&mut self, calls: impl Iterator<Item = &'c Call>) {
        const MAX_AHEAD: usize = 64;
        let Some(interpreter) = self.interpreter.as_mut() else {
            return;
        };
        if interpreter.ahead() > 0 {
            return;
        }
        let batch: Vec<PythonCall<'_>> = calls
            .take(MAX_AHEAD)
            .map_while(|c| {
                PythonCall::of(&c.invocation, GRACE)
                    .filter(|py| py.timeout.is_none() && !py.forward_lines)
            })
            .collect();
        if batch.len() >= 2 {
            interpreter.send_ahead(&batch);
        }
    }
}

impl Worker {
    /// Can a frame be read without waiting for the engine: a whole line
    /// buffered, or bytes on the connection now?
    fn frame_waiting(&self) -> bool {
        self.reader.buffer().contains(&b'\n') || readable_now(self.reader.get_ref())
    }

    /// Moves the frames that have arrived already into `queue` (calls) or
    /// `held` (anything else), without waiting for more.
    fn read_waiting(&mut self, queue: &mut VecDeque<Call>) {
        loop {
            if !self.reader.buffer().contains(&b'\n') {
                if !self.reader.buffer().is_empty() || !readable_now(self.reader.get_ref()) {
                    return;
                }
                match self.reader.fill_buf() {
                    Ok(b) if !b.is_empty() => continue,
                    _ => return,
                }
            }
            match self.read_frame() {
                Ok(Some(ToWorker::Run { calls })) => queue.extend(calls),
                Ok(Some(ToWorker::Python { setup })) => self.python = Some(setup),
                Ok(Some(other)) => {
                    // What follows it must wait its turn.
                    self.held.push_back(other);
                    return;
                }
                _ => return,
            }
        }
    }
}

/// Can `file` be read without waiting?
fn readable_now(file: &File) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

impl CallEvents for CommandEvents<'_> {
    fn on_item(&mut self, value: Value) {
        let _ = self.worker.send(&FromWorker::Item {
            unit: self.unit,
            value,
        });
    }

    fn shared(&mut self, op: &str, args: Vec<Value>) -> Result<Value, String> {
        let op = SharedOp::from_values(op, &args).map_err(|e| e.to_string())?;
        self.worker.shared(op)
    }
}

struct CommandEvents<'a> {
    worker: &'a mut Worker,
    unit: u64,
}

impl Events for CommandEvents<'_> {
    fn on_spawn(&mut self, pid: i32) {
        CURRENT_GROUP.store(pid, Ordering::SeqCst);
        // A forked worker's child has named its group in the table the
        // engine reads when it loses a worker; others tell the engine.
        if !groups::claimed() {
            let _ = self.worker.send(&FromWorker::Spawned {
                unit: self.unit,
                pgid: pid,
            });
        }
    }

    fn on_line(&mut self, stream: Stream, line: &[u8]) {
        let stream = match stream {
            Stream::Stdout => LineStream::Out,
            Stream::Stderr => LineStream::Err,
        };
        let line = String::from_utf8_lossy(line).into_owned();
        let _ = self.worker.send(&FromWorker::Line {
            unit: self.unit,
            stream,
            line,
        });
    }

    fn on_watch(&mut self) -> Control {
        // The watch may have woken for bytes that a shared-value exchange
        // of this call (answered in the same round) has read since: only a
        // frame that is there is read, or the worker would wait for one the
        // engine never sends while it waits for this call.
        if !self.worker.frame_waiting() {
            return Control::Continue;
        }
        match self.worker.read_frame() {
            Ok(Some(ToWorker::Cancel)) | Ok(None) | Err(_) => Control::Cancel,
            Ok(Some(other)) => {
                self.worker.held.push_back(other);
                Control::Continue
            }
        }
    }
}

/// Kills and reaps every process the last command left behind: they were
/// reparented to this worker, a subreaper, when their parents ended. Each
/// round may orphan the next generation, so it repeats until none is left.
fn sweep() {
    // Most commands leave nothing: one system call says so (ECHILD: no
    // child at all, WNOWAIT: nothing is reaped) where reading the
    // children's list takes five.
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    if waitid(Id::All, flags) == Err(nix::errno::Errno::ECHILD) {
        return;
    }
    let me = std::process::id();
    for _ in 0..50 {
        let children = children_of(me);
        if children.is_empty() {
            return;
        }
        for pid in children {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// What `returns` makes of stdout.
pub fn make_value(stdout: &str, returns: Returns) -> Result<Value, String> {
    Ok(match returns {
        Returns::None => Value::Null,
        Returns::Text => Value::String(stdout.strip_suffix('\n').unwrap_or(stdout).to_string()),
        Returns::Lines => Value::Array(
            stdout
                .lines()
                .map(|l| Value::String(l.to_string()))
                .collect(),
        ),
        Returns::Json => serde_json::from_str(stdout)
            .map_err(|e| format!("stdout is not valid JSON (returns = \"json\"): {e}"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn returns_shapes_stdout() {
        assert_eq!(make_value("a\nb\n", Returns::Text), Ok(json!("a\nb")));
        assert_eq!(make_value("a\nb\n", Returns::Lines), Ok(json!(["a", "b"])));
        assert_eq!(
            make_value("{\"x\": 1}\n", Returns::Json),
            Ok(json!({"x": 1}))
        );
        assert_eq!(make_value("whatever", Returns::None), Ok(Value::Null));
        assert!(make_value("nope", Returns::Json).is_err());
    }
}

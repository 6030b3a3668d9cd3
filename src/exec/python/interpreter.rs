//! A worker's Python interpreter: getting one (forked by the template, or
//! started fresh), and running one call in it with the worker's own
//! supervision: fd 1 and fd 2 read together with the control socket, the
//! timeout (SIGTERM to the interpreter's group, SIGKILL after the grace),
//! cancellation through the engine's connection, and the interpreter's
//! death seen as the end of its control socket.
//!
//! Must not: start threads, or wait anywhere but in `poll` (the template's
//! answer to a fork request is the one blocking read, and the template
//! answers it as soon as its imports are done).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::unistd::Pid;
use serde::Serialize;
use serde_json::{Map, Value};

use super::runtime_args;
use super::setup::PythonSetup;
use crate::exec::capture::Pipe;
use crate::exec::command::{Control, DEFAULT_CAPTURE_LIMIT, Events, Stream};
use crate::exec::process::signal_name;
use crate::exec::protocol::{CallOutcome, Invocation};
use crate::exec::readiness::{poll_in, poll_timeout};

/// How long the pipes are still read after an interpreter died, when
/// something it started keeps them open.
const LINGER: Duration = Duration::from_millis(100);

/// How long a worker lets answers of calls sent ahead gather before it
/// waits for them, instead of waking for each.
const MARKED_NAP: Duration = Duration::from_micros(200);

/// How often the pipes are read while calls sent ahead run.
const MARKED_READ: Duration = Duration::from_millis(5);

/// How long to wait for the template's word on how an interpreter ended.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// One call, as the worker received it.
pub(crate) struct PythonCall<'a> {
    pub target: &'a str,
    pub args: &'a [Value],
    pub kwargs: &'a Map<String, Value>,
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a str>,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    pub capture_limit: usize,
    pub forward_lines: bool,
}

impl<'a> PythonCall<'a> {
    /// The call of a Python invocation (`None` for any other), stopped with
    /// `grace` between SIGTERM and SIGKILL.
    pub(crate) fn of(invocation: &'a Invocation, grace: Duration) -> Option<PythonCall<'a>> {
        let Invocation::Python {
            target,
            args,
            kwargs,
            env,
            cwd,
            timeout_ms,
            forward_lines,
        } = invocation
        else {
            return None;
        };
        Some(PythonCall {
            target,
            args,
            kwargs,
            env,
            cwd: cwd.as_deref(),
            timeout: timeout_ms.map(Duration::from_millis),
            grace,
            capture_limit: DEFAULT_CAPTURE_LIMIT,
            forward_lines: *forward_lines,
        })
    }
}

/// What the worker is told while a call runs, beyond [`Events`].
pub(crate) trait CallEvents: Events {
    /// A value the generator yielded (streaming calls only).
    fn on_item(&mut self, value: Value);
    /// The call asks for a shared-value operation.
    fn shared(&mut self, op: &str, args: Vec<Value>) -> Result<Value, String>;
}

/// Where the interpreter came from, which is who learns how it ended.
enum Origin {
    /// Forked by the template, which reaps it and tells us on this socket.
    Template(BufReader<UnixStream>),
    /// Started by this worker, which reaps it.
    Child(Child),
}

/// A live interpreter.
pub(crate) struct Interpreter {
    pid: i32,
    ctrl: UnixStream,
    inbuf: Vec<u8>,
    /// The control socket has ended: the interpreter is gone.
    ctrl_eof: bool,
    /// `done` lines read and not yet taken.
    dones: VecDeque<Value>,
    /// Calls sent ahead and not yet taken.
    ahead: usize,
    /// What marks the end of each sent-ahead call's output.
    nonce: String,
    out: Pipe,
    err: Pipe,
    origin: Origin,
}

#[derive(Serialize)]
struct Request<'a> {
    f: &'a str,
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    env: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cwd: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    mark: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// The request line of `call`.
    fn of(call: &PythonCall<'a>, mark: Option<&'a str>) -> Vec<u8> {
        let request = Request {
            f: call.target,
            args: call.args,
            kwargs: call.kwargs,
            env: call
                .env
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
            cwd: call.cwd,
            stream: call.forward_lines,
            mark,
        };
        let mut line = serde_json::to_vec(&request).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// How a call ended, before it becomes a [`CallOutcome`].
enum End {
    Done(Value),
    Died,
}

impl Interpreter {
    /// An interpreter for `setup`: forked by the template when there is
    /// one that answers, else started fresh (which imports the modules).
    pub(crate) fn start(setup: &PythonSetup, capture_limit: usize) -> Result<Interpreter, String> {
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| format!("cannot make a socket pair: {e}"))?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let forked = setup
            .template
            .as_deref()
            .and_then(|socket| request_fork(socket, &theirs, &out_w, &err_w).ok());
        let (pid, origin) = match forked {
            Some((pid, conn)) => (pid, Origin::Template(conn)),
            None => {
                let child = spawn(setup, theirs.as_fd(), out_w, err_w)?;
                (child.id() as i32, Origin::Child(child))
            }
        };
        drop(theirs);
        ours.set_nonblocking(true)
            .map_err(|e| format!("cannot set up the interpreter's socket: {e}"))?;
        Ok(Interpreter {
            pid,
            ctrl: ours,
            inbuf: Vec::new(),
            ctrl_eof: false,
            dones: VecDeque::new(),
            ahead: 0,
            nonce: nonce(pid),
            out: Pipe::new(Stream::Stdout, Some(out_r), capture_limit, false),
            err: Pipe::new(Stream::Stderr, Some(err_r), capture_limit, false),
            origin,
        })
    }

    /// The interpreter's pid, which is also its process group.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Runs one call. The outcome has `retire` set when the interpreter is
    /// gone (it died, or was killed at a timeout or a cancel): the worker
    /// must not use it again.
    pub(crate) fn call(
        &mut self,
        call: &PythonCall<'_>,
        watch: Option<BorrowedFd<'_>>,
        events: &mut dyn CallEvents,
    ) -> CallOutcome {
        self.out.forward(call.forward_lines);
        self.err.forward(call.forward_lines);
        let line = Request::of(call, None);
        let mut outcome = CallOutcome::default();
        let end = match self.write_ctrl(&line) {
            Ok(()) => self.supervise(call.timeout, call.grace, false, watch, events, &mut outcome),
            Err(_) => End::Died,
        };
        self.conclude(end, call.timeout, &mut outcome, events);
        self.out.end_call(events);
        self.err.end_call(events);
        let out = std::mem::take(&mut self.out.captured);
        let err = std::mem::take(&mut self.err.captured);
        outcome.stdout = String::from_utf8_lossy(&out).into_owned();
        outcome.stderr = String::from_utf8_lossy(&err).into_owned();
        outcome
    }

    /// Is the interpreter still there? One that died while idle would
    /// otherwise cost the next call, which never ran.
    pub(crate) fn alive(&mut self, events: &mut dyn CallEvents) -> bool {
        let mut fds = [PollFd::new(self.ctrl.as_fd(), PollFlags::POLLIN)];
        if matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            self.read_ctrl(events);
        }
        !self.ctrl_eof
    }

    /// Calls sent ahead and not yet taken with [`Interpreter::next_ahead`].
    pub(crate) fn ahead(&self) -> usize {
        self.ahead
    }

    /// Sends `calls` (with no timeout and no line forwarding) at once, so
    /// that the interpreter runs them back to back; each call's output ends
    /// with a mark on fd 1 and on fd 2. Their outcomes come, in order, from
    /// [`Interpreter::next_ahead`].
    pub(crate) fn send_ahead(&mut self, calls: &[PythonCall<'_>]) {
        let nonce = self.nonce.clone();
        // One line for them all: `{"batch":[call,call,...]}`.
        let mut lines = b"{\"batch\":[".to_vec();
        for (i, call) in calls.iter().enumerate() {
            if i > 0 {
                lines.push(b',');
            }
            let mut one = Request::of(call, Some(&nonce));
            one.pop(); // its newline
            lines.extend_from_slice(&one);
        }
        lines.extend_from_slice(b"]}\n");
        let mark = marker(&nonce);
        self.out.forward(false);
        self.err.forward(false);
        self.out.set_marker(Some(mark.clone()));
        self.err.set_marker(Some(mark));
        self.ahead += calls.len();
        if self.write_ctrl(&lines).is_err() {
            self.ctrl_eof = true;
        }
    }

    /// The outcome of the next call sent ahead.
    pub(crate) fn next_ahead(
        &mut self,
        grace: Duration,
        watch: Option<BorrowedFd<'_>>,
        events: &mut dyn CallEvents,
    ) -> CallOutcome {
        let mut outcome = CallOutcome::default();
        let end = self.supervise(None, grace, true, watch, events, &mut outcome);
        self.ahead = self.ahead.saturating_sub(1);
        let segments = match &end {
            End::Done(reply) => {
                let us = |k: &str| reply[k].as_f64().unwrap_or(0.0) / 1000.0;
                outcome.started_ms = us("started_us");
                outcome.duration_ms = us("duration_us");
                Some((self.out.next_segment(), self.err.next_segment()))
            }
            End::Died => None,
        };
        self.conclude(end, None, &mut outcome, events);
        let (out, err) = match segments {
            Some((out, err)) => (out.unwrap_or_default(), err.unwrap_or_default()),
            // What came after the last mark is the dead call's.
            None => (self.out.take_unmarked(), self.err.take_unmarked()),
        };
        outcome.truncated |= out.1 || err.1;
        outcome.stdout = String::from_utf8_lossy(&out.0).into_owned();
        outcome.stderr = String::from_utf8_lossy(&err.0).into_owned();
        if self.ahead == 0 {
            // Back to one call at a time: what came after the last mark
            // belongs to the next call.
            self.out.set_marker(None);
            self.err.set_marker(None);
            self.out.captured = self.out.take_unmarked().0;
            self.err.captured = self.err.take_unmarked().0;
        }
        outcome
    }

    /// Turns how a call ended into its outcome.
    fn conclude(
        &mut self,
        end: End,
        timeout: Option<Duration>,
        outcome: &mut CallOutcome,
        events: &mut dyn CallEvents,
    ) {
        match end {
            End::Done(reply) => match reply.get("ok").and_then(Value::as_bool) {
                Some(true) => {
                    outcome.ok = true;
                    outcome.value = reply.get("value").cloned().unwrap_or(Value::Null);
                }
                _ => {
                    outcome.error = Some(
                        reply
                            .get("error")
                            .and_then(Value::as_str)
                            .unwrap_or("the call failed")
                            .to_string(),
                    );
                }
            },
            End::Died => {
                // What was in flight before it died still counts.
                self.linger(&mut outcome.truncated, events);
                let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
                let (code, signal) = self.exit_status();
                outcome.retire = true;
                if outcome.timed_out {
                    let t = timeout.unwrap_or_default();
                    outcome.error =
                        Some(format!("timed out after {}", humantime::format_duration(t)));
                } else if outcome.cancelled {
                    outcome.error = Some("cancelled".into());
                } else {
                    outcome.crashed = true;
                    outcome.exit_code = code;
                    outcome.signal = signal;
                    outcome.error = Some(match (signal, code) {
                        (Some(s), _) => format!(
                            "the interpreter died: killed by signal {s} ({})",
                            signal_name(s)
                        ),
                        (None, Some(c)) => format!("the interpreter died: exited with code {c}"),
                        (None, None) => "the interpreter died".into(),
                    });
                }
            }
        }
    }

    /// Polls until the next `done` line (and, for calls sent ahead, the
    /// marks that end its output), or the interpreter's end.
    fn supervise(
        &mut self,
        timeout: Option<Duration>,
        grace: Duration,
        marked: bool,
        watch: Option<BorrowedFd<'_>>,
        events: &mut dyn CallEvents,
        outcome: &mut CallOutcome,
    ) -> End {
        let start = Instant::now();
        let deadline = timeout.and_then(|t| start.checked_add(t));
        let mut kill_at: Option<Instant> = None;
        let mut watching = watch.is_some();
        if marked && self.dones.is_empty() && self.ahead > 1 {
            // The interpreter answers calls sent ahead faster than it is
            // worth waking for each: let a few answers gather first.
            std::thread::sleep(MARKED_NAP);
        }
        loop {
            let answered = !self.dones.is_empty()
                && (!marked || (self.out.has_segment() && self.err.has_segment()));
            if answered {
                if let Some(reply) = self.dones.pop_front() {
                    return End::Done(reply);
                }
            }
            if self.ctrl_eof {
                return End::Died;
            }
            let now = Instant::now();
            if kill_at.is_none() && deadline.is_some_and(|d| now >= d) {
                outcome.timed_out = true;
                kill_at = Some(self.stop(now, grace));
            }
            if kill_at.is_some_and(|k| now >= k) {
                let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
            }
            let wake = match (kill_at, deadline) {
                (Some(k), _) => Some(k.max(now)),
                (None, d) => d,
            };
            // Calls sent ahead write a mark on each pipe: the pipes are read
            // when answers come (or every few milliseconds, so that one that
            // fills never blocks the interpreter), not at each write.
            let wake = match (marked, wake) {
                (true, Some(w)) => Some(w.min(now + MARKED_READ)),
                (true, None) => Some(now + MARKED_READ),
                (false, w) => w,
            };
            let timeout = wake.map_or(PollTimeout::NONE, |w| {
                poll_timeout(w.saturating_duration_since(now))
            });
            let watch_fd = watch.filter(|_| watching && kill_at.is_none());
            fn pipe(p: &Pipe, marked: bool) -> Option<BorrowedFd<'_>> {
                p.fd.as_ref().filter(|_| !marked).map(|f| f.as_fd())
            }
            let fds = [
                Some(self.ctrl.as_fd()),
                pipe(&self.out, marked),
                pipe(&self.err, marked),
                watch_fd,
            ];
            let ready = match poll_in(fds, timeout) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => [PollFlags::empty(); 4],
                Err(_) => return End::Died,
            };
            if !ready[1].is_empty() {
                self.out.read_once(&mut outcome.truncated, events);
            }
            if !ready[2].is_empty() {
                self.err.read_once(&mut outcome.truncated, events);
            }
            if marked {
                self.drain(&mut outcome.truncated, events);
            }
            if !ready[0].is_empty() {
                self.read_ctrl(events);
                if marked {
                    self.drain(&mut outcome.truncated, events);
                } else if !self.dones.is_empty() {
                    // What the call wrote before it answered is in the
                    // pipes now, and this poll saw it.
                    if ready[1].contains(PollFlags::POLLIN) {
                        self.out.drain(&mut outcome.truncated, events);
                    }
                    if ready[2].contains(PollFlags::POLLIN) {
                        self.err.drain(&mut outcome.truncated, events);
                    }
                }
            }
            if !ready[3].is_empty() && kill_at.is_none() {
                match events.on_watch() {
                    Control::Cancel => {
                        outcome.cancelled = true;
                        kill_at = Some(self.stop(Instant::now(), grace));
                    }
                    Control::Unwatch => watching = false,
                    Control::Continue => {
                        if !ready[3].contains(PollFlags::POLLIN) {
                            watching = false;
                        }
                    }
                }
            }
        }
    }

    /// SIGTERM to the interpreter's group (its stack goes to stderr);
    /// returns when SIGKILL follows.
    fn stop(&self, now: Instant, grace: Duration) -> Instant {
        let group = Pid::from_raw(self.pid);
        let _ = killpg(group, Signal::SIGTERM);
        let _ = killpg(group, Signal::SIGCONT);
        now.checked_add(grace).unwrap_or(now)
    }

    /// Reads the control socket: handles `item` and `shared` lines as they
    /// come, and keeps `done` lines; notes the socket's end.
    fn read_ctrl(&mut self, events: &mut dyn CallEvents) {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.ctrl.read(&mut buf) {
                Ok(0) => {
                    self.ctrl_eof = true;
                    break;
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.ctrl_eof = true;
                    break;
                }
            }
        }
        let mut start = 0;
        while let Some(nl) = self.inbuf[start..].iter().position(|&b| b == b'\n') {
            let line = &self.inbuf[start..start + nl];
            start += nl + 1;
            let Ok(Value::Object(mut frame)) = serde_json::from_slice::<Value>(line) else {
                // Never waited for in vain: an answer that cannot be read
                // fails its call.
                let text = String::from_utf8_lossy(line);
                let shown: String = text.chars().take(200).collect();
                self.dones.push_back(serde_json::json!({
                    "ok": false,
                    "error": format!("the interpreter sent an answer that is not JSON: {shown}"),
                }));
                continue;
            };
            if let Some(done) = frame.remove("done") {
                self.dones.push_back(done);
            } else if let Some(item) = frame.remove("item") {
                events.on_item(item);
            } else if let Some(Value::Object(mut req)) = frame.remove("shared") {
                let op = req.remove("op").and_then(|v| v.as_str().map(String::from));
                let args = match req.remove("args") {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let reply = match op {
                    Some(op) => events.shared(&op, args),
                    None => Err("a shared-value request without an operation".into()),
                };
                let line = match reply {
                    Ok(v) => serde_json::json!({ "ok": v }),
                    Err(e) => serde_json::json!({ "error": e }),
                };
                let mut bytes = line.to_string().into_bytes();
                bytes.push(b'\n');
                if self.write_ctrl(&bytes).is_err() {
                    self.ctrl_eof = true;
                }
            }
        }
        self.inbuf.drain(..start);
    }

    /// Writes all of `bytes` to the control socket, waiting in poll when it
    /// is full.
    fn write_ctrl(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.ctrl.write(bytes) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let mut fds = [PollFd::new(self.ctrl.as_fd(), PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, PollTimeout::NONE);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what the pipes hold now.
    fn drain(&mut self, truncated: &mut bool, events: &mut dyn CallEvents) {
        self.out.drain(truncated, events);
        self.err.drain(truncated, events);
    }

    /// Reads the pipes to their end, or for [`LINGER`] at most.
    fn linger(&mut self, truncated: &mut bool, events: &mut dyn CallEvents) {
        let until = Instant::now() + LINGER;
        loop {
            self.drain(truncated, events);
            let now = Instant::now();
            if (self.out.fd.is_none() && self.err.fd.is_none()) || now >= until {
                return;
            }
            let mut fds: Vec<PollFd> = [self.out.fd.as_ref(), self.err.fd.as_ref()]
                .into_iter()
                .flatten()
                .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                .collect();
            let _ = poll(&mut fds, poll_timeout(until - now));
        }
    }

    /// How the interpreter ended: (exit code, signal).
    fn exit_status(&mut self) -> (Option<i32>, Option<i32>) {
        match &mut self.origin {
            Origin::Child(child) => match child.wait() {
                Ok(status) => (status.code(), status.signal()),
                Err(_) => (None, None),
            },
            Origin::Template(conn) => {
                let until = Instant::now() + EXIT_WAIT;
                let _ = conn.get_ref().set_read_timeout(Some(EXIT_WAIT));
                let mut line = String::new();
                while Instant::now() < until {
                    line.clear();
                    match conn.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    let exit = &v["exit"];
                    if exit["pid"].as_i64() == Some(i64::from(self.pid)) {
                        let n = |k: &str| exit[k].as_i64().and_then(|x| i32::try_from(x).ok());
                        return (n("code"), n("signal"));
                    }
                }
                (None, None)
            }
        }
    }
}

impl Drop for Interpreter {
    fn drop(&mut self) {
        // Closing the control socket ends an idle interpreter; one that is
        // still busy goes with its group.
        let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        if let Origin::Child(child) = &mut self.origin {
            let _ = child.wait();
        }
    }
}

/// A mark no output is likely to hold: unique to this interpreter.
fn nonce(pid: i32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{pid:x}-{nanos:x}")
}

/// The bytes that end a sent-ahead call's output on each stream.
fn marker(nonce: &str) -> Vec<u8> {
    format!("\0jobfile-end:{nonce}\0").into_bytes()
}

/// A pipe whose ends are close-on-exec.
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("cannot make a pipe: {e}"))
}

/// Asks the template for an interpreter; gives its pid and the connection
/// on which the template will say how it ended.
fn request_fork(
    socket: &str,
    ctrl: &UnixStream,
    out: &OwnedFd,
    err: &OwnedFd,
) -> io::Result<(i32, BufReader<UnixStream>)> {
    let conn = UnixStream::connect(socket)?;
    let fds = [ctrl.as_raw_fd(), out.as_raw_fd(), err.as_raw_fd()];
    let body = b"{\"fork\":{}}\n";
    let iov = [io::IoSlice::new(body)];
    sendmsg::<()>(
        conn.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(io::Error::from)?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(ErrorKind::UnexpectedEof.into());
    }
    let reply: Value = serde_json::from_str(&line).map_err(io::Error::other)?;
    match reply["pid"].as_i64().and_then(|p| i32::try_from(p).ok()) {
        Some(pid) => Ok((pid, reader)),
        None => Err(io::Error::other(
            reply["error"].as_str().unwrap_or("no pid").to_string(),
        )),
    }
}

/// Starts a fresh interpreter as this worker's child: its own process
/// group, dead with the worker, the control socket at fd 3.
fn spawn(
    setup: &PythonSetup,
    ctrl: BorrowedFd<'_>,
    out: OwnedFd,
    err: OwnedFd,
) -> Result<Child, String> {
    let ctrl_fd = ctrl.as_raw_fd();
    let mut command = Command::new(&setup.interpreter);
    command
        .args(runtime_args())
        .arg("serve")
        .arg(setup.config(std::process::id()))
        .env("JOBFILE_PY_CTRL", "3")
        .current_dir(&setup.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let parent = std::process::id();
    // SAFETY: between fork and exec the closure only calls async-signal-safe
    // functions (dup2, fcntl, setpgid, prctl, getppid, _exit) on the
    // child's own descriptors and attributes.
    unsafe {
        command.pre_exec(move || {
            if ctrl_fd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(ctrl_fd, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    command.spawn().map_err(|e| {
        format!(
            "cannot start the Python interpreter `{}`: {e}",
            setup.interpreter
        )
    })
}

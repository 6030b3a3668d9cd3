//! The frames engine and workers exchange: one JSON object per line, named
//! by its one key (`{"run": {...}}`, `{"done": {...}}`), which serde reads
//! without buffering the frame first.
//!
//! Every frame ends with `\n`, so the protocol also works through pipes
//! that forward output only up to the last newline (Slurm's `srun`), and
//! over the stdin/stdout of `jobfile worker`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::python::PythonSetup;
use super::readiness::set_nonblocking;
use crate::shared::SharedOp;
use crate::spec::Returns;

/// What a worker is asked to run: everything it needs, already rendered,
/// so a worker needs no copy of the job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Invocation {
    /// A function of the worker's registry.
    Builtin {
        name: String,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    },
    /// An external command.
    Command {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
        timeout_ms: Option<u64>,
        returns: Returns,
        /// Send each stdout/stderr line as it comes (`--live`, streams).
        forward_lines: bool,
    },
    /// A Python function, called in the worker's interpreter.
    Python {
        /// `MODULE:NAME`.
        target: String,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
        timeout_ms: Option<u64>,
        /// Send each output line, and each value a generator yields, as it
        /// comes (`--live`, streams).
        forward_lines: bool,
    },
}

/// One call inside a dispatch, with the engine's number for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub unit: u64,
    pub invocation: Invocation,
}

/// Engine to worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToWorker {
    /// Run these calls one after the other (a chunk has several).
    Run { calls: Vec<Call> },
    /// The answer to a [`FromWorker::Shared`] request.
    SharedReply {
        ok: Option<Value>,
        error: Option<String>,
    },
    /// Stop the running call: TERM its processes, KILL after the grace.
    Cancel,
    /// How this worker starts its Python interpreter; sent before the
    /// first call when the job has Python functions.
    Python { setup: PythonSetup },
    /// End the Python interpreter: the next Python call gets a fresh one
    /// (`max_tasks_per_child` of a worker that ran only Python calls).
    Renew,
}

/// How a call ended, as the worker saw it. Empty fields are left out of
/// the frame: most calls end ok with no output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CallOutcome {
    #[serde(skip_serializing_if = "is_false")]
    pub ok: bool,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(skip_serializing_if = "is_false")]
    pub timed_out: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub cancelled: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    #[serde(skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// The process that ran the call died (a Python interpreter).
    #[serde(skip_serializing_if = "is_false")]
    pub crashed: bool,
    /// The worker ends after this answer (its interpreter is gone); units
    /// queued behind this one never started.
    #[serde(skip_serializing_if = "is_false")]
    pub retire: bool,
    /// The call never started (its interpreter had died between calls): it
    /// goes back to its task as it was.
    #[serde(skip_serializing_if = "is_false")]
    pub unstarted: bool,
    /// Start, in milliseconds since the Unix epoch.
    #[serde(serialize_with = "to_microseconds")]
    pub started_ms: f64,
    #[serde(serialize_with = "to_microseconds")]
    pub duration_ms: f64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Milliseconds written to the microsecond (records show them to the
/// millisecond or its tenth): at most 16 digits, which serde_json reads
/// back on its exact fast path instead of its slow one for 17.
fn to_microseconds<S: serde::Serializer>(ms: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((ms * 1000.0).round() / 1000.0)
}

/// Which stream a forwarded line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineStream {
    Out,
    Err,
}

/// Worker to engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker is up, as process `pid` on the machine named `host`.
    Ready {
        pid: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// A command of `unit` started in process group `pgid`.
    Spawned { unit: u64, pgid: i32 },
    /// A line a command wrote.
    Line {
        unit: u64,
        stream: LineStream,
        line: String,
    },
    /// A value a Python generator yielded: one item for a stream's consumers.
    Item { unit: u64, value: Value },
    /// A builtin asks the engine to apply a shared-value operation.
    Shared { op: SharedOp },
    /// A call ended.
    Done { unit: u64, outcome: CallOutcome },
}

mod codec;

/// A frame of the protocol: written as one line, read from one.
pub trait Frame: Sized {
    /// Appends the frame's JSON, without the newline.
    fn write_to(&self, out: &mut Vec<u8>);
    /// Reads a frame from one line, without its newline.
    fn read_from(line: &[u8]) -> serde_json::Result<Self>;
}

impl Frame for ToWorker {
    fn write_to(&self, out: &mut Vec<u8>) {
        if !codec::write_run(self, out) {
            serialize_into(self, out);
        }
    }

    fn read_from(line: &[u8]) -> serde_json::Result<Self> {
        match codec::read_run(line) {
            Some(frame) => Ok(frame),
            None => serde_json::from_slice(line),
        }
    }
}

impl Frame for FromWorker {
    fn write_to(&self, out: &mut Vec<u8>) {
        if !codec::write_done(self, out) {
            serialize_into(self, out);
        }
    }

    fn read_from(line: &[u8]) -> serde_json::Result<Self> {
        match codec::read_done(line) {
            Some(frame) => Ok(frame),
            None => serde_json::from_slice(line),
        }
    }
}

/// The calls of a `run` frame, written one by one, for
/// [`Conn::queue_run`]: the very bytes serde writes for the
/// [`ToWorker::Run`] of the same calls. The engine writes a builtin's call
/// straight from its unit, with no [`Invocation`] made to be written once
/// and dropped, and keeps one frame whose buffer serves every dispatch.
#[derive(Debug, Default)]
pub struct RunFrame {
    /// The calls, comma-separated, without the frame around them.
    out: Vec<u8>,
    calls: usize,
}

impl RunFrame {
    /// Empty again, its buffer kept.
    pub fn clear(&mut self) {
        self.out.clear();
        self.calls = 0;
    }

    fn separate(&mut self) {
        if self.calls > 0 {
            self.out.push(b',');
        }
        self.calls += 1;
    }

    /// A call of the builtin `name`.
    pub fn builtin(&mut self, unit: u64, name: &str, args: &[Value], kwargs: &Map<String, Value>) {
        self.separate();
        codec::put_builtin_call(&mut self.out, unit, name, args, kwargs);
    }

    /// Any call.
    pub fn call(&mut self, call: &Call) {
        self.separate();
        codec::put_call(&mut self.out, call);
    }
}

fn serialize_into<T: Serialize>(frame: &T, out: &mut Vec<u8>) {
    let start = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, frame) {
        // Only non-string map keys can fail, and our frames have none.
        out.truncate(start);
        out.extend_from_slice(
            format!("{{\"t\":\"encode_error\",\"error\":{:?}}}", e.to_string()).as_bytes(),
        );
    }
}

/// Serializes a frame as one line.
pub fn encode<T: Frame>(frame: &T) -> Vec<u8> {
    let mut line = Vec::with_capacity(128);
    encode_into(frame, &mut line);
    line
}

/// Appends a frame as one line to `out`.
pub fn encode_into<T: Frame>(frame: &T, out: &mut Vec<u8>) {
    frame.write_to(out);
    out.push(b'\n');
}

/// A non-blocking, line-framed connection over a pair of file descriptors
/// (one socket for forked workers; two pipes for remote ones).
pub struct Conn {
    /// `None` once closed.
    read: Option<OwnedFd>,
    /// A separate descriptor to write to (pipes), or `None` to write to `read`.
    write: Option<OwnedFd>,
    inbuf: Vec<u8>,
    /// Start of unconsumed data in `inbuf`.
    start: usize,
    /// Bytes from `start` known to hold no newline: a large frame arriving
    /// in many reads is scanned once, not once per read.
    scanned: usize,
    outbuf: Vec<u8>,
    eof: bool,
    /// Read buffer, allocated once.
    scratch: Box<[u8]>,
}

impl Conn {
    /// A connection reading `read` and writing `write` (or `read` when `None`).
    pub fn new(read: OwnedFd, write: Option<OwnedFd>) -> io::Result<Conn> {
        set_nonblocking(read.as_fd())?;
        if let Some(w) = &write {
            set_nonblocking(w.as_fd())?;
        }
        Ok(Conn {
            read: Some(read),
            write,
            inbuf: Vec::with_capacity(64 * 1024),
            start: 0,
            scanned: 0,
            outbuf: Vec::new(),
            eof: false,
            scratch: vec![0; 64 * 1024].into_boxed_slice(),
        })
    }

    /// The descriptor to poll for input; `None` once closed.
    pub fn read_fd(&self) -> Option<BorrowedFd<'_>> {
        self.read.as_ref().map(AsFd::as_fd)
    }

    /// The descriptor to poll for output; `None` once closed.
    pub fn write_fd(&self) -> Option<BorrowedFd<'_>> {
        self.write.as_ref().or(self.read.as_ref()).map(AsFd::as_fd)
    }

    /// Closes both directions: the peer reads end of file.
    pub fn close(&mut self) {
        self.read = None;
        self.write = None;
        self.outbuf.clear();
        self.eof = true;
    }

    /// Has the peer closed its end?
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Reads what is available; `Ok(false)` at end of file.
    pub fn fill(&mut self) -> io::Result<bool> {
        if self.start > 0 && self.start == self.inbuf.len() {
            self.inbuf.clear();
            self.start = 0;
            self.scanned = 0;
        } else if self.start > self.inbuf.len() / 2 {
            self.inbuf.drain(..self.start);
            self.start = 0;
        }
        let Some(fd) = &self.read else {
            return Ok(false);
        };
        // A bounded read per call: a peer that writes without pause cannot
        // make one call read without end, and back-pressure stays real.
        for _ in 0..4 {
            let chunk = &mut self.scratch[..];
            match nix::unistd::read(fd, chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&self.scratch[..n]);
                    if n < self.scratch.len() {
                        return Ok(true);
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => return Ok(true),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    /// Is a complete frame waiting in the buffer?
    pub fn has_frame(&self) -> bool {
        memchr::memchr(b'\n', &self.inbuf[self.start + self.scanned..]).is_some()
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame<T: Frame>(&mut self) -> Option<io::Result<T>> {
        let rest = &self.inbuf[self.start..];
        let Some(nl) = memchr::memchr(b'\n', &rest[self.scanned..]) else {
            self.scanned = rest.len();
            return None;
        };
        let nl = self.scanned + nl;
        let line = &rest[..nl];
        self.start += nl + 1;
        self.scanned = 0;
        Some(
            T::read_from(line)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad frame: {e}"))),
        )
    }

    /// Queues a frame; call [`Conn::flush`] to send it.
    pub fn queue<T: Frame>(&mut self, frame: &T) {
        encode_into(frame, &mut self.outbuf);
    }

    /// Queues a `run` frame written call by call; `false` (nothing
    /// queued) if it has no calls.
    pub fn queue_run(&mut self, frame: &RunFrame) -> bool {
        if frame.calls == 0 {
            return false;
        }
        self.outbuf.extend_from_slice(codec::RUN_START);
        self.outbuf.extend_from_slice(&frame.out);
        self.outbuf.extend_from_slice(codec::RUN_END);
        self.outbuf.push(b'\n');
        true
    }

    /// Is output waiting to be written?
    pub fn wants_write(&self) -> bool {
        !self.outbuf.is_empty()
    }

    /// Writes as much queued output as the peer takes now.
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(fd) = self.write.as_ref().or(self.read.as_ref()) else {
            self.outbuf.clear();
            return Ok(());
        };
        while !self.outbuf.is_empty() {
            match nix::unistd::write(fd, &self.outbuf) {
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record_json::is_plain;

    #[test]
    fn times_travel_to_the_microsecond() {
        let outcome = CallOutcome {
            ok: true,
            started_ms: 1_796_345_887_453.123_7,
            duration_ms: 0.012_345_6,
            ..CallOutcome::default()
        };
        let line = encode(&FromWorker::Done { unit: 1, outcome });
        let text = String::from_utf8(line).unwrap();
        assert!(text.contains("\"started_ms\":1796345887453.124"), "{text}");
        assert!(text.contains("\"duration_ms\":0.012"), "{text}");
        let Ok(FromWorker::Done { outcome, .. }) = serde_json::from_str(&text) else {
            panic!("{text}");
        };
        assert_eq!(outcome.started_ms, 1_796_345_887_453.124);
        assert_eq!(outcome.duration_ms, 0.012);
    }

    /// The fields of an outcome, bit for bit, to compare two readings.
    fn fields(frame: &FromWorker) -> String {
        let FromWorker::Done { unit, outcome: o } = frame else {
            panic!("not a done frame: {frame:?}");
        };
        format!(
            "{unit} {} {:?} {:?} {:?} {} {} {} {} {} {} {:x} {:x}",
            o.ok,
            o.value,
            o.exit_code,
            o.signal,
            o.timed_out,
            o.cancelled,
            o.truncated,
            o.crashed,
            o.retire,
            o.unstarted,
            o.started_ms.to_bits(),
            o.duration_ms.to_bits()
        )
    }

    fn line_of<T: Frame>(frame: &T) -> Vec<u8> {
        let mut line = encode(frame);
        assert_eq!(line.pop(), Some(b'\n'));
        line
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// A done frame written by hand reads back, by hand and by serde,
        /// as the very outcome serde's own frame reads back as.
        #[test]
        fn done_frames_read_as_serde_reads_them(
            unit in 0u64..u64::MAX,
            started in 0.0f64..4.0e12,
            duration in proptest::prop_oneof![0.0f64..10.0, 0.0f64..1.0e9],
            flags in 0u8..=255,
            exit_code in proptest::option::of(-300i32..300),
            signal in proptest::option::of(1i32..64),
        ) {
            let outcome = CallOutcome {
                value: if flags & 128 != 0 { Value::from(format!("text {unit} é")) } else { Value::Null },
                ok: flags & 1 != 0,
                timed_out: flags & 2 != 0,
                cancelled: flags & 4 != 0,
                truncated: flags & 8 != 0,
                crashed: flags & 16 != 0,
                retire: flags & 32 != 0,
                unstarted: flags & 64 != 0,
                exit_code,
                signal,
                started_ms: started,
                duration_ms: duration,
                ..CallOutcome::default()
            };
            let frame = FromWorker::Done { unit, outcome };
            let by_serde: FromWorker = serde_json::from_slice(&serde_json::to_vec(&frame).unwrap()).unwrap();
            let ours = line_of(&frame);
            let read_ours = codec::read_done(&ours).expect("our own shape");
            let serde_reads_ours: FromWorker = serde_json::from_slice(&ours).unwrap();
            let ours_reads_serde = FromWorker::read_from(&serde_json::to_vec(&frame).unwrap()).unwrap();
            proptest::prop_assert_eq!(fields(&read_ours), fields(&by_serde));
            proptest::prop_assert_eq!(fields(&serde_reads_ours), fields(&by_serde));
            proptest::prop_assert_eq!(fields(&ours_reads_serde), fields(&by_serde));
        }
    }

    #[test]
    fn done_frames_with_more_go_through_serde() {
        let outcome = CallOutcome {
            ok: true,
            value: serde_json::json!({"a": [1, 2.5, "x\"y"]}),
            stdout: "out\n".into(),
            error: Some("e".into()),
            started_ms: 1.5,
            ..CallOutcome::default()
        };
        let frame = FromWorker::Done { unit: 7, outcome };
        let line = line_of(&frame);
        assert!(codec::read_done(&line).is_none());
        let back = FromWorker::read_from(&line).unwrap();
        let FromWorker::Done { outcome, .. } = &back else {
            panic!("{back:?}");
        };
        assert_eq!(outcome.value, serde_json::json!({"a": [1, 2.5, "x\"y"]}));
        assert_eq!(outcome.stdout, "out\n");
        assert_eq!(fields(&back), fields(&frame));
        let quoted = FromWorker::Done {
            unit: 8,
            outcome: CallOutcome {
                value: Value::from("say \"hi\"\n"),
                ..CallOutcome::default()
            },
        };
        let line = line_of(&quoted);
        assert!(codec::read_done(&line).is_none());
        assert_eq!(
            fields(&FromWorker::read_from(&line).unwrap()),
            fields(&quoted)
        );
        // Numbers in other forms than ours still read, through serde.
        for text in [
            r#"{"done":{"unit":3,"outcome":{"ok":true,"started_ms":1e3,"duration_ms":0.1}}}"#,
            r#"{"done":{"unit":3,"outcome":{"started_ms":12345678901234567890,"duration_ms":0}}}"#,
            r#"{"done": {"unit":3,"outcome":{}}}"#,
        ] {
            assert!(FromWorker::read_from(text.as_bytes()).is_ok(), "{text}");
        }
        for bad in [
            &br#"{"done":{"unit":03,"outcome":{}}}"#[..],
            br#"{"done":{"unit":3,"outcome":{"ok":tru}}}"#,
            br#"{"done":{"unit":3,"outcome":{}}}x"#,
            br#"{"done":{"unit":3,"outcome":{"started_ms":1.}}}"#,
        ] {
            assert!(
                FromWorker::read_from(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn run_frames_of_builtins_read_as_serde_writes_them() {
        let mut kwargs = Map::new();
        kwargs.insert(
            "k\u{e9}y".into(),
            serde_json::json!([null, true, -3, 2.25, {"n": "\t"}]),
        );
        let builtin = |unit, name: &str| Call {
            unit,
            invocation: Invocation::Builtin {
                name: name.into(),
                args: vec![serde_json::json!(unit), serde_json::json!("a\"b")],
                kwargs: kwargs.clone(),
            },
        };
        let frame = ToWorker::Run {
            calls: vec![builtin(1, "noop"), builtin(u64::MAX, "we\"ird")],
        };
        assert_eq!(line_of(&frame), serde_json::to_vec(&frame).unwrap());
        let command = Call {
            unit: 2,
            invocation: Invocation::Command {
                argv: vec!["true".into()],
                env: vec![],
                cwd: None,
                timeout_ms: None,
                returns: crate::spec::Returns::default(),
                forward_lines: false,
            },
        };
        let mixed = ToWorker::Run {
            calls: vec![builtin(1, "noop"), command],
        };
        assert_eq!(line_of(&mixed), serde_json::to_vec(&mixed).unwrap());

        // Written call by call on a connection, the same bytes; a frame
        // with no calls queues nothing.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut conn = Conn::new(OwnedFd::from(a), None).unwrap();
        let ToWorker::Run { calls } = &mixed else {
            unreachable!()
        };
        assert!(!conn.queue_run(&RunFrame::default()));
        assert!(!conn.wants_write());
        let mut frame = RunFrame::default();
        let Invocation::Builtin { name, args, kwargs } = &calls[0].invocation else {
            unreachable!()
        };
        frame.builtin(calls[0].unit, name, args, kwargs);
        frame.call(&calls[1]);
        assert!(conn.queue_run(&frame));
        frame.clear();
        assert!(!conn.queue_run(&frame));
        let mut want = serde_json::to_vec(&mixed).unwrap();
        want.push(b'\n');
        assert_eq!(conn.outbuf, want);
    }

    /// Any JSON value: the shapes the hand reader knows and the ones it
    /// leaves to serde (floats, escapes, big and negative numbers).
    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1.0e6f64..1.0e6).prop_map(Value::from),
            "[a-z\u{e9}\u{4e2d}]{0,6}".prop_map(Value::from),
            "[ -~\n\t\"\\\\\u{1}]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-z\"]{0,3}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// A run frame of builtin calls reads back by hand, or through
        /// serde when the hand reader leaves it, as serde reads it.
        #[test]
        fn run_frames_read_as_serde_reads_them(
            calls in proptest::collection::vec(
                (any_value(), any_value(), "[a-z_\"]{1,8}"), 0..4),
            unit in 0u64..u64::MAX,
        ) {
            let calls: Vec<Call> = calls
                .into_iter()
                .enumerate()
                .map(|(i, (a, k, name))| Call {
                    unit: unit.wrapping_add(i as u64),
                    invocation: Invocation::Builtin {
                        name,
                        args: match a {
                            Value::Array(a) => a,
                            other => vec![other],
                        },
                        kwargs: match k {
                            Value::Object(k) => k,
                            other => [("k".to_string(), other)].into_iter().collect(),
                        },
                    },
                })
                .collect();
            let frame = ToWorker::Run { calls };
            let line = line_of(&frame);
            let by_serde: ToWorker = serde_json::from_slice(&line).unwrap();
            let ours = ToWorker::read_from(&line).unwrap();
            proptest::prop_assert_eq!(format!("{ours:?}"), format!("{by_serde:?}"));
            // And the hand reader takes every frame of the shapes it knows.
            let ToWorker::Run { calls } = &frame else { unreachable!() };
            let known = calls.iter().all(|c| match &c.invocation {
                Invocation::Builtin { name, args, kwargs } => {
                    is_plain(name)
                        && args.iter().all(hand_readable)
                        && kwargs.iter().all(|(k, v)| is_plain(k) && hand_readable(v))
                }
                _ => false,
            });
            proptest::prop_assert_eq!(codec::read_run(&line).is_some(), known);
        }
    }

    /// Values [`codec::read_run`] reads itself.
    fn hand_readable(v: &Value) -> bool {
        match v {
            Value::Null | Value::Bool(_) | Value::String(_) if v.as_str().is_none_or(is_plain) => {
                true
            }
            Value::Number(n) => n.is_u64() || n.as_i64().is_some_and(|i| i < 0),
            Value::Array(a) => a.iter().all(hand_readable),
            Value::Object(o) => o.iter().all(|(k, v)| is_plain(k) && hand_readable(v)),
            _ => false,
        }
    }

    #[test]
    fn run_frames_the_hand_reader_leaves_go_through_serde() {
        for (text, by_hand) in [
            (r#"{"run":{"calls":[]}}"#, true),
            (
                r#"{"run":{"calls":[{"unit":1,"invocation":{"builtin":{"name":"noop","args":[0,-7,"x",[null,true],{"a":{}}],"kwargs":{}}}}]}}"#,
                true,
            ),
            (
                r#"{"run":{"calls":[{"unit":1,"invocation":{"builtin":{"name":"noop","args":[1.5],"kwargs":{}}}}]}}"#,
                false,
            ),
            (
                r#"{"run":{"calls":[{"unit":1,"invocation":{"builtin":{"name":"noop","args":[-0],"kwargs":{}}}}]}}"#,
                false,
            ),
            (
                r#"{"run":{"calls":[{"unit":1,"invocation":{"builtin":{"name":"noop","args":[18446744073709551616],"kwargs":{}}}}]}}"#,
                false,
            ),
            (
                r#"{"run":{"calls":[{"unit":1,"invocation":{"builtin":{"name":"noop","args":["a\nb"],"kwargs":{}}}}]}}"#,
                false,
            ),
            (r#"{"run": {"calls":[]}}"#, false),
        ] {
            assert_eq!(
                codec::read_run(text.as_bytes()).is_some(),
                by_hand,
                "{text}"
            );
            let ours = ToWorker::read_from(text.as_bytes()).unwrap();
            let by_serde: ToWorker = serde_json::from_str(text).unwrap();
            assert_eq!(format!("{ours:?}"), format!("{by_serde:?}"), "{text}");
        }
        for bad in [
            &br#"{"run":{"calls":[{"unit":1,"invocation":{"builtin":{"name":"noop","args":[01],"kwargs":{}}}}]}}"#[..],
            br#"{"run":{"calls":[{"unit":1,"invocation":{"builtin":{"name":"noop","args":[1,],"kwargs":{}}}}]}}"#,
            br#"{"run":{"calls":[]}}x"#,
            b"{\"run\":{\"calls\":[{\"unit\":1,\"invocation\":{\"builtin\":{\"name\":\"\xff\",\"args\":[],\"kwargs\":{}}}}]}}",
        ] {
            assert!(
                ToWorker::read_from(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

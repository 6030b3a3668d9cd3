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

/// Serializes a frame as one line.
pub fn encode<T: Serialize>(frame: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(frame).unwrap_or_else(|e| {
        // Only non-string map keys can fail, and our frames have none.
        format!("{{\"t\":\"encode_error\",\"error\":{:?}}}", e.to_string()).into_bytes()
    });
    line.push(b'\n');
    line
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
        self.inbuf[self.start + self.scanned..].contains(&b'\n')
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame<T: for<'de> Deserialize<'de>>(&mut self) -> Option<io::Result<T>> {
        let rest = &self.inbuf[self.start..];
        let Some(nl) = rest[self.scanned..].iter().position(|&b| b == b'\n') else {
            self.scanned = rest.len();
            return None;
        };
        let nl = self.scanned + nl;
        let line = &rest[..nl];
        self.start += nl + 1;
        self.scanned = 0;
        Some(
            serde_json::from_slice(line)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad frame: {e}"))),
        )
    }

    /// Queues a frame; call [`Conn::flush`] to send it.
    pub fn queue<T: Serialize>(&mut self, frame: &T) {
        self.outbuf.extend_from_slice(&encode(frame));
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
}

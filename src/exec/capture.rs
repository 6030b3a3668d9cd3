//! The read end of an output pipe: what is kept of it (up to a limit) and
//! the lines forwarded as they come. Shared by commands, which read their
//! pipes to the end, and Python interpreters, whose pipes outlive calls.
//!
//! Must not block: every read is non-blocking, and the caller polls.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, OwnedFd};

use super::command::{Events, Stream};
use super::readiness::set_nonblocking;

/// Size of one read from a pipe.
const READ_CHUNK: usize = 64 * 1024;

/// The read end of one output pipe and what has been kept from it.
pub(crate) struct Pipe {
    stream: Stream,
    /// `None` once end of file was read.
    pub(crate) fd: Option<File>,
    pub(crate) captured: Vec<u8>,
    /// Bytes kept; the rest is read and dropped.
    limit: usize,
    /// Whether [`Events::on_line`] is called for each line.
    forward_lines: bool,
    /// The start of a line not yet ended, when lines are forwarded.
    partial: Vec<u8>,
    /// With calls sent ahead, each call's output ends with this mark; what
    /// comes is split at it instead of being captured whole.
    marker: Option<Vec<u8>>,
    /// Output not yet ended by a mark.
    raw: Vec<u8>,
    /// Bytes of `raw` known to hold no mark.
    scanned: usize,
    /// Some of `raw` was dropped (over the limit).
    raw_cut: bool,
    /// Output of calls whose mark came, in order, with their `truncated`.
    segments: VecDeque<(Vec<u8>, bool)>,
}

impl Pipe {
    /// Reads `fd`, keeping `limit` bytes and forwarding lines if asked.
    pub(crate) fn new(
        stream: Stream,
        fd: Option<OwnedFd>,
        limit: usize,
        forward_lines: bool,
    ) -> Self {
        // A pipe that cannot be made non-blocking could stall the loop;
        // without the flag it is left out, as if it had been closed.
        let fd = fd.filter(|fd| set_nonblocking(fd.as_fd()).is_ok());
        Self::nonblocking(stream, fd, limit, forward_lines)
    }

    /// [`Pipe::new`] for a read end already non-blocking (a command's, made
    /// so when it was created): two `fcntl` calls fewer per pipe.
    pub(crate) fn nonblocking(
        stream: Stream,
        fd: Option<OwnedFd>,
        limit: usize,
        forward_lines: bool,
    ) -> Self {
        Pipe {
            stream,
            fd: fd.map(File::from),
            captured: Vec::new(),
            partial: Vec::new(),
            limit,
            forward_lines,
            marker: None,
            raw: Vec::new(),
            scanned: 0,
            raw_cut: false,
            segments: VecDeque::new(),
        }
    }

    /// Reads once. Returns false when there is nothing more to read now.
    pub(crate) fn read_once(&mut self, truncated: &mut bool, events: &mut dyn Events) -> bool {
        let Some(file) = self.fd.as_mut() else {
            return false;
        };
        let mut buf = [0u8; READ_CHUNK];
        match file.read(&mut buf) {
            Ok(0) => {
                self.fd = None;
                false
            }
            Ok(n) => {
                self.take(&buf[..n], truncated, events);
                true
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(_) => {
                // Not expected from a pipe; treat it as its end.
                self.fd = None;
                false
            }
        }
    }

    /// Reads what is there now, without waiting for more.
    pub(crate) fn drain(&mut self, truncated: &mut bool, events: &mut dyn Events) {
        while self.read_once(truncated, events) {}
    }

    /// Keeps what fits under the limit and forwards complete lines.
    fn take(&mut self, data: &[u8], truncated: &mut bool, events: &mut dyn Events) {
        if self.marker.is_some() {
            self.take_marked(data);
            return;
        }
        let room = self.limit.saturating_sub(self.captured.len());
        if data.len() > room {
            *truncated = true;
        }
        self.captured
            .extend_from_slice(&data[..data.len().min(room)]);

        if !self.forward_lines {
            return;
        }
        let max_line = self.limit.max(READ_CHUNK);
        let mut rest = data;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                events.on_line(self.stream, &rest[..end]);
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                events.on_line(self.stream, &self.partial);
                self.partial.clear();
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        while self.partial.len() >= max_line {
            events.on_line(self.stream, &self.partial[..max_line]);
            self.partial.drain(..max_line);
        }
    }

    /// Delivers a last line that had no `'\n'`, and closes the pipe.
    pub(crate) fn finish(&mut self, events: &mut dyn Events) {
        self.end_call(events);
        self.fd = None;
    }

    /// Delivers a last line that had no `'\n'`, keeping the pipe open (a
    /// Python interpreter's, which outlives its calls).
    pub(crate) fn end_call(&mut self, events: &mut dyn Events) {
        if self.forward_lines && !self.partial.is_empty() {
            events.on_line(self.stream, &self.partial);
            self.partial.clear();
        }
    }

    /// Splits what comes at `marker` from now on (`None`: captures whole).
    pub(crate) fn set_marker(&mut self, marker: Option<Vec<u8>>) {
        self.marker = marker;
    }

    /// The output of the next call whose mark has come, with whether some
    /// of it was dropped.
    pub(crate) fn next_segment(&mut self) -> Option<(Vec<u8>, bool)> {
        self.segments.pop_front()
    }

    /// Has a call's mark come?
    pub(crate) fn has_segment(&self) -> bool {
        !self.segments.is_empty()
    }

    /// What came after the last mark (the output of a call that never
    /// ended), with whether some of it was dropped.
    pub(crate) fn take_unmarked(&mut self) -> (Vec<u8>, bool) {
        let mut raw = std::mem::take(&mut self.raw);
        let cut = self.raw_cut || raw.len() > self.limit;
        raw.truncate(self.limit);
        self.scanned = 0;
        self.raw_cut = false;
        (raw, cut)
    }

    fn take_marked(&mut self, data: &[u8]) {
        let Some(marker) = &self.marker else {
            return;
        };
        let m = marker.len();
        self.raw.extend_from_slice(data);
        while let Some(pos) = find(&self.raw[self.scanned..], marker) {
            let end = self.scanned + pos;
            let cut = self.raw_cut || end > self.limit;
            let segment = self.raw[..end.min(self.limit)].to_vec();
            self.segments.push_back((segment, cut));
            self.raw.drain(..end + m);
            self.scanned = 0;
            self.raw_cut = false;
        }
        // Keep at most the limit, and the tail where a mark may begin.
        let tail = m.saturating_sub(1);
        if self.raw.len() > self.limit + m {
            let from = self.limit;
            let to = self.raw.len() - tail;
            self.raw.drain(from..to);
            self.raw_cut = true;
        }
        self.scanned = self.raw.len().saturating_sub(tail);
    }

    /// Sets whether lines are forwarded, for the next call.
    pub(crate) fn forward(&mut self, on: bool) {
        self.forward_lines = on;
    }
}

/// Where `needle` (which starts with a NUL byte) first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if hay.len() - at < needle.len() {
            return None;
        }
        if &hay[at..at + needle.len()] == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

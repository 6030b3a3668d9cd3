//! The read end of an output pipe: what is kept of it (up to a limit) and
//! the lines forwarded as they come. Shared by commands, which read their
//! pipes to the end, and Python interpreters, whose pipes outlive calls.
//!
//! Must not block: every read is non-blocking, and the caller polls.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::OwnedFd;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use super::command::{Events, Stream};

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
        let fd = fd.filter(|fd| set_nonblocking(fd).is_ok()).map(File::from);
        Pipe {
            stream,
            fd,
            captured: Vec::new(),
            partial: Vec::new(),
            limit,
            forward_lines,
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

    /// Sets whether lines are forwarded, for the next call.
    pub(crate) fn forward(&mut self, on: bool) {
        self.forward_lines = on;
    }
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

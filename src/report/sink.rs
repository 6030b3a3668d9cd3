//! Where the engine hands finished records: in submission order through
//! the reorder buffer, or as they come; counted by status for the summary.

use std::io;

use super::reorder::ReorderBuffer;
use super::writer::RecordWriter;
use super::{Progress, Record, Status};
use crate::spec::Order;

/// The records' way out.
pub struct Sink {
    writer: Box<dyn RecordWriter>,
    order: Order,
    reorder: ReorderBuffer,
    counts: [u64; 6],
    error: Option<io::Error>,
    progress: Option<Progress>,
}

impl Sink {
    /// Records go to `writer` in `order`.
    pub fn new(writer: Box<dyn RecordWriter>, order: Order) -> Sink {
        Sink {
            writer,
            order,
            reorder: ReorderBuffer::new(),
            counts: [0; 6],
            error: None,
            progress: None,
        }
    }

    /// Shows a progress bar as records come.
    pub fn with_progress(mut self, progress: Progress) -> Sink {
        self.progress = Some(progress);
        self
    }

    /// Units running now, for the progress bar.
    pub fn running(&mut self, n: usize) {
        if let Some(p) = &mut self.progress {
            p.running(n);
        }
    }

    /// A finished record: record `seq` of slot `slot` (slots are tasks in
    /// submission order; within one, items then callback).
    pub fn emit(&mut self, slot: usize, seq: u64, record: Record) {
        if !record.is_shared() {
            self.counts[status_index(record.status)] += 1;
            if let Some(p) = &mut self.progress {
                p.record(record.status);
            }
        }
        match self.order {
            Order::Completion => self.write(&record),
            Order::Submission => {
                let ready = self.reorder.push(slot, seq, record).map(Iterator::collect);
                self.write_ready(ready);
            }
        }
    }

    /// Slot `slot` holds exactly `total` records.
    pub fn close(&mut self, slot: usize, total: u64) {
        if self.order == Order::Submission {
            let ready = self.reorder.close(slot, total).map(Iterator::collect);
            self.write_ready(ready);
        }
    }

    /// Writes what the reorder buffer let out; a contradiction in the
    /// engine's calls (a bug) ends the output with an error.
    fn write_ready(&mut self, ready: Result<Vec<Record>, super::ReorderError>) {
        match ready {
            Ok(records) => {
                for r in records {
                    self.write(&r);
                }
            }
            Err(e) => self.fail(io::Error::other(e.to_string())),
        }
    }

    /// Has writing failed? Nothing more will be written.
    pub fn has_failed(&self) -> bool {
        self.error.is_some()
    }

    /// Writes every record still held back (after an interruption, with
    /// the gaps left out) and closes the output. Gives the counts by
    /// status, and the first write error if there was one.
    pub fn finish(mut self) -> ([u64; 6], Option<io::Error>) {
        if let Some(p) = &self.progress {
            p.finish();
        }
        for r in self.reorder.drain_held() {
            self.write(&r);
        }
        if let Err(e) = self.writer.finish() {
            self.fail(e);
        }
        (self.counts, self.error)
    }

    /// Pushes buffered records out (before the engine waits).
    pub fn flush(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.writer.flush() {
                self.fail(e);
            }
        }
    }

    /// Records so far, by status (in [`STATUSES`] order).
    pub fn counts(&self) -> [u64; 6] {
        self.counts
    }

    fn write(&mut self, r: &Record) {
        if self.error.is_none() {
            if let Err(e) = self.writer.write(r) {
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, e: io::Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }
}

/// The statuses in the order of [`Sink::counts`].
pub const STATUSES: [Status; 6] = [
    Status::Ok,
    Status::Failed,
    Status::Timeout,
    Status::Crashed,
    Status::Skipped,
    Status::Cancelled,
];

fn status_index(s: Status) -> usize {
    STATUSES.iter().position(|&x| x == s).unwrap_or(0)
}

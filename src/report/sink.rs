//! Where the engine hands finished records: in submission order through
//! the reorder buffer, or as they come; counted by status for the summary.

use std::io;

use super::reorder::ReorderBuffer;
use super::writer::RecordWriter;
use super::{Progress, Record, Status};
use crate::results::Order;

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
                // Written one by one as they come out: when a slot closes,
                // what it lets out may be many records held on disk.
                match self.reorder.push(slot, seq, record) {
                    Ok(ready) => {
                        ready.for_each(|r| write_to(&mut self.writer, &mut self.error, &r))
                    }
                    Err(e) => {
                        self.error.get_or_insert(io::Error::other(e.to_string()));
                    }
                }
                self.check_reorder();
            }
        }
    }

    /// Slot `slot` holds exactly `total` records.
    pub fn close(&mut self, slot: usize, total: u64) {
        if self.order == Order::Submission {
            match self.reorder.close(slot, total) {
                Ok(ready) => ready.for_each(|r| write_to(&mut self.writer, &mut self.error, &r)),
                Err(e) => {
                    self.error.get_or_insert(io::Error::other(e.to_string()));
                }
            }
            self.check_reorder();
        }
    }

    /// A record the reorder buffer could not read back from its spill file
    /// is lost: the output ends with the error.
    fn check_reorder(&mut self) {
        if let Some(e) = self.reorder.error() {
            self.fail(io::Error::other(format!("holding records back: {e}")));
        }
    }

    /// Has writing failed? Nothing more will be written.
    pub fn has_failed(&self) -> bool {
        self.error.is_some()
    }

    /// Writes `record` now, after every record still held back: for the
    /// earlier records an interrupted `--resume` never reached, which must
    /// not be lost.
    pub fn append(&mut self, record: Record) {
        for r in self.reorder.drain_held() {
            self.write(&r);
        }
        self.counts[status_index(record.status)] += 1;
        self.write(&record);
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

    fn write(&mut self, r: &Record) {
        write_to(&mut self.writer, &mut self.error, r);
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

/// Writes one record unless writing has failed already; keeps the first error.
fn write_to(writer: &mut Box<dyn RecordWriter>, error: &mut Option<io::Error>, r: &Record) {
    if error.is_none() {
        if let Err(e) = writer.write(r) {
            *error = Some(e);
        }
    }
}

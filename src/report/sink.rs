//! Where the engine hands finished records: in submission order through
//! the reorder buffer, or as they come; counted by status for the summary,
//! the ones not ok kept for the closing list. It also prints what a person
//! watches while the run goes on (`--live` lines, failures as they end),
//! through the bar that owns standard error.

use std::io;

use serde_json::Value;

use super::counts::Counts;
use super::failures::Failures;
use super::item_name::{ItemNames, label};
use super::reorder::ReorderBuffer;
use super::screen;
use super::writer::RecordWriter;
use super::{Progress, Record, Status};
use crate::results::Order;

/// The records' way out.
pub struct Sink {
    writer: Box<dyn RecordWriter>,
    order: Order,
    reorder: ReorderBuffer,
    counts: Counts,
    error: Option<io::Error>,
    progress: Option<Progress>,
    names: ItemNames,
    failures: Failures,
    /// The results are shown on the terminal the bar is on.
    results_on_screen: bool,
}

impl Sink {
    /// Records go to `writer` in `order`.
    pub fn new(writer: Box<dyn RecordWriter>, order: Order) -> Sink {
        Sink {
            writer,
            order,
            reorder: ReorderBuffer::new(),
            counts: Counts::default(),
            error: None,
            progress: None,
            names: ItemNames::default(),
            failures: Failures::new(),
            results_on_screen: false,
        }
    }

    /// Shows a progress bar as records come. `results_on_screen`: the
    /// results are text on the same terminal, so a failure is not printed
    /// again above the bar as it ends; while it waits for its turn in
    /// submission order, the bar shows it.
    pub fn with_progress(mut self, progress: Progress, results_on_screen: bool) -> Sink {
        self.progress = Some(progress);
        self.results_on_screen = results_on_screen;
        self
    }

    /// Names map items after what they ran on, in `--live` labels and the
    /// list of failures.
    pub fn with_names(mut self, names: ItemNames) -> Sink {
        self.names = names;
        self
    }

    /// Notes each record that is not ok in `failures`, for the list that
    /// closes the run.
    pub fn with_failures(mut self, failures: Failures) -> Sink {
        self.failures = failures;
        self
    }

    /// A line a task wrote (`--live`), printed on standard error with the
    /// task's label: `[id[index] name] line`, and `!` after the label for
    /// stderr.
    pub fn live_line(
        &mut self,
        task: &str,
        index: Option<u64>,
        item: Option<&Value>,
        stderr: bool,
        line: &str,
    ) {
        let name = self.names.of_item(task, index, item);
        let label = label(task, index, name.as_deref());
        let mark = if stderr { "!" } else { "" };
        screen::eprint_lines(&format!("[{label}]{mark} {}", live_text(line)));
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
            self.counts[record.status] += 1;
            self.failures.note(Some((slot, seq)), &record, &self.names);
            if let Some(p) = &mut self.progress {
                p.record(record.status);
                if ran_and_failed(record.status) {
                    let name = self.names.of_record(&record);
                    let label = label(&record.task, record.index, name.as_deref());
                    let why = super::text_writer::why(&record);
                    if !self.results_on_screen {
                        // Shown as it ends: the results are elsewhere.
                        p.println_failure(record.status, &label, &why);
                    } else if self.order == Order::Submission {
                        // Shown on the bar until its line comes out.
                        p.hold(&record.task, record.index, record.status, &label, &why);
                    }
                }
            }
        }
        match self.order {
            Order::Completion => self.write(&record),
            Order::Submission => {
                // Written one by one as they come out: when a slot closes,
                // what it lets out may be many records held on disk.
                match self.reorder.push(slot, seq, record) {
                    Ok(ready) => ready.for_each(|r| {
                        write_to(&mut self.writer, &mut self.error, &r);
                        release(&mut self.progress, &r);
                    }),
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
                Ok(ready) => ready.for_each(|r| {
                    write_to(&mut self.writer, &mut self.error, &r);
                    release(&mut self.progress, &r);
                }),
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
        self.counts[record.status] += 1;
        self.failures.note(None, &record, &self.names);
        self.write(&record);
    }

    /// Writes every record still held back (after an interruption, with
    /// the gaps left out) and closes the output. Gives the counts by
    /// status, and the first write error if there was one.
    pub fn finish(mut self) -> (Counts, Option<io::Error>) {
        for r in self.reorder.drain_held() {
            self.write(&r);
        }
        if let Err(e) = self.writer.finish() {
            self.fail(e);
        }
        // Last: what the writers put on the terminal went out with the
        // bar suspended, and the bar leaves no line behind.
        if let Some(p) = &self.progress {
            p.finish();
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

/// What a terminal would show of a line redrawn with `\r` (its last
/// part); the other control characters but tab and escape (colours) are
/// made visible, so a task's line cannot break the bar's lines.
fn live_text(line: &str) -> String {
    let line = line.rsplit('\r').find(|l| !l.is_empty()).unwrap_or("");
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c.is_control() && c != '\t' && c != '\x1b' {
            true => out.extend(c.escape_default()),
            false => out.push(c),
        }
    }
    out
}

/// A record held on the bar for its turn has come out: off the bar.
fn release(progress: &mut Option<Progress>, r: &Record) {
    if let (Some(p), true) = (progress, ran_and_failed(r.status)) {
        p.release(&r.task, r.index);
    }
}

/// What is shown as it ends: it ran and failed. What never ran (skipped,
/// cancelled after an interruption) waits for the closing list.
fn ran_and_failed(s: Status) -> bool {
    matches!(s, Status::Failed | Status::Timeout | Status::Crashed)
}

/// Writes one record unless writing has failed already; keeps the first error.
fn write_to(writer: &mut Box<dyn RecordWriter>, error: &mut Option<io::Error>, r: &Record) {
    if error.is_none() {
        if let Err(e) = writer.write(r) {
            *error = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_lines_show_what_a_terminal_would() {
        assert_eq!(live_text("10%\r50%\r100%"), "100%");
        assert_eq!(live_text("done\r"), "done");
        assert_eq!(
            live_text("\x1b[32mgreen\x1b[0m\tx"),
            "\x1b[32mgreen\x1b[0m\tx"
        );
        assert_eq!(live_text("a\x08b\x0bc"), "a\\u{8}b\\u{b}c");
        assert_eq!(live_text(""), "");
    }
}

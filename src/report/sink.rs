//! Where the engine hands finished records: in submission order through
//! the reorder buffer, or as they come (a callback's record right after
//! the last of its task's own); counted by status for the summary,
//! the ones not ok kept for the closing list. It also prints what a person
//! watches while the run goes on (`--live` lines, failures as they end),
//! through the bar that owns standard error.

use std::collections::BTreeMap;
use std::io;

use serde_json::Value;

use super::counts::Counts;
use super::failures::Failures;
use super::item_name::{ItemNames, label};
use super::reorder::{Ready, ReorderBuffer, ReorderError};
use super::screen;
use super::writer::RecordWriter;
use super::{Progress, Record};
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
    /// How callbacks' records follow their tasks' in completion order.
    tails: Tails,
}

/// Completion order puts a callback's record right after the last of its
/// task's own records to end: that one waits for it. (Submission order
/// needs nothing: the callback's record is the slot's last.)
#[derive(Default)]
struct Tails {
    /// How many records each slot has had.
    emitted: Vec<u64>,
    /// Slots whose own records are known to number this many, and whose
    /// last one is still to come: it will wait.
    own: BTreeMap<usize, u64>,
    /// The last own record of a slot, waiting for its callback's record
    /// (or for the slot to close without one).
    waiting: BTreeMap<usize, Record>,
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
            tails: Tails::default(),
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
                if record.status.ran_and_failed() {
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
            Order::Completion => self.write_completed(slot, record),
            Order::Submission => {
                // Written one by one as they come out: when a slot closes,
                // what it lets out may be many records held on disk.
                let ready = self.reorder.push(slot, seq, record);
                write_ready(ready, &mut self.writer, &mut self.error, &mut self.progress);
                self.check_reorder();
            }
        }
    }

    /// The task of slot `slot` has `own` records of its own, and a
    /// callback whose record, if it runs, is record `own`: in completion
    /// order the last of the own records to end waits for it, so that the
    /// two come out together. Said once the count is known; a count the
    /// slot has reached already holds nothing back.
    pub fn own_records(&mut self, slot: usize, own: u64) {
        if self.order == Order::Completion
            && self.tails.emitted.get(slot).copied().unwrap_or(0) < own
        {
            self.tails.own.insert(slot, own);
        }
    }

    /// Completion order: writes `record` of `slot` now, after its slot's
    /// record waiting for it, unless it is the one that waits.
    fn write_completed(&mut self, slot: usize, record: Record) {
        if record.is_shared() {
            // The last record of all.
            self.release_tails();
        }
        let tails = &mut self.tails;
        if tails.emitted.len() <= slot {
            tails.emitted.resize(slot + 1, 0);
        }
        tails.emitted[slot] += 1;
        if tails.own.is_empty() && tails.waiting.is_empty() {
            // The common case: no callback's record is due.
            self.write(&record);
            return;
        }
        if let Some(last) = tails.waiting.remove(&slot) {
            self.write(&last);
        }
        let tails = &mut self.tails;
        if tails.own.get(&slot) == Some(&tails.emitted[slot]) {
            tails.own.remove(&slot);
            tails.waiting.insert(slot, record);
        } else {
            self.write(&record);
        }
    }

    /// Completion order: writes the records waiting for callbacks that
    /// will not come now (an interrupted run's), in submission order.
    fn release_tails(&mut self) {
        self.tails.own.clear();
        for (_, r) in std::mem::take(&mut self.tails.waiting) {
            self.write(&r);
        }
    }

    /// Slot `slot` holds exactly `total` records.
    pub fn close(&mut self, slot: usize, total: u64) {
        if self.order == Order::Completion {
            // No callback's record comes after this.
            self.tails.own.remove(&slot);
            if let Some(last) = self.tails.waiting.remove(&slot) {
                self.write(&last);
            }
        }
        if self.order == Order::Submission {
            let ready = self.reorder.close(slot, total);
            write_ready(ready, &mut self.writer, &mut self.error, &mut self.progress);
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
        self.release_tails();
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
        self.release_tails();
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
    if let (Some(p), true) = (progress, r.status.ran_and_failed()) {
        p.release(&r.task, r.index);
    }
}

/// Writes, one by one, the records the reorder buffer lets out, each
/// taken off the bar's held failures; or keeps why it could not.
fn write_ready(
    ready: Result<Ready<'_>, ReorderError>,
    writer: &mut Box<dyn RecordWriter>,
    error: &mut Option<io::Error>,
    progress: &mut Option<Progress>,
) {
    match ready {
        Ok(ready) => ready.for_each(|r| {
            write_to(writer, error, &r);
            release(progress, &r);
        }),
        Err(e) => {
            error.get_or_insert(io::Error::other(e.to_string()));
        }
    }
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
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::report::RecordKind;
    use crate::report::Status;

    /// The records as they were written.
    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<String>>>);

    impl RecordWriter for Written {
        fn write(&mut self, record: &Record) -> io::Result<()> {
            let name = match record.index {
                Some(i) => format!("{}[{i}]", record.task),
                None => record.task.clone(),
            };
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .push(name);
            Ok(())
        }

        fn finish(&mut self) -> io::Result<()> {
            Ok(())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sink(order: Order) -> (Sink, Written) {
        let written = Written::default();
        (Sink::new(Box::new(written.clone()), order), written)
    }

    fn rec(task: &str, index: Option<u64>) -> Record {
        Record::not_run(task.into(), index, "f".into(), Status::Ok, String::new())
    }

    fn out(written: &Written) -> Vec<String> {
        written.0.lock().unwrap().clone()
    }

    #[test]
    fn in_completion_order_a_callbacks_record_follows_its_tasks_last() {
        let (mut s, w) = sink(Order::Completion);
        s.emit(0, 1, rec("m", Some(1)));
        s.own_records(0, 2);
        // The last of m's own records waits for its callback's record.
        s.emit(0, 0, rec("m", Some(0)));
        s.emit(1, 0, rec("x", None));
        assert_eq!(out(&w), ["m[1]", "x"]);
        s.emit(0, 2, rec("m:callback", None));
        s.close(0, 3);
        s.close(1, 1);
        s.finish();
        assert_eq!(out(&w), ["m[1]", "x", "m[0]", "m:callback"]);
    }

    #[test]
    fn in_completion_order_a_slot_closed_without_its_callback_lets_its_last_out() {
        let (mut s, w) = sink(Order::Completion);
        s.own_records(0, 1);
        s.emit(0, 0, rec("a", None));
        s.emit(1, 0, rec("b", None));
        s.close(1, 1);
        assert_eq!(out(&w), ["b"]);
        s.close(0, 1);
        assert_eq!(out(&w), ["b", "a"]);
    }

    #[test]
    fn a_count_already_reached_holds_nothing_back() {
        let (mut s, w) = sink(Order::Completion);
        s.emit(0, 0, rec("a", None));
        s.own_records(0, 1);
        s.emit(1, 0, rec("b", None));
        s.emit(0, 1, rec("a:callback", None));
        assert_eq!(out(&w), ["a", "b", "a:callback"]);
    }

    #[test]
    fn what_waits_for_a_callback_comes_out_before_the_shared_record_and_at_the_end() {
        let (mut s, w) = sink(Order::Completion);
        s.own_records(1, 1);
        s.emit(1, 0, rec("b", None));
        s.own_records(0, 1);
        s.emit(0, 0, rec("a", None));
        let mut shared = rec(&RecordKind::Shared.name(""), None);
        shared.error = None;
        s.emit(2, 0, shared);
        assert_eq!(out(&w), ["a", "b", "@shared"]);
        let (mut s, w) = sink(Order::Completion);
        s.own_records(0, 1);
        s.emit(0, 0, rec("a", None));
        s.finish();
        assert_eq!(out(&w), ["a"]);
    }

    #[test]
    fn in_submission_order_the_callbacks_record_is_its_slots_last() {
        let (mut s, w) = sink(Order::Submission);
        s.emit(1, 0, rec("x", None));
        s.close(1, 1);
        s.own_records(0, 1);
        s.emit(0, 0, rec("m", None));
        assert_eq!(out(&w), ["m"]);
        s.emit(0, 1, rec("m:callback", None));
        s.close(0, 2);
        assert_eq!(out(&w), ["m", "m:callback", "x"]);
    }

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

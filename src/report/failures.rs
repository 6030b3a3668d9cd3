//! The records that are not `ok`, kept for the block that closes a run on
//! standard error: each with its error and the end of its stderr, in
//! submission order, also when the results went to a file.
//!
//! Memory stays bounded: the first [`RAN`] records that ran and failed
//! (failed, timeout, crashed) and the first [`NOT_RUN`] that never ran
//! (skipped, cancelled) are kept, in submission order; the rest are
//! counted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::columns::{STATUS_WIDTH, cut, one_line, pad_right, tail_lines, width};
use super::item_name::{ItemNames, label};
use super::{Record, Status};

/// At most this many records that ran and failed are listed.
pub const RAN: usize = 50;
/// At most this many records that never ran are listed.
pub const NOT_RUN: usize = 10;
/// Lines of stderr shown under a failure.
pub const TAIL_LINES: usize = 8;
/// Bytes of stderr looked at for those lines.
const TAIL_BYTES: usize = 4096;
/// A line of the block is at most this wide when nothing says how wide.
const UNFITTED: usize = 400;

/// Where a record stands in submission order: its slot, then its seq.
/// Records kept from an earlier run (`--resume`) come after, as written.
type Position = (usize, u64);

/// One record of the list, as it is shown.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    status: Status,
    label: String,
    error: String,
    tail: Vec<String>,
}

#[derive(Debug, Default)]
struct List {
    ran: BTreeMap<Position, Failure>,
    not_run: BTreeMap<Position, Failure>,
    /// Records not ok that are not kept.
    more: u64,
    /// Positions for records appended out of order.
    appended: u64,
}

/// The not-ok records of a run; cheap to clone, one list behind.
#[derive(Debug, Clone, Default)]
pub struct Failures {
    list: Arc<Mutex<List>>,
}

impl Failures {
    /// An empty list.
    pub fn new() -> Failures {
        Failures::default()
    }

    /// Notes `r` (at `position`, `None` for a record appended after the
    /// others) if it is not ok.
    pub fn note(&self, position: Option<Position>, r: &Record, names: &ItemNames) {
        if r.status == Status::Ok || r.is_shared() {
            return;
        }
        let Ok(mut list) = self.list.lock() else {
            return;
        };
        let position = position.unwrap_or_else(|| {
            list.appended += 1;
            (usize::MAX, list.appended)
        });
        let ran = r.status.ran_and_failed();
        let (cap, kept) = match ran {
            true => (RAN, &list.ran),
            false => (NOT_RUN, &list.not_run),
        };
        let full = kept.len() >= cap;
        if full
            && kept
                .last_key_value()
                .is_some_and(|(last, _)| *last < position)
        {
            list.more += 1;
            return;
        }
        let name = names.of_record(r);
        let failure = Failure {
            status: r.status,
            label: label(&r.task, r.index, name.as_deref()),
            error: r.error.clone().unwrap_or_default(),
            tail: match r.stderr.is_empty() {
                true => Vec::new(),
                false => tail_lines(&r.stderr, TAIL_LINES, TAIL_BYTES)
                    .into_iter()
                    .map(one_line)
                    .collect(),
            },
        };
        let kept = match ran {
            true => &mut list.ran,
            false => &mut list.not_run,
        };
        kept.insert(position, failure);
        if kept.len() > cap {
            kept.pop_last();
            list.more += 1;
        }
    }

    /// Whether no record was noted.
    pub fn is_empty(&self) -> bool {
        self.list
            .lock()
            .map(|l| l.ran.is_empty() && l.not_run.is_empty() && l.more == 0)
            .unwrap_or(true)
    }

    /// The block that lists them, each line at most `columns` wide, the
    /// statuses coloured when `color`, pointing at the `results` file for
    /// the ones not listed; empty when every record was ok.
    pub fn render(&self, columns: Option<usize>, color: bool, results: Option<&str>) -> String {
        let Ok(list) = self.list.lock() else {
            return String::new();
        };
        let mut all: Vec<(&Position, &Failure)> = list.ran.iter().chain(&list.not_run).collect();
        if all.is_empty() && list.more == 0 {
            return String::new();
        }
        all.sort_by_key(|(p, _)| **p);
        let columns = columns.unwrap_or(UNFITTED).max(20);
        let total = all.len() as u64 + list.more;
        let mut out = format!(
            "{} not ok:\n",
            match total {
                1 => "1 record".to_string(),
                n => format!("{n} records"),
            }
        );
        for (_, f) in all {
            let status = pad_right(f.status.as_str(), STATUS_WIDTH);
            let status = super::text_writer::paint(&status, f.status, color);
            let mut head = f.label.clone();
            if !f.error.is_empty() {
                head.push_str(": ");
                head.push_str(&one_line(&f.error));
            }
            let room = columns.saturating_sub(INDENT + STATUS_WIDTH + 1);
            out.push_str(&format!("  {status} {}\n", cut(&head, room)));
            let room = columns.saturating_sub(INDENT + STATUS_WIDTH + 3);
            for line in &f.tail {
                out.push_str(&" ".repeat(INDENT + STATUS_WIDTH + 1));
                out.push_str("│ ");
                out.push_str(&cut(line, room));
                out.push('\n');
            }
        }
        if list.more > 0 {
            let more = format!(
                "  and {} more not listed: see {}",
                list.more,
                results.unwrap_or("the results")
            );
            out.push_str(&cut(&one_line(&more), columns));
            out.push('\n');
        }
        debug_assert!(out.lines().all(|l| width(l) <= columns || color));
        out
    }
}

/// Spaces before each status.
const INDENT: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{assorted, sample};

    fn failed(index: u64, stderr: &str) -> Record {
        let mut r = sample();
        r.index = Some(index);
        r.status = Status::Failed;
        r.error = Some("exited with code 1".into());
        r.stderr = stderr.into();
        r
    }

    #[test]
    fn lists_each_failure_with_the_end_of_its_stderr_in_order() {
        let f = Failures::new();
        let names = ItemNames::default();
        let lines: String = (0..12).map(|i| format!("line {i}\n")).collect();
        f.note(Some((2, 5)), &failed(5, &lines), &names);
        f.note(
            Some((2, 1)),
            &failed(1, "Traceback\nAssertionError: 3 != 4\n"),
            &names,
        );
        f.note(Some((0, 0)), &sample(), &names);
        let text = f.render(Some(80), false, None);
        assert_eq!(
            text,
            "2 records not ok:\n\
             \x20 failed    thumbs[1]: exited with code 1\n\
             \x20           │ Traceback\n\
             \x20           │ AssertionError: 3 != 4\n\
             \x20 failed    thumbs[5]: exited with code 1\n\
             \x20           │ line 4\n\
             \x20           │ line 5\n\
             \x20           │ line 6\n\
             \x20           │ line 7\n\
             \x20           │ line 8\n\
             \x20           │ line 9\n\
             \x20           │ line 10\n\
             \x20           │ line 11\n"
        );
    }

    #[test]
    fn nothing_when_all_is_ok() {
        let f = Failures::new();
        f.note(Some((0, 0)), &sample(), &ItemNames::default());
        assert!(f.is_empty());
        assert_eq!(f.render(None, false, None), "");
    }

    #[test]
    fn lines_fit_the_width() {
        let f = Failures::new();
        let mut r = failed(1, &format!("{}\n", "数".repeat(100)));
        r.error = Some("e".repeat(300));
        f.note(Some((0, 1)), &r, &ItemNames::default());
        for columns in [40, 80, 200] {
            for line in f.render(Some(columns), false, None).lines() {
                assert!(width(line) <= columns, "{columns}: {line}");
            }
        }
    }

    #[test]
    fn memory_is_bounded_and_the_first_are_kept() {
        let f = Failures::new();
        let names = ItemNames::default();
        for i in (0..200u64).rev() {
            f.note(Some((1, i)), &failed(i, ""), &names);
        }
        for r in assorted() {
            f.note(None, &r, &names);
        }
        let text = f.render(None, false, Some("out/r.jsonl"));
        assert!(text.contains("thumbs[0]: exited") && text.contains("thumbs[49]: exited"));
        assert!(!text.contains("thumbs[50]: exited"), "{text}");
        assert!(text.starts_with("205 records not ok:"), "{text}");
        assert!(
            text.contains("and 153 more not listed: see out/r.jsonl\n"),
            "{text}"
        );
        assert!(text.contains("skipped   later: dependency"), "{text}");
    }
}

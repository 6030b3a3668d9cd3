//! The `text` format: one line per record, for people.
//!
//! Columns measured in display columns, so lines stream out aligned
//! without knowing what comes next, CJK ids included: status,
//! `task[index] name` (a column as wide as the widest label so far),
//! duration (left out under `reproducible`), then the value or the error
//! (with the last line of stderr that explains it).
//! A line fits the width it is given (the terminal's); without one, only
//! a long value is cut. The status is coloured only when the caller asks.

use std::io::{self, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use super::columns::{
    STATUS_WIDTH, cut, one_line, pad_left, pad_right, push_cut, push_padded, tail_of, width,
};
use super::item_name::label;
use super::record::{Record, Status};
use super::writer::{RecordWriter, WriterOptions, write_whole};

/// Width of the task column; longer labels push the rest of their line
/// right, or are cut when the line would not fit.
const TASK_WIDTH: usize = 24;
/// Width of the duration column.
const DURATION_WIDTH: usize = 8;
/// At most this many columns of value or error when no width is given.
const DETAIL_WIDTH: usize = 400;
/// A label is never cut below this many columns.
const LABEL_MIN: usize = 16;
/// Without a width, labels are never cut, and the task column widens for
/// them up to this many columns (a wider one pushes its own line right).
const COLUMN_MOST: usize = 48;

/// Writes one readable line per record.
#[derive(Debug)]
pub struct TextWriter<W> {
    out: W,
    opts: WriterOptions,
    /// The task column's width now: the widest label so far.
    column: usize,
}

impl<W: Write + Send> TextWriter<W> {
    /// A writer to `out`; nothing is written until the first record.
    pub fn new(out: W, opts: WriterOptions) -> TextWriter<W> {
        TextWriter {
            out,
            opts,
            column: TASK_WIDTH,
        }
    }

    /// Gives back the output.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> RecordWriter for TextWriter<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let mut line = line(record, &self.opts, &mut self.column);
        line.push('\n');
        write_whole(&mut self.out, line.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The line for one record, without its newline.
fn line(r: &Record, opts: &WriterOptions, column: &mut usize) -> String {
    let name = opts.names.of_record(r);
    let mut task = one_line(&label(&r.task, r.index, name.as_deref()));
    let took = (!opts.reproducible).then(|| {
        r.duration_ms
            .map_or_else(|| "-".to_string(), human_duration)
    });
    let host = match (opts.reproducible, &r.host) {
        (false, Some(host)) => format!("  (on {})", one_line(host)),
        _ => String::new(),
    };
    let detail = one_line(&detail(r));
    // What the fixed columns take, the task column aside.
    let fixed = STATUS_WIDTH + 2 + took.as_ref().map_or(0, |_| 2 + DURATION_WIDTH) + 2;
    let left = opts
        .width
        .map(|columns| columns.saturating_sub(fixed + width(&host)));
    // The task column widens to the widest label so far, so the lines
    // after a wide one line up with it: with a width, up to two thirds of
    // what the line has room for, a wider label cut to that; without one,
    // up to COLUMN_MOST, a wider label whole.
    let detail_room = match left {
        Some(left) => {
            let most = left.saturating_sub(left / 3).max(LABEL_MIN.min(left));
            if width(&task) > most {
                task = cut(&task, most);
            }
            *column = (*column).max(width(&task)).min(most);
            left.saturating_sub(*column)
        }
        None => {
            *column = (*column).max(width(&task).min(COLUMN_MOST));
            DETAIL_WIDTH
        }
    };
    let mut line = String::with_capacity(STATUS_WIDTH + *column + DURATION_WIDTH + 64);
    if opts.color {
        line.push_str(&paint(
            &pad_right(r.status.as_str(), STATUS_WIDTH),
            r.status,
            true,
        ));
    } else {
        push_padded(&mut line, r.status.as_str(), STATUS_WIDTH);
    }
    line.push_str("  ");
    push_padded(&mut line, &task, *column);
    if let Some(took) = took {
        line.push_str("  ");
        line.push_str(&pad_left(&took, DURATION_WIDTH));
    }
    line.push_str("  ");
    push_cut(&mut line, &detail, detail_room);
    line.push_str(&host);
    line.truncate(line.trim_end().len());
    line
}

/// The value, or the error with the last line of stderr that says why.
fn detail(r: &Record) -> String {
    match (&r.error, &r.value) {
        (Some(_), _) => why(r),
        (None, Value::Null) => String::new(),
        (None, Value::String(s)) => s.clone(),
        (None, other) => other.to_string(),
    }
}

/// The error of a record not ok, with the last line of its stderr when
/// that says more: `exited with code 1 — AssertionError: 3 != 4`.
pub(crate) fn why(r: &Record) -> String {
    let error = r.error.as_deref().unwrap_or(r.status.as_str());
    match last_stderr_line(r) {
        Some(line) if !error.contains(line) => format!("{error} — {line}"),
        _ => error.to_string(),
    }
}

/// The last line of a failed record's stderr that is not blank.
fn last_stderr_line(r: &Record) -> Option<&str> {
    if !r.status.ran_and_failed() {
        return None;
    }
    tail_of(&r.stderr, 4096)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
}

/// The style of a status.
fn style(status: Status) -> Style {
    let color = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
    match status {
        Status::Ok => color(AnsiColor::Green),
        Status::Failed => color(AnsiColor::Red),
        Status::Crashed => color(AnsiColor::Red).bold(),
        Status::Timeout => color(AnsiColor::Yellow),
        Status::Skipped | Status::Cancelled => Style::new().dimmed(),
    }
}

/// `text` in the colour of `status` when `color`.
pub(crate) fn paint(text: &str, status: Status, color: bool) -> String {
    match color {
        true => {
            let style = style(status);
            format!("{style}{text}{style:#}")
        }
        false => text.to_string(),
    }
}

/// `41.2ms`, `1.52s`, `2m03s`, `1h02m`.
fn human_duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "-".to_string();
    }
    if ms < 1000.0 {
        return format!("{ms:.1}ms");
    }
    let secs = Duration::from_secs_f64(ms / 1000.0).as_secs();
    match secs {
        0..60 => format!("{:.2}s", ms / 1000.0),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{assorted, sample};

    fn run(records: &[Record], opts: WriterOptions) -> String {
        let mut w = TextWriter::new(Vec::new(), opts);
        for r in records {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
        String::from_utf8(w.into_inner()).unwrap()
    }

    #[test]
    fn one_aligned_line_per_record() {
        let records = assorted();
        let text = run(&records, WriterOptions::default());
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), records.len());
        assert_eq!(
            lines[0],
            "ok         warmup                      41.2ms  done, \"quoted\"\\nnext line"
        );
        assert!(lines[2].starts_with(
            "failed     thumbs[1]                   41.2ms  <Failed> & 'why' \"\\u{1}"
        ));
        assert_eq!(
            lines[5],
            "skipped    later                            -  dependency `thumbs` failed"
        );
        assert_eq!(
            lines[8],
            r#"ok         @shared                          -  {"num":3.5,"log":["a","b"]}"#
        );
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn reproducible_has_no_duration_column() {
        let opts = WriterOptions {
            reproducible: true,
            ..Default::default()
        };
        assert_eq!(run(&[sample()], opts), "ok         thumbs[3]\n");
    }

    #[test]
    fn another_machine_is_named_at_the_end_unless_reproducible() {
        let mut r = sample();
        r.host = Some("node2".into());
        assert_eq!(
            run(&[r.clone()], WriterOptions::default()),
            "ok         thumbs[3]                   41.2ms    (on node2)\n"
        );
        let opts = WriterOptions {
            reproducible: true,
            ..Default::default()
        };
        assert_eq!(run(&[r], opts), "ok         thumbs[3]\n");
    }

    #[test]
    fn colour_only_when_asked() {
        let opts = WriterOptions {
            color: true,
            ..Default::default()
        };
        let text = run(&assorted()[..3], opts);
        assert!(text.starts_with("\x1b[32mok       \x1b[0m  warmup"));
        assert!(text.contains("\x1b[31mfailed   \x1b[0m"));
    }

    #[test]
    fn long_values_are_shortened() {
        let mut r = sample();
        r.value = Value::String("x".repeat(500));
        let text = run(
            &[r],
            WriterOptions {
                reproducible: true,
                ..Default::default()
            },
        );
        assert!(text.ends_with(&format!("{}…\n", "x".repeat(DETAIL_WIDTH - 1))));
    }

    #[test]
    fn lines_fit_the_width_in_display_columns() {
        let mut wide = sample();
        wide.task = "数据处理任务".into();
        wide.index = None;
        wide.status = Status::Failed;
        wide.error = Some("exited with code 1".into());
        wide.stderr = format!("warning\n{}\n\n", "理由".repeat(80));
        for columns in [40, 80, 200] {
            let opts = WriterOptions {
                width: Some(columns),
                ..Default::default()
            };
            let text = run(&[sample(), wide.clone(), sample()], opts);
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines {
                assert!(width(line) <= columns, "{columns}: {line}");
            }
            if columns >= 80 {
                assert!(
                    lines[1].contains("exited with code 1 — 理由"),
                    "{}",
                    lines[1]
                );
            }
            // The duration column ends in the same cell on every line.
            let ends = |l: &str| width(&l[..l.find("ms").unwrap() + 2]);
            assert_eq!(ends(lines[0]), ends(lines[1]), "{text}");
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0.04), "0.0ms");
        assert_eq!(human_duration(999.94), "999.9ms");
        assert_eq!(human_duration(1520.0), "1.52s");
        assert_eq!(human_duration(123_000.0), "2m03s");
        assert_eq!(human_duration(3_720_000.0), "1h02m");
        assert_eq!(human_duration(f64::INFINITY), "-");
    }

    #[test]
    fn reproducible_snapshot() {
        insta::assert_snapshot!(run(
            &assorted(),
            WriterOptions {
                reproducible: true,
                ..Default::default()
            }
        ));
    }
}

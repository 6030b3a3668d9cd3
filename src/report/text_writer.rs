//! The `text` format: one line per record, for people.
//!
//! Fixed-width columns, so lines stream out aligned without knowing what
//! comes next: status, `task[index]`, duration (left out under
//! `reproducible`), then the value or the error, on one line and
//! shortened. The status is coloured only when the caller asks for it.

use std::io::{self, Write};
use std::time::Duration;

use serde_json::Value;

use super::record::{Record, Status};
use super::writer::{RecordWriter, WriterOptions, write_whole};

/// Width of the status column: the longest status, `cancelled`.
const STATUS_WIDTH: usize = 9;
/// Width of the task column; longer ids push the rest of their line right.
const TASK_WIDTH: usize = 24;
/// Width of the duration column.
const DURATION_WIDTH: usize = 8;
/// At most this many characters of value or error.
const DETAIL_WIDTH: usize = 72;

/// Writes one readable line per record.
#[derive(Debug)]
pub struct TextWriter<W> {
    out: W,
    opts: WriterOptions,
}

impl<W: Write + Send> TextWriter<W> {
    /// A writer to `out`; nothing is written until the first record.
    pub fn new(out: W, opts: WriterOptions) -> TextWriter<W> {
        TextWriter { out, opts }
    }

    /// Gives back the output.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> RecordWriter for TextWriter<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let mut line = line(record, &self.opts);
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
fn line(r: &Record, opts: &WriterOptions) -> String {
    let status = format!("{:<STATUS_WIDTH$}", r.status.as_str());
    let status = match (opts.color, color(r.status)) {
        (true, code) => format!("\x1b[{code}m{status}\x1b[0m"),
        (false, _) => status,
    };
    let mut task = one_line(&r.task);
    if let Some(index) = r.index {
        task.push_str(&format!("[{index}]"));
    }
    let mut line = format!("{status}  {task:<TASK_WIDTH$}");
    if !opts.reproducible {
        let took = r
            .duration_ms
            .map_or_else(|| "-".to_string(), human_duration);
        line.push_str(&format!("  {took:>DURATION_WIDTH$}"));
    }
    let detail = match (&r.error, &r.value) {
        (Some(error), _) => error.clone(),
        (None, Value::Null) => String::new(),
        (None, Value::String(s)) => s.clone(),
        (None, other) => other.to_string(),
    };
    line.push_str("  ");
    line.push_str(&shorten(&one_line(&detail), DETAIL_WIDTH));
    if let (false, Some(host)) = (opts.reproducible, &r.host) {
        line.push_str(&format!("  (on {})", one_line(host)));
    }
    line.truncate(line.trim_end().len());
    line
}

/// The SGR colour of a status.
fn color(status: Status) -> &'static str {
    match status {
        Status::Ok => "32",
        Status::Failed => "31",
        Status::Crashed => "1;31",
        Status::Timeout => "33",
        Status::Skipped | Status::Cancelled => "2",
    }
}

/// `s` with line breaks and other control characters made visible, so
/// one record stays one line and cannot drive the terminal.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim_end_matches(['\n', '\r']).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `max` characters of `s`, with `…` marking a cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
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

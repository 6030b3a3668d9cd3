//! The `jsonl` format: one compact JSON object per line.

use std::io::{self, Write};

use super::record::Record;
use super::writer::{RecordWriter, WriterOptions, write_whole};

/// Writes one record per line as compact JSON.
#[derive(Debug)]
pub struct JsonlWriter<W> {
    out: W,
    reproducible: bool,
    /// The line being made, kept between records for its allocation.
    line: Vec<u8>,
}

impl<W: Write + Send> JsonlWriter<W> {
    /// A writer to `out`; nothing is written until the first record.
    pub fn new(out: W, opts: WriterOptions) -> JsonlWriter<W> {
        JsonlWriter {
            out,
            reproducible: opts.reproducible,
            line: Vec::new(),
        }
    }

    /// Gives back the output.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> RecordWriter for JsonlWriter<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.line.clear();
        record.write_json(self.reproducible, &mut self.line);
        self.line.push(b'\n');
        write_whole(&mut self.out, &self.line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::report::testing::{assorted, sample};

    fn run(records: &[Record], reproducible: bool) -> String {
        let mut w = JsonlWriter::new(
            Vec::new(),
            WriterOptions {
                reproducible,
                ..Default::default()
            },
        );
        for r in records {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
        String::from_utf8(w.into_inner()).unwrap()
    }

    #[test]
    fn one_parseable_line_per_record() {
        let records = assorted();
        let text = run(&records, false);
        assert!(text.ends_with('\n'));
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), records.len());
        for (line, r) in lines.iter().zip(&records) {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["task"], r.task.as_str());
            assert_eq!(*line, r.to_json_string(false));
        }
    }

    #[test]
    fn reproducible_leaves_out_timing() {
        let text = run(&[sample()], true);
        let v: Value = serde_json::from_str(&text).unwrap();
        for key in ["worker", "started", "duration_ms"] {
            assert!(v.get(key).is_none(), "{key}");
        }
        assert!(text.ends_with("\"attempts\":1}\n"));
    }

    #[test]
    fn nothing_for_no_records() {
        assert_eq!(run(&[], false), "");
    }

    #[test]
    fn reproducible_snapshot() {
        insta::assert_snapshot!(run(&assorted(), true));
    }
}

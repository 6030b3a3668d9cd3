//! The `json` format: one JSON array of record objects.
//!
//! `[` is written when the writer opens and `]` by `finish`, so an
//! interrupted run that still calls `finish` leaves a valid document.

use std::io::{self, Write};

use super::record::Record;
use super::writer::{RecordWriter, WriterOptions, write_whole};

/// Writes every record into one JSON array, one record per line.
#[derive(Debug)]
pub struct JsonWriter<W> {
    out: W,
    reproducible: bool,
    written: u64,
    finished: bool,
}

impl<W: Write + Send> JsonWriter<W> {
    /// A writer to `out`; writes the opening `[` now.
    pub fn new(mut out: W, opts: WriterOptions) -> io::Result<JsonWriter<W>> {
        write_whole(&mut out, b"[")?;
        Ok(JsonWriter {
            out,
            reproducible: opts.reproducible,
            written: 0,
            finished: false,
        })
    }

    /// Gives back the output.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> RecordWriter for JsonWriter<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other(
                "a record was written after the array was closed",
            ));
        }
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(if self.written == 0 { b"\n" } else { b",\n" });
        record.write_json(self.reproducible, &mut buf);
        write_whole(&mut self.out, &buf)?;
        self.written += 1;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        let end: &[u8] = if self.written == 0 { b"]\n" } else { b"\n]\n" };
        write_whole(&mut self.out, end)?;
        self.finished = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::report::testing::{assorted, sample};

    fn run(records: &[Record], reproducible: bool) -> String {
        let mut w = JsonWriter::new(
            Vec::new(),
            WriterOptions {
                reproducible,
                ..Default::default()
            },
        )
        .unwrap();
        for r in records {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
        w.finish().unwrap();
        String::from_utf8(w.into_inner()).unwrap()
    }

    #[test]
    fn zero_records_make_an_empty_array() {
        assert_eq!(run(&[], false), "[]\n");
    }

    #[test]
    fn one_record() {
        let text = run(&[sample()], true);
        assert_eq!(text, format!("[\n{}\n]\n", sample().to_json_string(true)));
        let v: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0].get("started").is_none());
    }

    #[test]
    fn many_records_in_order() {
        let records = assorted();
        let v: Vec<Value> = serde_json::from_str(&run(&records, false)).unwrap();
        let tasks: Vec<_> = v.iter().map(|r| r["task"].as_str().unwrap()).collect();
        let expected: Vec<_> = records.iter().map(|r| r.task.as_str()).collect();
        assert_eq!(tasks, expected);
        assert_eq!(v[0]["started"], "2026-11-27T10:00:00.000Z");
    }

    #[test]
    fn the_output_before_finish_is_whole_records() {
        let mut w = JsonWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.write(&sample()).unwrap();
        w.write(&sample()).unwrap();
        let mut text = String::from_utf8(w.into_inner()).unwrap();
        text.push_str("\n]");
        let v: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn reproducible_snapshot() {
        insta::assert_snapshot!(run(&assorted(), true));
    }
}

//! The `csv` format: a header row, then one row per record.
//!
//! The columns are the record's keys in their JSON order, always all of
//! them (with `reproducible`, without the three timing ones), so every row
//! has the same shape. Nested values are compact JSON, a string value is
//! the string itself, and a null is an empty cell. The `@shared` record
//! fills only `task`, `status` and `value`.

use std::io::{self, Write};

use csv_core::WriteResult;
use serde_json::Value;

use super::record::Record;
use super::record_json::{columns, put_array, put_duration, put_object, put_value, rfc3339_bytes};
use super::writer::{RecordWriter, WriterOptions, write_whole};

/// Writes records as CSV rows under a fixed header.
#[derive(Debug)]
pub struct CsvWriter<W> {
    out: W,
    reproducible: bool,
    row: Row,
    /// A cell's JSON or digits, before the row quotes it.
    cell: Vec<u8>,
}

impl<W: Write + Send> CsvWriter<W> {
    /// A writer to `out`; writes the header row now.
    pub fn new(out: W, opts: WriterOptions) -> io::Result<CsvWriter<W>> {
        let mut w = CsvWriter {
            out,
            reproducible: opts.reproducible,
            row: Row::default(),
            cell: Vec::new(),
        };
        for c in columns(w.reproducible) {
            w.row.field(c.as_bytes());
        }
        w.end_row()?;
        Ok(w)
    }

    /// Gives back the output.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Sends the row out whole: a record's bytes are never split.
    fn end_row(&mut self) -> io::Result<()> {
        let result = write_whole(&mut self.out, self.row.end());
        self.row.clear();
        result
    }

    /// A cell made in [`CsvWriter::cell`] by `make`.
    fn made(&mut self, make: impl FnOnce(&mut Vec<u8>)) {
        self.cell.clear();
        make(&mut self.cell);
        self.row.field(&self.cell);
    }

    fn number(&mut self, n: Option<impl itoa::Integer>) {
        match n {
            Some(n) => self.row.field(itoa::Buffer::new().format(n).as_bytes()),
            None => self.row.field(b""),
        }
    }

    /// A string as itself, null as nothing, anything else as compact JSON.
    fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.row.field(b""),
            Value::String(s) => self.row.field(s.as_bytes()),
            other => self.made(|out| put_value(out, other)),
        }
    }

    /// The cells of one record, in the order of [`columns`].
    fn cells(&mut self, r: &Record) {
        if r.is_shared() {
            for i in 0..columns(self.reproducible).len() {
                match i {
                    0 => self.row.field(r.task.as_bytes()),
                    5 => self.row.field(r.status.as_str().as_bytes()),
                    6 => self.value(&r.value),
                    _ => self.row.field(b""),
                }
            }
            return;
        }
        self.row.field(r.task.as_bytes());
        self.number(r.index);
        self.row.field(r.function.as_bytes());
        self.made(|out| put_array(out, &r.args));
        self.made(|out| put_object(out, &r.kwargs));
        self.row.field(r.status.as_str().as_bytes());
        self.value(&r.value);
        self.number(r.exit_code);
        self.number(r.signal);
        self.row.field(text(r.error.as_deref()));
        self.row.field(r.stdout.as_bytes());
        self.row.field(r.stderr.as_bytes());
        self.row.field(if r.truncated { b"true" } else { b"false" });
        self.number(Some(r.attempts));
        if !self.reproducible {
            self.number(r.worker);
            match r.started.and_then(rfc3339_bytes) {
                Some(t) => self.row.field(&t),
                None => self.row.field(b""),
            }
            self.made(|out| {
                put_duration(out, r.duration_ms);
                // A duration JSON writes as null is an empty cell.
                if out == b"null" {
                    out.clear();
                }
            });
            self.row.field(text(r.host.as_deref()));
        }
    }
}

/// An optional string's bytes; nothing for none.
fn text(s: Option<&str>) -> &[u8] {
    s.unwrap_or_default().as_bytes()
}

/// One row's bytes, its fields quoted by the csv crate's own engine
/// (`csv_core`, as `csv::Writer` does, `QuoteStyle::Necessary`), in a
/// buffer kept from row to row: a `csv::Writer` per record made and zeroed
/// an 8 KiB buffer, and every cell was a `String` first.
#[derive(Debug, Default)]
struct Row {
    core: csv_core::Writer,
    buf: Vec<u8>,
    fields: usize,
}

impl Row {
    /// Runs `step` on room enough for what it writes at most: it never
    /// runs out, so every step is done in one call.
    fn write(
        &mut self,
        most: usize,
        step: impl FnOnce(&mut csv_core::Writer, &mut [u8]) -> (WriteResult, usize),
    ) {
        let start = self.buf.len();
        self.buf.resize(start + most, 0);
        let (result, n) = step(&mut self.core, &mut self.buf[start..]);
        debug_assert!(matches!(result, WriteResult::InputEmpty));
        self.buf.truncate(start + n);
    }

    fn field(&mut self, input: &[u8]) {
        if self.fields > 0 {
            // A closing quote, then the comma.
            self.write(2, |core, out| core.delimiter(out));
        }
        self.fields += 1;
        // Quotes around, and every quote doubled.
        self.write(2 + 2 * input.len(), |core, out| {
            let (result, _, n) = core.field(input, out);
            (result, n)
        });
    }

    /// The row, ended with its newline.
    fn end(&mut self) -> &[u8] {
        // A closing quote (or `""` for a row of one empty field), then `\n`.
        self.write(3, |core, out| core.terminator(out));
        &self.buf
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.fields = 0;
    }
}

impl<W: Write + Send> RecordWriter for CsvWriter<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.cells(record);
        self.end_row()
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
    use super::*;
    use crate::report::testing::{assorted, sample};

    fn run(records: &[Record], reproducible: bool) -> Vec<u8> {
        let mut w = CsvWriter::new(
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
        w.into_inner()
    }

    fn parse(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = csv::Reader::from_reader(bytes);
        let header = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    }

    #[test]
    fn header_only_for_no_records() {
        let (header, rows) = parse(&run(&[], false));
        assert_eq!(header, columns(false));
        assert!(rows.is_empty());
        assert_eq!(parse(&run(&[], true)).0, columns(true));
        assert!(columns(true).ends_with(&["attempts"]));
    }

    #[test]
    fn the_spec_example_as_a_row() {
        let (header, rows) = parse(&run(&[sample()], false));
        assert_eq!(header.len(), 18);
        assert_eq!(
            rows,
            [[
                "thumbs",
                "3",
                "resize",
                r#"["images/c.jpg"]"#,
                r#"{"mode":"fast"}"#,
                "ok",
                "",
                "0",
                "",
                "",
                "",
                "",
                "false",
                "1",
                "4182",
                "2026-11-27T10:00:00.000Z",
                "41.2",
                ""
            ]]
        );
    }

    #[test]
    fn every_row_round_trips() {
        let records = assorted();
        let (header, rows) = parse(&run(&records, true));
        assert_eq!(rows.len(), records.len());
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        for (row, r) in rows.iter().zip(&records) {
            assert_eq!(row.len(), header.len());
            assert_eq!(row[col("task")], r.task);
            assert_eq!(row[col("status")], r.status.as_str());
            if r.is_shared() {
                let v: Value = serde_json::from_str(&row[col("value")]).unwrap();
                assert_eq!(v, r.value);
                assert_eq!(row[col("function")], "");
                continue;
            }
            assert_eq!(row[col("stderr")], r.stderr);
            assert_eq!(row[col("error")], r.error.clone().unwrap_or_default());
            match &r.value {
                Value::String(s) => assert_eq!(&row[col("value")], s),
                Value::Null => assert_eq!(row[col("value")], ""),
                v => assert_eq!(
                    &serde_json::from_str::<Value>(&row[col("value")]).unwrap(),
                    v
                ),
            }
        }
    }

    /// The rows as the csv crate's `Writer` writes them from a `String`
    /// per cell: what the rows were before they were written by hand.
    fn by_csv_writer(records: &[Record], reproducible: bool) -> Vec<u8> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_writer(Vec::new());
        w.write_record(columns(reproducible)).unwrap();
        let opt = |v: Option<String>| v.unwrap_or_default();
        let value = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => serde_json::to_string(other).unwrap(),
        };
        for r in records {
            let mut cells = vec![String::new(); columns(reproducible).len()];
            if r.is_shared() {
                cells[0] = r.task.clone();
                cells[5] = r.status.as_str().to_string();
                cells[6] = value(&r.value);
            } else {
                cells = vec![
                    r.task.clone(),
                    opt(r.index.map(|i| i.to_string())),
                    r.function.clone(),
                    serde_json::to_string(&r.args).unwrap(),
                    serde_json::to_string(&r.kwargs).unwrap(),
                    r.status.as_str().to_string(),
                    value(&r.value),
                    opt(r.exit_code.map(|c| c.to_string())),
                    opt(r.signal.map(|s| s.to_string())),
                    opt(r.error.clone()),
                    r.stdout.clone(),
                    r.stderr.clone(),
                    r.truncated.to_string(),
                    r.attempts.to_string(),
                ];
                if !reproducible {
                    cells.push(opt(r.worker.map(|w| w.to_string())));
                    cells.push(opt(r
                        .started
                        .and_then(crate::report::record_json::rfc3339_millis)));
                    cells.push(value(&crate::report::record_json::duration_json(
                        r.duration_ms,
                    )));
                    cells.push(opt(r.host.clone()));
                }
            }
            w.write_record(&cells).unwrap();
        }
        w.into_inner().unwrap()
    }

    #[test]
    fn rows_are_the_csv_crates_bytes() {
        let mut records = assorted();
        let mut odd = sample();
        odd.task = "a,b \"c\"".into();
        odd.function = String::new();
        odd.stdout = "line\nnext\r\n".into();
        odd.stderr = "\"".into();
        odd.error = Some(",".into());
        odd.value = Value::from("x\"y");
        odd.args = vec![serde_json::json!("q\"uote"), serde_json::json!(1.5)];
        odd.host = Some("node 2".into());
        odd.duration_ms = Some(f64::NAN);
        odd.started = None;
        odd.exit_code = Some(-1);
        records.push(odd);
        for reproducible in [false, true] {
            assert_eq!(
                String::from_utf8(run(&records, reproducible)).unwrap(),
                String::from_utf8(by_csv_writer(&records, reproducible)).unwrap()
            );
        }
    }

    #[test]
    fn reproducible_snapshot() {
        insta::assert_snapshot!(String::from_utf8(run(&assorted(), true)).unwrap());
    }
}

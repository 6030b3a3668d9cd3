//! The `csv` format: a header row, then one row per record.
//!
//! The columns are the record's keys in their JSON order, always all of
//! them (with `reproducible`, without the three timing ones), so every row
//! has the same shape. Nested values are compact JSON, a string value is
//! the string itself, and a null is an empty cell. The `@shared` record
//! fills only `task`, `status` and `value`.

use std::io::{self, Write};

use serde_json::Value;

use super::record::Record;
use super::record_json::{columns, duration_json, rfc3339_millis};
use super::writer::{RecordWriter, WriterOptions, write_whole};

/// Writes records as CSV rows under a fixed header.
#[derive(Debug)]
pub struct CsvWriter<W> {
    out: W,
    reproducible: bool,
}

impl<W: Write + Send> CsvWriter<W> {
    /// A writer to `out`; writes the header row now.
    pub fn new(out: W, opts: WriterOptions) -> io::Result<CsvWriter<W>> {
        let mut w = CsvWriter {
            out,
            reproducible: opts.reproducible,
        };
        w.write_row(columns(w.reproducible).iter().map(|c| c.to_string()))?;
        Ok(w)
    }

    /// Gives back the output.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn write_row(&mut self, cells: impl IntoIterator<Item = String>) -> io::Result<()> {
        // The whole row is serialized before any of it goes out.
        let mut row = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        row.write_record(cells)?;
        let bytes = row.into_inner().map_err(|e| e.into_error())?;
        write_whole(&mut self.out, &bytes)
    }
}

/// The cells of one record, in the order of [`columns`].
fn cells(r: &Record, reproducible: bool) -> Vec<String> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    if r.is_shared() {
        let mut cells = vec![String::new(); columns(reproducible).len()];
        cells[0] = r.task.clone();
        cells[5] = r.status.as_str().to_string();
        cells[6] = value_cell(&r.value);
        return cells;
    }
    let mut cells = vec![
        r.task.clone(),
        opt(r.index.map(|i| i.to_string())),
        r.function.clone(),
        json_cell(&r.args),
        json_cell(&r.kwargs),
        r.status.as_str().to_string(),
        value_cell(&r.value),
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
        cells.push(opt(r.started.and_then(rfc3339_millis)));
        cells.push(value_cell(&duration_json(r.duration_ms)));
        cells.push(opt(r.host.clone()));
    }
    cells
}

/// A string as itself, null as nothing, anything else as compact JSON.
fn value_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => json_cell(other),
    }
}

fn json_cell<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl<W: Write + Send> RecordWriter for CsvWriter<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let cells = cells(record, self.reproducible);
        self.write_row(cells)
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

    #[test]
    fn reproducible_snapshot() {
        insta::assert_snapshot!(String::from_utf8(run(&assorted(), true)).unwrap());
    }
}

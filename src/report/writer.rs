//! The writer interface every format implements, and the one place that
//! picks a writer for a format and a destination.
//!
//! Each writer serializes a whole record into a buffer, then hands it to the
//! destination with one `write_all` and a flush: a record is written whole
//! or not at all, and whatever was written before an interruption stays.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use super::csv_writer::CsvWriter;
use super::destination::Destination;
use super::item_name::ItemNames;
use super::json_writer::JsonWriter;
use super::jsonl_writer::JsonlWriter;
use super::junit_writer::{JunitWriter, Spool};
use super::print_file::{PrintingWriter, TalliedOutput, Tally};
use super::record::Record;
use super::text_writer::TextWriter;
use crate::results::Format;

/// Writes result records in one format.
pub trait RecordWriter: Send {
    /// Writes one record, whole, and flushes it.
    fn write(&mut self, record: &Record) -> io::Result<()>;

    /// Completes the document (closing brackets, headers that need counts).
    /// Call it once, after the last record, also after an interruption; the
    /// output is then a valid document. Later calls do nothing.
    fn finish(&mut self) -> io::Result<()>;

    /// Pushes buffered records to the destination. The engine calls it
    /// whenever it is about to wait, so records reach the file as soon as
    /// the loop is idle, with one system call for many records.
    fn flush(&mut self) -> io::Result<()>;
}

/// What every writer needs to know besides the format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterOptions {
    /// Leave out everything that depends on timing or on which worker ran
    /// what (`worker`, `started`, `duration_ms`, times in JUnit and text).
    pub reproducible: bool,
    /// The job's name (JUnit suite and class names).
    pub job_name: String,
    /// Colour the `text` format. The caller decides: a terminal, and no
    /// `NO_COLOR`.
    pub color: bool,
    /// The columns a `text` line fits in: the terminal's, when the results
    /// are shown on one; `None` fits nothing.
    pub width: Option<usize>,
    /// Names for map items (`text` lines, JUnit testcase names).
    pub names: ItemNames,
}

/// Opens a writer for `format` at `dest`. A file destination is created
/// now (with its missing parent folders), so a bad path fails before
/// anything runs.
pub fn open_writer(
    format: Format,
    dest: Destination,
    opts: WriterOptions,
) -> io::Result<Box<dyn RecordWriter>> {
    let out = dest.open()?;
    build(format, out, &dest, opts)
}

/// [`open_writer`], and each record's entry in the fingerprints file
/// `prints` (`--resume` reads both back).
pub fn open_writer_with_prints(
    format: Format,
    dest: Destination,
    opts: WriterOptions,
    prints: &std::path::Path,
) -> io::Result<Box<dyn RecordWriter>> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let out = Box::new(TalliedOutput::new(dest.open()?, tally.clone()));
    let job_name = opts.job_name.clone();
    let inner = build(format, out, &dest, opts)?;
    Ok(Box::new(PrintingWriter::new(
        inner, tally, prints, &job_name,
    )?))
}

fn build(
    format: Format,
    out: Box<dyn Write + Send>,
    dest: &Destination,
    opts: WriterOptions,
) -> io::Result<Box<dyn RecordWriter>> {
    Ok(match format {
        Format::Text => Box::new(TextWriter::new(out, opts)),
        Format::Jsonl => Box::new(JsonlWriter::new(out, opts)),
        Format::Json => Box::new(JsonWriter::new(out, opts)?),
        Format::Csv => Box::new(CsvWriter::new(out, opts)?),
        Format::Junit => {
            // Its header needs counts known only at the end: spool the
            // testcases next to the destination (or in memory for stdout).
            let spool = match dest.path() {
                Some(path) => Spool::file_next_to(path)?,
                None => Spool::memory(),
            };
            Box::new(JunitWriter::new(out, spool, opts))
        }
    })
}

/// Sends one whole serialized record to `out` and flushes it.
pub(crate) fn write_whole<W: Write + ?Sized>(out: &mut W, bytes: &[u8]) -> io::Result<()> {
    // One buffered write per record; a record larger than the buffer is
    // written through at once, so it is never split by a flush.
    out.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::report::testing::assorted;

    #[test]
    fn every_format_opens_a_file_in_new_folders() {
        let dir = tempfile::tempdir().unwrap();
        for format in Format::ALL {
            let path = dir.path().join(format.as_str()).join("deep/results");
            let opts = WriterOptions {
                reproducible: true,
                job_name: "job".into(),
                ..Default::default()
            };
            let mut w = open_writer(format, Destination::File(path.clone()), opts).unwrap();
            for r in assorted() {
                w.write(&r).unwrap();
            }
            w.finish().unwrap();
            drop(w);
            let text = fs::read_to_string(&path).unwrap();
            assert!(text.ends_with('\n'), "{format}");
            match format {
                Format::Json => {
                    let v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
                    assert_eq!(v.len(), assorted().len());
                }
                Format::Jsonl | Format::Text => {
                    assert_eq!(text.lines().count(), assorted().len(), "{format}")
                }
                Format::Csv => assert!(text.starts_with("task,index,")),
                Format::Junit => assert!(text.contains("<testsuite name=\"job\" tests=\"8\"")),
            }
            let files = fs::read_dir(path.parent().unwrap()).unwrap().count();
            assert_eq!(files, 1, "{format} left only its results");
        }
    }

    #[test]
    fn an_unwritable_destination_fails_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let dest = Destination::File(file.join("below/results.json"));
        assert!(open_writer(Format::Json, dest, WriterOptions::default()).is_err());
    }
}

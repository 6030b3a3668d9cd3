//! Two writers fed the same records: the results, and the HTML report of
//! `run --report`.

use std::io;

use super::record::Record;
use super::writer::RecordWriter;

/// Writes each record to `first`, then to `second`.
pub struct TeeWriter {
    first: Box<dyn RecordWriter>,
    second: Box<dyn RecordWriter>,
}

impl TeeWriter {
    /// Records go to both, `first` first.
    pub fn new(first: Box<dyn RecordWriter>, second: Box<dyn RecordWriter>) -> TeeWriter {
        TeeWriter { first, second }
    }
}

impl RecordWriter for TeeWriter {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        // The second sees every record the first was given, even one the
        // first failed to write: the report then still shows it.
        let a = self.first.write(record);
        let b = self.second.write(record);
        a.and(b)
    }

    fn finish(&mut self) -> io::Result<()> {
        let a = self.first.finish();
        let b = self.second.finish();
        a.and(b)
    }

    fn flush(&mut self) -> io::Result<()> {
        let a = self.first.flush();
        let b = self.second.flush();
        a.and(b)
    }
}

//! The fingerprints file beside the results (`.<results>.fingerprints`),
//! which `--resume` reads: a header naming the job, then one fixed-size
//! entry per record, in the order the records were written: the record's
//! key and state ([`UnitPrint`]), where its bytes are in the results file
//! and a hash of those bytes, and whether it was `ok`.
//!
//! An entry is trusted only if the bytes it points at still hash the same,
//! so a results file that was truncated, edited or replaced, or a
//! fingerprints file left from another run, costs reruns, never a wrong
//! record kept. Entries are written as their records are, so an
//! interrupted run leaves a file that holds what its results hold.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::record::{Record, Status};
use super::unit_print::{UnitPrint, unit_key};
use super::writer::RecordWriter;

/// The first line of a fingerprints file of this shape.
pub const MAGIC: &[u8] = b"jobfile fingerprints 3\n";

/// Bytes of one entry.
pub const ENTRY_LEN: usize = 16 + 16 + 8 + 4 + 8 + 1;

/// One record as the fingerprints file knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrintEntry {
    pub print: UnitPrint,
    /// Where the record's bytes start in the results file.
    pub offset: u64,
    pub len: u32,
    /// XXH3-64 of those bytes.
    pub digest: u64,
    /// Its status was `ok`. (Also used, in memory, as "taken".)
    pub flags: u8,
}

/// [`PrintEntry::flags`]: the record was ok.
pub const OK: u8 = 1;

impl PrintEntry {
    /// The entry as it is stored.
    pub fn to_bytes(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0; ENTRY_LEN];
        b[..32].copy_from_slice(&self.print.to_bytes());
        b[32..40].copy_from_slice(&self.offset.to_le_bytes());
        b[40..44].copy_from_slice(&self.len.to_le_bytes());
        b[44..52].copy_from_slice(&self.digest.to_le_bytes());
        b[52] = self.flags & OK;
        b
    }

    /// An entry back from its bytes.
    pub fn from_bytes(b: &[u8; ENTRY_LEN]) -> Option<PrintEntry> {
        let u64_at = |at: usize| b.get(at..at + 8)?.try_into().ok().map(u64::from_le_bytes);
        let offset = u64_at(32)?;
        let digest = u64_at(44)?;
        let len = u32::from_le_bytes(b.get(40..44)?.try_into().ok()?);
        Some(PrintEntry {
            print: UnitPrint::from_bytes(&b[..32])?,
            offset,
            len,
            digest,
            flags: b[52] & OK,
        })
    }
}

/// The hash [`PrintEntry::digest`] holds: XXH3-64, which tells a record
/// whose bytes were edited, cut or replaced from the one written (the
/// results file is the user's, not an adversary's) at a tenth of the cost
/// of blake3 on a record of a few hundred bytes.
pub fn bytes_digest(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The header: [`MAGIC`], then the job's name as a JSON string on a line.
pub fn header(job_name: &str) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(serde_json::Value::from(job_name).to_string().as_bytes());
    h.push(b'\n');
    h
}

/// What has gone through a results file: its length so far, and, while a
/// record is written, the bytes since the mark (that record's).
///
/// The bytes are kept and hashed once the record is whole, in one call:
/// cheaper on records of a few hundred bytes than a streaming hasher made,
/// fed and finalized per record.
#[derive(Default)]
pub struct Tally {
    position: u64,
    mark: u64,
    /// Between `start` and `entry`: keep what is written.
    recording: bool,
    record: Vec<u8>,
}

/// The bytes a writer sends to its destination, counted and hashed on
/// their way.
pub struct TalliedOutput {
    inner: Box<dyn Write + Send>,
    tally: Arc<Mutex<Tally>>,
}

impl TalliedOutput {
    /// Wraps `inner`; the tally is shared with a [`PrintingWriter`].
    pub fn new(inner: Box<dyn Write + Send>, tally: Arc<Mutex<Tally>>) -> TalliedOutput {
        TalliedOutput { inner, tally }
    }
}

impl Write for TalliedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut t = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        t.position += n as u64;
        if t.recording {
            t.record.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A record writer that also writes each record's entry in the
/// fingerprints file.
pub struct PrintingWriter {
    inner: Box<dyn RecordWriter>,
    tally: Arc<Mutex<Tally>>,
    prints: BufWriter<File>,
    /// The first failure to write the fingerprints: results go on, the
    /// next `--resume` runs more again.
    error: Option<io::Error>,
}

impl PrintingWriter {
    /// Wraps `inner`, whose output goes through a [`TalliedOutput`] with
    /// `tally`; entries go to `prints` (created, with its header, now).
    pub fn new(
        inner: Box<dyn RecordWriter>,
        tally: Arc<Mutex<Tally>>,
        prints: &Path,
        job_name: &str,
    ) -> io::Result<PrintingWriter> {
        let mut file = BufWriter::with_capacity(64 * 1024, File::create(prints)?);
        file.write_all(&header(job_name))?;
        Ok(PrintingWriter {
            inner,
            tally,
            prints: file,
            error: None,
        })
    }

    fn entry(&mut self, record: &Record) {
        let mut t = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        // What is written between records (a format's header or end) is
        // counted, not kept.
        t.recording = false;
        if self.error.is_some() || record.is_shared() {
            t.record.clear();
            return;
        }
        let digest = bytes_digest(&t.record);
        t.record.clear();
        let (offset, len) = (t.mark, t.position - t.mark);
        t.mark = t.position;
        drop(t);
        let ok = record.status == Status::Ok;
        let print = match (record.print, ok) {
            (Some(p), true) => p,
            (Some(p), false) => UnitPrint {
                key: p.key,
                state: [0; 16],
            },
            (None, _) => UnitPrint {
                key: unit_key(&record.task, &record.args, &record.kwargs),
                state: [0; 16],
            },
        };
        let entry = PrintEntry {
            print,
            offset,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            digest,
            flags: if ok && record.print.is_some() { OK } else { 0 },
        };
        if let Err(e) = self.prints.write_all(&entry.to_bytes()) {
            self.error = Some(e);
        }
    }

    fn start(&mut self) {
        let mut t = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        t.mark = t.position;
        t.recording = true;
        t.record.clear();
        // A record of megabytes does not hold its buffer for the rest.
        if t.record.capacity() > 1 << 20 {
            t.record = Vec::new();
        }
    }
}

impl RecordWriter for PrintingWriter {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.start();
        self.inner.write(record)?;
        self.entry(record);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.inner.finish()?;
        if self.error.is_none() {
            if let Err(e) = self.prints.flush() {
                self.error = Some(e);
            }
        }
        match self.error.take() {
            Some(e) => {
                eprintln!("warning: cannot save fingerprints for --resume: {e}");
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Results first: an entry never points past what is on disk.
        self.inner.flush()?;
        if self.error.is_none() {
            if let Err(e) = self.prints.flush() {
                self.error = Some(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back() {
        let e = PrintEntry {
            print: UnitPrint {
                key: [7; 16],
                state: [9; 16],
            },
            offset: 1 << 40,
            len: 321,
            digest: 0xdead_beef_0123_4567,
            flags: OK,
        };
        assert_eq!(PrintEntry::from_bytes(&e.to_bytes()), Some(e));
    }
}

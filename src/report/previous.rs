//! The records of an earlier run, found again by key for `--resume` and
//! read back one by one from the results file where they were written.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::print_file::{ENTRY_LEN, MAGIC, OK, PrintEntry, bytes_digest};
use super::unit_print::{Digest, UnitPrint};
use super::{Record, Status};

/// The records of an earlier run, as `--resume` finds them again: the
/// entries of its fingerprints file, sorted by key (about 60 bytes each
/// with their bucket, so a million records take some 60 MB), and the
/// results file, from which a kept record is read back by its offset when
/// it is needed.
pub struct Previous {
    results: File,
    /// Its length: an entry pointing past it (a damaged fingerprints file)
    /// is never read, nor its length allocated.
    results_len: u64,
    /// Sorted by key, then by place in the file (so the n-th unit with
    /// one key takes the n-th record with it). `flags` also marks an
    /// entry taken.
    entries: Vec<PrintEntry>,
    /// Keys are hashes, so their first bits spread evenly: `buckets[b]` is
    /// the first entry whose key starts with the `bits` bits of `b`, and a
    /// look-up reads one bucket and an entry or two, not a binary search's
    /// twenty scattered entries.
    buckets: Vec<u32>,
    bits: u32,
    /// Entries whose record could not be read back as it was written.
    pub unreadable: u64,
}

/// An earlier record matched to a unit of this run.
#[derive(Debug, Clone, Copy)]
pub struct Earlier {
    entry: PrintEntry,
}

impl Earlier {
    /// Was it `ok`?
    pub fn ok(&self) -> bool {
        self.entry.flags & OK != 0
    }

    /// Its key and state.
    pub fn print(&self) -> UnitPrint {
        self.entry.print
    }
}

/// Why the earlier run cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum PreviousError {
    #[error("there are no fingerprints beside it ({0})")]
    NoPrints(String),
    #[error("cannot read {0}: {1}")]
    Unreadable(String, io::Error),
    #[error("{0} is not a fingerprints file of this jobfile (written by an older one, or damaged)")]
    NotPrints(String),
    #[error("{path} holds the fingerprints of job `{found}`, not of `{expected}`")]
    OtherJob {
        path: String,
        found: String,
        expected: String,
    },
}

/// The taken mark, in [`PrintEntry::flags`].
const TAKEN: u8 = 2;

impl Previous {
    /// Opens the earlier run's results and fingerprints; `Ok(None)` when
    /// there are no earlier results.
    pub fn open(
        results: &Path,
        prints: &Path,
        job_name: &str,
    ) -> Result<Option<Previous>, PreviousError> {
        let shown = |p: &Path| p.display().to_string();
        let file = match File::open(results) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PreviousError::Unreadable(shown(results), e)),
        };
        let pf = match File::open(prints) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(PreviousError::NoPrints(shown(prints)));
            }
            Err(e) => return Err(PreviousError::Unreadable(shown(prints), e)),
        };
        let size = pf
            .metadata()
            .map_err(|e| PreviousError::Unreadable(shown(prints), e))?
            .len();
        let mut r = BufReader::with_capacity(1 << 16, pf);
        let mut magic = vec![0; MAGIC.len()];
        if r.read_exact(&mut magic).is_err() || magic != MAGIC {
            return Err(PreviousError::NotPrints(shown(prints)));
        }
        let mut name = Vec::new();
        r.by_ref()
            .take(64 * 1024)
            .read_until(b'\n', &mut name)
            .map_err(|e| PreviousError::Unreadable(shown(prints), e))?;
        let found: Option<String> = serde_json::from_slice(&name).ok();
        match found {
            Some(found) if found == job_name => {}
            Some(found) => {
                return Err(PreviousError::OtherJob {
                    path: shown(prints),
                    found,
                    expected: job_name.to_string(),
                });
            }
            None => return Err(PreviousError::NotPrints(shown(prints))),
        }
        let body = size.saturating_sub((MAGIC.len() + name.len()) as u64);
        // Sized once: a million entries never grow the vector twice over.
        let mut entries = Vec::with_capacity((body / ENTRY_LEN as u64) as usize);
        let mut buf = [0; ENTRY_LEN];
        // A last entry cut short (an interrupted run) is left out.
        while r.read_exact(&mut buf).is_ok() {
            if let Some(e) = PrintEntry::from_bytes(&buf) {
                entries.push(e);
            }
        }
        entries.sort_unstable_by_key(|e| (e.print.key, e.offset));
        let bits = (entries.len().max(2) as u64)
            .next_power_of_two()
            .trailing_zeros();
        let mut buckets = vec![0u32; (1usize << bits) + 1];
        let mut at = 0usize;
        for (b, slot) in buckets.iter_mut().enumerate() {
            while at < entries.len() && (bucket(&entries[at].print.key, bits) as usize) < b {
                at += 1;
            }
            *slot = u32::try_from(at).unwrap_or(u32::MAX);
        }
        let results_len = file
            .metadata()
            .map_err(|e| PreviousError::Unreadable(shown(results), e))?
            .len();
        Ok(Some(Previous {
            results: file,
            results_len,
            entries,
            buckets,
            bits,
            unreadable: 0,
        }))
    }

    /// How many earlier records there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Are there none?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first earlier record with this key that no unit took yet.
    pub fn take(&mut self, key: &Digest) -> Option<Earlier> {
        let b = bucket(key, self.bits) as usize;
        let lo = *self.buckets.get(b)? as usize;
        let hi = *self.buckets.get(b + 1)? as usize;
        let bucket = self.entries.get(lo..hi)?;
        let start = lo + bucket.partition_point(|e| e.print.key < *key);
        let end = start + self.entries[start..hi].partition_point(|e| e.print.key == *key);
        // Within one key, taken entries are a prefix.
        let group = &mut self.entries[start..end];
        let i = group.partition_point(|e| e.flags & TAKEN != 0);
        let e = group.get_mut(i)?;
        e.flags |= TAKEN;
        Some(Earlier { entry: *e })
    }

    /// The record of `earlier`, read back from the results file; `None`
    /// (counted in [`Previous::unreadable`]) when its bytes are not those
    /// that were written.
    pub fn read(&mut self, earlier: &Earlier) -> Option<Record> {
        let e = &earlier.entry;
        let fits = e
            .offset
            .checked_add(u64::from(e.len))
            .is_some_and(|end| end <= self.results_len);
        let r = fits.then(|| read_entry(&self.results, e)).flatten();
        if r.is_none() {
            self.unreadable += 1;
        }
        r
    }

    /// The earlier records no unit took, in the order they were written,
    /// each with its print; records that do not read back are left out.
    pub fn untaken(&mut self) -> Vec<PrintEntry> {
        let mut rest: Vec<PrintEntry> = self
            .entries
            .iter()
            .filter(|e| e.flags & TAKEN == 0)
            .copied()
            .collect();
        rest.sort_unstable_by_key(|e| e.offset);
        rest
    }

    /// The record of an entry from [`Previous::untaken`].
    pub fn read_entry(&mut self, entry: &PrintEntry) -> Option<Record> {
        self.read(&Earlier { entry: *entry })
    }
}

/// The bucket of a key: its first `bits` bits.
fn bucket(key: &Digest, bits: u32) -> u64 {
    let mut first = [0; 8];
    first.copy_from_slice(&key[..8]);
    u64::from_be_bytes(first) >> (64 - bits)
}

/// Reads, checks and parses the record an entry points at.
fn read_entry(file: &File, e: &PrintEntry) -> Option<Record> {
    let mut bytes = vec![0; e.len as usize];
    file.read_exact_at(&mut bytes, e.offset).ok()?;
    if bytes_digest(&bytes) != e.digest {
        return None;
    }
    // The bytes of a record may carry the separators of its format.
    let start = bytes.iter().position(|&b| b == b'{')?;
    let end = bytes.iter().rposition(|&b| b == b'}')?;
    let v: Value = serde_json::from_slice(bytes.get(start..=end)?).ok()?;
    let mut r = record_from_json(&v)?;
    if (e.flags & OK != 0) != (r.status == Status::Ok) {
        return None;
    }
    r.print = Some(e.print);
    Some(r)
}

/// A record from its JSON object; `None` for the `@shared` record or
/// anything that is not a record.
pub fn record_from_json(v: &Value) -> Option<Record> {
    let o = v.as_object()?;
    let task = o.get("task")?.as_str()?.to_string();
    if task == "@shared" {
        return None;
    }
    let status = match o.get("status")?.as_str()? {
        "ok" => Status::Ok,
        "failed" => Status::Failed,
        "timeout" => Status::Timeout,
        "crashed" => Status::Crashed,
        "skipped" => Status::Skipped,
        _ => Status::Cancelled,
    };
    let text = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let int = |k: &str| o.get(k).and_then(Value::as_i64);
    Some(Record {
        task,
        index: o.get("index").and_then(Value::as_u64),
        function: text("function"),
        args: o
            .get("args")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        kwargs: o
            .get("kwargs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(Map::new),
        status,
        value: o.get("value").cloned().unwrap_or(Value::Null),
        exit_code: int("exit_code").map(|c| c as i32),
        signal: int("signal").map(|c| c as i32),
        error: o.get("error").and_then(Value::as_str).map(str::to_string),
        stdout: text("stdout"),
        stderr: text("stderr"),
        truncated: o.get("truncated").and_then(Value::as_bool).unwrap_or(false),
        attempts: int("attempts").unwrap_or(0) as u32,
        worker: int("worker").map(|w| w as u32),
        host: o.get("host").and_then(Value::as_str).map(str::to_string),
        started: o
            .get("started")
            .and_then(Value::as_str)
            .and_then(|s| humantime::parse_rfc3339(s).ok())
            .map(|t| UNIX_EPOCH + t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)),
        duration_ms: o.get("duration_ms").and_then(Value::as_f64),
        print: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::sample;
    use crate::report::{Destination, Format, WriterOptions, open_writer_with_prints, unit_key};

    /// Writes `records` as jsonl with their fingerprints; gives the paths.
    fn written(dir: &Path, records: &[Record]) -> (std::path::PathBuf, std::path::PathBuf) {
        let results = dir.join("r.jsonl");
        let prints = dir.join(".r.jsonl.fingerprints");
        let opts = WriterOptions {
            job_name: "job".into(),
            ..Default::default()
        };
        let mut w = open_writer_with_prints(
            Format::Jsonl,
            Destination::File(results.clone()),
            opts,
            &prints,
        )
        .unwrap();
        for r in records {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
        (results, prints)
    }

    fn item(value: &str, state: u8) -> Record {
        let mut r = sample();
        r.value = Value::from(value);
        r.print = Some(UnitPrint {
            key: unit_key(&r.task, &r.args, &r.kwargs),
            state: [state; 16],
        });
        r
    }

    #[test]
    fn the_nth_take_of_a_key_gives_the_nth_record_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut other = item("other", 9);
        other.args = vec![Value::from("elsewhere")];
        other.print = Some(UnitPrint {
            key: unit_key(&other.task, &other.args, &other.kwargs),
            state: [9; 16],
        });
        let records = [item("first", 1), other, item("second", 2)];
        let (results, prints) = written(dir.path(), &records);
        let mut p = Previous::open(&results, &prints, "job").unwrap().unwrap();
        assert_eq!(p.len(), 3);
        let key = records[0].print.unwrap().key;
        let a = p.take(&key).unwrap();
        let b = p.take(&key).unwrap();
        assert!(p.take(&key).is_none());
        assert_eq!(a.print().state, [1; 16]);
        assert_eq!(p.read(&a).unwrap().value, "first");
        assert_eq!(p.read(&b).unwrap().value, "second");
        let rest = p.untaken();
        assert_eq!(rest.len(), 1);
        assert_eq!(p.read_entry(&rest[0]).unwrap().value, "other");
    }

    #[test]
    fn a_record_whose_bytes_changed_does_not_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (results, prints) = written(dir.path(), &[item("first", 1), item("second", 2)]);
        let text = std::fs::read_to_string(&results).unwrap();
        std::fs::write(&results, text.replace("second", "sEcond")).unwrap();
        let mut p = Previous::open(&results, &prints, "job").unwrap().unwrap();
        let key = item("x", 0).print.unwrap().key;
        let a = p.take(&key).unwrap();
        let b = p.take(&key).unwrap();
        assert!(p.read(&a).is_some());
        assert!(p.read(&b).is_none());
        assert_eq!(p.unreadable, 1);
    }

    #[test]
    fn an_entry_pointing_past_the_results_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let (results, prints) = written(dir.path(), &[item("first", 1)]);
        let mut bytes = std::fs::read(&prints).unwrap();
        let at = bytes.len() - ENTRY_LEN;
        // The length of the one entry: 4 GiB.
        bytes[at + 40..at + 44].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&prints, bytes).unwrap();
        let mut p = Previous::open(&results, &prints, "job").unwrap().unwrap();
        let a = p.take(&item("x", 0).print.unwrap().key).unwrap();
        assert!(p.read(&a).is_none());
        assert_eq!(p.unreadable, 1);
    }

    #[test]
    fn bad_fingerprints_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (results, prints) = written(dir.path(), &[item("first", 1)]);
        assert!(matches!(
            Previous::open(&results, &prints, "another"),
            Err(PreviousError::OtherJob { .. })
        ));
        let missing = dir.path().join("nothing");
        assert!(matches!(
            Previous::open(&results, &missing, "job"),
            Err(PreviousError::NoPrints(_))
        ));
        assert!(Previous::open(&missing, &prints, "job").unwrap().is_none());
        std::fs::write(&prints, b"jobfile fingerprints 1\n").unwrap();
        assert!(matches!(
            Previous::open(&results, &prints, "job"),
            Err(PreviousError::NotPrints(_))
        ));
    }
}

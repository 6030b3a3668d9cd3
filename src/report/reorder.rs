//! The reorder buffer behind `order = "submission"`.
//!
//! Records finish in any order; this buffer lets each one out the moment
//! every record before it (in submission order) is out, and holds the rest.
//! It owns only ordering: it never writes, formats or looks inside a record.
//!
//! Positions are `(slot, seq)`: the engine numbers slots 0, 1, 2, ... in
//! submission order (one per task in file order, the last one possibly the
//! `@shared` record), and the records of one slot 0..n contiguously (map
//! items in item order, then the callback record if any). A slot is known
//! to be complete only once [`ReorderBuffer::close`] says how many records it
//! holds, since a streamed map does not know its length up front.
//!
//! Memory is proportional to what is held: records that arrive in order pass
//! straight through without being stored, and a slot that has been written
//! out leaves nothing behind.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use thiserror::Error;

use super::record::Record;
use super::unit_print::UnitPrint;

/// A call that contradicts an earlier one: an engine bug, never a task's
/// failure. The buffer is left as it was before the call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReorderError {
    /// A record was pushed twice at one position.
    #[error("record {seq} of slot {slot} was pushed twice")]
    Duplicate { slot: usize, seq: u64 },
    /// A record was pushed at a position already written out.
    #[error("record {seq} of slot {slot} arrived after it was already written out")]
    AlreadyWritten { slot: usize, seq: u64 },
    /// A record was pushed past the total its slot was closed with.
    #[error("record {seq} of slot {slot} is past the slot's total of {total}")]
    PastTotal { slot: usize, seq: u64, total: u64 },
    /// A slot was closed twice.
    #[error("slot {slot} was closed twice")]
    ClosedTwice { slot: usize },
    /// A slot was closed with a total smaller than a record it already has.
    #[error("slot {slot} was closed with total {total} but has record {seq}")]
    TotalTooSmall { slot: usize, total: u64, seq: u64 },
}

/// Holds finished records until every record submitted before them is out.
///
/// ```
/// use jobfile::report::{Record, ReorderBuffer, Status};
///
/// let rec = |task: &str| Record::not_run(task.into(), None, "f".into(), Status::Skipped, "x".into());
/// let mut buf = ReorderBuffer::new();
/// // Slot 1 finishes first: held.
/// assert_eq!(buf.push(1, 0, rec("b")).unwrap().count(), 0);
/// // Slot 0's only record lets both out, once slot 0 is closed.
/// assert_eq!(buf.push(0, 0, rec("a")).unwrap().count(), 1);
/// let out: Vec<_> = buf.close(0, 1).unwrap().map(|r| r.task).collect();
/// assert_eq!(out, ["b"]);
/// ```
#[derive(Debug)]
pub struct ReorderBuffer {
    /// The slot whose records are being written out now.
    next_slot: usize,
    /// The position, within `next_slot`, of the next record to write.
    next_seq: u64,
    /// Records that arrived before their turn, by position.
    held: BTreeMap<(usize, u64), Held>,
    /// Totals of closed slots at or after `next_slot`.
    totals: BTreeMap<usize, u64>,
    /// Held records in memory (the others are in `spill`).
    in_memory: usize,
    memory_limit: usize,
    spill: Option<Spill>,
    /// The first failure to use the spill file; see [`ReorderBuffer::error`].
    error: Option<io::Error>,
}

/// Held records kept in memory; past it, the ones furthest from being
/// written wait in a temporary file (a stream consumer's records, say,
/// which wait for their producer's).
pub const MEMORY_LIMIT: usize = 4096;

/// A held record, in memory or in the spill file.
#[derive(Debug)]
enum Held {
    /// Boxed, so that a spilled entry is small.
    Memory(Box<Record>),
    Spilled {
        offset: u64,
        len: usize,
    },
}

/// An unlinked temporary file of serialized records.
#[derive(Debug)]
struct Spill {
    file: File,
    end: u64,
}

impl Default for ReorderBuffer {
    fn default() -> Self {
        ReorderBuffer::with_memory_limit(MEMORY_LIMIT)
    }
}

impl ReorderBuffer {
    /// An empty buffer waiting for record 0 of slot 0.
    pub fn new() -> ReorderBuffer {
        ReorderBuffer::default()
    }

    /// A buffer that keeps at most `limit` held records in memory.
    pub fn with_memory_limit(limit: usize) -> ReorderBuffer {
        ReorderBuffer {
            next_slot: 0,
            next_seq: 0,
            held: BTreeMap::new(),
            totals: BTreeMap::new(),
            in_memory: 0,
            memory_limit: limit.max(1),
            spill: None,
            error: None,
        }
    }

    /// The first failure to write or read the spill file, if any: the
    /// records it concerned are lost, so the output should end with it.
    pub fn error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Holds a record back, moving the furthest ones to disk when too many
    /// are in memory.
    fn hold(&mut self, position: (usize, u64), record: Record) {
        self.held.insert(position, Held::Memory(Box::new(record)));
        self.in_memory += 1;
        if self.in_memory > self.memory_limit {
            self.spill_furthest();
        }
    }

    /// Moves half of the in-memory records, the last in submission order,
    /// to the spill file.
    fn spill_furthest(&mut self) {
        if self.spill.is_none() {
            match spill_file() {
                Ok(file) => self.spill = Some(Spill { file, end: 0 }),
                Err(e) => {
                    // Without a file, memory it is.
                    self.error.get_or_insert(e);
                    self.memory_limit = usize::MAX;
                    return;
                }
            }
        }
        let Some(spill) = &mut self.spill else { return };
        let mut to_move = self.in_memory / 2;
        for held in self.held.values_mut().rev() {
            if to_move == 0 {
                break;
            }
            let Held::Memory(record) = held else { continue };
            if record.is_shared() {
                continue;
            }
            // The unit's print first (a flag byte, then its bytes), then
            // the record's JSON.
            let mut bytes = Vec::with_capacity(512);
            match &record.print {
                Some(p) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&p.to_bytes());
                }
                None => bytes.push(0),
            }
            record.write_json(false, &mut bytes);
            if let Err(e) = spill.file.write_all_at(&bytes, spill.end) {
                self.error.get_or_insert(e);
                self.memory_limit = usize::MAX;
                return;
            }
            *held = Held::Spilled {
                offset: spill.end,
                len: bytes.len(),
            };
            spill.end += bytes.len() as u64;
            self.in_memory -= 1;
            to_move -= 1;
        }
    }

    /// A held record as a record again; `None` if it could not be read
    /// back (then [`ReorderBuffer::error`] says why).
    fn take(&mut self, held: Held) -> Option<Record> {
        match held {
            Held::Memory(record) => {
                self.in_memory -= 1;
                Some(*record)
            }
            Held::Spilled { offset, len } => {
                let spill = self.spill.as_ref()?;
                let mut bytes = vec![0; len];
                let read = spill.file.read_exact_at(&mut bytes, offset).and_then(|()| {
                    let (print, json) = match bytes.split_first() {
                        Some((1, rest)) if rest.len() >= UnitPrint::LEN => {
                            let (p, json) = rest.split_at(UnitPrint::LEN);
                            (UnitPrint::from_bytes(p), json)
                        }
                        Some((_, rest)) => (None, rest),
                        None => (None, &bytes[..]),
                    };
                    let v: serde_json::Value =
                        serde_json::from_slice(json).map_err(io::Error::other)?;
                    Ok(super::record_from_json(&v).map(|mut r| {
                        r.print = print;
                        r
                    }))
                });
                match read {
                    Ok(Some(record)) => Some(record),
                    Ok(None) => {
                        let lost = io::Error::other("a held record did not read back");
                        self.error.get_or_insert(lost);
                        None
                    }
                    Err(e) => {
                        self.error.get_or_insert(e);
                        None
                    }
                }
            }
        }
    }

    /// Hands over the record at `(slot, seq)`. The returned iterator yields,
    /// in order, every record that can now be written (possibly none).
    ///
    /// Records the caller does not take from the iterator stay in the buffer
    /// and come out of the next call (or of [`ReorderBuffer::drain_held`]),
    /// so stopping at a write error loses nothing.
    pub fn push(
        &mut self,
        slot: usize,
        seq: u64,
        record: Record,
    ) -> Result<Ready<'_>, ReorderError> {
        if (slot, seq) < (self.next_slot, self.next_seq) {
            return Err(ReorderError::AlreadyWritten { slot, seq });
        }
        if let Some(&total) = self.totals.get(&slot) {
            if seq >= total {
                return Err(ReorderError::PastTotal { slot, seq, total });
            }
        }
        if self.held.contains_key(&(slot, seq)) {
            return Err(ReorderError::Duplicate { slot, seq });
        }
        if (slot, seq) == (self.next_slot, self.next_seq) {
            // The common case: in order. Pass it through without storing it.
            return Ok(Ready {
                buf: self,
                first: Some(record),
            });
        }
        self.hold((slot, seq), record);
        Ok(Ready {
            buf: self,
            first: None,
        })
    }

    /// Says that `slot` holds exactly `total` records (0 is allowed). The
    /// returned iterator yields every record that can now be written.
    pub fn close(&mut self, slot: usize, total: u64) -> Result<Ready<'_>, ReorderError> {
        if slot < self.next_slot || self.totals.contains_key(&slot) {
            return Err(ReorderError::ClosedTwice { slot });
        }
        if slot == self.next_slot && self.next_seq > total {
            return Err(ReorderError::TotalTooSmall {
                slot,
                total,
                seq: self.next_seq - 1,
            });
        }
        if let Some((&(_, seq), _)) = self.held.range((slot, total)..=(slot, u64::MAX)).next() {
            return Err(ReorderError::TotalTooSmall { slot, total, seq });
        }
        self.totals.insert(slot, total);
        Ok(Ready {
            buf: self,
            first: None,
        })
    }

    /// Gives back every held record, in submission order, skipping the gaps
    /// of records that never arrived: what an interrupted run writes out.
    /// The buffer is empty afterwards.
    pub fn drain_held(&mut self) -> Vec<Record> {
        let held = std::mem::take(&mut self.held);
        held.into_values().filter_map(|h| self.take(h)).collect()
    }

    /// How many records are held, waiting for an earlier one.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// The position `(slot, seq)` of the next record to be written.
    pub fn next_position(&self) -> (usize, u64) {
        (self.next_slot, self.next_seq)
    }

    /// Takes the record at the write position, if it is here, moving past
    /// slots that are closed and fully written.
    fn pop_ready(&mut self) -> Option<Record> {
        loop {
            if let Some(held) = self.held.remove(&(self.next_slot, self.next_seq)) {
                self.next_seq += 1;
                match self.take(held) {
                    Some(record) => return Some(record),
                    None => continue, // lost; `error` says why
                }
            }
            match self.totals.get(&self.next_slot) {
                Some(&total) if self.next_seq >= total => {
                    self.totals.remove(&self.next_slot);
                    self.next_slot += 1;
                    self.next_seq = 0;
                }
                _ => return None,
            }
        }
    }
}

/// The records that became writable after one [`ReorderBuffer::push`] or
/// [`ReorderBuffer::close`], in order. Dropping it early keeps the rest in
/// the buffer.
#[derive(Debug)]
pub struct Ready<'a> {
    buf: &'a mut ReorderBuffer,
    /// A record pushed exactly at the write position, not yet yielded.
    first: Option<Record>,
}

impl Iterator for Ready<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if let Some(record) = self.first.take() {
            self.buf.next_seq += 1;
            return Some(record);
        }
        self.buf.pop_ready()
    }
}

impl Drop for Ready<'_> {
    fn drop(&mut self) {
        if let Some(record) = self.first.take() {
            let position = (self.buf.next_slot, self.buf.next_seq);
            self.buf.hold(position, record);
        }
    }
}

/// A new temporary file, already unlinked: nothing is left behind, even
/// if the process is killed.
fn spill_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    for attempt in 0..100u32 {
        let path = dir.join(format!(".jobfile-held-{}-{attempt}", std::process::id()));
        match File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                let _ = std::fs::remove_file(&path);
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free name for a temporary file"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::report::Status;

    fn rec(slot: usize, seq: u64) -> Record {
        let mut r = Record::not_run(
            format!("t{slot}"),
            Some(seq),
            "f".into(),
            Status::Cancelled,
            "x".into(),
        );
        r.value = Value::from(vec![slot as u64, seq]);
        r
    }

    fn pos(r: &Record) -> (usize, u64) {
        let v = r.value.as_array().unwrap();
        (v[0].as_u64().unwrap() as usize, v[1].as_u64().unwrap())
    }

    #[test]
    fn in_order_records_pass_straight_through() {
        let mut buf = ReorderBuffer::new();
        for seq in 0..1000 {
            let out: Vec<_> = buf.push(0, seq, rec(0, seq)).unwrap().collect();
            assert_eq!(out.len(), 1);
            assert_eq!(buf.held_len(), 0);
        }
        assert_eq!(buf.close(0, 1000).unwrap().count(), 0);
        assert_eq!(buf.next_position(), (1, 0));
    }

    #[test]
    fn later_slots_wait_for_close() {
        let mut buf = ReorderBuffer::new();
        assert_eq!(buf.push(1, 0, rec(1, 0)).unwrap().count(), 0);
        assert_eq!(buf.push(0, 0, rec(0, 0)).unwrap().count(), 1);
        // Slot 0 might still get a record 1 (a callback), so slot 1 waits.
        assert_eq!(buf.held_len(), 1);
        let out: Vec<_> = buf.close(0, 1).unwrap().map(|r| pos(&r)).collect();
        assert_eq!(out, [(1, 0)]);
    }

    #[test]
    fn empty_slots_are_skipped() {
        let mut buf = ReorderBuffer::new();
        assert_eq!(buf.push(3, 0, rec(3, 0)).unwrap().count(), 0);
        assert_eq!(buf.close(1, 0).unwrap().count(), 0);
        assert_eq!(buf.close(2, 0).unwrap().count(), 0);
        let out: Vec<_> = buf.close(0, 0).unwrap().map(|r| pos(&r)).collect();
        assert_eq!(out, [(3, 0)]);
        assert_eq!(buf.next_position(), (3, 1));
    }

    #[test]
    fn nearly_ordered_map_holds_little() {
        let mut buf = ReorderBuffer::new();
        let mut written = 0u64;
        let mut most_held = 0;
        // Pairs swapped: 1, 0, 3, 2, ...
        for base in (0..1_000_000u64).step_by(2) {
            for seq in [base + 1, base] {
                written += buf.push(0, seq, rec(0, seq)).unwrap().count() as u64;
                most_held = most_held.max(buf.held_len());
            }
        }
        written += buf.close(0, 1_000_000).unwrap().count() as u64;
        assert_eq!(written, 1_000_000);
        assert_eq!(most_held, 1);
        assert!(buf.totals.is_empty() && buf.held.is_empty());
    }

    #[test]
    fn an_unconsumed_ready_keeps_its_records() {
        let mut buf = ReorderBuffer::new();
        buf.push(0, 1, rec(0, 1)).unwrap().for_each(drop);
        drop(buf.push(0, 0, rec(0, 0)).unwrap());
        assert_eq!(buf.held_len(), 2);
        let mut ready = buf.close(0, 2).unwrap();
        assert_eq!(ready.next().map(|r| pos(&r)), Some((0, 0)));
        drop(ready);
        let out: Vec<_> = buf.drain_held().iter().map(pos).collect();
        assert_eq!(out, [(0, 1)]);
    }

    #[test]
    fn drain_held_skips_gaps_in_order() {
        let mut buf = ReorderBuffer::new();
        buf.push(0, 0, rec(0, 0)).unwrap().for_each(drop);
        for (slot, seq) in [(2, 1), (0, 2), (1, 0), (2, 0)] {
            assert_eq!(buf.push(slot, seq, rec(slot, seq)).unwrap().count(), 0);
        }
        let out: Vec<_> = buf.drain_held().iter().map(pos).collect();
        assert_eq!(out, [(0, 2), (1, 0), (2, 0), (2, 1)]);
        assert_eq!(buf.held_len(), 0);
    }

    #[test]
    fn contradictions_are_errors() {
        let mut buf = ReorderBuffer::new();
        buf.push(0, 0, rec(0, 0)).unwrap().for_each(drop);
        assert_eq!(
            buf.push(0, 0, rec(0, 0)).unwrap_err(),
            ReorderError::AlreadyWritten { slot: 0, seq: 0 }
        );
        buf.push(1, 3, rec(1, 3)).unwrap().for_each(drop);
        assert_eq!(
            buf.push(1, 3, rec(1, 3)).unwrap_err(),
            ReorderError::Duplicate { slot: 1, seq: 3 }
        );
        assert_eq!(
            buf.close(1, 3).unwrap_err(),
            ReorderError::TotalTooSmall {
                slot: 1,
                total: 3,
                seq: 3
            }
        );
        assert_eq!(
            buf.close(0, 0).unwrap_err(),
            ReorderError::TotalTooSmall {
                slot: 0,
                total: 0,
                seq: 0
            }
        );
        buf.close(2, 1).unwrap().for_each(drop);
        assert_eq!(
            buf.close(2, 1).unwrap_err(),
            ReorderError::ClosedTwice { slot: 2 }
        );
        assert_eq!(
            buf.push(2, 1, rec(2, 1)).unwrap_err(),
            ReorderError::PastTotal {
                slot: 2,
                seq: 1,
                total: 1
            }
        );
        buf.close(0, 1).unwrap().for_each(drop);
        assert_eq!(
            buf.close(0, 1).unwrap_err(),
            ReorderError::ClosedTwice { slot: 0 }
        );
    }

    /// An engine's calls for some slots: every push and close, in an
    /// arbitrary interleaving that respects nothing but "a close comes
    /// whenever it likes".
    fn calls() -> impl Strategy<Value = (Vec<u64>, Vec<(bool, usize, u64)>)> {
        prop::collection::vec(0u64..6, 0..8).prop_flat_map(|totals| {
            let mut calls = Vec::new();
            for (slot, &total) in totals.iter().enumerate() {
                calls.push((false, slot, total));
                for seq in 0..total {
                    calls.push((true, slot, seq));
                }
            }
            (Just(totals), Just(calls).prop_shuffle())
        })
    }

    proptest! {
        #[test]
        fn any_arrival_order_writes_submission_order(
            (totals, calls) in calls(),
            limit in prop_oneof![Just(MEMORY_LIMIT), 1usize..4],
        ) {
            // Small limits send most held records through the spill file.
            let mut buf = ReorderBuffer::with_memory_limit(limit);
            let mut arrived = std::collections::BTreeSet::new();
            let mut closed = std::collections::BTreeSet::new();
            let mut written = Vec::new();
            for (is_push, slot, n) in calls {
                let ready: Vec<_> = if is_push {
                    arrived.insert((slot, n));
                    buf.push(slot, n, rec(slot, n)).unwrap().collect()
                } else {
                    closed.insert(slot);
                    buf.close(slot, n).unwrap().collect()
                };
                for r in ready {
                    let (slot, seq) = pos(&r);
                    // Everything before it has arrived, and every earlier slot is closed.
                    for (s, &total) in totals.iter().enumerate().take(slot) {
                        prop_assert!(closed.contains(&s));
                        for q in 0..total {
                            prop_assert!(arrived.contains(&(s, q)));
                        }
                    }
                    for q in 0..seq {
                        prop_assert!(arrived.contains(&(slot, q)));
                    }
                    written.push((slot, seq));
                }
                // Nothing writable is left behind.
                prop_assert!(!buf.held.contains_key(&buf.next_position()));
            }
            let expected: Vec<_> = totals
                .iter()
                .enumerate()
                .flat_map(|(slot, &total)| (0..total).map(move |seq| (slot, seq)))
                .collect();
            prop_assert_eq!(written, expected);
            prop_assert_eq!(buf.held_len(), 0);
            prop_assert!(buf.totals.is_empty());
        }

        #[test]
        fn interrupted_runs_drain_the_rest_in_order(
            (totals, calls) in calls(),
            cut in 0usize..60,
            limit in prop_oneof![Just(MEMORY_LIMIT), 1usize..4],
        ) {
            let mut buf = ReorderBuffer::with_memory_limit(limit);
            let mut out = Vec::new();
            for (is_push, slot, n) in calls.into_iter().take(cut) {
                let ready = if is_push { buf.push(slot, n, rec(slot, n)) } else { buf.close(slot, n) };
                out.extend(ready.unwrap().map(|r| pos(&r)));
            }
            out.extend(buf.drain_held().iter().map(pos));
            let mut sorted = out.clone();
            sorted.sort();
            prop_assert_eq!(&out, &sorted);
            prop_assert!(out.iter().all(|&(s, q)| q < totals[s]));
        }
    }

    #[test]
    fn records_held_past_the_memory_limit_wait_on_disk_and_come_back_whole() {
        let full = |seq: u64| {
            let mut r = rec(1, seq);
            r.status = Status::Ok;
            r.error = None;
            r.stdout = format!("line {seq}\n\"quoted\"\u{1}");
            r.truncated = seq % 2 == 0;
            r.worker = Some(4242);
            r.host = (seq % 3 == 0).then(|| "node2".to_string());
            r.attempts = 2;
            r.started =
                Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123));
            r.duration_ms = Some(41.2);
            r
        };
        let mut buf = ReorderBuffer::with_memory_limit(3);
        for seq in (0..50).rev() {
            assert_eq!(buf.push(1, seq, full(seq)).unwrap().count(), 0);
        }
        assert!(buf.in_memory <= 3, "{} in memory", buf.in_memory);
        assert_eq!(buf.held_len(), 50);
        buf.close(1, 50).unwrap().for_each(drop);
        let out: Vec<String> = buf
            .push(0, 0, rec(0, 0))
            .unwrap()
            .chain(std::iter::empty())
            .map(|r| r.to_json_string(false))
            .collect();
        assert_eq!(out.len(), 1, "only slot 0's record until slot 0 closes");
        let rest: Vec<String> = buf
            .close(0, 1)
            .unwrap()
            .map(|r| r.to_json_string(false))
            .collect();
        let expected: Vec<String> = (0..50).map(|seq| full(seq).to_json_string(false)).collect();
        assert_eq!(rest, expected);
        assert!(buf.error().is_none());
        assert_eq!(buf.held_len(), 0);
    }
}

//! What the HTML report keeps of each record: one compact row, with its
//! texts capped and deduplicated, so a run of millions of records fits in
//! memory and in a page. Fed from a results file or, during `run --report`,
//! record by record from the engine's sink.

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::report::columns::tail_of;
use crate::report::{Record, Status};

/// Characters of a record's arguments kept (args, then kwargs if any).
pub(crate) const ARGS_CAP: usize = 200;
/// Characters of an error message kept.
pub(crate) const ERROR_CAP: usize = 500;
/// Bytes at the end of a failed record's stderr kept.
pub(crate) const TAIL_CAP: usize = 2048;
/// Distinct text kept in the error and stderr-tail tables, each; past it,
/// later new texts are left out of the page (the results file has them).
const TABLE_BUDGET: usize = 8 << 20;
/// Bytes of argument text kept for the whole run; past it, later records
/// show no arguments.
const ARGS_BUDGET: usize = 256 << 20;

/// A table of distinct strings, each stored once.
#[derive(Debug, Default, Clone)]
pub struct StringTable {
    index: HashMap<String, u32>,
    /// The strings, in order of first appearance.
    pub strings: Vec<String>,
    bytes: usize,
}

impl StringTable {
    /// The number of `s`, adding it if new (and if the budget allows);
    /// `None` when it had to be left out.
    fn intern(&mut self, s: &str, budget: usize) -> Option<u32> {
        if let Some(&i) = self.index.get(s) {
            return Some(i);
        }
        if self.bytes + s.len() > budget {
            return None;
        }
        let i = self.strings.len() as u32;
        self.bytes += s.len();
        self.strings.push(s.to_string());
        self.index.insert(s.to_string(), i);
        Some(i)
    }
}

/// A text left out of the page because its table was full.
pub const LEFT_OUT: u32 = u32::MAX;

/// One record as the page keeps it: 56 bytes, absent values as sentinels
/// (a run of millions of records is held whole until its page is written).
#[derive(Debug, Clone)]
pub struct Row {
    /// Number in [`PageData::tasks`].
    pub task: u32,
    pub status: Status,
    pub attempts: u32,
    index: u64,
    worker: u32,
    host: u32,
    start_ms: f64,
    duration_ms: f64,
    args_at: u32,
    args_len: u16,
    error: u32,
    tail: u32,
}

impl PartialEq for Row {
    /// Field by field; an absent time equals an absent time.
    fn eq(&self, o: &Row) -> bool {
        (
            self.task,
            self.status,
            self.attempts,
            self.index,
            self.worker,
            self.host,
        ) == (o.task, o.status, o.attempts, o.index, o.worker, o.host)
            && self.start_ms.to_bits() == o.start_ms.to_bits()
            && self.duration_ms.to_bits() == o.duration_ms.to_bits()
            && (self.args_at, self.args_len, self.error, self.tail)
                == (o.args_at, o.args_len, o.error, o.tail)
    }
}

/// The sentinel of an absent number.
const NONE: u32 = u32::MAX - 1;

fn opt(n: u32) -> Option<u32> {
    (n != NONE).then_some(n)
}

impl Row {
    /// Position of a map item.
    pub fn index(&self) -> Option<u64> {
        (self.index != u64::MAX).then_some(self.index)
    }

    /// Pid of the worker that ran it.
    pub fn worker(&self) -> Option<u32> {
        opt(self.worker)
    }

    /// Number in [`PageData::hosts`], for units run on another machine.
    pub fn host(&self) -> Option<u32> {
        opt(self.host)
    }

    /// Number in [`PageData::errors`], or [`LEFT_OUT`].
    pub fn error(&self) -> Option<u32> {
        opt(self.error)
    }

    /// Number in [`PageData::tails`], or [`LEFT_OUT`].
    pub fn tail(&self) -> Option<u32> {
        opt(self.tail)
    }

    /// Start, in milliseconds since the Unix epoch.
    pub fn start_ms(&self) -> Option<f64> {
        (!self.start_ms.is_nan()).then_some(self.start_ms)
    }

    /// How long it took, in milliseconds.
    pub fn duration_ms(&self) -> Option<f64> {
        (!self.duration_ms.is_nan()).then_some(self.duration_ms)
    }

    /// Start and duration, when the record has both (it ran, and was not
    /// written with `--reproducible`).
    pub fn span(&self) -> Option<(f64, f64)> {
        let (s, d) = (self.start_ms, self.duration_ms);
        (s.is_finite() && d.is_finite() && d >= 0.0).then_some((s, d))
    }
}

/// Everything the page shows, gathered record by record.
#[derive(Debug, Default, Clone)]
pub struct PageData {
    /// The job's name, when known (a run); else the results file's name.
    pub title: String,
    /// The rows, in the order of the results.
    pub rows: Vec<Row>,
    /// Task ids, host names, errors and stderr tails, each kept once.
    pub tasks: StringTable,
    pub hosts: StringTable,
    pub errors: StringTable,
    pub tails: StringTable,
    /// The argument texts of every row, end to end.
    pub args: String,
    /// Did any record carry timing fields (`started`, even null)? Records
    /// written with `--reproducible` have none.
    pub timing_fields: bool,
    /// The `@shared` record's value, as compact JSON, if there was one.
    pub shared: Option<String>,
    /// Texts left out because a table or the argument budget was full.
    pub left_out: u64,
}

/// A record as a results file holds it: only the fields the page needs
/// are parsed; `value` and `stdout` are skipped without being built. Every field may be
/// missing, so that what is wrong can be said in words.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a result record (a JSON object)")]
pub struct RawRecord {
    task: Option<String>,
    status: Option<String>,
    index: Option<u64>,
    attempts: Option<u64>,
    worker: Option<u64>,
    host: Option<String>,
    #[serde(default)]
    started: Present<String>,
    #[serde(default)]
    duration_ms: Present<f64>,
    args: Option<Vec<Value>>,
    kwargs: Option<Map<String, Value>>,
    error: Option<String>,
    stderr: Option<String>,
}

/// A field that may be missing, `null`, or a value: records written with
/// `--reproducible` leave the timing fields out, those of units that never
/// ran have them `null`.
#[derive(Debug, Default)]
enum Present<T> {
    #[default]
    Missing,
    Here(Option<T>),
}

impl<T> Present<T> {
    fn is_present(&self) -> bool {
        matches!(self, Present::Here(_))
    }

    fn get(&self) -> Option<&T> {
        match self {
            Present::Here(v) => v.as_ref(),
            Present::Missing => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(Present::Here)
    }
}

/// The fields of one record the page needs, from a [`Record`] or from JSON.
struct Fields<'a> {
    task: &'a str,
    index: Option<u64>,
    status: Status,
    attempts: u32,
    worker: Option<u32>,
    host: Option<&'a str>,
    start_ms: Option<f64>,
    duration_ms: Option<f64>,
    args: String,
    error: Option<&'a str>,
    stderr: &'a str,
}

impl PageData {
    /// An empty collection, for a page titled `title`.
    pub fn new(title: impl Into<String>) -> PageData {
        PageData {
            title: title.into(),
            ..PageData::default()
        }
    }

    /// Adds a record the engine made. It always carries its timing.
    pub fn push_record(&mut self, r: &Record) {
        if r.is_shared() {
            self.shared = Some(cap_chars(&r.value.to_string(), ERROR_CAP));
            return;
        }
        self.timing_fields = true;
        let start_ms = r
            .started
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64() * 1000.0);
        let kwargs = (!r.kwargs.is_empty()).then(|| Value::Object(r.kwargs.clone()));
        self.push(Fields {
            task: &r.task,
            index: r.index,
            status: r.status,
            attempts: r.attempts,
            worker: r.worker,
            host: r.host.as_deref(),
            start_ms,
            duration_ms: r.duration_ms,
            args: args_text(&r.args, kwargs.as_ref()),
            error: r.error.as_deref(),
            stderr: &r.stderr,
        });
    }

    /// Adds a record given as JSON; says what is wrong with it when it is
    /// not a result record.
    pub fn push_json(&mut self, v: &Value) -> Result<(), String> {
        if !v.is_object() {
            return Err("expected a JSON object".into());
        }
        let raw = RawRecord::deserialize(v).map_err(|e| e.to_string())?;
        self.push_raw(raw, || v.get("value").cloned().unwrap_or(Value::Null))
    }

    /// Adds a record read from a results file; says what is wrong with it
    /// when it is not a result record. `value` gives the record's value,
    /// asked for only for the `@shared` record.
    pub fn push_raw(
        &mut self,
        raw: RawRecord,
        value: impl FnOnce() -> Value,
    ) -> Result<(), String> {
        let task = raw.task.ok_or("it has no `task`")?;
        let status = raw.status.ok_or("it has no `status`")?;
        let status = parse_status(&status).ok_or_else(|| format!("unknown status `{status}`"))?;
        if task == "@shared" {
            self.shared = Some(cap_chars(&value().to_string(), ERROR_CAP));
            return Ok(());
        }
        if raw.started.is_present() || raw.duration_ms.is_present() {
            self.timing_fields = true;
        }
        let start_ms = raw
            .started
            .get()
            .and_then(|s| humantime::parse_rfc3339(s).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64() * 1000.0);
        let kwargs = raw.kwargs.filter(|m| !m.is_empty()).map(Value::Object);
        let small = |n: Option<u64>| n.and_then(|n| u32::try_from(n).ok());
        self.push(Fields {
            task: &task,
            index: raw.index,
            status,
            attempts: small(raw.attempts).unwrap_or(0),
            worker: small(raw.worker),
            host: raw.host.as_deref(),
            start_ms,
            duration_ms: raw.duration_ms.get().copied(),
            args: args_text(raw.args.as_deref().unwrap_or_default(), kwargs.as_ref()),
            error: raw.error.as_deref(),
            stderr: raw.stderr.as_deref().unwrap_or_default(),
        });
        Ok(())
    }

    fn push(&mut self, f: Fields<'_>) {
        let task = self.tasks.intern(f.task, usize::MAX).unwrap_or(LEFT_OUT);
        let host = f.host.and_then(|h| self.hosts.intern(h, usize::MAX));
        let error = f.error.map(|e| {
            let n = self.errors.intern(&cap_chars(e, ERROR_CAP), TABLE_BUDGET);
            self.left_if_none(n)
        });
        let tail = (f.status != Status::Ok && !f.stderr.is_empty()).then(|| {
            let t = tail_of(f.stderr, TAIL_CAP);
            let n = self.tails.intern(t, TABLE_BUDGET);
            self.left_if_none(n)
        });
        let (args_at, args_len) = match u16::try_from(f.args.len()) {
            Ok(len) if self.args.len() + f.args.len() <= ARGS_BUDGET => {
                let at = self.args.len() as u32;
                self.args.push_str(&f.args);
                (at, len)
            }
            _ => {
                self.left_out += 1;
                (0, 0)
            }
        };
        let some = |n: Option<u32>| n.unwrap_or(NONE).min(NONE);
        self.rows.push(Row {
            task,
            status: f.status,
            attempts: f.attempts,
            index: f.index.unwrap_or(u64::MAX),
            worker: some(f.worker),
            host: some(host),
            start_ms: f.start_ms.unwrap_or(f64::NAN),
            duration_ms: f.duration_ms.unwrap_or(f64::NAN),
            args_at,
            args_len,
            error: error.unwrap_or(NONE),
            tail: tail.unwrap_or(NONE),
        });
    }

    fn left_if_none(&mut self, n: Option<u32>) -> u32 {
        n.unwrap_or_else(|| {
            self.left_out += 1;
            LEFT_OUT
        })
    }

    /// The argument text of `row`.
    pub fn args_of(&self, row: &Row) -> &str {
        let at = row.args_at as usize;
        self.args
            .get(at..at + usize::from(row.args_len))
            .unwrap_or_default()
    }

    /// The task id of `row`.
    pub fn task_of(&self, row: &Row) -> &str {
        self.tasks
            .strings
            .get(row.task as usize)
            .map_or("?", String::as_str)
    }
}

/// A status by its name.
fn parse_status(s: &str) -> Option<Status> {
    crate::report::STATUSES
        .into_iter()
        .find(|st| st.as_str() == s)
}

/// A record's arguments as one line: the args array, then the kwargs
/// object when there are any, cut to [`ARGS_CAP`] characters.
fn args_text(args: &[Value], kwargs: Option<&Value>) -> String {
    let mut s = serde_json::to_string(args).unwrap_or_default();
    if let Some(k) = kwargs {
        s.push(' ');
        s.push_str(&k.to_string());
    }
    cap_chars(&s, ARGS_CAP)
}

/// `s` cut to at most `cap` characters, with `…` where it was cut.
pub(crate) fn cap_chars(s: &str, cap: usize) -> String {
    match s.char_indices().nth(cap) {
        None => s.to_string(),
        Some((at, _)) => {
            let mut out = s[..at].to_string();
            out.push('…');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::report::testing::{assorted, sample};

    #[test]
    fn a_record_and_its_json_give_the_same_row() {
        let mut from_record = PageData::new("t");
        let mut from_json = PageData::new("t");
        for r in assorted() {
            from_record.push_record(&r);
            let v: Value = serde_json::from_str(&r.to_json_string(false)).unwrap();
            from_json.push_json(&v).unwrap();
        }
        assert_eq!(from_record.rows.len(), 8, "@shared is not a row");
        for (a, b) in from_record.rows.iter().zip(&from_json.rows) {
            assert_eq!(a.status, b.status);
            assert_eq!(from_record.args_of(a), from_json.args_of(b));
            assert_eq!(a.worker(), b.worker());
            assert_eq!(
                a.duration_ms().map(|d| d.round()),
                b.duration_ms().map(|d| d.round())
            );
            assert_eq!(a.start_ms(), b.start_ms());
        }
        assert_eq!(from_json.shared, from_record.shared);
        assert!(from_json.timing_fields);
    }

    #[test]
    fn a_row_is_small() {
        assert!(std::mem::size_of::<Row>() <= 56);
    }

    #[test]
    fn reproducible_records_have_no_timing_fields() {
        let mut data = PageData::new("t");
        let v: Value = serde_json::from_str(&sample().to_json_string(true)).unwrap();
        data.push_json(&v).unwrap();
        assert!(!data.timing_fields);
        assert_eq!(data.rows[0].span(), None);
    }

    #[test]
    fn what_is_not_a_record_is_named() {
        let mut data = PageData::new("t");
        assert_eq!(
            data.push_json(&json!([1])).unwrap_err(),
            "expected a JSON object"
        );
        assert_eq!(
            data.push_json(&json!({"status": "ok"})).unwrap_err(),
            "it has no `task`"
        );
        assert_eq!(
            data.push_json(&json!({"task": "a"})).unwrap_err(),
            "it has no `status`"
        );
        assert_eq!(
            data.push_json(&json!({"task": "a", "status": "fine"}))
                .unwrap_err(),
            "unknown status `fine`"
        );
        assert!(data.rows.is_empty());
    }

    #[test]
    fn texts_are_capped_and_shared() {
        let mut data = PageData::new("t");
        let mut r = sample();
        r.status = Status::Failed;
        r.args = vec![json!("x".repeat(1000))];
        r.error = Some("é".repeat(1000));
        r.stderr = format!("{}END", "ü".repeat(5000));
        data.push_record(&r);
        data.push_record(&r);
        assert_eq!(data.errors.strings.len(), 1);
        assert_eq!(data.tails.strings.len(), 1);
        assert_eq!(data.errors.strings[0].chars().count(), ERROR_CAP + 1);
        assert!(data.tails.strings[0].ends_with("END"));
        assert!(data.tails.strings[0].len() <= TAIL_CAP);
        assert_eq!(data.args_of(&data.rows[1]).chars().count(), ARGS_CAP + 1);
    }
}

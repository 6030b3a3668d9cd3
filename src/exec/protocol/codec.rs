//! Hand-written forms of the two frames that cross once per unit: the
//! engine's `run` (its builtin calls by hand, others through serde) and
//! the worker's `done` of a call that ended with no value and no output,
//! each written and read (a `run` read by hand holds builtin calls only). A map of a
//! million quick items spends most of its time on them, and serde's
//! externally tagged enums walk each key through a visitor; these read and
//! write the very shape serde does, with literal keys. Any other frame, or
//! any frame these do not recognise whole, goes through serde as before, so
//! both ends always understand each other.

use serde_json::Value;

use super::{Call, CallOutcome, FromWorker, Invocation, ToWorker};
use crate::report::record_json::{is_plain, put_array, put_object, put_str};

/// Appends `{"run":{"calls":[...]}}`, each call as [`put_call`] writes
/// it; `false` (nothing written) for another frame.
pub(super) fn write_run(frame: &ToWorker, out: &mut Vec<u8>) -> bool {
    let ToWorker::Run { calls } = frame else {
        return false;
    };
    out.extend_from_slice(RUN_START);
    for (i, call) in calls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_call(out, call);
    }
    out.extend_from_slice(RUN_END);
    true
}

/// One call of a `run` frame: a builtin's by hand, any other through
/// serde; the bytes serde writes for the [`Call`] either way.
pub(super) fn put_call(out: &mut Vec<u8>, call: &Call) {
    match &call.invocation {
        Invocation::Builtin { name, args, kwargs } => {
            put_builtin_call(out, call.unit, name, args, kwargs);
        }
        _ => super::serialize_into(call, out),
    }
}

/// What a `run` frame starts and ends with, around its calls.
pub(super) const RUN_START: &[u8] = b"{\"run\":{\"calls\":[";
pub(super) const RUN_END: &[u8] = b"]}}";

/// One builtin call of a `run` frame, as serde writes a [`Call`] of an
/// [`Invocation::Builtin`].
pub(super) fn put_builtin_call(
    out: &mut Vec<u8>,
    unit: u64,
    name: &str,
    args: &[Value],
    kwargs: &serde_json::Map<String, Value>,
) {
    out.extend_from_slice(b"{\"unit\":");
    out.extend_from_slice(itoa::Buffer::new().format(unit).as_bytes());
    out.extend_from_slice(b",\"invocation\":{\"builtin\":{\"name\":");
    put_str(out, name);
    out.extend_from_slice(b",\"args\":");
    put_array(out, args);
    out.extend_from_slice(b",\"kwargs\":");
    put_object(out, kwargs);
    out.extend_from_slice(b"}}}");
}

/// Appends `{"done":{"unit":N,"outcome":{...}}}` when the outcome carries
/// no error or output and no value but a string with nothing to escape (a
/// command's text); `false` (nothing written) otherwise.
pub(super) fn write_done(frame: &FromWorker, out: &mut Vec<u8>) -> bool {
    let FromWorker::Done { unit, outcome: o } = frame else {
        return false;
    };
    let value = match &o.value {
        Value::Null => None,
        Value::String(v) if is_plain(v) => Some(v),
        _ => return false,
    };
    if o.error.is_some() || !o.stdout.is_empty() || !o.stderr.is_empty() {
        return false;
    }
    let (Some(started), Some(duration)) = (microseconds(o.started_ms), microseconds(o.duration_ms))
    else {
        return false;
    };
    let mut ints = itoa::Buffer::new();
    out.extend_from_slice(b"{\"done\":{\"unit\":");
    out.extend_from_slice(ints.format(*unit).as_bytes());
    out.extend_from_slice(b",\"outcome\":{");
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &[u8]| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(name);
        out.extend_from_slice(b"\":");
    };
    // The order of the struct's fields, as serde writes them.
    if o.ok {
        key(out, b"ok");
        out.extend_from_slice(b"true");
    }
    if let Some(v) = value {
        key(out, b"value");
        put_str(out, v);
    }
    if let Some(code) = o.exit_code {
        key(out, b"exit_code");
        out.extend_from_slice(ints.format(code).as_bytes());
    }
    if let Some(signal) = o.signal {
        key(out, b"signal");
        out.extend_from_slice(ints.format(signal).as_bytes());
    }
    for (set, name) in [
        (o.timed_out, &b"timed_out"[..]),
        (o.cancelled, b"cancelled"),
        (o.truncated, b"truncated"),
        (o.crashed, b"crashed"),
        (o.retire, b"retire"),
        (o.unstarted, b"unstarted"),
    ] {
        if set {
            key(out, name);
            out.extend_from_slice(b"true");
        }
    }
    key(out, b"started_ms");
    put_millis(out, started);
    key(out, b"duration_ms");
    put_millis(out, duration);
    out.extend_from_slice(b"}}}");
    true
}

/// Milliseconds as a whole number of microseconds, the precision frames
/// carry (see `to_microseconds`); `None` for what this form cannot write
/// exactly (negative, not finite, or past 2^53 microseconds).
fn microseconds(ms: f64) -> Option<u64> {
    let us = (ms * 1000.0).round();
    (0.0..9_007_199_254_740_992.0)
        .contains(&us)
        .then_some(us as u64)
}

/// `us` microseconds as milliseconds with three decimals. Read back, the
/// digits give `us as f64 / 1000.0` exactly: the number serde writes for
/// the same time, so the engine sees the same bits either way.
fn put_millis(out: &mut Vec<u8>, us: u64) {
    let mut ints = itoa::Buffer::new();
    out.extend_from_slice(ints.format(us / 1000).as_bytes());
    let frac = us % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// Reads a `done` frame whose outcome holds only flags, codes, times and a
/// string value with no escapes,
/// the shape [`write_done`] writes; `None` for anything else, which is then
/// left to serde.
pub(super) fn read_done(line: &[u8]) -> Option<FromWorker> {
    let mut r = Reader { s: line, at: 0 };
    r.literal(b"{\"done\":{\"unit\":")?;
    let unit = r.unsigned()?;
    r.literal(b",\"outcome\":{")?;
    let mut o = CallOutcome::default();
    r.list(b'}', |r| {
        r.literal(b"\"")?;
        let key = r.key()?;
        r.literal(b":")?;
        match key {
            b"ok" => o.ok = r.boolean()?,
            b"value" => o.value = Value::String(r.plain_string()?.to_owned()),
            b"timed_out" => o.timed_out = r.boolean()?,
            b"cancelled" => o.cancelled = r.boolean()?,
            b"truncated" => o.truncated = r.boolean()?,
            b"crashed" => o.crashed = r.boolean()?,
            b"retire" => o.retire = r.boolean()?,
            b"unstarted" => o.unstarted = r.boolean()?,
            b"exit_code" => o.exit_code = Some(r.int()?),
            b"signal" => o.signal = Some(r.int()?),
            b"started_ms" => o.started_ms = r.number()?,
            b"duration_ms" => o.duration_ms = r.number()?,
            _ => return None,
        }
        Some(())
    })?;
    r.literal(b"}}")?;
    (r.at == line.len()).then_some(FromWorker::Done { unit, outcome: o })
}

/// A cursor over one frame's bytes.
struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Items separated by commas up to `close` (the opening bracket is
    /// read), each read by `item`; `None` as soon as one is not ours.
    fn list(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.eat(close) {
            return Some(());
        }
        loop {
            item(self)?;
            if self.eat(close) {
                return Some(());
            }
            self.literal(b",")?;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.s.get(self.at) == Some(&b);
        self.at += usize::from(hit);
        hit
    }

    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        let rest = self.s.get(self.at..)?;
        rest.starts_with(lit).then(|| self.at += lit.len())
    }

    /// A key's bytes up to its closing quote; keys with escapes are not ours.
    fn key(&mut self) -> Option<&'a [u8]> {
        let s: &'a [u8] = self.s;
        let rest = s.get(self.at..)?;
        let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
        if rest[end] != b'"' {
            return None;
        }
        self.at += end + 1;
        Some(&rest[..end])
    }

    /// A string value with no escapes, after its opening quote.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.literal(b"\"")?;
        let bytes = self.key()?;
        if bytes.iter().any(|&b| b < 0x20) {
            return None;
        }
        std::str::from_utf8(bytes).ok()
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.literal(b"true").is_some() {
            Some(true)
        } else {
            self.literal(b"false").map(|()| false)
        }
    }

    /// Digits, as JSON allows them (no leading zero), and how many.
    fn digits(&mut self) -> Option<(u64, u32)> {
        let (n, count) = self.more_digits(0)?;
        Some((n, u32::try_from(count).ok()?))
    }

    /// The digits at the cursor appended to `n`, and how many there were;
    /// `None` past `u64`.
    fn more_digits(&mut self, mut n: u64) -> Option<(u64, usize)> {
        let rest = self.s.get(self.at..)?;
        let mut count = 0;
        for &b in rest {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(digit))?;
            count += 1;
        }
        self.at += count;
        Some((n, count))
    }

    fn unsigned(&mut self) -> Option<u64> {
        let start = self.at;
        let (n, count) = self.digits()?;
        (count == 1 || (count > 1 && self.s[start] != b'0')).then_some(n)
    }

    fn int(&mut self) -> Option<i32> {
        let negative = self.eat(b'-');
        let n = i64::try_from(self.unsigned()?).ok()?;
        i32::try_from(if negative { -n } else { n }).ok()
    }

    /// A number without exponent whose digits fit in 2^53 and whose
    /// decimals are at most 22: exactly `digits / 10^decimals`, one
    /// correctly rounded division, the number serde_json reads from the
    /// same text. Others are left to serde.
    fn number(&mut self) -> Option<f64> {
        const POW10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        let negative = self.eat(b'-');
        let start = self.at;
        let (int, int_digits) = self.digits()?;
        if int_digits == 0 || (int_digits > 1 && self.s[start] == b'0') {
            return None;
        }
        let mut mantissa = int;
        let mut decimals = 0;
        if self.eat(b'.') {
            (mantissa, decimals) = self.more_digits(mantissa)?;
            if decimals == 0 {
                return None;
            }
        }
        if matches!(self.s.get(self.at), Some(b'e' | b'E')) || mantissa > 1 << 53 {
            return None;
        }
        let scale = POW10.get(decimals)?;
        let v = mantissa as f64 / scale;
        Some(if negative { -v } else { v })
    }
}

/// Reads a `run` frame of builtin calls whose args and kwargs hold only
/// null, booleans, integers, strings with no escapes, and arrays and
/// objects of those: the shape [`write_run`] writes for the items of most
/// maps. `None` for anything else, which is then left to serde.
pub(super) fn read_run(line: &[u8]) -> Option<ToWorker> {
    let mut r = Reader { s: line, at: 0 };
    r.literal(b"{\"run\":{\"calls\":[")?;
    let mut calls = Vec::new();
    r.list(b']', |r| {
        r.literal(b"{\"unit\":")?;
        let unit = r.unsigned()?;
        r.literal(b",\"invocation\":{\"builtin\":{\"name\":")?;
        let name = r.plain_string()?.to_owned();
        r.literal(b",\"args\":")?;
        let Value::Array(args) = r.value(0)? else {
            return None;
        };
        r.literal(b",\"kwargs\":")?;
        let Value::Object(kwargs) = r.value(0)? else {
            return None;
        };
        r.literal(b"}}}")?;
        calls.push(Call {
            unit,
            invocation: Invocation::Builtin { name, args, kwargs },
        });
        Some(())
    })?;
    r.literal(b"}}")?;
    (r.at == line.len()).then_some(ToWorker::Run { calls })
}

/// How deep [`Reader::value`] goes before leaving a frame to serde.
const MAX_DEPTH: usize = 32;

impl Reader<'_> {
    /// A value of the shapes [`read_run`] knows, as serde_json reads the
    /// same text; `None` for any other (a float, an escape, whitespace).
    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        match *self.s.get(self.at)? {
            b'n' => self.literal(b"null").map(|()| Value::Null),
            b't' | b'f' => self.boolean().map(Value::Bool),
            b'"' => self.plain_string().map(|s| Value::String(s.to_owned())),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.list(b']', |r| {
                    items.push(r.value(depth + 1)?);
                    Some(())
                })?;
                Some(Value::Array(items))
            }
            b'{' => {
                self.at += 1;
                let mut map = serde_json::Map::new();
                self.list(b'}', |r| {
                    let key = r.plain_string()?.to_owned();
                    r.literal(b":")?;
                    // A repeated key keeps its first place and its last
                    // value, as serde_json's map does.
                    map.insert(key, r.value(depth + 1)?);
                    Some(())
                })?;
                Some(Value::Object(map))
            }
            _ => self.integer().map(Value::Number),
        }
    }

    /// An integer as serde_json reads it: an `u64` when not negative, an
    /// `i64` when negative. `-0`, fractions, exponents and integers past
    /// 64 bits, which serde reads as floats, are not ours.
    fn integer(&mut self) -> Option<serde_json::Number> {
        let negative = self.eat(b'-');
        let n = self.unsigned()?;
        if matches!(self.s.get(self.at), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        if !negative {
            return Some(n.into());
        }
        if n == 0 {
            return None;
        }
        let n = 0i64.checked_sub_unsigned(n)?;
        Some(n.into())
    }
}

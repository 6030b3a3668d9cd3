//! The one JSON shape of a result record (spec section 3), shared by every
//! writer: the key order, which keys are left out and how times are written
//! are decided here and nowhere else.
//!
//! Key order is fixed by serializing field by field rather than through a
//! `serde_json::Map`, whose order depends on a crate feature.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::record::Record;

/// A record seen as its JSON object; see [`Record::json`].
#[derive(Debug, Clone, Copy)]
pub struct RecordJson<'a> {
    record: &'a Record,
    reproducible: bool,
}

impl Record {
    /// This record as its JSON object, ready for `serde_json`. With
    /// `reproducible`, `worker`, `host`, `started` and `duration_ms` are
    /// left out; `host` is there only when the unit ran on another machine.
    /// The `@shared` record has only `task`, `status` and `value`.
    pub fn json(&self, reproducible: bool) -> RecordJson<'_> {
        RecordJson {
            record: self,
            reproducible,
        }
    }

    /// This record as one line of compact JSON, without the newline.
    pub fn to_json_string(&self, reproducible: bool) -> String {
        let mut out = Vec::with_capacity(256);
        self.write_json(reproducible, &mut out);
        // Only whole UTF-8 strings and ASCII went in.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends this record as compact JSON, the very bytes `serde_json`
    /// makes of [`Record::json`], to `out`. Written by hand because it runs
    /// once per record, hundreds of thousands of times a second: the keys
    /// are literals, and strings with nothing to escape are copied whole.
    pub fn write_json(&self, reproducible: bool, out: &mut Vec<u8>) {
        let r = self;
        out.extend_from_slice(b"{\"task\":");
        put_str(out, &r.task);
        if r.is_shared() {
            out.extend_from_slice(b",\"status\":\"");
            out.extend_from_slice(r.status.as_str().as_bytes());
            out.extend_from_slice(b"\",\"value\":");
            put_value(out, &r.value);
            out.push(b'}');
            return;
        }
        if let Some(index) = r.index {
            out.extend_from_slice(b",\"index\":");
            put_int(out, index);
        }
        out.extend_from_slice(b",\"function\":");
        put_str(out, &r.function);
        out.extend_from_slice(b",\"args\":");
        put_array(out, &r.args);
        out.extend_from_slice(b",\"kwargs\":");
        put_object(out, &r.kwargs);
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(r.status.as_str().as_bytes());
        out.extend_from_slice(b"\",\"value\":");
        put_value(out, &r.value);
        out.extend_from_slice(b",\"exit_code\":");
        put_opt_int(out, r.exit_code);
        out.extend_from_slice(b",\"signal\":");
        put_opt_int(out, r.signal);
        out.extend_from_slice(b",\"error\":");
        match &r.error {
            Some(e) => put_str(out, e),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"stdout\":");
        put_str(out, &r.stdout);
        out.extend_from_slice(b",\"stderr\":");
        put_str(out, &r.stderr);
        if r.truncated {
            out.extend_from_slice(b",\"truncated\":true");
        }
        out.extend_from_slice(b",\"attempts\":");
        put_int(out, r.attempts);
        if !reproducible {
            out.extend_from_slice(b",\"worker\":");
            put_opt_int(out, r.worker);
            out.extend_from_slice(b",\"started\":");
            match r.started.and_then(rfc3339_bytes) {
                Some(t) => {
                    out.push(b'"');
                    out.extend_from_slice(&t);
                    out.push(b'"');
                }
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"duration_ms\":");
            put_duration(out, r.duration_ms);
            if let Some(host) = &r.host {
                out.extend_from_slice(b",\"host\":");
                put_str(out, host);
            }
        }
        out.push(b'}');
    }
}

/// A string JSON writes as it is, between quotes: nothing to escape.
pub(crate) fn is_plain(s: &str) -> bool {
    s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// A JSON string, as `serde_json` writes it.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    if is_plain(s) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Escapes are rare: leave their exact form to serde_json. Writing
        // a string to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn put_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn put_opt_int(out: &mut Vec<u8>, n: Option<impl itoa::Integer>) {
    match n {
        Some(n) => put_int(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON value, as `serde_json` writes it compactly (objects in their
/// own order).
pub(crate) fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::String(s) => put_str(out, s),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => put_int(out, u),
            (None, Some(i)) => put_int(out, i),
            // Floats: ryu, through serde_json, which cannot fail on a Vec.
            _ => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
        },
        Value::Array(items) => put_array(out, items),
        Value::Object(map) => put_object(out, map),
    }
}

/// A JSON array, as `serde_json` writes it.
pub(crate) fn put_array(out: &mut Vec<u8>, items: &[Value]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_value(out, item);
    }
    out.push(b']');
}

pub(crate) fn put_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_str(out, k);
        out.push(b':');
        put_value(out, v);
    }
    out.push(b'}');
}

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("task", &r.task)?;
        if r.is_shared() {
            map.serialize_entry("status", &r.status)?;
            map.serialize_entry("value", &r.value)?;
            return map.end();
        }
        if let Some(index) = r.index {
            map.serialize_entry("index", &index)?;
        }
        map.serialize_entry("function", &r.function)?;
        map.serialize_entry("args", &r.args)?;
        map.serialize_entry("kwargs", &r.kwargs)?;
        map.serialize_entry("status", &r.status)?;
        map.serialize_entry("value", &r.value)?;
        map.serialize_entry("exit_code", &r.exit_code)?;
        map.serialize_entry("signal", &r.signal)?;
        map.serialize_entry("error", &r.error)?;
        map.serialize_entry("stdout", &r.stdout)?;
        map.serialize_entry("stderr", &r.stderr)?;
        if r.truncated {
            map.serialize_entry("truncated", &true)?;
        }
        map.serialize_entry("attempts", &r.attempts)?;
        if !self.reproducible {
            map.serialize_entry("worker", &r.worker)?;
            map.serialize_entry("started", &r.started.and_then(rfc3339_millis))?;
            map.serialize_entry("duration_ms", &duration_json(r.duration_ms))?;
            // Last, as in csv; only for units that ran on another machine.
            if let Some(host) = &r.host {
                map.serialize_entry("host", host)?;
            }
        }
        map.end()
    }
}

/// The columns of a record, in order, for formats with a fixed set of
/// fields (csv). `truncated` is always there, and so is `host` (empty on
/// the engine's machine); it comes last so that the columns before it keep
/// their places. With `reproducible` the last four are not there.
pub(crate) fn columns(reproducible: bool) -> &'static [&'static str] {
    const ALL: &[&str] = &[
        "task",
        "index",
        "function",
        "args",
        "kwargs",
        "status",
        "value",
        "exit_code",
        "signal",
        "error",
        "stdout",
        "stderr",
        "truncated",
        "attempts",
        "worker",
        "started",
        "duration_ms",
        "host",
    ];
    if reproducible {
        &ALL[..ALL.len() - 4]
    } else {
        ALL
    }
}

/// `2026-11-27T10:00:00.000Z`, or `None` for a time RFC 3339 cannot show
/// (before 1970 or after 9999).
pub(crate) fn rfc3339_millis(time: SystemTime) -> Option<String> {
    let bytes = rfc3339_bytes(time)?;
    // Digits and ASCII punctuation only.
    Some(bytes.iter().map(|&b| char::from(b)).collect())
}

/// [`rfc3339_millis`] as bytes, written by hand: humantime's Display and
/// the String it fills cost a record more than the rest of its JSON.
pub(crate) fn rfc3339_bytes(time: SystemTime) -> Option<[u8; 24]> {
    const YEAR_10000: u64 = 253_402_300_800;
    let since_epoch = time.duration_since(UNIX_EPOCH).ok()?;
    let secs = since_epoch.as_secs();
    if secs >= YEAR_10000 {
        return None;
    }
    // Days to a civil date: Howard Hinnant's `civil_from_days`, for days
    // since 1970-01-01 (so never negative).
    let z = secs / 86_400 + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let of_day = secs % 86_400;
    let millis = u64::from(since_epoch.subsec_millis());
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    put(20, 3, millis);
    Some(b)
}

/// [`duration_json`] written: tenths of a millisecond by hand, as ryu
/// writes them, anything else (huge, negative, not finite) as
/// `duration_json` does.
pub(crate) fn put_duration(out: &mut Vec<u8>, duration_ms: Option<f64>) {
    let tenths = duration_ms.map(|ms| (ms * 10.0).round());
    match tenths {
        // Below 10^15 tenths, `tenths / 10` is a double whose shortest
        // digits are these: ryu's, through serde_json.
        Some(t) if t.is_sign_positive() && t < 1e15 => {
            let t = t as u64;
            put_int(out, t / 10);
            out.extend_from_slice(&[b'.', b'0' + (t % 10) as u8]);
        }
        _ => put_value(out, &duration_json(duration_ms)),
    }
}

/// A duration in milliseconds rounded to 0.1 ms, as a JSON number (`null`
/// when absent or not finite).
pub(crate) fn duration_json(duration_ms: Option<f64>) -> Value {
    duration_ms
        .map(|ms| (ms * 10.0).round() / 10.0)
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::report::testing::sample;

    fn keys(text: &str) -> Vec<String> {
        // Read the keys in document order, whatever map type serde_json uses.
        let mut keys = Vec::new();
        let mut de = serde_json::Deserializer::from_str(text);
        struct Keys<'a>(&'a mut Vec<String>);
        impl<'de> serde::de::Visitor<'de> for Keys<'_> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    self.0.push(k);
                }
                Ok(())
            }
        }
        serde::Deserializer::deserialize_map(&mut de, Keys(&mut keys)).unwrap();
        keys
    }

    #[test]
    fn the_spec_example() {
        let text = sample().to_json_string(false);
        assert_eq!(
            text,
            r#"{"task":"thumbs","index":3,"function":"resize","args":["images/c.jpg"],"kwargs":{"mode":"fast"},"status":"ok","value":null,"exit_code":0,"signal":null,"error":null,"stdout":"","stderr":"","attempts":1,"worker":4182,"started":"2026-11-27T10:00:00.000Z","duration_ms":41.2}"#
        );
    }

    #[test]
    fn key_order_with_every_optional_key() {
        let mut r = sample();
        r.truncated = true;
        r.host = Some("node2".into());
        assert_eq!(keys(&r.to_json_string(false)), columns(false));
        r.index = None;
        r.truncated = false;
        let mut expected: Vec<_> = columns(true).to_vec();
        expected.retain(|k| *k != "index" && *k != "truncated");
        assert_eq!(keys(&r.to_json_string(true)), expected);
    }

    #[test]
    fn host_only_for_another_machine_and_never_reproducible() {
        let mut r = sample();
        assert!(!keys(&r.to_json_string(false)).contains(&"host".to_string()));
        r.host = Some("node2".into());
        assert!(r.to_json_string(false).ends_with(r#","host":"node2"}"#));
        assert!(!keys(&r.to_json_string(true)).contains(&"host".to_string()));
    }

    #[test]
    fn shared_record_has_three_keys() {
        let mut r = sample();
        r.task = "@shared".into();
        r.value = json!({"num": 3.5});
        assert_eq!(
            r.to_json_string(false),
            r#"{"task":"@shared","status":"ok","value":{"num":3.5}}"#
        );
    }

    #[test]
    fn times_outside_rfc3339_are_null() {
        let mut r = sample();
        r.started = Some(UNIX_EPOCH - Duration::from_secs(1));
        r.duration_ms = Some(f64::NAN);
        let v: Value = serde_json::from_str(&r.to_json_string(false)).unwrap();
        assert_eq!(v["started"], Value::Null);
        assert_eq!(v["duration_ms"], Value::Null);
        assert_eq!(
            rfc3339_millis(UNIX_EPOCH + Duration::from_secs(253_402_300_800)),
            None
        );
    }

    /// What serde_json makes of the record, which the hand-written bytes
    /// must equal.
    fn by_serde(r: &Record, reproducible: bool) -> String {
        serde_json::to_string(&r.json(reproducible)).unwrap()
    }

    #[test]
    fn hand_written_bytes_are_serde_jsons() {
        let mut records = crate::report::testing::assorted();
        let mut odd = sample();
        odd.task = "tab\there \"quoted\" back\\slash \u{1} \u{7f} é 😀".into();
        odd.stdout = "line\nnext\r\n\u{8}\u{c}\u{1f}".into();
        odd.error = Some("</script> \u{2028}".into());
        odd.args = vec![
            json!(-3),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(1e300),
            json!(0.1),
            json!([[], {}, [null, true, false]]),
            json!({"b": 1, "a": {"\n": "x"}}),
        ];
        odd.value = json!({"z": [1, 2.25, "s"], "a": null});
        odd.truncated = true;
        odd.host = Some("node\"2".into());
        odd.duration_ms = Some(0.04);
        records.push(odd);
        let mut shared = sample();
        shared.task = "@shared".into();
        shared.value = json!({"num": 3.5, "list": ["x"]});
        records.push(shared);
        for r in &records {
            for reproducible in [false, true] {
                assert_eq!(r.to_json_string(reproducible), by_serde(r, reproducible));
            }
        }
    }

    #[test]
    fn durations_round_to_a_tenth() {
        assert_eq!(duration_json(Some(0.04)), json!(0.0));
        assert_eq!(duration_json(Some(1234.56)), json!(1234.6));
        assert_eq!(duration_json(None), Value::Null);
    }

    fn written_duration(d: Option<f64>) -> String {
        let mut out = Vec::new();
        put_duration(&mut out, d);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn durations_written_by_hand_are_serde_jsons() {
        for d in [
            None,
            Some(0.0),
            Some(0.04),
            Some(0.05),
            Some(9.95),
            Some(1e14 - 0.1),
            Some(1e14),
            Some(1e20),
            Some(-0.04),
            Some(-3.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
        ] {
            let want = serde_json::to_string(&duration_json(d)).unwrap();
            assert_eq!(written_duration(d), want, "{d:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5000))]

        #[test]
        fn times_written_by_hand_are_humantimes(
            secs in 0u64..253_402_300_800,
            nanos in 0u32..1_000_000_000,
        ) {
            let t = UNIX_EPOCH + Duration::new(secs, nanos);
            let want = humantime::format_rfc3339_millis(t).to_string();
            proptest::prop_assert_eq!(rfc3339_millis(t), Some(want));
        }

        #[test]
        fn any_duration_written_by_hand_is_serde_jsons(
            d in proptest::prop_oneof![0.0f64..10.0, 0.0f64..1e6, 0.0f64..1e16, proptest::num::f64::ANY],
        ) {
            let want = serde_json::to_string(&duration_json(Some(d))).unwrap();
            proptest::prop_assert_eq!(written_duration(Some(d)), want);
        }
    }
}

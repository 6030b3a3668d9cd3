//! What `--resume` keeps of each record beside the results: the key that
//! finds the unit again (its task, args and kwargs) and the state its
//! record stands for (see `plan::fingerprint`).

use serde_json::{Map, Value};

use super::record_json::{put_str, put_value};

/// A 128-bit fingerprint.
pub type Digest = [u8; 16];

/// A record's key and state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitPrint {
    /// [`unit_key`] of the record's task, args and kwargs.
    pub key: Digest,
    /// What the unit's outcome depended on; all zeros when it does not
    /// stand (a record that is not `ok`).
    pub state: Digest,
}

impl UnitPrint {
    /// Bytes of [`UnitPrint::to_bytes`].
    pub const LEN: usize = 32;

    /// The key, then the state.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut b = [0; 32];
        b[..16].copy_from_slice(&self.key);
        b[16..].copy_from_slice(&self.state);
        b
    }

    /// Back from [`UnitPrint::to_bytes`]; `None` when too short.
    pub fn from_bytes(b: &[u8]) -> Option<UnitPrint> {
        let key = b.get(..16)?.try_into().ok()?;
        let state = b.get(16..32)?.try_into().ok()?;
        Some(UnitPrint { key, state })
    }
}

/// How a unit is found again: its task (`ID`, `ID:callback`...), args and
/// kwargs (objects in key order, so writing kwargs in another order in the
/// file changes nothing).
pub fn unit_key(task: &str, args: &[Value], kwargs: &Map<String, Value>) -> Digest {
    // The bytes are gathered first and hashed in one call. XXH3-128: a key
    // is looked up, never trusted against an adversary (the job is the
    // user's own), and a record is kept only if its state matches too; for
    // inputs that are not crafted, two units sharing a key among a billion
    // is a chance of about 2^-68. It costs a sixth of blake3 on the few
    // dozen bytes a key has, which a map of a million items pays a million
    // times.
    let mut w = Vec::with_capacity(64 + task.len());
    w.extend_from_slice(&(task.len() as u64).to_le_bytes());
    w.extend_from_slice(task.as_bytes());
    for a in args {
        canonical(&mut w, a);
        w.push(b',');
    }
    w.push(b';');
    let mut keys: Vec<&String> = kwargs.keys().collect();
    keys.sort();
    for k in keys {
        put_str(&mut w, k);
        w.push(b'=');
        canonical(&mut w, &kwargs[k]);
        w.push(b',');
    }
    xxhash_rust::xxh3::xxh3_128(&w).to_le_bytes()
}

/// JSON of a value with the keys of every object sorted.
fn canonical(w: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Object(o) => {
            w.push(b'{');
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for k in keys {
                put_str(w, k);
                w.push(b':');
                canonical(w, &o[k]);
                w.push(b',');
            }
            w.push(b'}');
        }
        Value::Array(a) => {
            w.push(b'[');
            for x in a {
                canonical(w, x);
                w.push(b',');
            }
            w.push(b']');
        }
        // The bytes serde_json writes for the same scalar.
        other => put_value(w, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_ignore_kwarg_order_but_not_values_or_tasks() {
        let a: Map<String, Value> =
            serde_json::from_value(json!({"x": 1, "y": {"b": 2, "a": 1}})).unwrap();
        let b: Map<String, Value> =
            serde_json::from_value(json!({"y": {"a": 1, "b": 2}, "x": 1})).unwrap();
        let none = Map::new();
        assert_eq!(
            unit_key("t", &[json!(1)], &a),
            unit_key("t", &[json!(1)], &b)
        );
        assert_ne!(
            unit_key("t", &[json!(1)], &a),
            unit_key("u", &[json!(1)], &a)
        );
        assert_ne!(
            unit_key("t", &[json!(1)], &a),
            unit_key("t", &[json!("1")], &a)
        );
        assert_ne!(
            unit_key("t", &[json!([1, 2])], &none),
            unit_key("t", &[json!(1), json!(2)], &none)
        );
    }

    /// [`canonical`] as it was written first, through serde_json for every
    /// scalar and key.
    fn canonical_by_serde(w: &mut Vec<u8>, v: &Value) {
        match v {
            Value::Object(o) => {
                w.push(b'{');
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                for k in keys {
                    serde_json::to_writer(&mut *w, k).unwrap();
                    w.push(b':');
                    canonical_by_serde(w, &o[k]);
                    w.push(b',');
                }
                w.push(b'}');
            }
            Value::Array(a) => {
                w.push(b'[');
                for x in a {
                    canonical_by_serde(w, x);
                    w.push(b',');
                }
                w.push(b']');
            }
            other => serde_json::to_writer(&mut *w, other).unwrap(),
        }
    }

    #[test]
    fn canonical_bytes_are_serde_jsons_for_every_scalar() {
        let v = json!({
            "z\n\"q\"": [1.5, 1e300, 0.1, -0.0, u64::MAX, i64::MIN, "tab\t \u{1} é 😀"],
            "a": {"b": null, "a": [true, false, {}]},
            "\u{7f}": "</script>",
        });
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        canonical(&mut ours, &v);
        canonical_by_serde(&mut theirs, &v);
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs).unwrap()
        );
    }

    #[test]
    fn the_key_is_the_hash_of_the_same_bytes_as_before() {
        // The bytes unit_key hashes, fed to XXH3-128 piece by piece: the
        // keys of a fingerprints file of this version must not change.
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&3u64.to_le_bytes());
        h.update(b"abc");
        for piece in [&b"1"[..], b",", b"[", b"\"x\"", b",", b"]", b",", b";"] {
            h.update(piece);
        }
        for piece in [
            &b"\"k\""[..],
            b"=",
            b"{",
            b"\"a\"",
            b":",
            b"null",
            b",",
            b"}",
            b",",
        ] {
            h.update(piece);
        }
        let want = h.digest128().to_le_bytes();
        let kwargs: Map<String, Value> = serde_json::from_value(json!({"k": {"a": null}})).unwrap();
        assert_eq!(unit_key("abc", &[json!(1), json!(["x"])], &kwargs), want);
    }

    #[test]
    fn a_print_reads_back() {
        let p = UnitPrint {
            key: [1; 16],
            state: [2; 16],
        };
        assert_eq!(UnitPrint::from_bytes(&p.to_bytes()), Some(p));
        assert_eq!(UnitPrint::from_bytes(&[0; 31]), None);
    }
}

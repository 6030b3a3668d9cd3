//! The shared values themselves, as the engine holds them (like a Python
//! `multiprocessing.Manager`), and what each operation does to them.
//!
//! The engine applies operations one at a time from its single-threaded
//! loop, so each is atomic. This file is pure: no sockets, no processes.
//!
//! What each operation returns (the builtin's value, and what
//! `jobfile shared` prints for `get`):
//!
//! | op       | needs      | returns                          |
//! | -------- | ---------- | -------------------------------- |
//! | `get`    | anything   | the value                        |
//! | `set`    | anything   | the new value                    |
//! | `add`    | a number   | the new number                   |
//! | `append` | a list     | the list's new length            |
//! | `put`    | a dict     | the dict's new number of keys    |
//!
//! `append` and `put` return a length rather than the whole collection
//! because every task's value lands in its record: a map of n items that
//! each append to a log would otherwise write O(n²) bytes of results. The
//! length is also what tells a task where its item went (like Redis
//! `RPUSH`). Use `get` to read the collection.
//!
//! `add` keeps integers integers when both sides are integers (an `i64`
//! overflow is an error, never a silent float), else it adds as floats.
//! A failed operation changes nothing.

use serde_json::{Map, Number, Value};

use super::error::{SharedError, kind};
use super::op::SharedOp;
use super::target::Target;
use crate::suggest::closest;

/// The named shared values of a run, in declaration order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharedStore {
    /// Few values, looked up by name: a Vec keeps the order of `[shared]`.
    values: Vec<(String, Value)>,
}

impl SharedStore {
    /// A store holding `initial`, in that order. A repeated name keeps its
    /// first position and its last value (a TOML table cannot repeat one).
    pub fn new(initial: Vec<(String, Value)>) -> SharedStore {
        let mut store = SharedStore {
            values: Vec::with_capacity(initial.len()),
        };
        for (name, value) in initial {
            match store.values.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => store.values.push((name, value)),
            }
        }
        store
    }

    /// Applies one operation and returns its result (see the module docs).
    /// On error the store is unchanged.
    pub fn apply(&mut self, op: &SharedOp) -> Result<Value, SharedError> {
        let target = op.target();
        let slot = self.resolve(target)?;
        match op {
            SharedOp::Get { .. } => Ok(slot.clone()),
            SharedOp::Set { value, .. } => {
                *slot = value.clone();
                Ok(value.clone())
            }
            SharedOp::Add { number, .. } => {
                let Value::Number(current) = &*slot else {
                    return Err(wrong_type(op, target, "a number", slot));
                };
                let sum = add(target, current, number)?;
                *slot = Value::Number(sum.clone());
                Ok(Value::Number(sum))
            }
            SharedOp::Append { value, .. } => {
                let Value::Array(list) = slot else {
                    return Err(wrong_type(op, target, "a list", slot));
                };
                list.push(value.clone());
                Ok(Value::from(list.len()))
            }
            SharedOp::Put { key, value, .. } => {
                let Value::Object(dict) = slot else {
                    return Err(wrong_type(op, target, "a dict", slot));
                };
                dict.insert(key.clone(), value.clone());
                Ok(Value::from(dict.len()))
            }
        }
    }

    /// Every value as one JSON object `{NAME: value, ...}` in declaration
    /// order: the `value` of the final `@shared` record.
    pub fn snapshot(&self) -> Value {
        Value::Object(
            self.values
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect::<Map<String, Value>>(),
        )
    }

    /// The declared names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|(name, _)| name.as_str())
    }

    /// The value a target addresses, or why there is none.
    fn resolve(&mut self, target: &Target) -> Result<&mut Value, SharedError> {
        let Some(position) = self.values.iter().position(|(n, _)| *n == target.name) else {
            return Err(SharedError::UnknownName {
                name: target.name.clone(),
                suggestion: closest(&target.name, self.names()).map(str::to_string),
            });
        };
        let value = &mut self.values[position].1;
        let Some(index) = target.index else {
            return Ok(value);
        };
        let Value::Array(list) = value else {
            return Err(SharedError::NotIndexable {
                name: target.name.clone(),
                index,
                found: kind(value),
            });
        };
        let len = list.len();
        list.get_mut(index).ok_or(SharedError::IndexOutOfRange {
            name: target.name.clone(),
            index,
            len,
        })
    }
}

fn wrong_type(
    op: &SharedOp,
    target: &Target,
    expected: &'static str,
    found: &Value,
) -> SharedError {
    SharedError::WrongType {
        op: op.name(),
        target: target.to_string(),
        expected,
        found: kind(found),
    }
}

/// `current + number`: integer when both are integers, else float.
fn add(target: &Target, current: &Number, number: &Number) -> Result<Number, SharedError> {
    if let (Some(a), Some(b)) = (integer(current), integer(number)) {
        return a
            .checked_add(b)
            .and_then(|sum| i64::try_from(sum).ok())
            .map(Number::from)
            .ok_or_else(|| SharedError::Overflow {
                target: target.to_string(),
                current: current.clone(),
                number: number.clone(),
            });
    }
    // Every Number converts to f64 (without arbitrary_precision).
    let sum = current.as_f64().unwrap_or(f64::NAN) + number.as_f64().unwrap_or(f64::NAN);
    Number::from_f64(sum).ok_or_else(|| SharedError::NotFinite {
        target: target.to_string(),
        current: current.clone(),
        number: number.clone(),
    })
}

/// An integer Number, widened so a u64 above `i64::MAX` still adds exactly
/// (and then overflows the i64 result, as it should).
fn integer(number: &Number) -> Option<i128> {
    number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The `[shared]` table of spec section 5.
    fn store() -> SharedStore {
        SharedStore::new(vec![
            ("num".into(), json!(0.0)),
            ("arr".into(), json!([0, 1, 2])),
            ("log".into(), json!([])),
            ("seen".into(), json!({})),
            ("count".into(), json!(0)),
            ("name".into(), json!("x")),
        ])
    }

    fn op(name: &str, args: &[Value]) -> SharedOp {
        SharedOp::from_values(name, args).unwrap()
    }

    /// Applies an op that must fail, and checks the store did not change.
    fn fails(store: &mut SharedStore, op: SharedOp) -> SharedError {
        let before = store.clone();
        let err = store.apply(&op).unwrap_err();
        assert_eq!(*store, before, "a failed {op:?} changed the store");
        err
    }

    #[test]
    fn get_whole_and_element() {
        let mut s = store();
        assert_eq!(s.apply(&op("get", &[json!("num")])).unwrap(), json!(0.0));
        assert_eq!(
            s.apply(&op("get", &[json!("arr")])).unwrap(),
            json!([0, 1, 2])
        );
        assert_eq!(s.apply(&op("get", &[json!("arr[2]")])).unwrap(), json!(2));
    }

    #[test]
    fn set_returns_the_new_value() {
        let mut s = store();
        assert_eq!(
            s.apply(&op("set", &[json!("name"), json!({"a": 1})]))
                .unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            s.apply(&op("set", &[json!("arr[1]"), json!("b")])).unwrap(),
            json!("b")
        );
        assert_eq!(s.snapshot()["name"], json!({"a": 1}));
        assert_eq!(s.snapshot()["arr"], json!([0, "b", 2]));
    }

    #[test]
    fn add_integers_stay_integers() {
        let mut s = store();
        assert_eq!(
            s.apply(&op("add", &[json!("count"), json!(2)])).unwrap(),
            json!(2)
        );
        assert_eq!(
            s.apply(&op("add", &[json!("count"), json!(-5)])).unwrap(),
            json!(-3)
        );
        assert!(s.snapshot()["count"].is_i64());
        assert_eq!(
            s.apply(&op("add", &[json!("arr[0]"), json!(10)])).unwrap(),
            json!(10)
        );
    }

    #[test]
    fn add_with_a_float_gives_a_float() {
        let mut s = store();
        assert_eq!(
            s.apply(&op("add", &[json!("num"), json!(1)])).unwrap(),
            json!(1.0)
        );
        assert!(s.snapshot()["num"].is_f64());
        assert_eq!(
            s.apply(&op("add", &[json!("count"), json!(0.5)])).unwrap(),
            json!(0.5)
        );
        assert_eq!(
            s.apply(&op("add", &[json!("num"), json!(0.25)])).unwrap(),
            json!(1.25)
        );
    }

    #[test]
    fn add_overflow_is_an_error() {
        let mut s = SharedStore::new(vec![("big".into(), json!(i64::MAX))]);
        let err = fails(&mut s, op("add", &[json!("big"), json!(1)]));
        assert_eq!(
            err.to_string(),
            "integer overflow: `big` is 9223372036854775807, adding 1 does not fit in a 64-bit signed integer"
        );
        let mut s = SharedStore::new(vec![("small".into(), json!(i64::MIN))]);
        fails(&mut s, op("add", &[json!("small"), json!(-1)]));
        let mut s = SharedStore::new(vec![("n".into(), json!(-1))]);
        fails(&mut s, op("add", &[json!("n"), json!(u64::MAX)]));
        // A u64 beyond i64 is exact, and can bring the sum back into range.
        let mut s = SharedStore::new(vec![("n".into(), json!(i64::MIN))]);
        let back = s
            .apply(&op("add", &[json!("n"), json!(1u64 << 63)]))
            .unwrap();
        assert_eq!(back, json!(0));
    }

    #[test]
    fn add_to_infinity_is_an_error() {
        let mut s = SharedStore::new(vec![("f".into(), json!(f64::MAX))]);
        let err = fails(&mut s, op("add", &[json!("f"), json!(f64::MAX)]));
        assert!(matches!(err, SharedError::NotFinite { .. }), "{err:?}");
        assert!(err.to_string().contains("JSON cannot hold"));
    }

    #[test]
    fn add_needs_a_number() {
        let mut s = store();
        let err = fails(&mut s, op("add", &[json!("log"), json!(1)]));
        assert_eq!(err.to_string(), "`add` needs a number, but `log` is a list");
        let err = fails(&mut s, op("add", &[json!("name"), json!(1)]));
        assert_eq!(
            err.to_string(),
            "`add` needs a number, but `name` is a string"
        );
        let mut s = SharedStore::new(vec![("flag".into(), json!(true))]);
        let err = fails(&mut s, op("add", &[json!("flag"), json!(1)]));
        assert_eq!(
            err.to_string(),
            "`add` needs a number, but `flag` is a boolean"
        );
    }

    #[test]
    fn append_returns_the_new_length() {
        let mut s = store();
        assert_eq!(
            s.apply(&op("append", &[json!("log"), json!("a")])).unwrap(),
            json!(1)
        );
        assert_eq!(
            s.apply(&op("append", &[json!("log"), json!({"b": 2})]))
                .unwrap(),
            json!(2)
        );
        assert_eq!(s.snapshot()["log"], json!(["a", {"b": 2}]));
    }

    #[test]
    fn append_to_an_element_that_is_a_list() {
        let mut s = SharedStore::new(vec![("grid".into(), json!([[], [1]]))]);
        assert_eq!(
            s.apply(&op("append", &[json!("grid[1]"), json!(2)]))
                .unwrap(),
            json!(2)
        );
        assert_eq!(s.snapshot(), json!({"grid": [[], [1, 2]]}));
    }

    #[test]
    fn append_needs_a_list() {
        let mut s = store();
        let err = fails(&mut s, op("append", &[json!("seen"), json!(1)]));
        assert_eq!(
            err.to_string(),
            "`append` needs a list, but `seen` is a dict"
        );
        let err = fails(&mut s, op("append", &[json!("arr[0]"), json!(1)]));
        assert_eq!(
            err.to_string(),
            "`append` needs a list, but `arr[0]` is a number"
        );
    }

    #[test]
    fn put_returns_the_new_size_and_keeps_insertion_order() {
        let mut s = store();
        assert_eq!(
            s.apply(&op("put", &[json!("seen"), json!("z"), json!(1)]))
                .unwrap(),
            json!(1)
        );
        assert_eq!(
            s.apply(&op("put", &[json!("seen"), json!("a"), json!(2)]))
                .unwrap(),
            json!(2)
        );
        assert_eq!(
            s.apply(&op("put", &[json!("seen"), json!("z"), json!(3)]))
                .unwrap(),
            json!(2)
        );
        let seen = serde_json::to_string(&s.snapshot()["seen"]).unwrap();
        assert_eq!(seen, r#"{"z":3,"a":2}"#);
    }

    #[test]
    fn put_needs_a_dict() {
        let mut s = store();
        let err = fails(&mut s, op("put", &[json!("log"), json!("k"), json!(1)]));
        assert_eq!(err.to_string(), "`put` needs a dict, but `log` is a list");
        let mut s = SharedStore::new(vec![("n".into(), json!(null))]);
        let err = fails(&mut s, op("put", &[json!("n"), json!("k"), json!(1)]));
        assert_eq!(err.to_string(), "`put` needs a dict, but `n` is null");
    }

    #[test]
    fn unknown_name_suggests_a_close_one() {
        let mut s = store();
        for name in ["get", "set", "add", "append", "put"] {
            let args: Vec<Value> = match name {
                "get" => vec![json!("nmu")],
                "put" => vec![json!("nmu"), json!("k"), json!(1)],
                _ => vec![json!("nmu"), json!(1)],
            };
            let err = fails(&mut s, op(name, &args));
            assert_eq!(
                err.to_string(),
                "no shared value named `nmu`; did you mean `num`?"
            );
        }
        let err = fails(&mut s, op("get", &[json!("logs")]));
        assert_eq!(
            err.to_string(),
            "no shared value named `logs`; did you mean `log`?"
        );
        let err = fails(&mut s, op("get", &[json!("totally_else")]));
        assert_eq!(err.to_string(), "no shared value named `totally_else`");
    }

    #[test]
    fn no_suggestion_for_tiny_names() {
        let mut s = SharedStore::new(vec![("a".into(), json!(1))]);
        let err = fails(&mut s, op("get", &[json!("b")]));
        assert_eq!(err.to_string(), "no shared value named `b`");
    }

    #[test]
    fn index_out_of_range_says_the_length() {
        let mut s = store();
        let err = fails(&mut s, op("get", &[json!("arr[3]")]));
        assert_eq!(
            err.to_string(),
            "index 3 is out of range for `arr` (length 3)"
        );
        let err = fails(&mut s, op("set", &[json!("log[0]"), json!(1)]));
        assert_eq!(
            err.to_string(),
            "index 0 is out of range for `log` (length 0)"
        );
        fails(&mut s, op("add", &[json!("arr[9]"), json!(1)]));
    }

    #[test]
    fn index_into_a_non_list() {
        let mut s = store();
        let err = fails(&mut s, op("get", &[json!("num[0]")]));
        assert_eq!(
            err.to_string(),
            "cannot index `num` with [0]: it is a number, not a list"
        );
        let err = fails(&mut s, op("set", &[json!("seen[1]"), json!(1)]));
        assert_eq!(
            err.to_string(),
            "cannot index `seen` with [1]: it is a dict, not a list"
        );
    }

    #[test]
    fn snapshot_keeps_declaration_order() {
        let s = SharedStore::new(vec![
            ("zeta".into(), json!(1)),
            ("alpha".into(), json!(2)),
            ("mid".into(), json!(3)),
        ]);
        assert_eq!(
            serde_json::to_string(&s.snapshot()).unwrap(),
            r#"{"zeta":1,"alpha":2,"mid":3}"#
        );
        assert_eq!(s.names().collect::<Vec<_>>(), ["zeta", "alpha", "mid"]);
    }

    #[test]
    fn repeated_name_keeps_first_position_and_last_value() {
        let s = SharedStore::new(vec![
            ("a".into(), json!(1)),
            ("b".into(), json!(2)),
            ("a".into(), json!(3)),
        ]);
        assert_eq!(
            serde_json::to_string(&s.snapshot()).unwrap(),
            r#"{"a":3,"b":2}"#
        );
    }

    #[test]
    fn empty_store() {
        let mut s = SharedStore::default();
        assert_eq!(s.snapshot(), json!({}));
        let err = fails(&mut s, op("get", &[json!("x")]));
        assert_eq!(err.to_string(), "no shared value named `x`");
    }
}

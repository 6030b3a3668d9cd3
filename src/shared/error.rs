//! The one error type of the shared-value layer: a malformed target, a
//! malformed operation, or an operation the current values refuse.
//!
//! Messages are complete sentences a user can act on: they travel over the
//! wire as plain text and end up in a failed task's record.

use serde_json::Value;
use thiserror::Error;

/// Why a shared-value operation could not be parsed or applied.
///
/// When an operation fails, the store is left exactly as it was.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SharedError {
    /// A target that is neither `NAME` nor `NAME[INDEX]`.
    #[error("invalid target `{target}`: {reason}")]
    BadTarget {
        /// The target as written.
        target: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An operation name other than get, set, add, append, put.
    #[error("unknown shared operation `{op}` (expected get, set, add, append or put)")]
    UnknownOp {
        /// The operation as written.
        op: String,
    },

    /// The wrong number of arguments for an operation.
    #[error("`{op}` takes {expected} ({usage}), got {got}")]
    Arity {
        /// The operation.
        op: &'static str,
        /// Its arguments, e.g. `NAME NUMBER`.
        usage: &'static str,
        /// How many it takes, spelled out ("2 arguments").
        expected: String,
        /// How many it got, spelled out.
        got: String,
    },

    /// An argument of the wrong JSON type (builtin form).
    #[error("`{op}`: {what} must be {expected}, got {found}")]
    BadArgument {
        /// The operation.
        op: &'static str,
        /// Which argument, e.g. `NAME`.
        what: &'static str,
        /// What it must be, with its article ("a string").
        expected: &'static str,
        /// What it was: its kind, and the value when short (a string `"x"`).
        found: String,
    },

    /// A name that `[shared]` does not declare.
    #[error("no shared value named `{name}`{}", suggestion_text(.suggestion))]
    UnknownName {
        /// The name as written.
        name: String,
        /// A declared name close to it, if any.
        suggestion: Option<String>,
    },

    /// `NAME[INDEX]` on a value that is not a list.
    #[error("cannot index `{name}` with [{index}]: it is {found}, not a list")]
    NotIndexable {
        /// The shared value's name.
        name: String,
        /// The index asked for.
        index: usize,
        /// What the value is, with its article ("a number").
        found: &'static str,
    },

    /// `NAME[INDEX]` past the end of the list.
    #[error("index {index} is out of range for `{name}` (length {len})")]
    IndexOutOfRange {
        /// The shared value's name.
        name: String,
        /// The index asked for.
        index: usize,
        /// The list's length.
        len: usize,
    },

    /// An operation on a value of the wrong kind (add on a list, ...).
    #[error("`{op}` needs {expected}, but `{target}` is {found}")]
    WrongType {
        /// The operation.
        op: &'static str,
        /// The target as written, e.g. `arr[0]`.
        target: String,
        /// What the operation needs, with its article ("a number").
        expected: &'static str,
        /// What the value is, with its article.
        found: &'static str,
    },

    /// An integer addition whose result does not fit in an `i64`.
    #[error(
        "integer overflow: `{target}` is {current}, adding {number} does not fit in a 64-bit signed integer"
    )]
    Overflow {
        /// The target as written.
        target: String,
        /// Its current value.
        current: serde_json::Number,
        /// The number added.
        number: serde_json::Number,
    },

    /// A float addition whose result is infinite (JSON has no infinity).
    #[error("`{target}` is {current}, adding {number} gives a number JSON cannot hold")]
    NotFinite {
        /// The target as written.
        target: String,
        /// Its current value.
        current: serde_json::Number,
        /// The number added.
        number: serde_json::Number,
    },

    /// A request line that is not a valid operation (wire protocol).
    #[error("invalid request: {0}")]
    BadRequest(String),
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(name) => format!("; did you mean `{name}`?"),
        None => String::new(),
    }
}

/// The kind of a JSON value with its article, in the words of spec
/// section 5: JSON arrays are lists, JSON objects are dicts.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dict",
    }
}

/// A value described for an error message: its kind, then the value itself
/// when it is short enough to help ("a string `abc`").
pub fn describe(value: &Value) -> String {
    const SHORT: usize = 40;
    let text = value.to_string();
    match value {
        Value::Null => "null".to_string(),
        _ if text.len() <= SHORT => format!("{} `{text}`", kind(value)),
        _ => kind(value).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_name_with_and_without_suggestion() {
        let with = SharedError::UnknownName {
            name: "nun".into(),
            suggestion: Some("num".into()),
        };
        assert_eq!(
            with.to_string(),
            "no shared value named `nun`; did you mean `num`?"
        );
        let without = SharedError::UnknownName {
            name: "zzz".into(),
            suggestion: None,
        };
        assert_eq!(without.to_string(), "no shared value named `zzz`");
    }

    #[test]
    fn describe_short_and_long_values() {
        assert_eq!(describe(&json!("abc")), "a string `\"abc\"`");
        assert_eq!(describe(&json!(null)), "null");
        assert_eq!(describe(&json!([1, 2])), "a list `[1,2]`");
        let long = json!("x".repeat(100));
        assert_eq!(describe(&long), "a string");
    }
}

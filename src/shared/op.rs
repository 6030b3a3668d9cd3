//! One operation on the shared values, and its two spellings: the words of
//! `jobfile shared OP ...` and the `args` array of a `shared.OP` builtin.
//!
//! Arguments, in both forms: `get NAME`, `set NAME VALUE`,
//! `add NAME NUMBER`, `append NAME VALUE`, `put NAME KEY VALUE`, where
//! NAME is a [`Target`] (`log` or `arr[0]`).
//!
//! - On the command line a VALUE (or NUMBER) that parses as JSON is that
//!   JSON value, else it is the word as a string: `set x 3` stores the
//!   number 3, `set x '"3"'` and `set x hello` store strings. KEY is always
//!   the word itself, never parsed (dict keys are strings).
//! - In the builtin form every argument is already a JSON value. NAME must
//!   be a string; KEY a string, or a number written as JSON (`1` becomes
//!   the key `"1"`, as Python's `json.dumps` does); NUMBER a number.
//!
//! This file only parses; [`super::SharedStore::apply`] gives the meaning.

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use super::error::{SharedError, describe};
use super::target::Target;

/// One atomic operation on the shared values.
///
/// Serialized as one JSON object tagged by `op`, e.g.
/// `{"op":"add","target":"arr[0]","number":1}`: the request line of the
/// wire protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum SharedOp {
    /// Read a value.
    Get {
        /// What to read.
        target: Target,
    },
    /// Replace a value.
    Set {
        /// What to replace.
        target: Target,
        /// The new value.
        value: Value,
    },
    /// Add a number to a number.
    Add {
        /// The number to change.
        target: Target,
        /// How much to add (may be negative).
        number: Number,
    },
    /// Push a value at the end of a list.
    Append {
        /// The list.
        target: Target,
        /// The value to push.
        value: Value,
    },
    /// Set one key of a dict.
    Put {
        /// The dict.
        target: Target,
        /// The key to set.
        key: String,
        /// Its new value.
        value: Value,
    },
}

/// The operations, in the order error messages list them, with their
/// arguments after NAME.
const USAGES: [(&str, &str); 5] = [
    ("get", "NAME"),
    ("set", "NAME VALUE"),
    ("add", "NAME NUMBER"),
    ("append", "NAME VALUE"),
    ("put", "NAME KEY VALUE"),
];

impl SharedOp {
    /// Parses the command-line form: `op` is `get`, `set`, ... and `args`
    /// the words after it.
    pub fn from_words(op: &str, args: &[String]) -> Result<SharedOp, SharedError> {
        let (op, usage) = lookup(op)?;
        check_arity(op, usage, args.len())?;
        let target: Target = args[0].parse()?;
        Ok(match op {
            "get" => SharedOp::Get { target },
            "set" => SharedOp::Set {
                target,
                value: parse_word(&args[1]),
            },
            "add" => SharedOp::Add {
                target,
                number: number_arg(op, parse_word(&args[1]))?,
            },
            "append" => SharedOp::Append {
                target,
                value: parse_word(&args[1]),
            },
            _ => SharedOp::Put {
                target,
                key: args[1].clone(),
                value: parse_word(&args[2]),
            },
        })
    }

    /// Parses the builtin form: `op` is the part after `shared.` and
    /// `args` the task's `args`, e.g. `shared.add` with `["num", 1]`.
    pub fn from_values(op: &str, args: &[Value]) -> Result<SharedOp, SharedError> {
        let (op, usage) = lookup(op)?;
        check_arity(op, usage, args.len())?;
        let target: Target = match &args[0] {
            Value::String(name) => name.parse()?,
            other => {
                return Err(SharedError::BadArgument {
                    op,
                    what: "NAME",
                    expected: "a string",
                    found: describe(other),
                });
            }
        };
        Ok(match op {
            "get" => SharedOp::Get { target },
            "set" => SharedOp::Set {
                target,
                value: args[1].clone(),
            },
            "add" => SharedOp::Add {
                target,
                number: number_arg(op, args[1].clone())?,
            },
            "append" => SharedOp::Append {
                target,
                value: args[1].clone(),
            },
            _ => SharedOp::Put {
                target,
                key: key_arg(op, &args[1])?,
                value: args[2].clone(),
            },
        })
    }

    /// The operation's name: `get`, `set`, `add`, `append` or `put`.
    pub fn name(&self) -> &'static str {
        match self {
            SharedOp::Get { .. } => "get",
            SharedOp::Set { .. } => "set",
            SharedOp::Add { .. } => "add",
            SharedOp::Append { .. } => "append",
            SharedOp::Put { .. } => "put",
        }
    }

    /// What the operation addresses.
    pub fn target(&self) -> &Target {
        match self {
            SharedOp::Get { target }
            | SharedOp::Set { target, .. }
            | SharedOp::Add { target, .. }
            | SharedOp::Append { target, .. }
            | SharedOp::Put { target, .. } => target,
        }
    }
}

/// A command-line VALUE: the JSON it spells, else the word as a string.
pub fn parse_word(word: &str) -> Value {
    serde_json::from_str(word).unwrap_or_else(|_| Value::String(word.to_string()))
}

/// The canonical operation name and its usage, or `UnknownOp`.
fn lookup(op: &str) -> Result<(&'static str, &'static str), SharedError> {
    USAGES
        .iter()
        .find(|(name, _)| *name == op)
        .copied()
        .ok_or_else(|| SharedError::UnknownOp { op: op.to_string() })
}

fn check_arity(op: &'static str, usage: &'static str, got: usize) -> Result<(), SharedError> {
    let expected = usage.split(' ').count();
    if got == expected {
        return Ok(());
    }
    Err(SharedError::Arity {
        op,
        usage,
        expected: arguments(expected),
        got: arguments(got),
    })
}

fn arguments(n: usize) -> String {
    match n {
        1 => "1 argument".to_string(),
        n => format!("{n} arguments"),
    }
}

fn number_arg(op: &'static str, value: Value) -> Result<Number, SharedError> {
    match value {
        Value::Number(number) => Ok(number),
        other => Err(SharedError::BadArgument {
            op,
            what: "NUMBER",
            expected: "a number",
            found: describe(&other),
        }),
    }
}

fn key_arg(op: &'static str, value: &Value) -> Result<String, SharedError> {
    match value {
        Value::String(key) => Ok(key.clone()),
        Value::Number(number) => Ok(number.to_string()),
        other => Err(SharedError::BadArgument {
            op,
            what: "KEY",
            expected: "a string or a number",
            found: describe(other),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn word_is_json_when_it_parses() {
        assert_eq!(parse_word("3"), json!(3));
        assert_eq!(parse_word("-2.5"), json!(-2.5));
        assert_eq!(parse_word("true"), json!(true));
        assert_eq!(parse_word("null"), json!(null));
        assert_eq!(parse_word("[1,\"a\"]"), json!([1, "a"]));
        assert_eq!(parse_word("{\"k\":1}"), json!({"k": 1}));
        assert_eq!(parse_word("\"3\""), json!("3"));
    }

    #[test]
    fn word_is_a_string_otherwise() {
        assert_eq!(parse_word("hello"), json!("hello"));
        assert_eq!(parse_word("hello world"), json!("hello world"));
        assert_eq!(parse_word(""), json!(""));
        assert_eq!(parse_word("[1,"), json!("[1,"));
        assert_eq!(parse_word("True"), json!("True"));
        assert_eq!(parse_word("1 2"), json!("1 2"));
    }

    #[test]
    fn every_op_from_words() {
        assert_eq!(
            SharedOp::from_words("get", &words(&["num"])).unwrap(),
            SharedOp::Get {
                target: Target::name("num")
            }
        );
        assert_eq!(
            SharedOp::from_words("set", &words(&["arr[1]", "hello"])).unwrap(),
            SharedOp::Set {
                target: Target::element("arr", 1),
                value: json!("hello")
            }
        );
        assert_eq!(
            SharedOp::from_words("add", &words(&["num", "-1.5"])).unwrap(),
            SharedOp::Add {
                target: Target::name("num"),
                number: Number::from_f64(-1.5).unwrap()
            }
        );
        assert_eq!(
            SharedOp::from_words("append", &words(&["log", "{\"a\":1}"])).unwrap(),
            SharedOp::Append {
                target: Target::name("log"),
                value: json!({"a": 1})
            }
        );
        assert_eq!(
            SharedOp::from_words("put", &words(&["seen", "42", "true"])).unwrap(),
            SharedOp::Put {
                target: Target::name("seen"),
                key: "42".into(),
                value: json!(true)
            }
        );
    }

    #[test]
    fn every_op_from_values() {
        assert_eq!(
            SharedOp::from_values("get", &[json!("num")]).unwrap(),
            SharedOp::Get {
                target: Target::name("num")
            }
        );
        assert_eq!(
            SharedOp::from_values("set", &[json!("num"), json!("3")]).unwrap(),
            SharedOp::Set {
                target: Target::name("num"),
                value: json!("3")
            }
        );
        assert_eq!(
            SharedOp::from_values("add", &[json!("arr[0]"), json!(1)]).unwrap(),
            SharedOp::Add {
                target: Target::element("arr", 0),
                number: 1.into()
            }
        );
        assert_eq!(
            SharedOp::from_values("append", &[json!("log"), json!([1])]).unwrap(),
            SharedOp::Append {
                target: Target::name("log"),
                value: json!([1])
            }
        );
        assert_eq!(
            SharedOp::from_values("put", &[json!("seen"), json!("k"), json!(null)]).unwrap(),
            SharedOp::Put {
                target: Target::name("seen"),
                key: "k".into(),
                value: json!(null)
            }
        );
        assert_eq!(
            SharedOp::from_values("put", &[json!("seen"), json!(7), json!(1)]).unwrap(),
            SharedOp::Put {
                target: Target::name("seen"),
                key: "7".into(),
                value: json!(1)
            }
        );
    }

    #[test]
    fn unknown_op() {
        let err = SharedOp::from_words("pop", &words(&["log"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown shared operation `pop` (expected get, set, add, append or put)"
        );
        assert!(SharedOp::from_values("GET", &[json!("x")]).is_err());
    }

    #[test]
    fn wrong_arity() {
        let err = SharedOp::from_words("add", &words(&["num"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`add` takes 2 arguments (NAME NUMBER), got 1 argument"
        );
        let err = SharedOp::from_values("get", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`get` takes 1 argument (NAME), got 0 arguments"
        );
        let err = SharedOp::from_values("put", &[json!("d"), json!("k")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`put` takes 3 arguments (NAME KEY VALUE), got 2 arguments"
        );
        let err = SharedOp::from_words("set", &words(&["a", "b", "c"])).unwrap_err();
        assert!(matches!(err, SharedError::Arity { op: "set", .. }));
    }

    #[test]
    fn add_needs_a_number() {
        let err = SharedOp::from_words("add", &words(&["num", "one"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`add`: NUMBER must be a number, got a string `\"one\"`"
        );
        let err = SharedOp::from_values("add", &[json!("num"), json!("1")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`add`: NUMBER must be a number, got a string `\"1\"`"
        );
    }

    #[test]
    fn builtin_name_must_be_a_string() {
        let err = SharedOp::from_values("get", &[json!(1)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`get`: NAME must be a string, got a number `1`"
        );
    }

    #[test]
    fn builtin_key_must_be_a_string_or_number() {
        let err = SharedOp::from_values("put", &[json!("d"), json!([1]), json!(1)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`put`: KEY must be a string or a number, got a list `[1]`"
        );
    }

    #[test]
    fn bad_target_in_either_form() {
        let err = SharedOp::from_words("get", &words(&["arr[-1]"])).unwrap_err();
        assert!(matches!(err, SharedError::BadTarget { .. }));
        let err = SharedOp::from_values("get", &[json!("arr[x]")]).unwrap_err();
        assert!(matches!(err, SharedError::BadTarget { .. }));
    }

    #[test]
    fn serde_is_one_tagged_object() {
        let op = SharedOp::Add {
            target: Target::element("arr", 0),
            number: 1.into(),
        };
        let line = serde_json::to_string(&op).unwrap();
        assert_eq!(line, r#"{"op":"add","target":"arr[0]","number":1}"#);
        assert_eq!(serde_json::from_str::<SharedOp>(&line).unwrap(), op);

        let put = SharedOp::Put {
            target: Target::name("seen"),
            key: "k".into(),
            value: json!({"x": [1]}),
        };
        let line = serde_json::to_string(&put).unwrap();
        assert_eq!(serde_json::from_str::<SharedOp>(&line).unwrap(), put);
    }

    #[test]
    fn serde_rejects_malformed_requests() {
        for line in [
            r#"{"op":"pop","target":"x"}"#,
            r#"{"op":"get"}"#,
            r#"{"op":"get","target":"x[-1]"}"#,
            r#"{"op":"get","target":"x","extra":1}"#,
            r#"{"op":"add","target":"x","number":"1"}"#,
            r#"{"target":"x"}"#,
        ] {
            assert!(serde_json::from_str::<SharedOp>(line).is_err(), "{line}");
        }
    }

    #[test]
    fn name_and_target() {
        let op = SharedOp::from_words("append", &words(&["log", "x"])).unwrap();
        assert_eq!(op.name(), "append");
        assert_eq!(op.target(), &Target::name("log"));
    }
}

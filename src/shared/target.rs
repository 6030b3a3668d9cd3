//! What an operation addresses: a shared value by name (`log`) or one
//! element of a list (`arr[0]`). Parsing only; the store resolves it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::SharedError;

/// A shared value (`name`) or one element of it (`name[index]`).
///
/// Only one level of indexing exists, as in spec section 5. On the wire a
/// target travels as the string the user wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Target {
    /// The name declared in `[shared]`.
    pub name: String,
    /// The position in the list, when one element is addressed.
    pub index: Option<usize>,
}

impl Target {
    /// The whole shared value called `name`.
    pub fn name(name: impl Into<String>) -> Target {
        Target {
            name: name.into(),
            index: None,
        }
    }

    /// Element `index` of the list called `name`.
    pub fn element(name: impl Into<String>, index: usize) -> Target {
        Target {
            name: name.into(),
            index: Some(index),
        }
    }
}

impl FromStr for Target {
    type Err = SharedError;

    fn from_str(text: &str) -> Result<Target, SharedError> {
        let bad = |reason: &str| SharedError::BadTarget {
            target: text.to_string(),
            reason: reason.to_string(),
        };
        let (name, index) = match text.find('[') {
            None => {
                if text.contains(']') {
                    return Err(bad("`]` without `[`"));
                }
                (text, None)
            }
            Some(open) => {
                let inside = text[open + 1..]
                    .strip_suffix(']')
                    .ok_or_else(|| bad("expected `NAME[INDEX]`, with `]` at the end"))?;
                (&text[..open], Some(parse_index(inside).map_err(bad)?))
            }
        };
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        Ok(Target {
            name: name.to_string(),
            index,
        })
    }
}

/// The index between the brackets: decimal digits only, so `-1`, `+1`,
/// ` 1` and `0x1` are all refused with a reason.
fn parse_index(inside: &str) -> Result<usize, &'static str> {
    if inside.is_empty() {
        return Err("the index is empty");
    }
    if inside.starts_with('-') {
        return Err("the index is negative (indexes count from 0 at the start)");
    }
    if !inside.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the index must be a non-negative integer");
    }
    inside.parse().map_err(|_| "the index is too large")
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            None => write!(f, "{}", self.name),
            Some(index) => write!(f, "{}[{index}]", self.name),
        }
    }
}

impl TryFrom<String> for Target {
    type Error = SharedError;

    fn try_from(text: String) -> Result<Target, SharedError> {
        text.parse()
    }
}

impl From<Target> for String {
    fn from(target: Target) -> String {
        target.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        match text.parse::<Target>() {
            Err(SharedError::BadTarget { target, reason }) => {
                assert_eq!(target, text);
                reason
            }
            other => panic!("expected BadTarget for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn plain_names() {
        assert_eq!("num".parse::<Target>().unwrap(), Target::name("num"));
        assert_eq!(
            "my-value.x".parse::<Target>().unwrap(),
            Target::name("my-value.x")
        );
    }

    #[test]
    fn indexed_names() {
        assert_eq!(
            "arr[0]".parse::<Target>().unwrap(),
            Target::element("arr", 0)
        );
        assert_eq!(
            "arr[12]".parse::<Target>().unwrap(),
            Target::element("arr", 12)
        );
    }

    #[test]
    fn display_round_trips() {
        for text in ["num", "arr[0]", "arr[42]"] {
            assert_eq!(text.parse::<Target>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn malformed_targets() {
        assert!(reason("arr[-1]").contains("negative"));
        assert!(reason("arr[]").contains("empty"));
        assert!(reason("arr[x]").contains("non-negative integer"));
        assert!(reason("arr[+1]").contains("non-negative integer"));
        assert!(reason("arr[ 1]").contains("non-negative integer"));
        assert!(reason("arr[1.5]").contains("non-negative integer"));
        assert!(reason("arr[0").contains("`]` at the end"));
        assert!(reason("arr[0]x").contains("`]` at the end"));
        assert!(reason("arr[0][1]").contains("non-negative integer"));
        assert!(reason("arr]").contains("without `[`"));
        assert!(reason("").contains("name is empty"));
        assert!(reason("[0]").contains("name is empty"));
        assert!(reason("arr[99999999999999999999999]").contains("too large"));
    }

    #[test]
    fn message_names_the_target() {
        let err = "arr[-1]".parse::<Target>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid target `arr[-1]`: the index is negative (indexes count from 0 at the start)"
        );
    }

    #[test]
    fn serde_as_a_string() {
        let target = Target::element("arr", 3);
        assert_eq!(serde_json::to_string(&target).unwrap(), "\"arr[3]\"");
        let back: Target = serde_json::from_str("\"arr[3]\"").unwrap();
        assert_eq!(back, target);
        assert!(serde_json::from_str::<Target>("\"arr[-3]\"").is_err());
    }
}

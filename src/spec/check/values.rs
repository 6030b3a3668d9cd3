//! Plain values of the file: durations, whole numbers with a lower bound,
//! and how a value is named and shown in a message.

use serde_json::Value;

use super::super::diagnostic::Diagnostic;
use super::super::doc_path::DocPath;
use super::super::duration::{DURATION_HELP, parse_duration};
use super::checker::Checker;

impl Checker<'_> {
    /// A duration such as `"30s"`, reported at `at()` when it does not
    /// parse. (Places are made only for errors: a big job has many.)
    pub(super) fn duration(
        &mut self,
        text: Option<&str>,
        at: impl FnOnce() -> DocPath,
    ) -> Option<std::time::Duration> {
        let text = text?;
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.diags
                    .push(Diagnostic::at(at(), e).with_help(DURATION_HELP));
                None
            }
        }
    }

    /// A whole number from `min` to `u32::MAX`, reported at `path` when it
    /// is not.
    pub(super) fn count(&mut self, n: i64, path: &DocPath, min: i64, what: &str) -> Option<u32> {
        let bound = match u32::try_from(n) {
            Ok(v) if n >= min => return Some(v),
            _ if n < min => format!("at least {min}"),
            _ => format!("at most {}", u32::MAX),
        };
        self.diags.push(Diagnostic::at(
            path.clone(),
            format!("`{what} = {n}`: expected a whole number of {bound}"),
        ));
        None
    }
}

/// What kind of value `v` is, for a message: "a table", "a number"...
pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

/// `v` as compact JSON, cut at 40 characters.
pub(super) fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(37).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{at, errors};
    use super::*;

    #[test]
    fn durations_and_counts() {
        assert_eq!(
            errors("version = 1\n[pool]\ntimeout = \"soon\"\nprocesses = -1\n"),
            [
                at("`soon` is not a duration (expected number at 0)", 3, 11),
                at(
                    "`processes = -1`: expected a whole number of at least 1",
                    4,
                    13
                ),
            ]
        );
    }

    #[test]
    fn long_values_are_cut() {
        assert_eq!(compact(&json!([1, 2])), "[1,2]");
        let long = compact(&json!("x".repeat(50)));
        assert_eq!(long.chars().count(), 40);
        assert!(long.ends_with("..."));
        assert_eq!(kind_of(&json!({})), "a table");
    }
}

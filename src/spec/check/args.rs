//! A task's `args` and `kwargs`: each a plain value, or a result reference
//! `{ result = "ID" }`, task ID's value, which this task then waits for.

use serde_json::Value;

use super::super::doc_path::DocPath;
use super::super::job::Arg;
use super::super::raw::RawTask;
use super::checker::Checker;
use super::ids::KnownIds;

impl Checker<'_> {
    /// One argument at `at`; a reference to an unknown task is reported
    /// and stands in as `null`.
    pub(super) fn arg(&mut self, known: &KnownIds<'_>, value: &Value, at: DocPath) -> Arg {
        match result_ref(value) {
            Some(name) => match self.resolve_task(known, name, at.key("result"), "result") {
                Some(dep) => Arg::Result(dep),
                None => Arg::Value(Value::Null),
            },
            None => Arg::Value(value.clone()),
        }
    }
}

/// Whether a task, as written, reads another task's value (through its
/// args or kwargs), known or not.
pub(super) fn reads_a_result(t: &RawTask) -> bool {
    t.args
        .iter()
        .chain(t.kwargs.values())
        .any(|v| result_ref(v).is_some())
}

/// The id in `{ result = "ID" }`, when `v` is one.
fn result_ref(v: &Value) -> Option<&str> {
    match v {
        Value::Object(o) if o.len() == 1 => o.get("result")?.as_str(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, errors};

    #[test]
    fn result_references_resolve_in_args_and_kwargs_alike() {
        let text = "version = 1\n\
            [[task]]\nid = \"a\"\nfunction = \"noop\"\n\
            [[task]]\nfunction = \"echo\"\n\
            args = [{ result = \"a\" }, { result = \"b\" }]\n\
            kwargs = { x = { result = \"c\" }, y = { result = \"a\" } }\n";
        assert_eq!(
            errors(text),
            [
                at("unknown task id `b` in `result`", 7, 38),
                at("unknown task id `c` in `result`", 8, 27),
            ]
        );
    }

    #[test]
    fn a_table_with_more_than_result_is_a_plain_value() {
        let text = "version = 1\n[[task]]\nfunction = \"echo\"\n\
            args = [{ result = \"nosuch\", other = 1 }]\n";
        assert_eq!(errors(text), []);
    }
}

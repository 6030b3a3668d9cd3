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

impl Checker<'_> {
    /// The args of a task as the loader made them (each a plain value),
    /// with their result references resolved in place.
    pub(super) fn resolve_args(&mut self, known: &KnownIds<'_>, args: &mut [Arg], at: &DocPath) {
        for (i, a) in args.iter_mut().enumerate() {
            let Arg::Value(v) = a else { continue };
            if let Some(name) = result_ref(v) {
                let at = at.index(i).key("result");
                *a = match self.resolve_task(known, name, at, "result") {
                    Some(dep) => Arg::Result(dep),
                    None => Arg::Value(Value::Null),
                };
            }
        }
    }
}

/// Whether a task, as written, reads another task's value (through its
/// args, as the loader made them, or its kwargs), known or not.
pub(super) fn reads_a_result(args: &[Arg], rest: &RawTask) -> bool {
    let args = args.iter().filter_map(|a| match a {
        Arg::Value(v) => Some(v),
        Arg::Result(_) => None,
    });
    args.chain(rest.kwargs.values())
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

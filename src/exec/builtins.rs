//! Functions run inside the worker process, without a new process.

/// Names of the builtins every worker knows.
pub fn builtin_names() -> Vec<String> {
    [
        "noop",
        "echo",
        "sleep",
        "fail",
        "square",
        "sum",
        "crash",
        "shared.get",
        "shared.set",
        "shared.add",
        "shared.append",
        "shared.put",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

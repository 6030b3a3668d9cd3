//! Whatever text it is given, the checker reports errors and never panics;
//! and a job it accepts can always be planned and rendered.

use std::path::Path;

use jobfile::plan::{Plan, PlanFormat, render};
use jobfile::spec::{CheckOptions, check_source};
use proptest::prelude::*;

fn opts() -> CheckOptions {
    CheckOptions {
        builtins: ["noop", "echo", "sleep", "fail", "square", "sum", "crash"]
            .map(String::from)
            .to_vec(),
        var_overrides: vec![("width".into(), "400".into())],
        python_probe: None,
    }
}

/// Checks `text`; a job that passes is planned and rendered in every format.
fn check_and_plan(text: &str) {
    let path = Path::new("fuzz/job.toml");
    match check_source(path, text, &opts()) {
        Ok(job) => {
            let plan = Plan::new(&job);
            for format in [PlanFormat::Text, PlanFormat::Json, PlanFormat::Dot] {
                render(&job, &plan, format);
            }
        }
        Err(e) => {
            let rendered = e.render(false);
            assert!(rendered.contains("error: "), "{rendered}");
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "version",
    "name",
    "vars",
    "pool",
    "pools",
    "results",
    "functions",
    "task",
    "shared",
];
const POOL_KEYS: &[&str] = &[
    "processes",
    "max_tasks_per_child",
    "initializer",
    "on_failure",
    "timeout",
    "retries",
    "backend",
    "partition",
    "nodes",
    "time",
    "worker_binary",
];
const FUNCTION_KEYS: &[&str] = &[
    "command", "shell", "builtin", "returns", "timeout", "retries", "env", "cwd",
];
const TASK_KEYS: &[&str] = &[
    "id",
    "function",
    "args",
    "kwargs",
    "mode",
    "after",
    "map",
    "chunksize",
    "inputs",
    "outputs",
    "pool",
    "callback",
    "error_callback",
    "timeout",
    "retries",
    "env",
    "cwd",
];
/// Words that are meaningful somewhere: names, enum values, durations,
/// placeholders, map sources.
const WORDS: &[&str] = &[
    "a",
    "b",
    "t0",
    "t1",
    "noop",
    "echo",
    "square",
    "f",
    "g",
    "default",
    "io",
    "blocking",
    "async",
    "sync",
    "json",
    "lines",
    "text",
    "none",
    "stop",
    "continue",
    "terminate",
    "slurm",
    "local",
    "30s",
    "10m",
    "250ms",
    "x",
    "{0}",
    "{1}",
    "{item}",
    "{item.stem}",
    "{vars.width}",
    "{vars.nope}",
    "{name}",
    "{",
    "}",
    "{{",
    "{0",
    "range",
    "glob",
    "product",
    "result",
    "stream",
    "*.txt",
    "[",
    "",
    "é",
    "sub/dir",
    "-1",
];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(String::from)
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        word().prop_map(|w| format!("{w:?}")),
        any::<i64>().prop_map(|n| n.to_string()),
        (-3i64..12).prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        (-1e6f64..1e6).prop_map(|f| format!("{f:?}")),
    ]
}

/// A TOML value built from the grammar: scalars, arrays, inline tables
/// (including the map and result forms).
fn value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((word(), inner.clone()), 0..4).prop_map(|kv| {
                let body: Vec<String> = kv
                    .iter()
                    .enumerate()
                    .map(|(i, (k, v))| format!("\"{k}{i}\" = {v}"))
                    .collect();
                format!("{{ {} }}", body.join(", "))
            }),
            (
                prop::sample::select(
                    &["range", "glob", "lines", "product", "result", "stream"][..]
                ),
                inner.clone()
            )
                .prop_map(|(k, v)| format!("{{ {k} = {v} }}")),
            word().prop_map(|w| format!("{{ result = {w:?} }}")),
            (-5i64..5, -5i64..20, -2i64..3)
                .prop_map(|(a, b, c)| format!("{{ range = [{a}, {b}, {c}] }}")),
        ]
    })
}

fn entries(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(keys), value()), 0..6).prop_map(|kv| {
        // Keep keys unique, else the document is just a TOML error.
        let mut seen = std::collections::HashSet::new();
        kv.into_iter()
            .filter(|(k, _)| seen.insert(*k))
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()
    })
}

fn document() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("version = 1\n".to_string()), entries(&TOP_KEYS[..2])],
        prop::option::of(entries(POOL_KEYS)),
        prop::collection::vec((word(), entries(POOL_KEYS)), 0..2),
        prop::collection::vec((word(), entries(FUNCTION_KEYS)), 0..3),
        prop::collection::vec(entries(TASK_KEYS), 0..5),
        prop::option::of(entries(&["width", "height"])),
    )
        .prop_map(|(top, pool, pools, functions, tasks, vars)| {
            let mut s = top;
            if let Some(p) = pool {
                s.push_str(&format!("[pool]\n{p}"));
            }
            if let Some(v) = vars {
                s.push_str(&format!("[vars]\n{v}"));
            }
            let mut names = std::collections::HashSet::new();
            for (name, body) in pools {
                if names.insert(format!("p{name}")) {
                    s.push_str(&format!("[pools.{name:?}]\n{body}"));
                }
            }
            for (name, body) in functions {
                if names.insert(format!("f{name}")) {
                    s.push_str(&format!("[functions.{name:?}]\n{body}"));
                }
            }
            for body in tasks {
                s.push_str(&format!("[[task]]\n{body}"));
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_and_plan(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn documents_of_real_keys_never_panic(doc in document()) {
        check_and_plan(&doc);
    }

    #[test]
    fn a_valid_job_with_one_key_changed_never_panics(
        key in prop::sample::select(TASK_KEYS),
        v in value(),
    ) {
        let doc = format!(
            "version = 1\n[functions.f]\ncommand = [\"echo\", \"{{0}}\"]\n\
             [[task]]\nid = \"a\"\nfunction = \"f\"\nargs = [1]\n\
             [[task]]\nid = \"b\"\nfunction = \"square\"\n{key} = {v}\n"
        );
        check_and_plan(&doc);
    }
}

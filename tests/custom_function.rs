//! The library example (`examples/custom_function.rs`) through its built
//! binary: registered functions that print, panic and keep state, with
//! their output in their records and the results valid JSON lines.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{parse_jsonl, record, repo_path};
use serde_json::json;

/// The example's binary, built for this test's profile. `cargo build` is
/// asked every time (it does nothing when the example is current), since
/// `cargo test --test custom_function` alone leaves an older build in place.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/PROFILE/deps/custom_function-HASH -> target/PROFILE/examples/
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/PROFILE/deps");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--example",
            "custom_function",
            "--profile",
            profile,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build --example custom_function");
    assert!(status.success(), "cargo build --example custom_function");
    profile_dir.join("examples").join("custom_function")
}

#[test]
fn registered_functions_print_panic_and_keep_state_into_their_records() {
    let out = Command::new(example_binary())
        .arg("run")
        .arg(repo_path("examples/custom_function.toml"))
        .args(["--format", "jsonl", "--order", "submission"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One item panics on purpose: status 1, as for any failed task.
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    // Every line of the results is a record (nothing a function printed).
    let records = parse_jsonl(&stdout);
    // The engine's stderr has the closing list of the one failure (its
    // lines indented under the list's head) and the summary only: no
    // function output, no panic report, no runtime abort of its own.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], "1 record not ok:", "stderr:\n{stderr}");
    assert!(
        lines[1].starts_with("  failed    divisions[1] 1 0: attempt to divide by zero"),
        "{stderr}"
    );
    assert!(
        lines[1..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("  ")),
        "{stderr}"
    );
    assert!(
        lines[lines.len() - 1].starts_with("jobfile: custom-function: "),
        "{stderr}"
    );

    let fibs: Vec<_> = records
        .iter()
        .filter(|r| r.task() == "fibs")
        .map(|r| r.value().clone())
        .collect();
    assert_eq!(fibs, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34].map(|n| json!(n)));
    assert_eq!(record(&records, "total").value(), &json!(88));

    let shouts: Vec<_> = records.iter().filter(|r| r.task() == "shouts").collect();
    assert_eq!(shouts.len(), 2);
    for (r, word) in shouts.iter().zip(["hello", "jobfile"]) {
        assert_eq!(r.status(), "ok");
        assert_eq!(r.value(), &json!(word.to_uppercase()));
        assert_eq!(r.stdout(), format!("shouting {word}\n"));
        assert_eq!(
            r.stderr(),
            format!("{word} was {} bytes long\n", word.len())
        );
    }

    let divisions: Vec<_> = records.iter().filter(|r| r.task() == "divisions").collect();
    assert_eq!(divisions.len(), 2);
    assert_eq!(divisions[0].status(), "ok");
    assert_eq!(divisions[0].value(), &json!(2));
    assert_eq!(divisions[0].stderr(), "");
    assert_eq!(divisions[1].status(), "failed");
    assert_eq!(divisions[1].error(), "attempt to divide by zero");
    assert!(
        divisions[1]
            .stderr()
            .contains("panicked at examples/custom_function.rs"),
        "the panic report is the record's stderr: {:?}",
        divisions[1].stderr()
    );

    // The closure counts per worker: each worker's values are 1, 2, ...
    // in the order it ran them, whatever the split between workers. A
    // worker that panicked went on serving (the pool has two workers and
    // the run made no replacement: at most two pids).
    let mut by_worker: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.task() == "served") {
        assert_eq!(r.status(), "ok");
        by_worker.entry(r.worker()).or_default().push((
            r.get("started").as_str().unwrap().to_string(),
            r.value().as_i64().unwrap(),
        ));
    }
    assert_eq!(by_worker.values().map(Vec::len).sum::<usize>(), 6);
    for (worker, mut calls) in by_worker {
        calls.sort();
        let values: Vec<i64> = calls.iter().map(|c| c.1).collect();
        let expected: Vec<i64> = (1..=values.len() as i64).collect();
        assert_eq!(
            values, expected,
            "worker {worker}, in the order it ran them"
        );
    }
    let workers: std::collections::BTreeSet<i64> = records
        .iter()
        .filter(|r| r.has("worker"))
        .map(|r| r.worker())
        .collect();
    assert!(workers.len() <= 2, "workers: {workers:?}");

    let shared = record(&records, "@shared");
    assert_eq!(shared.value(), &json!({"greetings": 2}));
}

//! `schemas/job.schema.json` is exactly what `jobfile schema` prints, and
//! every example job is valid against it and points editors at it.

mod common;

use std::path::{Path, PathBuf};

use common::jobfile;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema_output() -> String {
    let out = jobfile(["schema"]).output();
    assert_eq!(out.status.code(), Some(0));
    out.stdout
}

fn example_jobs() -> Vec<PathBuf> {
    let mut jobs: Vec<PathBuf> = std::fs::read_dir(root().join("jobs"))
        .expect("jobs/ exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    jobs.sort();
    assert!(!jobs.is_empty());
    jobs
}

#[test]
fn the_checked_in_schema_is_up_to_date() {
    let printed = schema_output();
    let stored = std::fs::read_to_string(root().join("schemas/job.schema.json"))
        .unwrap_or_else(|e| format!("(cannot read schemas/job.schema.json: {e})"));
    assert!(
        printed == stored,
        "schemas/job.schema.json differs from `jobfile schema`; regenerate it with\n\n    \
         cargo run -q -- schema > schemas/job.schema.json\n"
    );
}

#[test]
fn every_example_job_is_valid_against_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&schema_output()).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let mut failures = Vec::new();
    for job in example_jobs() {
        let text = std::fs::read_to_string(&job).expect("job is readable");
        let value: serde_json::Value = toml_edit::de::from_str(&text).expect("job is valid TOML");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("  {} at {}", e, e.instance_path()))
            .collect();
        if !errors.is_empty() {
            failures.push(format!("{}:\n{}", job.display(), errors.join("\n")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_schema_rejects_what_the_checker_rejects_by_shape() {
    let schema: serde_json::Value =
        serde_json::from_str(&schema_output()).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    for bad in [
        "tests/fixtures/bad/02-unknown-top-level-key.toml",
        "tests/fixtures/bad/03-pool-unknown-key.toml",
        "tests/fixtures/bad/04-task-unknown-key.toml",
        "tests/fixtures/bad/05-wrong-type-processes.toml",
        "tests/fixtures/bad/06-missing-version.toml",
        "tests/fixtures/bad/08-task-missing-function.toml",
        "tests/fixtures/bad/30-bad-mode.toml",
    ] {
        let text = std::fs::read_to_string(root().join(bad)).expect("fixture is readable");
        let value: serde_json::Value = toml_edit::de::from_str(&text).expect("valid TOML");
        assert!(!validator.is_valid(&value), "{bad} passes the schema");
    }
}

#[test]
fn every_example_job_names_the_schema() {
    for job in example_jobs() {
        let text = std::fs::read_to_string(&job).expect("job is readable");
        assert_eq!(
            text.lines().next(),
            Some("#:schema ../schemas/job.schema.json"),
            "{} must start with `#:schema ../schemas/job.schema.json`",
            job.display()
        );
    }
}

//! `jobfile check` on invalid job files: every error is found, at the line
//! and column of the offending token, and rendered like a compiler's.
//!
//! Each `tests/fixtures/bad/*.toml` starts with `# expect: LINE:COL what`
//! lines (see the README there); the table test runs the binary on each.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_jobfile");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `jobfile ARGS...` from the crate root, with colours off.
fn jobfile(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the jobfile binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The bad fixtures, as paths relative to the crate root, sorted.
fn bad_fixtures() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("tests/fixtures/bad"))
        .expect("tests/fixtures/bad exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let name = p.file_name().expect("a file name").to_string_lossy();
            format!("tests/fixtures/bad/{name}")
        })
        .collect();
    files.sort();
    files
}

/// The `LINE:COL` of every `# expect:` line at the top of a fixture.
fn expected_positions(text: &str) -> Vec<String> {
    text.lines()
        .map_while(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let pos = rest.split_whitespace().next().unwrap_or_default();
            assert!(
                pos.split(':').count() == 2 && pos.split(':').all(|n| n.parse::<u32>().is_ok()),
                "malformed expect line: {rest}"
            );
            pos.to_string()
        })
        .collect()
}

/// The `error:` headlines of a rendering, without the closing summary.
fn diagnostics(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .filter(|l| !(l.contains(" has ") && l.ends_with("nothing was run")))
        .collect()
}

#[test]
fn every_bad_fixture_reports_exactly_its_errors() {
    let files = bad_fixtures();
    assert!(files.len() >= 40, "only {} fixtures found", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(root().join(file)).expect("fixture is readable");
        let expected = expected_positions(&text);
        assert!(!expected.is_empty(), "{file} has no `# expect:` line");
        let out = jobfile(&["check", file]);
        let err = stderr(&out);
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit status {:?}, expected 2", out.status.code()));
        }
        if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
            problems.push("the checker panicked".to_string());
        }
        for pos in &expected {
            let arrow = format!(" --> {file}:{pos}\n");
            if !err.contains(&arrow) {
                problems.push(format!("no error at {pos}"));
            }
        }
        let found = diagnostics(&err);
        if found.len() != expected.len() {
            problems.push(format!(
                "{} errors reported, {} expected",
                found.len(),
                expected.len()
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{file}: {}\n{err}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn three_errors_are_all_reported_in_one_run() {
    let out = jobfile(&["check", "tests/fixtures/bad/three-errors.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(diagnostics(&err).len(), 3, "{err}");
    for pos in ["7:1", "11:11", "14:12"] {
        assert!(
            err.contains(&format!("three-errors.toml:{pos}\n")),
            "no error at {pos}:\n{err}"
        );
    }
    assert!(
        err.ends_with(
            "error: tests/fixtures/bad/three-errors.toml has 3 errors; nothing was run\n"
        ),
        "{err}"
    );
}

/// The full rendering of a few representative errors: one per layer that
/// finds them (TOML parser, serde shape, checker, graph), with a caret and
/// a `help:` where one helps.
#[test]
fn rendered_errors() {
    for name in [
        "01-toml-syntax",
        "03-pool-unknown-key",
        "05-wrong-type-processes",
        "06-missing-version",
        "09-bad-duration",
        "16-unknown-after",
        "23-positional-out-of-range",
        "26-static-map-item-placeholder",
        "27-dependency-cycle",
        "30-bad-mode",
        "37-product-not-array",
        "three-errors",
    ] {
        let out = jobfile(&["check", &format!("tests/fixtures/bad/{name}.toml")]);
        insta::assert_snapshot!(name, stderr(&out));
    }
}

/// Shape errors as the loader words them: each wrong key on its own, at
/// its own value, named by its dotted path (tasks counted from 0), with a
/// `help:` for the usual slips.
#[test]
fn rendered_type_errors() {
    for name in [
        "50-type-errors-in-one-task",
        "51-nested-type-errors",
        "52-command-as-string",
        "53-task-numbering",
    ] {
        let out = jobfile(&["check", &format!("tests/fixtures/bad/{name}.toml")]);
        insta::assert_snapshot!(name, stderr(&out));
    }
}

/// `command = "echo hi"` says how to write it.
#[test]
fn a_command_string_gets_the_array_and_the_shell_form() {
    let out = jobfile(&["check", "tests/fixtures/bad/52-command-as-string.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("help: `command` is the program and its arguments, one string each: write `command = [\"echo\", \"hi\"]`, or use `shell = \"echo hi\"` for a shell script"),
        "{err}"
    );
}

/// Every message names a task as `task[N]`, N from 0, whoever finds it.
#[test]
fn tasks_are_numbered_from_zero_everywhere() {
    let out = jobfile(&["check", "tests/fixtures/bad/53-task-numbering.toml"]);
    let err = stderr(&out);
    for part in [
        "unknown key `agrs` in `task[1]`",
        "missing `function` in `task[2]`",
        "`task[0]` already has this id",
    ] {
        assert!(err.contains(part), "no {part:?} in:\n{err}");
    }
    assert!(!err.contains('#'), "{err}");
}

fn good_job() -> PathBuf {
    root().join("jobs/seed-map-square.toml")
}

#[test]
fn a_good_file_is_checked_silently() {
    let good = good_job();
    let out = jobfile(&["check", &good.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    assert!(out.stderr.is_empty(), "stderr: {}", stderr(&out));
}

#[test]
fn several_files_are_checked_in_one_call() {
    let good = good_job();
    let good = good.to_string_lossy();
    let all_good = jobfile(&["check", &good, "jobs/seed-queue.toml", &good]);
    assert_eq!(all_good.status.code(), Some(0), "{}", stderr(&all_good));
    assert!(all_good.stderr.is_empty());

    let out = jobfile(&[
        "check",
        &good,
        "tests/fixtures/bad/14-unknown-function.toml",
        "jobs/seed-queue.toml",
        "tests/fixtures/bad/three-errors.toml",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(" --> tests/fixtures/bad/14-unknown-function.toml:8:12\n"),
        "{err}"
    );
    for pos in ["7:1", "11:11", "14:12"] {
        assert!(
            err.contains(&format!(
                " --> tests/fixtures/bad/three-errors.toml:{pos}\n"
            )),
            "{err}"
        );
    }
    assert_eq!(diagnostics(&err).len(), 4, "{err}");
    assert!(!err.contains("seed-queue"), "{err}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = jobfile(&["check", "tests/fixtures/no-such-job.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: cannot read job file tests/fixtures/no-such-job.toml: "),
        "{err}"
    );
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // The other files are still checked.
    let out = jobfile(&[
        "check",
        "tests/fixtures/no-such-job.toml",
        "tests/fixtures/bad/14-unknown-function.toml",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("14-unknown-function.toml:8:12"), "{err}");
}

//! `jobfile check` on invalid job files: every error is found, at the line
//! and column of the offending token, and rendered like a compiler's.
//!
//! Each `tests/fixtures/bad/*.toml` starts with `# expect: LINE:COL what`
//! lines (see the README there); the table test runs the binary on each.

mod common;

use std::path::{Path, PathBuf};

use common::jobfile;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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
        let out = jobfile(["check", file]).dir(root()).output();
        let err = &out.stderr;
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
        let found = diagnostics(err);
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
    let out = jobfile(["check", "tests/fixtures/bad/three-errors.toml"])
        .dir(root())
        .output();
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(diagnostics(err).len(), 3, "{err}");
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

/// Six mistakes of six kinds (a cycle, an unknown id, a misspelt builtin,
/// a glob that matches nothing, a missing `lines` file, a placeholder
/// with no value): one `check` reports them all, each at its place.
#[test]
fn six_mistakes_are_all_reported_in_one_run() {
    let file = "tests/fixtures/bad/six-mistakes.toml";
    let out = jobfile(["check", file]).dir(root()).output();
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "{err}");
    let found = diagnostics(err);
    assert_eq!(
        found,
        [
            "error: dependency cycle: `compile` -> `link` -> `compile`",
            "error: unknown task id `tset` in `after`",
            "error: unknown function `squre` in `function`",
            "error: `no-such-folder/*.txt` matches no file: task `echo-3` would have no item",
            "error: cannot read tests/fixtures/bad/no-such-list.txt for the `map` of task `lines`: \
             No such file or directory",
            "error: placeholder `{1}` has no value in task `test`",
        ],
        "{err}"
    );
    for pos in ["18:9", "23:21", "27:12", "32:16", "37:17", "40:20"] {
        assert!(
            err.contains(&format!(" --> {file}:{pos}\n")),
            "no error at {pos}:\n{err}"
        );
    }
    assert_eq!(err.matches("did you mean `test`?").count(), 1, "{err}");
    assert_eq!(err.matches("did you mean `square`?").count(), 1, "{err}");
    assert!(
        err.ends_with(&format!("error: {file} has 6 errors; nothing was run\n")),
        "{err}"
    );
}

/// `run` finds the same mistakes before anything runs, and a `--set` of
/// an undeclared variable besides, shown at the `[vars]` table.
#[test]
fn run_reports_every_mistake_and_an_unknown_set_before_anything_runs() {
    let file = "tests/fixtures/bad/six-mistakes.toml";
    let out = jobfile(["run", file, "--set", "levle=3", "--set", "level=3"])
        .dir(root())
        .output();
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "{}", &out.stdout);
    assert_eq!(diagnostics(err).len(), 7, "{err}");
    assert!(
        err.contains(
            "error: `--set levle=...` on the command line: `[vars]` declares no variable `levle`\n \
             --> tests/fixtures/bad/six-mistakes.toml:9:1\n"
        ),
        "{err}"
    );
    assert!(err.contains("did you mean `level`?"), "{err}");
    assert!(err.ends_with("has 7 errors; nothing was run\n"), "{err}");
}

/// With no `[vars]` in the file, an unknown `--set` is shown at the top
/// of the file, and says it came from the command line.
#[test]
fn an_unknown_set_without_vars_is_shown_at_the_top() {
    let good = good_job();
    let out = jobfile(["run", &good.to_string_lossy(), "--set", "n=1"])
        .dir(root())
        .output();
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with(
            "error: `--set n=...` on the command line: `[vars]` declares no variable `n`\n"
        ),
        "{err}"
    );
    assert!(err.contains("seed-map-square.toml:1:1\n"), "{err}");
    assert!(
        err.contains("help: declare it under `[vars]`, as `n = ...`, to set it"),
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
        "80-cycle-and-unknown-id",
        "three-errors",
        "six-mistakes",
    ] {
        let out = jobfile(["check", &format!("tests/fixtures/bad/{name}.toml")])
            .dir(root())
            .output();
        insta::assert_snapshot!(name, out.stderr);
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
        let out = jobfile(["check", &format!("tests/fixtures/bad/{name}.toml")])
            .dir(root())
            .output();
        insta::assert_snapshot!(name, out.stderr);
    }
}

/// `command = "echo hi"` says how to write it.
#[test]
fn a_command_string_gets_the_array_and_the_shell_form() {
    let out = jobfile(["check", "tests/fixtures/bad/52-command-as-string.toml"])
        .dir(root())
        .output();
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("help: `command` is the program and its arguments, one string each: write `command = [\"echo\", \"hi\"]`, or use `shell = \"echo hi\"` for a shell script"),
        "{err}"
    );
}

/// Every message names a task as `task[N]`, N from 0, whoever finds it.
#[test]
fn tasks_are_numbered_from_zero_everywhere() {
    let out = jobfile(["check", "tests/fixtures/bad/53-task-numbering.toml"])
        .dir(root())
        .output();
    let err = &out.stderr;
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
    let out = jobfile(["check", &good.to_string_lossy()])
        .dir(root())
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    assert!(out.stderr.is_empty(), "stderr: {}", out.stderr);
}

#[test]
fn several_files_are_checked_in_one_call() {
    let good = good_job();
    let good = good.to_string_lossy();
    let all_good = jobfile(["check", &good, "jobs/seed-queue.toml", &good])
        .dir(root())
        .output();
    assert_eq!(all_good.status.code(), Some(0), "{}", all_good.stderr);
    assert!(all_good.stderr.is_empty());

    let out = jobfile([
        "check",
        &good,
        "tests/fixtures/bad/14-unknown-function.toml",
        "jobs/seed-queue.toml",
        "tests/fixtures/bad/three-errors.toml",
    ])
    .dir(root())
    .output();
    let err = &out.stderr;
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
    assert_eq!(diagnostics(err).len(), 4, "{err}");
    assert!(!err.contains("seed-queue"), "{err}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = jobfile(["check", "tests/fixtures/no-such-job.toml"])
        .dir(root())
        .output();
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: cannot read job file tests/fixtures/no-such-job.toml: "),
        "{err}"
    );
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // The other files are still checked.
    let out = jobfile([
        "check",
        "tests/fixtures/no-such-job.toml",
        "tests/fixtures/bad/14-unknown-function.toml",
    ])
    .dir(root())
    .output();
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("14-unknown-function.toml:8:12"), "{err}");
}

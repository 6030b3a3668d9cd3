//! The files of `glob` and `lines` maps: an empty glob or a missing file
//! stops a run before anything runs, unless the task waits for another,
//! which may make them; then they are looked at when the task starts.

mod common;

use common::Job;

#[test]
fn an_empty_glob_stops_the_run_before_anything_runs() {
    let job = Job::new(
        r#"
version = 1
[functions.mark]
shell = "touch ran"
[[task]]
function = "mark"
[[task]]
id = "each"
function = "echo"
map = { glob = "in/*.txt" }
"#,
    );
    let out = job.run(&[]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("`in/*.txt` matches no file: task `each` would have no item"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("job.toml:10:16\n"), "{}", out.stderr);
    assert!(!job.file("ran").exists(), "a task ran");
}

#[test]
fn a_missing_lines_file_stops_the_run_and_an_empty_one_maps_over_nothing() {
    let job = Job::new(
        r#"
version = 1
[[task]]
id = "each"
function = "echo"
map = { lines = "items.txt" }
"#,
    );
    let out = job.run(&[]);
    out.assert_code(2);
    assert!(out.stderr.contains("job.toml:6:17\n"), "{}", out.stderr);
    assert!(
        out.stderr.contains("No such file or directory"),
        "{}",
        out.stderr
    );

    job.write("items.txt", "");
    let out = job.run(&["--format", "jsonl"]);
    out.assert_code(0);
    assert!(out.task_records().is_empty(), "{}", out.stdout);
}

#[test]
fn a_task_that_waits_may_map_over_the_files_it_waits_for() {
    let job = Job::new(
        r#"
version = 1
[functions.make]
shell = "mkdir -p out && touch out/a.txt out/b.txt && printf 'x\ny\n' > list"
[[task]]
id = "make"
function = "make"
[[task]]
id = "files"
function = "echo"
after = ["make"]
map = { glob = "out/*.txt" }
[[task]]
id = "lines"
function = "echo"
after = ["make"]
map = { lines = "list" }
"#,
    );
    let out = job.run(&["--format", "jsonl"]);
    out.assert_code(0);
    let values: Vec<String> = out
        .task_records()
        .iter()
        .filter(|r| r.task() != "make")
        .map(|r| r.value().to_string())
        .collect();
    assert_eq!(
        values,
        [
            r#"["out/a.txt"]"#,
            r#"["out/b.txt"]"#,
            r#"["x"]"#,
            r#"["y"]"#
        ]
    );
}

#[test]
fn a_glob_that_still_matches_nothing_when_its_task_starts_fails_the_task() {
    let job = Job::new(
        r#"
version = 1
[[task]]
id = "make"
function = "noop"
[[task]]
id = "files"
function = "echo"
after = ["make"]
map = { glob = "out/*.txt" }
"#,
    );
    let out = job.run(&["--format", "jsonl"]);
    out.assert_code(1);
    let records = out.task_records();
    let files = records
        .iter()
        .find(|r| r.task() == "files")
        .expect("a record of `files`");
    assert_eq!(files.status(), "failed");
    assert_eq!(files.error(), "glob `out/*.txt` matches no file");
}

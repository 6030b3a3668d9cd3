//! Commands and shell functions as a user sees them: placeholders, argv
//! elements that never split, arguments that are never spliced into a
//! script, `env`, `cwd`, `returns`, `--dry-run`, `--live`, and an invalid job
//! that runs nothing.

mod common;

use common::*;
use serde_json::json;

#[test]
fn placeholders_fill_one_argv_element_each() {
    let job = Job::new(
        r#"
version = 1
[vars]
X = "default"
[functions.show]
command = ["printf", "%s\n", "{0}", "{name}", "{vars.X}", "{{lit}}", "a {0} b", "{1}"]
returns = "lines"
[[task]]
id = "show"
function = "show"
args = ["hello  world", "*"]
kwargs = { name = "Ann Lee" }
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let r = record(&out.records(), "show").clone();
    assert_eq!(r.status(), "ok", "{}", r.0);
    assert_eq!(
        r.value(),
        &json!([
            "hello  world",
            "Ann Lee",
            "default",
            "{lit}",
            "a hello  world b",
            "*"
        ])
    );
    assert_eq!(
        r.stdout(),
        "hello  world\nAnn Lee\ndefault\n{lit}\na hello  world b\n*\n"
    );
}

#[test]
fn values_that_are_not_strings_are_written_as_compact_json() {
    let job = Job::new(
        r#"
version = 1
[functions.show]
command = ["printf", "%s\n", "{0}", "{1}", "{2}", "{3}", "{4}"]
returns = "lines"
[functions.sh]
shell = 'printf "%s\n" "$1" "$2" "$3" "$4" "$5"'
returns = "lines"
[[task]]
id = "cmd"
function = "show"
args = [3, true, ["a", "b"], { k = 1 }, 2.5]
[[task]]
id = "sh"
function = "sh"
args = [3, true, ["a", "b"], { k = 1 }, 2.5]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let expected = json!(["3", "true", "[\"a\",\"b\"]", "{\"k\":1}", "2.5"]);
    for id in ["cmd", "sh"] {
        assert_eq!(record(&out.records(), id).value(), &expected, "{id}");
    }
}

#[test]
fn item_placeholders_split_a_path() {
    let job = Job::new(
        r#"
version = 1
[functions.parts]
command = ["printf", "%s|%s|%s|%s|%s\n", "{item}", "{item.name}", "{item.stem}", "{item.ext}", "{item.dir}"]
[[task]]
id = "globbed"
function = "parts"
map = { glob = "images/*.jpg" }
[[task]]
id = "listed"
function = "parts"
map = ["plain.txt", "deep/er/x.tar.gz"]
"#,
    );
    job.write("images/a.b.jpg", "");
    job.write("images/c.jpg", "");
    job.write("images/skip.png", "");
    let out = job.run(&[]);
    out.assert_code(0);
    let values: Vec<_> = out.records().iter().map(|r| r.value().clone()).collect();
    assert_eq!(
        values,
        [
            "images/a.b.jpg|a.b.jpg|a.b|jpg|images",
            "images/c.jpg|c.jpg|c|jpg|images",
            "plain.txt|plain.txt|plain|txt|.",
            "deep/er/x.tar.gz|x.tar.gz|x.tar|gz|deep/er",
        ]
        .map(|v| json!(v))
    );
}

#[test]
fn a_map_item_that_is_an_array_gives_positional_args_and_a_table_kwargs() {
    let job = Job::new(
        r#"
version = 1
[functions.pair]
command = ["echo", "{0}={1}"]
[functions.named]
shell = 'echo "$JOBFILE_ARG_SIZE-$JOBFILE_ARG_COLOR"'
[[task]]
id = "pairs"
function = "pair"
map = [["a", 1], ["b", 2]]
[[task]]
id = "grid"
function = "named"
map = { product = { size = ["s", "l"], color = ["red", "blue"] } }
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let values: Vec<_> = out.records().iter().map(|r| r.value().clone()).collect();
    assert_eq!(
        values,
        ["a=1", "b=2", "s-red", "s-blue", "l-red", "l-blue"].map(|v| json!(v))
    );
}

#[test]
fn shell_arguments_are_never_spliced_into_the_script() {
    let job = Job::new(
        r#"
version = 1
[functions.echoes]
shell = 'printf "%s\n" "$1" "$2" "$JOBFILE_ARG_NOTE" "$JOBFILE_ARG_WITH_CAPS"'
returns = "lines"
cwd = "."
[functions.cmd]
command = ["printf", "%s\n", "{0}"]
cwd = "."
[[task]]
id = "shell"
function = "echoes"
args = ["$(touch pwned-1)", "; touch pwned-2"]
kwargs = { note = "`touch pwned-3`", with_caps = "$HOME" }
[[task]]
id = "command"
function = "cmd"
args = ["$(touch pwned-4)"]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(
        record(&records, "shell").value(),
        &json!([
            "$(touch pwned-1)",
            "; touch pwned-2",
            "`touch pwned-3`",
            "$HOME"
        ])
    );
    assert_eq!(
        record(&records, "command").value(),
        &json!("$(touch pwned-4)")
    );
    for n in 1..=4 {
        assert!(
            !job.file(&format!("pwned-{n}")).exists(),
            "pwned-{n} was created"
        );
    }
}

#[test]
fn an_argument_with_spaces_stays_one_shell_argument() {
    let job = Job::new(
        r#"
version = 1
[functions.count]
shell = 'echo "$#"; printf "<%s>\n" "$@"'
returns = "lines"
[[task]]
id = "count"
function = "count"
args = ["a b  c", "", "*"]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    assert_eq!(
        record(&out.records(), "count").value(),
        &json!(["3", "<a b  c>", "<>", "<*>"])
    );
}

#[test]
fn env_from_function_and_task_and_the_engines_environment() {
    let job = Job::new(
        r#"
version = 1
[functions.show]
shell = 'printf "%s\n" "$GREETING" "$TARGET" "${JOBFILE_TEST_MARKER:+inherited}"'
returns = "lines"
env = { GREETING = "hello", TARGET = "world" }
[[task]]
id = "plain"
function = "show"
[[task]]
id = "overridden"
function = "show"
env = { TARGET = "moon" }
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(
        record(&records, "plain").value(),
        &json!(["hello", "world", "inherited"])
    );
    let overridden = record(&records, "overridden").value().clone();
    assert_eq!(overridden[1], json!("moon"));
    assert_eq!(overridden[2], json!("inherited"));
}

#[test]
fn cwd_is_relative_to_the_job_files_folder() {
    let job = Job::new(
        r#"
version = 1
[functions.where]
shell = 'pwd; cat here.txt'
returns = "lines"
cwd = "sub"
[functions.cmd]
command = ["cat", "here.txt"]
cwd = "."
[[task]]
id = "sub"
function = "where"
[[task]]
id = "top"
function = "cmd"
[[task]]
id = "task-cwd"
function = "cmd"
cwd = "sub"
"#,
    );
    job.write("sub/here.txt", "in sub");
    job.write("here.txt", "at top");
    // The test runs from the crate's folder, not the job's.
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let sub = std::fs::canonicalize(job.file("sub")).unwrap();
    assert_eq!(
        record(&records, "sub").value(),
        &json!([sub.to_str().unwrap(), "in sub"])
    );
    assert_eq!(record(&records, "top").value(), &json!("at top"));
    assert_eq!(record(&records, "task-cwd").value(), &json!("in sub"));
}

#[test]
fn returns_turns_stdout_into_the_value() {
    let job = Job::new(
        r#"
version = 1
[functions.none]
shell = 'echo "ignored"'
returns = "none"
[functions.text]
shell = 'printf "two\nlines\n\n"'
[functions.lines]
shell = 'printf "a\nb c\n"'
returns = "lines"
[functions.json]
shell = 'echo "{\"n\": [1, 2.5, null], \"s\": \"x\"}"'
returns = "json"
[functions.badjson]
shell = 'echo "not json {"'
returns = "json"
[[task]]
id = "none"
function = "none"
[[task]]
id = "text"
function = "text"
[[task]]
id = "lines"
function = "lines"
[[task]]
id = "json"
function = "json"
[[task]]
id = "badjson"
function = "badjson"
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let none = record(&records, "none");
    assert_eq!(none.status(), "ok");
    assert_eq!(none.value(), &json!(null));
    assert_eq!(none.stdout(), "ignored\n");
    let text = record(&records, "text");
    assert_eq!(text.value(), &json!("two\nlines\n"));
    assert_eq!(text.stdout(), "two\nlines\n\n");
    assert_eq!(record(&records, "lines").value(), &json!(["a", "b c"]));
    assert_eq!(
        record(&records, "json").value(),
        &json!({"n": [1, 2.5, null], "s": "x"})
    );
    let bad = record(&records, "badjson");
    assert_eq!(bad.status(), "failed", "{}", bad.0);
    assert!(!bad.error().is_empty());
    assert_eq!(bad.stdout(), "not json {\n");
}

#[test]
fn a_value_passes_to_a_dependent_task() {
    let job = Job::new(
        r#"
version = 1
[functions.list]
shell = 'printf "x\ny\n"'
returns = "lines"
[functions.show]
command = ["printf", "%s", "{0}"]
[functions.upper]
shell = 'printf "%s" "$1" | tr a-z A-Z'
[[task]]
id = "list"
function = "list"
[[task]]
id = "whole"
function = "show"
args = [{ result = "list" }]
[[task]]
id = "each"
function = "upper"
map = { result = "list" }
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(record(&records, "whole").value(), &json!("[\"x\",\"y\"]"));
    let each: Vec<_> = records
        .iter()
        .filter(|r| r.task() == "each")
        .map(|r| r.value().clone())
        .collect();
    assert_eq!(each, [json!("X"), json!("Y")]);
}

#[test]
fn a_stream_consumer_handles_each_line_as_the_producer_prints_it() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.produce]
shell = 'for v in A B C; do echo "$v"; sleep 0.2; done'
returns = "lines"
[functions.consume]
shell = 'echo "got $1"'
[[task]]
id = "writer"
function = "produce"
[[task]]
id = "reader"
function = "consume"
map = { stream = "writer" }
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let writer = record(&records, "writer").interval();
    let reader: Vec<&Record> = records.iter().filter(|r| r.task() == "reader").collect();
    let values: Vec<_> = reader.iter().map(|r| r.value().clone()).collect();
    assert_eq!(values, ["got A", "got B", "got C"].map(|v| json!(v)));
    // The first line was handled while the writer still ran.
    assert!(
        reader[0].interval().end < writer.end,
        "the consumer waited for the producer:\n{}",
        show(&records)
    );
}

#[test]
fn a_command_that_is_not_found_fails_its_task() {
    let job = Job::new(
        r#"
version = 1
[functions.missing]
command = ["jobfile-test-no-such-program"]
[[task]]
id = "missing"
function = "missing"
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let r = record(&out.records(), "missing").clone();
    assert_eq!(r.status(), "failed");
    assert!(!r.error().is_empty());
}

#[test]
fn dry_run_prints_filled_commands_and_runs_nothing() {
    let job = Job::new(
        r#"
version = 1
[vars]
what = "made"
[functions.make]
command = ["touch", "{0}-{vars.what}"]
cwd = "."
[functions.sh]
shell = 'touch "$1"'
cwd = "."
[[task]]
id = "make"
function = "make"
args = ["file one"]
[[task]]
id = "sh"
function = "sh"
args = ["from-shell"]
"#,
    );
    let out = job.run(&["--dry-run", "--set", "what=done"]);
    out.assert_code(0);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("make"), "{all}");
    assert!(
        all.contains("file one-done"),
        "placeholders not filled:\n{all}"
    );
    assert!(all.contains("touch"), "{all}");
    assert!(all.contains("from-shell"), "{all}");
    assert!(
        !all.contains("{0}") && !all.contains("{vars.what}"),
        "{all}"
    );
    assert!(!job.file("file one-done").exists(), "--dry-run ran a task");
    assert!(!job.file("from-shell").exists(), "--dry-run ran a task");
    out.assert_nothing_left();
}

#[test]
fn live_copies_each_line_to_stderr_prefixed_with_the_task_id() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.talk]
shell = 'echo "out $1"; echo "err $1" >&2'
[[task]]
id = "first"
function = "talk"
args = ["one"]
[[task]]
id = "second"
function = "talk"
args = ["two"]
[[task]]
id = "items"
function = "talk"
map = ["x"]
"#,
    );
    let out = job.run(&["--live"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    for (id, arg) in [("first", "one"), ("second", "two")] {
        for stream in ["out", "err"] {
            let line = format!("{stream} {arg}");
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("[{id}]")) && l.ends_with(&line)),
                "no live line for {id}: {line}\n{}",
                out.stderr
            );
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("items") && l.ends_with("out x")),
        "{}",
        out.stderr
    );
    // The results are untouched.
    let records = out.records();
    assert_eq!(record(&records, "first").stdout(), "out one\n");
    assert!(!out.stdout.contains("[first]"));
}

#[test]
fn without_live_task_output_stays_out_of_stderr() {
    let job = Job::new(
        r#"
version = 1
[functions.talk]
shell = 'echo "out-line"; echo "err-line" >&2'
[[task]]
id = "t"
function = "talk"
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    assert!(!out.stderr.contains("out-line") && !out.stderr.contains("err-line"));
    assert_eq!(record(&out.records(), "t").stderr(), "err-line\n");
}

#[test]
fn an_invalid_job_exits_2_and_runs_nothing() {
    let job = Job::new(
        r#"
version = 1
[functions.make]
command = ["touch", "made"]
cwd = "."
[[task]]
id = "make"
function = "make"
[[task]]
id = "broken"
function = "no-such-function"
"#,
    );
    let out = job.run(&[]);
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("job.toml"), "{}", out.stderr);
    assert!(out.stderr.contains("no-such-function"), "{}", out.stderr);
    assert!(!job.file("made").exists(), "a task of an invalid job ran");
}

#[test]
fn every_bad_fixture_exits_2_and_runs_nothing() {
    let mut paths: Vec<_> = std::fs::read_dir(repo_path("tests/fixtures/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for path in paths {
        let out = run_file(&path, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {:?}\n{}",
            path.display(),
            out.status,
            out.stderr
        );
        assert_eq!(out.stdout, "", "{}", path.display());
    }
}

#[test]
fn an_invalid_command_line_exits_2_and_runs_nothing() {
    let job = Job::new(
        r#"
version = 1
[functions.make]
command = ["touch", "made"]
cwd = "."
[[task]]
id = "make"
function = "make"
"#,
    );
    for args in [
        &["--order", "sideways"][..],
        // `-j 0` is one process per CPU; a share of none is an error.
        &["-j", "0%"],
        &["-j", "many"],
        &["--format", "yaml"],
        &["--set", "novalue"],
    ] {
        let out = job.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(!job.file("made").exists(), "{args:?} ran the job");
    }
}

#[test]
fn a_missing_job_file_exits_2() {
    let out = run_file(
        std::path::Path::new("/nonexistent/jobfile-test/job.toml"),
        &[],
    );
    out.assert_code(2);
    assert!(out.stderr.contains("job.toml"), "{}", out.stderr);
}

#[test]
fn tasks_without_an_id_are_named_after_their_function_and_place() {
    let job = Job::new(
        r#"
version = 1
[functions.sq]
builtin = "square"
[[task]]
function = "sq"
args = [1]
[[task]]
id = "named"
function = "sq"
args = [2]
[[task]]
function = "sq"
args = [3]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(0);
    assert_eq!(ids(&out.records()), ["sq-0", "named", "sq-2"]);
}

#[test]
fn results_path_is_relative_to_the_job_file_and_minus_o_to_the_caller() {
    let job = Job::new(
        r#"
version = 1
[results]
path = "out/results.jsonl"
[functions.sq]
builtin = "square"
[[task]]
id = "sq"
function = "sq"
args = [3]
"#,
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let out = job.run_from(elsewhere.path(), &[]);
    out.assert_code(0);
    assert_eq!(out.stdout, "");
    let text = std::fs::read_to_string(job.file("out/results.jsonl")).unwrap();
    assert_eq!(record(&parse_jsonl(&text), "sq").value(), &json!(9));
    let out = job.run_from(elsewhere.path(), &["-o", "mine/r.jsonl"]);
    out.assert_code(0);
    let text = std::fs::read_to_string(elsewhere.path().join("mine/r.jsonl")).unwrap();
    assert_eq!(record(&parse_jsonl(&text), "sq").value(), &json!(9));
}

#[test]
fn a_cwd_that_does_not_exist_fails_only_its_task() {
    let job = Job::new(
        r#"
version = 1
[functions.nowhere]
command = ["true"]
cwd = "does-not-exist"
[functions.sq]
builtin = "square"
[[task]]
id = "nowhere"
function = "nowhere"
[[task]]
id = "fine"
function = "sq"
args = [2]
"#,
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let r = record(&records, "nowhere");
    assert_eq!(r.status(), "failed");
    assert!(r.error().contains("does-not-exist"), "{}", r.0);
    assert_eq!(record(&records, "fine").status(), "ok");
}

#[test]
fn live_shows_a_last_line_without_a_newline() {
    let job = Job::new(
        r#"
version = 1
[functions.partial]
shell = 'printf "no newline"'
[[task]]
id = "partial"
function = "partial"
"#,
    );
    let out = job.run(&["--live"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("[partial]") && l.ends_with("no newline")),
        "{}",
        out.stderr
    );
    assert_eq!(record(&out.records(), "partial").stdout(), "no newline");
}

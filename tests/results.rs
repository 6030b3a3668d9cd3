//! What people and tools read: every result format parsed with a real
//! parser, byte-identical reruns, `--resume`, the progress bar and the
//! summary, and valid documents after an interruption.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::{Value, json};

/// A job with every status but `crashed`, uneven sleeps and a map.
const MIXED: &str = r#"
version = 1
name = "mixed"
[pool]
processes = 4
[functions.nap]
builtin = "sleep"
[functions.say]
shell = 'sleep "$1"; echo "said $1"; echo "to stderr" >&2'
[[task]]
id = "slow"
function = "say"
args = [0.3]
[[task]]
id = "fast"
function = "say"
args = [0.01]
[[task]]
id = "squares"
function = "square"
map = { range = [0, 5] }
[[task]]
id = "boom"
function = "fail"
args = ["it <broke> & \"went\" away"]
[[task]]
id = "after-boom"
function = "noop"
after = ["boom"]
[[task]]
id = "late"
function = "nap"
args = [1]
timeout = "100ms"
"#;

/// Runs [`MIXED`]; a `-o NAME` is taken inside the job's folder. Gives the
/// run and the results' text.
fn run_mixed(args: &[&str]) -> (RunOutput, String) {
    let job = Job::new(MIXED);
    let output = args
        .iter()
        .position(|a| *a == "-o")
        .map(|i| job.file(args[i + 1]));
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if let (Some(i), Some(path)) = (args.iter().position(|a| a == "-o"), &output) {
        args[i + 1] = path.to_string_lossy().into_owned();
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = job.run(&args);
    out.assert_code(1);
    let text = match output {
        Some(path) => std::fs::read_to_string(path).unwrap(),
        None => out.stdout.clone(),
    };
    (out, text)
}

#[test]
fn json_is_one_array_of_records() {
    let (_, text) = run_mixed(&["--format", "json", "--reproducible"]);
    let records: Vec<Value> = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r["task"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "slow",
            "fast",
            "squares",
            "squares",
            "squares",
            "squares",
            "squares",
            "boom",
            "after-boom",
            "late"
        ]
    );
    assert_eq!(records[7]["status"], "failed");
    assert_eq!(records[8]["status"], "skipped");
    assert_eq!(records[9]["status"], "timeout");
    assert_eq!(records[2]["index"], 0);
    assert!(records.iter().all(|r| r.get("worker").is_none()));
}

#[test]
fn csv_has_a_header_and_a_row_per_record() {
    let (_, text) = run_mixed(&["--format", "csv", "--reproducible"]);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        &header[..6],
        ["task", "index", "function", "args", "kwargs", "status"]
    );
    assert!(!header.contains(&"worker".to_string()));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 10);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[3][col("task")], "squares");
    assert_eq!(&rows[3][col("index")], "1");
    assert_eq!(&rows[3][col("args")], "[1]");
    assert_eq!(&rows[3][col("value")], "1");
    assert_eq!(&rows[7][col("error")], "it <broke> & \"went\" away");
    assert_eq!(&rows[0][col("stdout")], "said 0.3\n");
}

#[test]
fn junit_has_the_elements_ci_servers_read() {
    let (_, text) = run_mixed(&["--format", "junit", "--reproducible"]);
    let mut reader = Reader::from_str(&text);
    let (mut suites, mut cases, mut failures, mut skipped, mut outs) = (0, Vec::new(), 0, 0, 0);
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |k: &str| xml_attr(&e, k);
                match e.name().into_inner() {
                    "testsuite" => {
                        suites += 1;
                        assert_eq!(attr("name").as_deref(), Some("mixed"));
                        assert_eq!(attr("tests").as_deref(), Some("10"));
                        assert_eq!(attr("failures").as_deref(), Some("2"));
                        assert_eq!(attr("skipped").as_deref(), Some("1"));
                    }
                    "testcase" => {
                        // The class is the task; the job is the suite.
                        let name = attr("name").unwrap();
                        let task = name.split('[').next().unwrap().to_string();
                        assert_eq!(attr("classname"), Some(task));
                        cases.push(name);
                    }
                    "failure" => failures += 1,
                    "skipped" => skipped += 1,
                    "system-out" | "system-err" => outs += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!(suites, 1);
    assert_eq!(cases[2..4], ["squares[0]", "squares[1]"]);
    assert_eq!(cases.len(), 10);
    assert_eq!(failures, 2, "failed and timeout");
    assert_eq!(skipped, 1);
    assert!(outs >= 2, "captured output is there");
    assert_valid_junit(&text);
}

#[test]
fn text_is_a_line_per_record_without_colour_in_a_pipe() {
    let (_, text) = run_mixed(&["--format", "text", "--reproducible"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 10);
    assert!(lines[0].starts_with("ok"), "{}", lines[0]);
    assert!(lines[7].starts_with("failed") && lines[7].contains("boom"));
    assert!(!text.contains('\x1b'), "no colour codes in a pipe");
}

#[test]
fn reproducible_results_are_the_same_bytes_at_any_pool_size() {
    for format in ["jsonl", "json", "csv", "junit", "text"] {
        let (_, one) = run_mixed(&["--format", format, "--reproducible", "-j", "1"]);
        let (_, four) = run_mixed(&["--format", format, "--reproducible", "-j", "4"]);
        assert_eq!(one, four, "{format} differs between -j 1 and -j 4");
    }
}

#[test]
fn the_summary_on_stderr_counts_statuses_and_the_results_stay_clean() {
    let (out, text) = run_mixed(&["-o", "out/results.jsonl"]);
    assert!(out.stdout.is_empty(), "results went to the file");
    assert!(
        out.stderr.contains("7 ok, 1 failed, 1 timeout, 1 skipped"),
        "summary: {}",
        out.stderr
    );
    assert_eq!(text.lines().count(), 10);
    assert!(parse_jsonl(&text).iter().all(|r| r.has("worker")));
}

/// A job whose tasks count their runs in `runs-NAME` files.
const COUNTED: &str = r#"
version = 1
[functions.count]
shell = 'echo run >> "runs-$1"; if [ "$1" = flaky ] && [ ! -f fixed ]; then exit 1; fi; cat input.txt 2>/dev/null || true; echo "$1"'
[[task]]
id = "steady"
function = "count"
args = ["steady"]
[[task]]
id = "reads-input"
function = "count"
args = ["reads-input"]
inputs = ["input.txt"]
[[task]]
id = "flaky"
function = "count"
args = ["flaky"]
[[task]]
id = "after-flaky"
function = "count"
args = ["after-flaky"]
after = ["flaky"]
[[task]]
id = "items"
function = "count"
map = ["a", "b"]
"#;

fn runs(job: &Job, name: &str) -> usize {
    std::fs::read_to_string(job.file(&format!("runs-{name}")))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn resume_reruns_only_what_failed_or_changed() {
    let job = Job::new(COUNTED);
    job.write("input.txt", "one\n");
    let first = job.run_from(job.dir.path(), &["-o", "results.jsonl", "--reproducible"]);
    first.assert_code(1);
    let counts = |job: &Job| {
        ["steady", "reads-input", "flaky", "after-flaky", "a", "b"].map(|n| runs(job, n))
    };
    assert_eq!(counts(&job), [1, 1, 1, 0, 1, 1]);

    // Nothing changed: only the failed task runs again (and fails again).
    let second = job.run_from(
        job.dir.path(),
        &["-o", "results.jsonl", "--reproducible", "--resume"],
    );
    second.assert_code(1);
    assert_eq!(counts(&job), [1, 1, 2, 0, 1, 1]);

    // The fix lands and an input changes: those two run, and the task
    // that waited for the fixed one.
    job.write("fixed", "");
    job.write("input.txt", "two\n");
    let third = job.run_from(
        job.dir.path(),
        &["-o", "results.jsonl", "--reproducible", "--resume"],
    );
    third.assert_code(0);
    assert_eq!(counts(&job), [1, 2, 3, 1, 1, 1]);
    let text = std::fs::read_to_string(job.file("results.jsonl")).unwrap();
    let records = parse_jsonl(&text);
    assert_eq!(
        ids(&records),
        [
            "steady",
            "reads-input",
            "flaky",
            "after-flaky",
            "items",
            "items"
        ]
    );
    assert!(records.iter().all(|r| r.status() == "ok"));
    assert_eq!(record(&records, "reads-input").value(), "two\nreads-input");

    // All ok and unchanged: nothing runs, and the records are the same bytes.
    let fourth = job.run_from(
        job.dir.path(),
        &["-o", "results.jsonl", "--reproducible", "--resume"],
    );
    fourth.assert_code(0);
    assert_eq!(counts(&job), [1, 2, 3, 1, 1, 1]);
    assert_eq!(
        std::fs::read_to_string(job.file("results.jsonl")).unwrap(),
        text
    );
}

#[test]
fn resume_reruns_a_task_whose_arguments_changed() {
    let job = Job::new(COUNTED);
    job.run_from(job.dir.path(), &["-o", "results.jsonl"])
        .assert_code(1);
    let edited = std::fs::read_to_string(&job.path)
        .unwrap()
        .replace("args = [\"steady\"]", "args = [\"steady\", \"more\"]");
    std::fs::write(&job.path, edited).unwrap();
    job.run_from(job.dir.path(), &["-o", "results.jsonl", "--resume"])
        .assert_code(1);
    assert_eq!(runs(&job, "steady"), 2);
    assert_eq!(runs(&job, "a"), 1);
}

#[test]
fn an_interrupted_resume_keeps_the_records_it_kept() {
    let job = Job::new(
        r#"
version = 1
[functions.work]
shell = 'if [ "$1" = slow ] && [ -f go-slow ]; then touch started; sleep 30; fi; echo "$1"'
[[task]]
id = "quick"
function = "work"
args = ["quick"]
[[task]]
id = "slow"
function = "work"
args = ["slow"]
[[task]]
id = "bad"
function = "fail"
args = ["no"]
"#,
    );
    job.run_from(job.dir.path(), &["-o", "results.jsonl"])
        .assert_code(1);
    // `slow` changes (it now waits), so the resume reruns it with `bad`.
    let edited = std::fs::read_to_string(&job.path)
        .unwrap()
        .replace("args = [\"no\"]", "args = [\"no!\"]");
    std::fs::write(&job.path, edited).unwrap();
    job.write("go-slow", "");
    let edited = std::fs::read_to_string(&job.path).unwrap().replace(
        "args = [\"slow\"]",
        "args = [\"slow\"]\nenv = { CHANGED = \"1\" }",
    );
    std::fs::write(&job.path, edited).unwrap();
    let running = job.spawn(&["-o", "results.jsonl", "--resume"]);
    wait_for_file(&job.file("started"));
    running.signal(libc::SIGINT);
    let out = running.wait();
    out.assert_code(130);
    let records = parse_jsonl(&std::fs::read_to_string(job.file("results.jsonl")).unwrap());
    assert_eq!(
        record(&records, "quick").status(),
        "ok",
        "{}",
        show(&records)
    );
    assert_eq!(record(&records, "slow").status(), "cancelled");
    out.assert_nothing_left();
}

#[test]
fn resume_needs_a_results_file() {
    let job = Job::new(COUNTED);
    let out = job.run(&["--resume"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("--resume needs a results file"),
        "{}",
        out.stderr
    );
}

/// Runs `jobfile run JOB ARGS` under a pseudo-terminal (`script`), giving
/// what the terminal showed.
fn under_pty(job: &Job, args: &str) -> String {
    let cmd = format!(
        "{} run {} {args} -o {}",
        bin(),
        job.path.display(),
        job.file("results.jsonl").display()
    );
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env_remove("CI")
        .env("COLUMNS", "120")
        .stdin(Stdio::null())
        .output()
        .expect("script(1) runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PROGRESSING: &str = r#"
version = 1
[pool]
processes = 2
[[task]]
function = "sleep"
map = [0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
"#;

#[test]
fn the_progress_bar_shows_on_a_terminal_only() {
    let job = Job::new(PROGRESSING);
    let shown = under_pty(&job, "");
    assert!(
        shown.contains("/6 done"),
        "a bar on the terminal: {shown:?}"
    );
    assert!(shown.contains("running"), "{shown:?}");
    let hidden = under_pty(&job, "--progress never");
    assert!(
        !hidden.contains("done,"),
        "no bar with --progress never: {hidden:?}"
    );
    let piped = job.run_from(job.dir.path(), &["-o", "results.jsonl"]);
    piped.assert_code(0);
    assert!(
        !piped.stderr.contains("done,"),
        "no bar in a pipe: {}",
        piped.stderr
    );
    let forced = job.run_from(
        job.dir.path(),
        &["-o", "results.jsonl", "--progress", "always"],
    );
    assert!(
        forced.stderr.contains("/6 done"),
        "forced: {}",
        forced.stderr
    );
}

#[test]
fn an_interrupted_run_leaves_valid_documents_in_every_format() {
    for format in ["csv", "junit", "json"] {
        let job = Job::new(
            r#"
version = 1
[pool]
processes = 2
[functions.wait]
shell = 'touch started; sleep 30'
[[task]]
id = "done-first"
function = "noop"
[[task]]
id = "waits"
function = "wait"
"#,
        );
        let out_name = format!("results.{format}");
        let running = job.spawn(&["--format", format, "-o", &out_name]);
        wait_for_file(&job.file("started"));
        std::thread::sleep(Duration::from_millis(100));
        running.signal(libc::SIGTERM);
        let out = running.wait();
        out.assert_code(143);
        let text = std::fs::read_to_string(job.file(&out_name)).unwrap();
        match format {
            "csv" => {
                let mut reader = csv::Reader::from_reader(text.as_bytes());
                let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
                assert_eq!(rows.len(), 2, "{text}");
                assert_eq!(&rows[1][5], "cancelled");
            }
            "json" => {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v[0]["task"], json!("done-first"));
                assert_eq!(v[1]["status"], json!("cancelled"));
            }
            _ => {
                let mut reader = Reader::from_str(&text);
                let mut cases = 0;
                loop {
                    match reader.read_event().unwrap() {
                        Event::Eof => break,
                        Event::Start(e) | Event::Empty(e)
                            if e.name().into_inner() == "testcase" =>
                        {
                            cases += 1
                        }
                        _ => {}
                    }
                }
                assert_eq!(cases, 2, "{text}");
                assert!(text.trim_end().ends_with("</testsuites>"));
            }
        }
        out.assert_nothing_left();
    }
}

#[test]
fn a_closed_results_pipe_stops_the_run() {
    use std::io::{BufRead, BufReader};
    let job = Job::new(
        r#"
version = 1
[[task]]
function = "noop"
map = { range = [0, 5000000] }
"#,
    );
    let (mut child, _) = job.command("run").child();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("\"task\":\"noop-0\""), "{first}");
    // The reader goes away, as `| head -1` would.
    let out = child.wait_with_output().unwrap();
    // Status 1, and quiet: the reader has what it wanted (no error, and
    // no summary of a run that did not finish).
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr, "");
}

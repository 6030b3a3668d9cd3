//! Values flowing through the graph: result references, every map source,
//! the streaming queue, shared values and vars, through the real binary.

mod common;

use common::{Job, ids, record, repo_path, run_file};
use serde_json::json;

fn shared_of(out: &common::RunOutput) -> serde_json::Value {
    let records = out.records();
    let last = records.last().expect("a @shared record");
    assert_eq!(last.task(), "@shared");
    assert_eq!(last.status(), "ok");
    last.value().clone()
}

#[test]
fn the_queue_seed_consumes_lines_while_the_writer_runs() {
    let out = run_file(&repo_path("jobs/seed-queue.toml"), &[]);
    out.assert_code(0);
    let records = out.task_records();
    assert_eq!(ids(&records), ["writer", "reader", "reader", "reader"]);
    let values: Vec<_> = records[1..].iter().map(|r| r.value().clone()).collect();
    assert_eq!(
        values,
        [
            json!("Get A from queue."),
            json!("Get B from queue."),
            json!("Get C from queue.")
        ]
    );
    let writer = records[0].interval();
    let first_read = records[1].interval();
    assert!(
        first_read.start < writer.end,
        "the first item started before the writer ended"
    );
}

#[test]
fn a_stream_of_many_lines_is_consumed_in_line_order() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.gen]
shell = 'seq 1 20000'
returns = "none"
[[task]]
id = "gen"
function = "gen"
[[task]]
id = "eat"
function = "echo"
map = { stream = "gen" }
"#,
    );
    let out = job.run(&["--reproducible"]);
    out.assert_code(0);
    let eaten: Vec<_> = out
        .task_records()
        .into_iter()
        .filter(|r| r.task() == "eat")
        .collect();
    assert_eq!(eaten.len(), 20000);
    for (i, r) in eaten.iter().enumerate() {
        assert_eq!(r.index(), Some(i as u64));
        assert_eq!(r.value(), &json!([(i + 1).to_string()]));
    }
}

#[test]
fn a_failed_producer_still_feeds_its_consumer_whose_dependents_are_skipped() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.gen]
shell = 'echo one; echo two; exit 4'
[[task]]
id = "gen"
function = "gen"
[[task]]
id = "eat"
function = "echo"
map = { stream = "gen" }
[[task]]
id = "after-eat"
function = "noop"
after = ["eat"]
"#,
    );
    let out = job.run(&["--reproducible"]);
    out.assert_code(1);
    let records = out.task_records();
    assert_eq!(ids(&records), ["gen", "eat", "eat", "after-eat"]);
    assert_eq!(record(&records, "gen").status(), "failed");
    assert_eq!(records[1].value(), &json!(["one"]));
    assert_eq!(records[2].value(), &json!(["two"]));
    assert!(records[1..3].iter().all(|r| r.status() == "ok"));
    assert_eq!(record(&records, "after-eat").status(), "skipped");
}

#[test]
fn the_value_and_array_seed_sets_num_and_arr0() {
    let out = run_file(&repo_path("jobs/seed-shared-value-array.toml"), &[]);
    out.assert_code(0);
    let shared = shared_of(&out);
    // The seed writes 3.14 literally, as Python's example does.
    assert_eq!(shared["num"].as_f64(), Some("3.14".parse::<f64>().unwrap()));
    assert_eq!(shared["arr"][0], json!(5));
    assert_eq!(shared["arr"].as_array().map(Vec::len), Some(10));
}

#[test]
fn the_manager_seed_appends_hello() {
    let out = run_file(&repo_path("jobs/seed-manager-list.toml"), &[]);
    out.assert_code(0);
    let shared = shared_of(&out);
    assert_eq!(shared["l"], json!(["Hello"]));
}

#[test]
fn eight_tasks_of_a_thousand_builtin_adds_end_at_eight_thousand() {
    // Each item is the positional args of one `shared.add`: ["counter", 1].
    let items = vec!["[\"counter\", 1]"; 1000].join(", ");
    let mut text = String::from("version = 1\n[shared]\ncounter = 0\n[pool]\nprocesses = 4\n");
    for t in 0..8 {
        text.push_str(&format!(
            "[[task]]\nid = \"adder-{t}\"\nfunction = \"shared.add\"\nmap = [{items}]\n"
        ));
    }
    let out = Job::new(&text).run(&["--reproducible"]);
    out.assert_code(0);
    let adds = out
        .task_records()
        .iter()
        .filter(|r| r.task().starts_with("adder-") && r.status() == "ok")
        .count();
    assert_eq!(adds, 8000);
    assert_eq!(shared_of(&out)["counter"], json!(8000));
}

#[test]
fn eight_shell_tasks_of_a_thousand_jobfile_shared_adds_end_at_eight_thousand() {
    let job = Job::new(
        r#"
version = 1
[shared]
counter = 0
[pool]
processes = 8
[functions.add]
shell = 'i=0; while [ $i -lt 1000 ]; do jobfile shared add counter 1 || exit 1; i=$((i+1)); done'
[[task]]
function = "add"
map = { range = [0, 8] }
"#,
    );
    let out = job.run(&["--reproducible"]);
    out.assert_code(0);
    assert_eq!(shared_of(&out)["counter"], json!(8000));
}

#[test]
fn a_wrong_shared_operation_fails_its_task_and_changes_nothing() {
    let job = Job::new(
        r#"
version = 1
[shared]
name = "text"
arr = [1, 2]
[[task]]
id = "add-to-text"
function = "shared.add"
args = ["name", 1]
[[task]]
id = "out-of-range"
function = "shared.set"
args = ["arr[5]", 1]
[[task]]
id = "unknown"
function = "shared.get"
args = ["nmae"]
[[task]]
id = "from-shell"
function = "bad"
[functions.bad]
shell = 'jobfile shared append arr'
"#,
    );
    let out = job.run(&["--reproducible"]);
    out.assert_code(1);
    let records = out.task_records();
    for r in &records {
        assert_eq!(r.status(), "failed", "{}", r.0);
    }
    assert!(record(&records, "add-to-text").error().contains("number"));
    assert!(
        record(&records, "out-of-range")
            .error()
            .contains("out of range")
    );
    assert!(
        record(&records, "unknown")
            .error()
            .contains("did you mean `name`")
    );
    assert_eq!(shared_of(&out), json!({"name": "text", "arr": [1, 2]}));
}

#[test]
fn result_references_carry_any_json_value() {
    let job = Job::new(
        r#"
version = 1
[functions.emit]
shell = 'printf "{\"a\": [1, 2], \"b\": null}"'
returns = "json"
[functions.lines]
shell = 'printf "x\ny\nz\n"'
[[task]]
id = "obj"
function = "emit"
[[task]]
id = "text"
function = "lines"
[[task]]
id = "echo-obj"
function = "echo"
args = [{ result = "obj" }]
kwargs = { t = { result = "text" } }
[[task]]
id = "per-line"
function = "echo"
map = { result = "text" }
[[task]]
id = "per-item"
function = "echo"
map = { result = "squares" }
[[task]]
id = "squares"
function = "square"
map = [[1], [2], [3]]
"#,
    );
    let out = job.run(&["--reproducible"]);
    out.assert_code(0);
    let records = out.task_records();
    let echo = record(&records, "echo-obj");
    assert_eq!(echo.value(), &json!([{"a": [1, 2], "b": null}]));
    assert_eq!(echo.get("kwargs"), &json!({"t": "x\ny\nz"}));
    let lines: Vec<_> = records
        .iter()
        .filter(|r| r.task() == "per-line")
        .map(|r| r.value().clone())
        .collect();
    assert_eq!(lines, [json!(["x"]), json!(["y"]), json!(["z"])]);
    let items: Vec<_> = records
        .iter()
        .filter(|r| r.task() == "per-item")
        .map(|r| r.value().clone())
        .collect();
    assert_eq!(items, [json!([1]), json!([4]), json!([9])]);
}

#[test]
fn every_static_map_source_gives_its_items_in_order() {
    let job = Job::new(
        r#"
version = 1
[[task]]
id = "down"
function = "echo"
map = { range = [5, -5, -3] }
[[task]]
id = "lines"
function = "echo"
map = { lines = "items.txt" }
[[task]]
id = "files"
function = "echo"
map = { glob = "data/*.txt" }
[[task]]
id = "grid"
function = "echo"
map = { product = { b = [1, 2], a = ["x", "y"] } }
"#,
    );
    job.write("items.txt", "first\r\n\nthird\n");
    for name in ["c.txt", "a.txt", "b.txt", "skip.md"] {
        job.write(&format!("data/{name}"), "");
    }
    let out = job.run(&["--reproducible"]);
    out.assert_code(0);
    let records = out.task_records();
    let of = |id: &str| -> Vec<serde_json::Value> {
        records
            .iter()
            .filter(|r| r.task() == id)
            .map(|r| r.value().clone())
            .collect()
    };
    assert_eq!(
        of("down"),
        [json!([5]), json!([2]), json!([-1]), json!([-4])]
    );
    assert_eq!(
        of("lines"),
        [json!(["first"]), json!([""]), json!(["third"])]
    );
    assert_eq!(
        of("files"),
        [
            json!(["data/a.txt"]),
            json!(["data/b.txt"]),
            json!(["data/c.txt"])
        ]
    );
    let grid: Vec<_> = records
        .iter()
        .filter(|r| r.task() == "grid")
        .map(|r| r.get("kwargs").clone())
        .collect();
    assert_eq!(
        grid,
        [
            json!({"b": 1, "a": "x"}),
            json!({"b": 1, "a": "y"}),
            json!({"b": 2, "a": "x"}),
            json!({"b": 2, "a": "y"}),
        ]
    );
}

#[test]
fn set_overrides_a_declared_var_and_rejects_an_undeclared_one() {
    let job = Job::new(
        r#"
version = 1
[vars]
width = "200"
[functions.show]
command = ["echo", "w={vars.width}"]
[[task]]
id = "show"
function = "show"
"#,
    );
    let plain = job.run(&["--reproducible"]);
    plain.assert_code(0);
    assert_eq!(record(&plain.task_records(), "show").value(), "w=200");
    let out = job.run(&["--set", "width=400 px", "--reproducible"]);
    out.assert_code(0);
    assert_eq!(record(&out.task_records(), "show").value(), "w=400 px");
    let bad = job.run(&["--set", "widht=400"]);
    bad.assert_code(2);
    assert!(
        bad.stderr.contains("declares no variable `widht`"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("did you mean `width`"),
        "{}",
        bad.stderr
    );
    assert!(bad.stdout.is_empty());
}

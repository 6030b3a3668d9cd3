//! The seed's examples in Python (`jobs/python-*.toml`, with the seed's
//! functions in `jobs/seed_tasks.py`): each one runs, and its records hold
//! the values, statuses, output and order the seed's script would give;
//! where a command version (`jobs/seed-*.toml`) computes the same values,
//! both agree.
//!
//! Each job is copied with the module into a temporary folder, so that a
//! run writes nothing (`__pycache__`, results) into the repository.

mod common;

use common::*;
use serde_json::{Value, json};

/// The number 3.14 that the seed writes (not an approximation of pi).
fn seed_num() -> Value {
    serde_json::from_str("3.14").unwrap()
}

/// Runs `jobs/NAME` from a copy beside a copy of `jobs/seed_tasks.py`.
fn run_job(name: &str) -> RunOutput {
    let text = std::fs::read_to_string(repo_path(&format!("jobs/{name}")))
        .unwrap_or_else(|e| panic!("jobs/{name}: {e}"));
    let module = std::fs::read_to_string(repo_path("jobs/seed_tasks.py")).unwrap();
    let job = Job::new(&text);
    job.write("seed_tasks.py", &module);
    let out = job.run(&[]);
    out.assert_nothing_left();
    out
}

fn assert_all_ok(records: &[Record]) {
    for r in records {
        assert_eq!(r.status(), "ok", "{}", show(records));
    }
}

/// The number in `... (NUMBER)...` or `...-NUMBER` at the end of the first
/// line of `stdout`: the pid the seed's functions print.
fn printed_pid(stdout: &str) -> i64 {
    let first = stdout.lines().next().unwrap_or_default();
    let digits: String = first
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no pid in {first:?}"))
}

/// The seconds in the `Task ... runs X seconds.` line.
fn printed_seconds(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Task "))
        .unwrap_or_else(|| panic!("no `Task` line in {stdout:?}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "runs").expect("runs") + 1;
    words[at].parse().expect("seconds")
}

#[test]
fn python_five_tasks_runs_long_time_task_five_times() {
    let out = run_job("python-five-tasks.toml");
    out.assert_code(0);
    let records = out.records();
    assert_all_ok(&records);
    assert_eq!(
        ids(&records),
        (0..5)
            .map(|i| format!("long_time_task-{i}"))
            .collect::<Vec<_>>()
    );
    for (i, (r, seconds)) in records.iter().zip([0.25, 0.1, 0.3, 0.05, 0.2]).enumerate() {
        assert_eq!(r.value(), &Value::Null, "{}", r.0);
        let stdout = r.stdout();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{stdout:?}");
        assert!(
            lines[0].starts_with(&format!("Run task {i} (")),
            "{stdout:?}"
        );
        assert!(lines[0].ends_with(")..."), "{stdout:?}");
        assert!(
            lines[1].starts_with(&format!("Task {i} runs ")),
            "{stdout:?}"
        );
        assert!(printed_seconds(stdout) >= seconds - 0.005, "{stdout:?}");
        assert!(printed_pid(stdout) > 0);
    }
    // The same tasks, in the same order, as the command version.
    let command = run_file(&repo_path("jobs/seed-five-tasks.toml"), &[]);
    command.assert_code(0);
    assert_eq!(ids(&command.records()), ids(&records));
}

#[test]
fn python_pool3_async_runs_three_at_once_and_the_fourth_after() {
    let out = run_job("python-pool3-async.toml");
    out.assert_code(0);
    let records = out.records();
    assert_all_ok(&records);
    assert_eq!(ids(&records), ["hello-0", "hello-1", "hello-2", "hello-3"]);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.value(), &json!(format!("donehello {i}")));
        assert_eq!(r.stdout(), format!("msg: hello {i}\nend\n"));
    }
    let t: Vec<Interval> = records.iter().map(Record::interval).collect();
    assert!(
        t[0].overlaps(&t[1]) && t[0].overlaps(&t[2]) && t[1].overlaps(&t[2]),
        "the first three did not run at once:\n{}",
        show(&records)
    );
    let first_end = t[..3].iter().map(|i| i.end).min().unwrap();
    assert!(
        t[3].start + SLACK >= first_end,
        "the fourth started before a worker was free:\n{}",
        show(&records)
    );
}

#[test]
fn python_pool3_blocking_runs_one_call_after_the_other() {
    let out = run_job("python-pool3-blocking.toml");
    out.assert_code(0);
    let records = out.records();
    assert_all_ok(&records);
    assert_eq!(ids(&records), ["hello-0", "hello-1", "hello-2", "hello-3"]);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.value(), &json!(format!("donehello {i}")));
        assert_eq!(r.stdout(), format!("msg: hello {i}\nend\n"));
    }
    for pair in records.windows(2) {
        assert!(
            pair[1].interval().starts_after(&pair[0].interval()),
            "{} started before {} returned:\n{}",
            pair[1].task(),
            pair[0].task(),
            show(&records)
        );
    }
}

#[test]
fn python_apply_async_results_collects_the_three_return_values() {
    let out = run_job("python-apply-async-results.toml");
    out.assert_code(0);
    let records = out.records();
    assert_all_ok(&records);
    assert_eq!(ids(&records), ["hello-0", "hello-1", "hello-2", "collect"]);
    let collect = record(&records, "collect");
    let expected = json!(["donehello 0", "donehello 1", "donehello 2"]);
    assert_eq!(collect.get("args"), &expected);
    assert_eq!(collect.value(), &expected);
    assert_eq!(
        collect.stdout(),
        "::: donehello 0\n::: donehello 1\n::: donehello 2\nSub-process(es) done.\n"
    );
    // The command version prints the same lines.
    let command = run_file(&repo_path("jobs/seed-apply-async-results.toml"), &[]);
    command.assert_code(0);
    let lines: Vec<Value> = collect
        .stdout()
        .lines()
        .map(|l| Value::String(l.to_owned()))
        .collect();
    assert_eq!(
        record(&command.records(), "collect").value(),
        &Value::Array(lines)
    );
}

#[test]
fn python_several_functions_runs_all_four_at_once_on_four_interpreters() {
    let out = run_job("python-several-functions.toml");
    out.assert_code(0);
    let records = out.records();
    assert_all_ok(&records);
    assert_eq!(ids(&records), ["Lee-0", "Marlon-1", "Allen-2", "Frank-3"]);
    let mut pids = Vec::new();
    for (r, (name, label, seconds)) in records.iter().zip([
        ("Lee", "Lee,", 0.1),
        ("Marlon", "Marlon", 0.4),
        ("Allen", "Allen", 0.3),
        ("Frank", "Frank", 0.2),
    ]) {
        let stdout = r.stdout();
        assert!(
            stdout.starts_with(&format!("Run task {name}-")),
            "{stdout:?}"
        );
        assert!(
            stdout.contains(&format!("\nTask {label} runs ")),
            "{stdout:?}"
        );
        assert!(printed_seconds(stdout) >= seconds - 0.005, "{stdout:?}");
        pids.push(printed_pid(stdout));
        assert_eq!(r.value(), &Value::Null);
    }
    let distinct: std::collections::HashSet<_> = pids.iter().collect();
    assert_eq!(distinct.len(), 4, "not four interpreters: {pids:?}");
    let t: Vec<Interval> = records.iter().map(Record::interval).collect();
    for i in 0..4 {
        for j in i + 1..4 {
            assert!(
                t[i].overlaps(&t[j]),
                "{} and {} did not run at once:\n{}",
                records[i].task(),
                records[j].task(),
                show(&records)
            );
        }
    }
}

#[test]
fn python_map_square_gives_the_squares_in_item_order() {
    let out = run_job("python-map-square.toml");
    out.assert_code(0);
    let records = out.records();
    assert_all_ok(&records);
    let squares: Vec<Value> = (0..8).map(|x| json!(x * x)).collect();
    let values: Vec<Value> = records.iter().map(|r| r.value().clone()).collect();
    assert_eq!(values, squares);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.task(), "squares");
        assert_eq!(r.index(), Some(i as u64));
        assert_eq!(r.get("args"), &json!([i]));
        assert_eq!(r.stdout(), format!("{}\n", i * i));
    }
    // The builtin version gives the same values.
    let builtin = run_file(&repo_path("jobs/seed-map-square.toml"), &[]);
    builtin.assert_code(0);
    let theirs: Vec<Value> = builtin
        .records()
        .iter()
        .map(|r| r.value().clone())
        .collect();
    assert_eq!(theirs, values);
}

#[test]
fn python_queue_reads_each_value_while_the_writer_still_runs() {
    let out = run_job("python-queue.toml");
    out.assert_code(0);
    let records = out.records();
    assert_all_ok(&records);
    assert_eq!(ids(&records), ["writer", "reader", "reader", "reader"]);
    let writer = &records[0];
    assert_eq!(writer.value(), &json!(["A", "B", "C"]));
    assert_eq!(
        writer.stdout(),
        "Put A to queue...\nPut B to queue...\nPut C to queue...\n"
    );
    let got: Vec<Value> = records[1..].iter().map(|r| r.value().clone()).collect();
    for (i, r) in records[1..].iter().enumerate() {
        assert_eq!(r.index(), Some(i as u64));
        assert_eq!(r.stdout(), format!("{}\n", got[i].as_str().unwrap()));
    }
    let end = writer.interval().end;
    assert!(
        records[1].interval().start < end && records[2].interval().start < end,
        "the reader waited for the writer:\n{}",
        show(&records)
    );
    // The same values as the command version's reader.
    let command = run_file(&repo_path("jobs/seed-queue.toml"), &[]);
    command.assert_code(0);
    let theirs: Vec<Value> = command.records()[1..]
        .iter()
        .map(|r| r.value().clone())
        .collect();
    assert_eq!(theirs, got);
    assert_eq!(
        got,
        [
            json!("Get A from queue."),
            json!("Get B from queue."),
            json!("Get C from queue.")
        ]
    );
}

/// The value of the final `@shared` record.
fn shared(out: &RunOutput) -> Value {
    let records = out.records();
    let last = records.last().expect("records");
    assert_eq!(last.task(), "@shared", "{}", show(&records));
    assert_eq!(last.status(), "ok");
    last.value().clone()
}

#[test]
fn python_shared_value_array_sets_num_and_arr0() {
    let out = run_job("python-shared-value-array.toml");
    out.assert_code(0);
    let records = out.task_records();
    assert_all_ok(&records);
    assert_eq!(ids(&records), ["f", "show"]);
    let arr = json!([5, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(shared(&out), json!({"num": seed_num(), "arr": arr}));
    let show_record = record(&records, "show");
    assert_eq!(show_record.value(), &json!([seed_num(), arr]));
    assert_eq!(
        show_record.stdout(),
        "3.14\n[5, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
    );
    assert!(show_record.interval().starts_after(&records[0].interval()));
    // The builtin version ends with the same shared values.
    let builtin = run_file(&repo_path("jobs/seed-shared-value-array.toml"), &[]);
    builtin.assert_code(0);
    assert_eq!(shared(&builtin), shared(&out));
}

#[test]
fn python_manager_list_sets_x_and_arr0_and_appends_hello() {
    let out = run_job("python-manager-list.toml");
    out.assert_code(0);
    let records = out.task_records();
    assert_all_ok(&records);
    assert_eq!(ids(&records), ["f", "show"]);
    let arr = json!([5, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(
        shared(&out),
        json!({"x": seed_num(), "arr": arr, "l": ["Hello"]})
    );
    assert_eq!(
        record(&records, "show").value(),
        &json!([seed_num(), arr, ["Hello"]])
    );
    let builtin = run_file(&repo_path("jobs/seed-manager-list.toml"), &[]);
    builtin.assert_code(0);
    assert_eq!(shared(&builtin), shared(&out));
}

#[test]
fn every_python_job_is_tested_here() {
    let mut jobs: Vec<String> = std::fs::read_dir(repo_path("jobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("python-") && n.ends_with(".toml"))
        .collect();
    jobs.sort();
    let source = include_str!("python_jobs.rs");
    for job in &jobs {
        assert!(
            source.contains(&format!("run_job(\"{job}\")")),
            "jobs/{job} is not run by a test"
        );
    }
    assert_eq!(jobs.len(), 9, "{jobs:?}");
}

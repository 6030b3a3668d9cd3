//! `--resume` item by item, through the binary: each command appends its
//! first argument to the file `runs`, so a test counts exactly which units
//! ran. One test per rule of the contract, and per kind of bad input.

mod common;

use common::*;

/// A map over `items` whose units fail while a `fail-ITEM` file exists.
fn map_job(items: &str, extra: &str) -> Job {
    Job::new(&format!(
        r#"
version = 1
[functions.work]
shell = 'echo "$1" >> runs; if [ -f "fail-$1" ]; then echo "no $1" >&2; exit 1; fi; echo "did $1"'
[[task]]
id = "items"
function = "work"
map = {items}
{extra}
"#
    ))
}

/// `jobfile run job.toml -o results.jsonl --reproducible ARGS...`.
fn run(job: &Job, args: &[&str]) -> RunOutput {
    let mut all = vec!["-o", "results.jsonl", "--reproducible"];
    all.extend_from_slice(args);
    job.run_from(job.dir.path(), &all)
}

fn resume(job: &Job) -> RunOutput {
    run(job, &["--resume"])
}

/// What ran since the last call (the `runs` file is emptied).
fn ran(job: &Job) -> Vec<String> {
    let path = job.file("runs");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn results(job: &Job) -> String {
    std::fs::read_to_string(job.file("results.jsonl")).unwrap()
}

fn statuses(job: &Job) -> Vec<String> {
    parse_jsonl(&results(job))
        .iter()
        .map(|r| format!("{}[{:?}]={}", r.task(), r.index(), r.status()))
        .collect()
}

#[test]
fn only_the_failed_items_of_a_map_run_again_and_the_bytes_are_a_fresh_runs() {
    let job = map_job("{ range = [0, 20] }", "");
    for n in [3, 11, 17] {
        job.write(&format!("fail-{n}"), "");
    }
    run(&job, &[]).assert_code(1);
    assert_eq!(ran(&job).len(), 20);
    for n in [3, 11, 17] {
        std::fs::remove_file(job.file(&format!("fail-{n}"))).unwrap();
    }
    let out = resume(&job);
    out.assert_code(0);
    assert_eq!(ran(&job), ["11", "17", "3"]);
    assert!(
        out.stderr.contains("20 ok (17 kept from the earlier run)"),
        "{}",
        out.stderr
    );
    // A resumed run's results are a fresh run's, byte for byte.
    let resumed = results(&job);
    std::fs::remove_file(job.file("results.jsonl")).unwrap();
    run(&job, &[]).assert_code(0);
    assert_eq!(resumed, results(&job));
    // Nothing to do: nothing runs, the same bytes again.
    ran(&job);
    resume(&job).assert_code(0);
    assert!(ran(&job).is_empty());
    assert_eq!(resumed, results(&job));
}

#[test]
fn items_are_matched_by_their_arguments_not_their_index() {
    let job = map_job(r#"{ glob = "in/*.txt" }"#, "");
    for name in ["b", "c", "d"] {
        job.write(&format!("in/{name}.txt"), name);
    }
    run(&job, &[]).assert_code(0);
    assert_eq!(ran(&job), ["in/b.txt", "in/c.txt", "in/d.txt"]);
    // The glob gains an item before the others and loses one.
    job.write("in/a.txt", "a");
    std::fs::remove_file(job.file("in/c.txt")).unwrap();
    let out = resume(&job);
    out.assert_code(0);
    assert_eq!(ran(&job), ["in/a.txt"]);
    let records = parse_jsonl(&results(&job));
    let shown: Vec<(u64, &str)> = records
        .iter()
        .map(|r| (r.index().unwrap(), r.value().as_str().unwrap()))
        .collect();
    assert_eq!(
        shown,
        [
            (0, "did in/a.txt"),
            (1, "did in/b.txt"),
            (2, "did in/d.txt")
        ]
    );
    assert!(
        out.stderr.contains("1 earlier record matched no unit"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_nth_item_with_the_same_arguments_takes_the_nth_such_record() {
    // The second `x` fails: the script fails on the 2nd run of `x`.
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
[functions.work]
shell = 'echo "$1" >> runs; echo "$1" >> "all-$1"; if [ "$(wc -l < "all-$1")" -eq 2 ]; then exit 1; fi; echo "did $1"'
[[task]]
id = "items"
function = "work"
map = ["x", "y", "x", "x"]
"#,
    );
    run(&job, &[]).assert_code(1);
    assert_eq!(
        statuses(&job),
        [
            "items[Some(0)]=ok",
            "items[Some(1)]=ok",
            "items[Some(2)]=failed",
            "items[Some(3)]=ok"
        ]
    );
    ran(&job);
    resume(&job).assert_code(0);
    // Only the second `x` runs again: the first and third keep theirs.
    assert_eq!(ran(&job), ["x"]);
    assert!(statuses(&job).iter().all(|s| s.ends_with("=ok")));
}

#[test]
fn an_item_runs_again_when_its_own_inputs_change() {
    let job = map_job(
        r#"{ glob = "in/*.txt" }"#,
        r#"inputs = ["{item}", "in/{item.stem}.cfg"]"#,
    );
    for name in ["a", "b", "c"] {
        job.write(&format!("in/{name}.txt"), name);
    }
    run(&job, &[]).assert_code(0);
    ran(&job);
    job.write("in/b.txt", "changed");
    resume(&job).assert_code(0);
    assert_eq!(ran(&job), ["in/b.txt"]);
    // A file that a filled pattern now finds counts too.
    job.write("in/c.cfg", "new");
    resume(&job).assert_code(0);
    assert_eq!(ran(&job), ["in/c.txt"]);
    resume(&job).assert_code(0);
    assert!(ran(&job).is_empty());
}

#[test]
fn a_unit_that_leaves_an_output_missing_fails_and_names_it() {
    let job = Job::new(
        r#"
version = 1
[functions.make]
shell = 'echo "$1" >> runs; mkdir -p out; if [ "$1" != b ]; then echo "$1" > "out/$1.png"; fi'
[[task]]
id = "thumbs"
function = "make"
map = ["a", "b"]
outputs = ["out/{item}.png"]
[[task]]
id = "builtin"
function = "noop"
outputs = ["never-made.txt"]
"#,
    );
    let out = run(&job, &[]);
    out.assert_code(1);
    let records = parse_jsonl(&results(&job));
    assert_eq!(records[0].status(), "ok");
    assert_eq!(records[1].status(), "failed");
    assert!(
        records[1].error().contains("out/b.png"),
        "{}",
        records[1].error()
    );
    // Builtins too: the check is the engine's, for every function kind.
    assert_eq!(records[2].status(), "failed");
    assert!(records[2].error().contains("never-made.txt"));
}

#[test]
fn an_item_whose_output_is_deleted_or_edited_runs_again() {
    let job = Job::new(
        r#"
version = 1
[functions.make]
shell = 'echo "$1" >> runs; mkdir -p out; echo "made $1" > "out/$1.txt"'
[[task]]
id = "make"
function = "make"
map = ["a", "b", "c"]
outputs = ["out/{item}.txt"]
"#,
    );
    run(&job, &[]).assert_code(0);
    ran(&job);
    std::fs::remove_file(job.file("out/a.txt")).unwrap();
    job.write("out/c.txt", "edited by hand");
    resume(&job).assert_code(0);
    assert_eq!(ran(&job), ["a", "c"]);
    assert_eq!(
        std::fs::read_to_string(job.file("out/c.txt")).unwrap(),
        "made c\n"
    );
    resume(&job).assert_code(0);
    assert!(ran(&job).is_empty());
}

#[test]
fn a_changed_function_or_var_runs_everything_again() {
    let job = map_job("[1, 2]", "[vars]\nmode = \"fast\"");
    let edit = |from: &str, to: &str| {
        let text = std::fs::read_to_string(&job.path)
            .unwrap()
            .replace(from, to);
        std::fs::write(&job.path, text).unwrap();
    };
    run(&job, &[]).assert_code(0);
    ran(&job);
    resume(&job).assert_code(0);
    assert!(ran(&job).is_empty());
    edit("mode = \"fast\"", "mode = \"slow\"");
    resume(&job).assert_code(0);
    assert_eq!(ran(&job), ["1", "2"]);
    edit("echo \"did $1\"", "echo \"done $1\"");
    resume(&job).assert_code(0);
    assert_eq!(ran(&job), ["1", "2"]);
    // --set is a change of [vars] too.
    run(&job, &["--resume", "--set", "mode=other"]).assert_code(0);
    assert_eq!(ran(&job), ["1", "2"]);
}

/// A map with a failing item, a task that waits for it, one that reads its
/// value, a callback, and one that depends on nothing.
const DEPENDENTS: &str = r#"
version = 1
[functions.work]
shell = 'echo "$1" >> runs; if [ -f "fail-$1" ]; then exit 1; fi; echo "$1"'
[functions.note]
shell = 'echo "callback" >> runs; echo "$1"'
[[task]]
id = "map"
function = "work"
map = ["a", "b", "c"]
callback = "note"
[[task]]
id = "after-map"
function = "work"
args = ["after-map"]
after = ["map"]
[[task]]
id = "value"
function = "echo"
args = [{ result = "map" }]
[[task]]
id = "alone"
function = "work"
args = ["alone"]
"#;

#[test]
fn what_depends_on_a_task_that_ran_again_runs_again() {
    let job = Job::new(DEPENDENTS);
    job.write("fail-b", "");
    run(&job, &[]).assert_code(1);
    assert_eq!(ran(&job), ["a", "alone", "b", "c"]);
    std::fs::remove_file(job.file("fail-b")).unwrap();
    resume(&job).assert_code(0);
    assert_eq!(ran(&job), ["after-map", "b", "callback"]);
    // The map's value is the array of its items' values, kept and rerun.
    let records = parse_jsonl(&results(&job));
    assert_eq!(
        record(&records, "value").value(),
        &serde_json::json!([["a", "b", "c"]])
    );
    assert_eq!(
        ids(&records),
        [
            "map",
            "map",
            "map",
            "map:callback",
            "after-map",
            "value",
            "alone"
        ]
    );
    // Nothing ran again: the callback's record is kept as well.
    let before = results(&job);
    resume(&job).assert_code(0);
    assert!(ran(&job).is_empty());
    assert_eq!(before, results(&job));
}

#[test]
fn json_results_resume_too() {
    let job = map_job("[1, 2, 3]", "");
    job.write("fail-2", "");
    let json = ["-o", "results.json", "--format", "json", "--reproducible"];
    job.run_from(job.dir.path(), &json).assert_code(1);
    ran(&job);
    std::fs::remove_file(job.file("fail-2")).unwrap();
    let mut again = json.to_vec();
    again.push("--resume");
    job.run_from(job.dir.path(), &again).assert_code(0);
    assert_eq!(ran(&job), ["2"]);
    let text = std::fs::read_to_string(job.file("results.json")).unwrap();
    let v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|r| r["status"] == "ok"));
}

#[test]
fn a_stop_keeps_the_records_that_stand_instead_of_cancelling_them() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
on_failure = "stop"
[functions.work]
shell = 'echo "$1" >> runs; if [ -f "fail-$1" ]; then exit 1; fi; echo "$1"'
[[task]]
id = "first"
function = "work"
args = ["first"]
[[task]]
id = "later"
function = "work"
map = ["x", "y"]
"#,
    );
    run(&job, &[]).assert_code(0);
    ran(&job);
    job.write("fail-first", "");
    resume(&job).assert_code(0);
    // Nothing changed: everything is kept.
    assert!(ran(&job).is_empty());
    let edited = std::fs::read_to_string(&job.path).unwrap().replace(
        "args = [\"first\"]",
        "args = [\"first\"]\nenv = { X = \"1\" }",
    );
    std::fs::write(&job.path, edited).unwrap();
    // `first` changed and now fails, which stops the run: `later`, which
    // does not depend on it, keeps its records rather than being cancelled.
    resume(&job).assert_code(1);
    assert_eq!(ran(&job), ["first"]);
    assert_eq!(
        statuses(&job),
        [
            "first[None]=failed",
            "later[Some(0)]=ok",
            "later[Some(1)]=ok"
        ]
    );
}

#[test]
fn a_truncated_results_file_reruns_only_what_it_lost() {
    let job = map_job("{ range = [0, 6] }", "");
    run(&job, &[]).assert_code(0);
    ran(&job);
    let text = results(&job);
    let lines: Vec<&str> = text.lines().collect();
    // Cut in the middle of the fifth record.
    let keep = lines[..4].join("\n").len() + 1 + lines[4].len() / 2;
    std::fs::write(job.file("results.jsonl"), &text[..keep]).unwrap();
    let out = resume(&job);
    out.assert_code(0);
    assert_eq!(ran(&job), ["4", "5"]);
    assert!(
        out.stderr.contains("did not read back as written"),
        "{}",
        out.stderr
    );
    assert_eq!(results(&job), text);
}

#[test]
fn a_corrupt_record_runs_again_and_the_rest_is_kept() {
    let job = map_job("{ range = [0, 4] }", "");
    run(&job, &[]).assert_code(0);
    ran(&job);
    let text = results(&job);
    std::fs::write(
        job.file("results.jsonl"),
        text.replace("\"did 2\"", "\"did 9\""),
    )
    .unwrap();
    let out = resume(&job);
    out.assert_code(0);
    assert_eq!(ran(&job), ["2"]);
    assert_eq!(results(&job), text);
    // Garbage that is not JSON at all.
    std::fs::write(job.file("results.jsonl"), "\u{0}\u{1}garbage\n{{{{\n").unwrap();
    let out = resume(&job);
    out.assert_code(0);
    assert_eq!(ran(&job).len(), 4);
    assert!(!out.stderr.contains("panicked"));
    assert_eq!(results(&job), text);
}

#[test]
fn results_of_another_job_run_everything_again() {
    let job = map_job("[1, 2]", "");
    run(&job, &[]).assert_code(0);
    ran(&job);
    let other = Job::new(
        r#"
version = 1
name = "other"
[[task]]
id = "items"
function = "echo"
map = [1, 2]
"#,
    );
    other
        .run_from(other.dir.path(), &["-o", "results.jsonl"])
        .assert_code(0);
    for f in ["results.jsonl", ".results.jsonl.fingerprints"] {
        std::fs::copy(other.file(f), job.file(f)).unwrap();
    }
    let out = resume(&job);
    out.assert_code(0);
    assert_eq!(ran(&job), ["1", "2"]);
    assert!(
        out.stderr.contains("fingerprints of job `other`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_renamed_task_runs_again_and_a_removed_one_is_left_out() {
    let job = Job::new(
        r#"
version = 1
[functions.work]
shell = 'echo "$1" >> runs; echo "$1"'
[[task]]
id = "keep"
function = "work"
args = ["keep"]
[[task]]
id = "old-name"
function = "work"
args = ["renamed"]
[[task]]
id = "removed"
function = "work"
args = ["removed"]
"#,
    );
    run(&job, &[]).assert_code(0);
    ran(&job);
    let text = std::fs::read_to_string(&job.path).unwrap();
    let text = text.replace("old-name", "new-name");
    let text = &text[..text.find("[[task]]\nid = \"removed\"").unwrap()];
    std::fs::write(&job.path, text).unwrap();
    let out = resume(&job);
    out.assert_code(0);
    assert_eq!(ran(&job), ["renamed"]);
    assert_eq!(ids(&parse_jsonl(&results(&job))), ["keep", "new-name"]);
    assert!(
        out.stderr.contains("2 earlier records matched no unit"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_missing_fingerprints_file_runs_everything_again() {
    let job = map_job("[1, 2]", "");
    run(&job, &[]).assert_code(0);
    ran(&job);
    std::fs::remove_file(job.file(".results.jsonl.fingerprints")).unwrap();
    let out = resume(&job);
    out.assert_code(0);
    assert_eq!(ran(&job), ["1", "2"]);
    assert!(
        out.stderr.contains("no fingerprints beside it"),
        "{}",
        out.stderr
    );
    // It is written again: the next resume keeps everything.
    resume(&job).assert_code(0);
    assert!(ran(&job).is_empty());
}

#[test]
fn a_corrupt_fingerprints_file_runs_again_what_it_cannot_vouch_for() {
    let job = map_job("{ range = [0, 4] }", "");
    run(&job, &[]).assert_code(0);
    ran(&job);
    let prints = job.file(".results.jsonl.fingerprints");
    let good = std::fs::read(&prints).unwrap();
    // Not a fingerprints file at all (or one of an older jobfile).
    std::fs::write(&prints, b"{\"version\":1,\"tasks\":{}}\n").unwrap();
    let out = resume(&job);
    out.assert_code(0);
    assert_eq!(ran(&job).len(), 4);
    assert!(
        out.stderr.contains("not a fingerprints file"),
        "{}",
        out.stderr
    );
    // Cut short, and one entry's bytes flipped: only those units run.
    let mut damaged = good.clone();
    let entry = 53;
    let header = damaged.len() - 4 * entry;
    damaged[header + entry + 20] ^= 0xff; // the state of item 1
    damaged.truncate(damaged.len() - entry / 2); // half of item 3
    std::fs::write(&prints, &damaged).unwrap();
    let out = resume(&job);
    out.assert_code(0);
    assert_eq!(ran(&job), ["1", "3"]);
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn an_interrupted_resume_loses_nothing_that_was_ok() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGKILL] {
        let job = Job::new(
            r#"
version = 1
[pool]
processes = 1
[functions.work]
shell = 'echo "$1" >> runs; if [ -f "fail-$1" ]; then exit 1; fi; if [ "$1" = 5 ] && [ -f hang ]; then touch started; sleep 30; fi; echo "$1"'
[[task]]
id = "items"
function = "work"
map = { range = [0, 10] }
"#,
        );
        job.write("fail-2", "");
        job.write("fail-5", "");
        run(&job, &[]).assert_code(1);
        ran(&job);
        std::fs::remove_file(job.file("fail-2")).unwrap();
        std::fs::remove_file(job.file("fail-5")).unwrap();
        job.write("hang", "");
        let running = job.spawn(&["-o", "results.jsonl", "--reproducible", "--resume"]);
        wait_for_file(&job.file("started"));
        running.signal(signal);
        let out = running.wait();
        assert_eq!(ran(&job), ["2", "5"], "signal {signal}");
        // Every record that was ok is still there.
        let records = parse_jsonl(&results(&job));
        let ok = records.iter().filter(|r| r.status() == "ok").count();
        assert!(
            ok >= 8,
            "signal {signal}: {}\n{}",
            show(&records),
            out.stderr
        );
        std::fs::remove_file(job.file("hang")).unwrap();
        resume(&job).assert_code(0);
        // A killed engine never replaced the earlier results: what it ran
        // runs again. A signalled one wrote what it had.
        let again: &[&str] = if signal == libc::SIGKILL {
            &["2", "5"]
        } else {
            &["5"]
        };
        assert_eq!(ran(&job), again, "signal {signal}");
        assert!(statuses(&job).iter().all(|s| s.ends_with("=ok")));
        assert_eq!(statuses(&job).len(), 10);
        // Nothing is left beside the results but the fingerprints.
        let mut files: Vec<String> = std::fs::read_dir(job.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        files.sort();
        assert_eq!(files, [".results.jsonl.fingerprints"], "signal {signal}");
        if signal != libc::SIGKILL {
            out.assert_nothing_left();
        }
    }
}

#[test]
fn resume_refuses_formats_it_cannot_read_back() {
    let job = map_job("[1]", "");
    let out = job.run_from(
        job.dir.path(),
        &["-o", "results.csv", "--format", "csv", "--resume"],
    );
    out.assert_code(2);
    assert!(
        out.stderr.contains("--resume reads jsonl or json"),
        "{}",
        out.stderr
    );
    assert!(ran(&job).is_empty());
}

#[test]
fn kept_values_keep_their_exact_bytes() {
    let job = Job::new(
        r#"
version = 1
[functions.work]
shell = 'echo "$1" >> runs; if [ -f "fail-$1" ]; then exit 1; fi'
[[task]]
id = "floats"
function = "echo"
args = [0.30000000000000004, 1.7976931348623157e308, 5e-324, -0.0, 123456789.12345679, "ü \u0001"]
[[task]]
id = "fixed"
function = "work"
args = ["fixed"]
"#,
    );
    job.write("fail-fixed", "");
    run(&job, &[]).assert_code(1);
    std::fs::remove_file(job.file("fail-fixed")).unwrap();
    ran(&job);
    resume(&job).assert_code(0);
    assert_eq!(ran(&job), ["fixed"]);
    let resumed = results(&job);
    std::fs::remove_file(job.file("results.jsonl")).unwrap();
    run(&job, &[]).assert_code(0);
    assert_eq!(resumed, results(&job));
}

/// Seconds slept by each item of a map of `n` sleeps, the first `first`.
fn sleeps(first: u32, n: usize) -> String {
    let mut items = vec!["0".to_string(); n];
    items[0] = first.to_string();
    format!(
        r#"
version = 1
[pool]
processes = 1
[[task]]
id = "naps"
function = "sleep"
map = [{}]
"#,
        items.join(", ")
    )
}

#[test]
fn an_interrupted_resume_writes_the_earlier_records_it_did_not_reach() {
    // Kept records are written at most 16,384 items past the first unit
    // still running: with that unit stuck, the rest is never reached.
    let n = 20_000;
    let job = Job::new(&sleeps(0, n));
    job.run_from(job.dir.path(), &["-o", "results.jsonl"])
        .assert_code(0);
    let started = |rs: &[Record]| {
        let mut s: Vec<String> = rs.iter().map(|r| r.get("started").to_string()).collect();
        s.sort();
        s
    };
    let first = started(&parse_jsonl(&results(&job)));
    std::fs::write(&job.path, sleeps(30, n)).unwrap();
    let args = ["-o", "results.jsonl", "--order", "completion", "--resume"];
    let running = job.spawn(&args);
    let tmp = job.file(&format!(".results.jsonl.tmp-{}", running.pid()));
    let lines = || {
        std::fs::read_to_string(&tmp)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    assert!(
        wait_until(std::time::Duration::from_secs(20), || lines() >= 16_383),
        "the resume wrote {} records",
        lines()
    );
    running.signal(libc::SIGINT);
    let out = running.wait();
    out.assert_code(130);
    let records = parse_jsonl(&results(&job));
    assert_eq!(records.len(), n + 1, "{}", out.stderr);
    let ok = records.iter().filter(|r| r.status() == "ok").count();
    assert_eq!(ok, n, "no ok record is lost");
    assert!(
        out.stderr
            .contains("3617 earlier records this interrupted run did not reach"),
        "{}",
        out.stderr
    );
    // Back to the first job: every record is the first run's own.
    std::fs::write(&job.path, sleeps(0, n)).unwrap();
    let out = job.run_from(job.dir.path(), &["-o", "results.jsonl", "--resume"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains(&format!("{n} ok ({n} kept from the earlier run)")),
        "{}",
        out.stderr
    );
    assert_eq!(started(&parse_jsonl(&results(&job))), first);
}

#[test]
fn chunks_of_a_resumed_map_hold_only_what_runs() {
    let job = map_job("{ range = [0, 10] }", "chunksize = 3");
    for n in [1, 6] {
        job.write(&format!("fail-{n}"), "");
    }
    run(&job, &[]).assert_code(1);
    ran(&job);
    for n in [1, 6] {
        std::fs::remove_file(job.file(&format!("fail-{n}"))).unwrap();
    }
    resume(&job).assert_code(0);
    assert_eq!(ran(&job), ["1", "6"]);
    assert_eq!(statuses(&job).len(), 10);
}

#[test]
fn a_missing_output_is_retried_like_any_failure() {
    let job = Job::new(
        r#"
version = 1
[functions.make]
shell = 'echo "$1" >> runs; if [ -f tried ]; then echo done > out.txt; fi; touch tried'
[[task]]
id = "make"
function = "make"
args = ["make"]
retries = 1
outputs = ["out.txt"]
"#,
    );
    run(&job, &[]).assert_code(0);
    assert_eq!(ran(&job), ["make", "make"]);
    let records = parse_jsonl(&results(&job));
    assert_eq!(records[0].get("attempts"), 2);
}

#[test]
fn inputs_an_earlier_task_makes_are_read_when_the_reader_starts() {
    let job = Job::new(
        r#"
version = 1
[functions.work]
shell = 'echo "$1" >> runs; if [ "$1" = write ]; then echo made > data.txt; fi'
[[task]]
id = "write"
function = "work"
args = ["write"]
[[task]]
id = "read"
function = "work"
args = ["read"]
after = ["write"]
inputs = ["data.txt"]
"#,
    );
    run(&job, &[]).assert_code(0);
    assert_eq!(ran(&job), ["read", "write"]);
    // `data.txt` was made by `write` before `read` started: unchanged.
    resume(&job).assert_code(0);
    assert!(ran(&job).is_empty());
    job.write("data.txt", "edited\n");
    resume(&job).assert_code(0);
    assert_eq!(ran(&job), ["read"]);
}

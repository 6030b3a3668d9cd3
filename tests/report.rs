//! `jobfile report RESULTS` and `jobfile run --report PATH`: the page made
//! from real runs, and every kind of input that cannot make one. What the
//! page shows once drawn is checked in a browser by `report_browser.rs`;
//! here, what `jobfile` writes and says.

mod common;

use std::path::Path;

use common::*;

/// The summary card of `status`, as the page writes it.
fn card(n: u64, status: &str) -> String {
    format!("<span class=\"n\">{n}</span> <span class=\"status s-{status}\">{status}</span>")
}

/// The every-status fixture, run into `dir/NAME` with `extra` arguments.
fn all_statuses(dir: &Path, name: &str, extra: &[&str]) -> RunOutput {
    let out = dir.join(name);
    let mut args = vec!["-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_file(&repo_path("tests/fixtures/junit/all-statuses.toml"), &args)
}

fn assert_all_statuses_page(page: &str) {
    for s in ["ok", "timeout", "crashed", "skipped", "cancelled"] {
        assert!(page.contains(&card(1, s)), "no card `1 {s}` in the page");
    }
    assert!(page.contains(&card(2, "failed")));
    assert!(page.contains("<h2>Records not ok (6)</h2>"));
    assert!(page.contains("<th>records</th><td>7</td>"));
}

#[test]
fn a_report_of_a_finished_run_sits_beside_its_results() {
    let dir = tempfile::tempdir().unwrap();
    all_statuses(dir.path(), "all.jsonl", &[]).assert_code(1);
    let o = jobfile(["report", "all.jsonl"]).dir(dir.path()).output();
    assert!(o.status.success(), "{}", o.stderr);
    assert!(
        o.stderr.starts_with("jobfile: wrote all.html (7 records, ")
            && o.stderr.ends_with(" kB)\n"),
        "{}",
        o.stderr
    );
    let page = std::fs::read_to_string(dir.path().join("all.html")).unwrap();
    assert_all_statuses_page(&page);
    assert!(page.contains("<canvas id=\"timeline\""));
    assert!(page.contains("<h2>Slowest records</h2>"));
    // The timeout's 300 ms make it the slowest.
    let slowest = &page[page.find("<h2>Slowest records</h2>").unwrap()..];
    assert!(slowest.find(">timeout</td>").unwrap() < slowest.find(">ok</td>").unwrap());
    assert!(page.contains("worker utilisation"));
}

#[test]
fn json_results_and_a_page_in_new_folders() {
    let dir = tempfile::tempdir().unwrap();
    all_statuses(dir.path(), "all.json", &["--format", "json"]).assert_code(1);
    let o = jobfile(["report", "all.json", "-o", "pages/deep/all.html"])
        .dir(dir.path())
        .output();
    assert!(o.status.success(), "{}", o.stderr);
    let page = std::fs::read_to_string(dir.path().join("pages/deep/all.html")).unwrap();
    assert_all_statuses_page(&page);
}

#[test]
fn run_report_writes_the_same_summary_as_report() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("run.html");
    all_statuses(
        dir.path(),
        "all.jsonl",
        &["--report", page.to_str().unwrap()],
    )
    .assert_code(1);
    let from_run = std::fs::read_to_string(&page).unwrap();
    assert_all_statuses_page(&from_run);
    assert!(from_run.contains("<title>all-statuses · jobfile report</title>"));
    let o = jobfile(["report", "all.jsonl"]).dir(dir.path()).output();
    assert!(o.status.success(), "{}", o.stderr);
    let from_file = std::fs::read_to_string(dir.path().join("all.html")).unwrap();
    let cards = |p: &str| {
        let at = p.find("<div class=\"cards\">").unwrap();
        p[at..at + p[at..].find("</div>\n<table").unwrap()].to_string()
    };
    assert_eq!(cards(&from_run), cards(&from_file));
}

#[test]
fn run_report_keeps_timing_whatever_the_results_format() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["csv", "junit", "text"] {
        let page = dir.path().join(format!("{format}.html"));
        let out = run_file(
            &repo_path("tests/fixtures/junit/all-statuses.toml"),
            &[
                "--format",
                format,
                "--reproducible",
                "--report",
                page.to_str().unwrap(),
            ],
        );
        out.assert_code(1);
        assert!(
            !out.stdout.is_empty(),
            "{format}: the results still go to stdout"
        );
        let page = std::fs::read_to_string(&page).unwrap();
        assert_all_statuses_page(&page);
        assert!(page.contains("<canvas id=\"timeline\""), "{format}");
        assert!(!page.contains("--reproducible"), "{format}");
    }
}

#[test]
fn an_interrupted_run_still_gets_its_page() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.long]
shell = 'touch started; sleep 30'
cwd = "."
[[task]]
id = "quick"
function = "echo"
args = ["hi"]
[[task]]
id = "long"
function = "long"
[[task]]
id = "later"
function = "noop"
after = ["long"]
"#,
    );
    let page = job.file("out/report.html");
    let running = job.spawn(&["-o", "results.jsonl", "--report", page.to_str().unwrap()]);
    wait_for_file(&job.file("started"));
    running.signal(libc::SIGINT);
    let out = running.wait();
    out.assert_code(130);
    let page = std::fs::read_to_string(&page).unwrap();
    // The records of the results file: `quick`, and `long` cancelled
    // (`later` never started, so it has none).
    let records = parse_jsonl(&std::fs::read_to_string(job.file("results.jsonl")).unwrap());
    assert_eq!(ids(&records), ["quick", "long"]);
    assert!(page.contains(&card(1, "ok")));
    assert!(page.contains(&card(1, "cancelled")));
    assert!(page.contains("<h2>Records not ok (1)</h2>"));
    assert!(page.contains("<canvas id=\"timeline\""));
}

#[test]
fn run_report_to_a_bad_path_runs_nothing() {
    let job = Job::new("version = 1\n[[task]]\nfunction = \"noop\"\n");
    job.write("blocker", "a file, not a folder");
    let bad = job.file("blocker/report.html");
    let results = job.file("results.jsonl");
    let out = job.run(&[
        "-o",
        results.to_str().unwrap(),
        "--report",
        bad.to_str().unwrap(),
    ]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("error: cannot write the report to "),
        "{}",
        out.stderr
    );
    assert!(!results.exists(), "nothing ran, no results written");
}

#[test]
fn a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = jobfile(["report", "nothere.jsonl"])
        .dir(dir.path())
        .output();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        o.stderr
            .starts_with("error: cannot read nothere.jsonl: No such file or directory"),
        "{}",
        o.stderr
    );
    assert!(!dir.path().join("nothere.html").exists());
    let o = jobfile(["report", "."]).dir(dir.path()).output();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stderr.contains("it is a folder"), "{}", o.stderr);
}

#[test]
fn a_file_that_is_not_results_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A job file, csv results, a JSON object per line that is no record,
    // and JSON cut short.
    let cases = [
        (
            "job.toml",
            "version = 1\n",
            "error: job.toml is not a results file: expected jsonl or json records (written by `jobfile run --format jsonl` or `json`), found `version = 1`",
        ),
        (
            "r.csv",
            "task,index,function\n",
            "error: r.csv is not a results file: expected jsonl or json records",
        ),
        (
            "r.jsonl",
            "{\"task\":\"a\",\"status\":\"ok\"}\n{\"name\":\"x\"}\n",
            "error: r.jsonl:line 2: not a result record: it has no `task`",
        ),
        (
            "s.jsonl",
            "{\"task\":\"a\",\"status\":\"done\"}\n",
            "error: s.jsonl:line 1: not a result record: unknown status `done`",
        ),
        (
            "cut.json",
            "[{\"task\":\"a\",\"status\":\"ok\"},\n{\"task\":",
            "error: cut.json:2:8: not a result record: EOF while parsing",
        ),
    ];
    for (name, text, expected) in cases {
        std::fs::write(dir.path().join(name), text).unwrap();
        let o = jobfile(["report", name]).dir(dir.path()).output();
        assert_eq!(o.status.code(), Some(2), "{name}: {}", o.stderr);
        assert!(o.stderr.starts_with(expected), "{name}: {}", o.stderr);
        let html = Path::new(name).with_extension("html");
        assert!(!dir.path().join(html).exists(), "{name}: no page");
    }
}

#[test]
fn the_page_never_replaces_the_results() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.html"),
        "{\"task\":\"a\",\"status\":\"ok\"}\n",
    )
    .unwrap();
    let o = jobfile(["report", "r.html"]).dir(dir.path()).output();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        o.stderr.contains("would replace the results file"),
        "{}",
        o.stderr
    );
    let o = jobfile(["report", "r.html", "-o", "./r.html"])
        .dir(dir.path())
        .output();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn an_empty_file_gives_a_page_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.jsonl"), "").unwrap();
    let o = jobfile(["report", "empty.jsonl"]).dir(dir.path()).output();
    assert!(o.status.success(), "{}", o.stderr);
    assert!(o.stderr.contains("warning: empty.jsonl holds no records"));
    let page = std::fs::read_to_string(dir.path().join("empty.html")).unwrap();
    assert!(page.contains("This results file holds no records"));
    assert!(page.contains(&card(0, "ok")));
    assert!(!page.contains("<canvas"));
}

#[test]
fn reproducible_results_give_summary_and_failures_without_a_timeline() {
    let dir = tempfile::tempdir().unwrap();
    all_statuses(dir.path(), "rep.jsonl", &["--reproducible"]).assert_code(1);
    let o = jobfile(["report", "rep.jsonl"]).dir(dir.path()).output();
    assert!(o.status.success(), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("have no timing (written with --reproducible)")
    );
    let page = std::fs::read_to_string(dir.path().join("rep.html")).unwrap();
    assert_all_statuses_page(&page);
    assert!(page.contains("they were written with <code>--reproducible</code>"));
    assert!(!page.contains("<canvas"));
    assert!(!page.contains("<th>wall time</th>"));
}

#[test]
fn completions_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef jobfile"),
        ("fish", "complete -c jobfile"),
    ] {
        let o = jobfile(["completions", shell]).dir(dir.path()).output();
        assert!(o.status.success(), "{shell}: {}", o.stderr);
        let script = o.stdout;
        assert!(script.contains(marker), "{shell}");
        for word in ["report", "completions", "reproducible"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let o = jobfile(["completions", "powershell"])
        .dir(dir.path())
        .output();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        o.stderr.contains("possible values: bash, zsh, fish"),
        "{}",
        o.stderr
    );
}

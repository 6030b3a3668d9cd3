//! The report in a real browser: Debian's headless chromium opens pages
//! made from real runs, driven over its DevTools pipe by
//! `tests/support/browse.py` (standard library only), and the tests check
//! what a person sees: no script error and no request, the statuses and
//! the failed records with their errors in the rendered text, bars of each
//! status's colour on the timeline, a tooltip under the pointer.
//!
//! They run when the build has `JOBFILE_TEST_BROWSER=1` (as `ci/test` does,
//! after installing chromium) and then fail if the browser is unusable;
//! otherwise `cargo test` lists them as ignored.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// What `browse.py` saw of a page.
fn browse(page: &Path, extra: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(repo_path("tests/support/browse.py"))
        .arg(page)
        .args(extra)
        .output()
        .expect("start python3 for tests/support/browse.py");
    assert!(
        out.status.success(),
        "browse.py failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("browse.py prints JSON")
}

/// The every-status fixture's page, made by `run --report` in `dir`.
fn all_statuses_page(dir: &Path) -> std::path::PathBuf {
    let page = dir.join("all.html");
    let results = dir.join("all.jsonl");
    run_file(
        &repo_path("tests/fixtures/junit/all-statuses.toml"),
        &[
            "-o",
            results.to_str().unwrap(),
            "--report",
            page.to_str().unwrap(),
        ],
    )
    .assert_code(1);
    page
}

fn assert_clean(seen: &Value) {
    assert_eq!(seen["errors"], serde_json::json!([]), "script errors");
    assert_eq!(seen["requests"], serde_json::json!([]), "requests");
}

#[test]
#[cfg_attr(
    not(jobfile_browser_tests),
    ignore = "set JOBFILE_TEST_BROWSER=1 (needs chromium)"
)]
fn statuses_failures_and_errors_are_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let seen = browse(&all_statuses_page(dir.path()), &[]);
    assert_clean(&seen);
    let text = seen["text"].as_str().unwrap();
    for line in [
        "1 ok",
        "2 failed",
        "1 timeout",
        "1 crashed",
        "1 skipped",
        "1 cancelled",
    ] {
        assert!(text.contains(line), "summary card {line:?} in:\n{text}");
    }
    assert!(text.contains("Records not ok (6)"));
    // Each record that is not ok, with its error, in the rendered list.
    let list = &text[text.find("Records not ok").unwrap()..];
    for row in [
        "failed\t\tfailed\tfails on purpose",
        "timeout\t\ttimeout\ttimed out after 300ms",
        "crashed\t\tcrashed\tthe worker died: killed by signal 9 (SIGKILL)",
        "skipped\t\tskipped\tdependency `failed` did not end ok",
        "stops\t\tfailed\tstops the run",
        "cancelled\t\tcancelled\tcancelled: the run stopped after a failure",
    ] {
        assert!(list.contains(row), "row {row:?} in:\n{list}");
    }
    assert!(!list.contains("\nok\t"), "no ok record in the list");
}

#[test]
#[cfg_attr(
    not(jobfile_browser_tests),
    ignore = "set JOBFILE_TEST_BROWSER=1 (needs chromium)"
)]
fn the_timeline_has_bars_of_each_status_that_ran() {
    let dir = tempfile::tempdir().unwrap();
    let seen = browse(&all_statuses_page(dir.path()), &[]);
    assert_clean(&seen);
    let ink = &seen["ink"];
    for s in ["ok", "failed", "timeout", "crashed"] {
        assert!(ink[s].as_u64().unwrap() > 0, "no {s} pixels: {ink}");
    }
    // Skipped and cancelled records never ran: no bar.
    assert_eq!(ink["skipped"], 0, "{ink}");
    assert_eq!(ink["cancelled"], 0, "{ink}");
    // The 300 ms timeout spans most of the wall time: the widest bar.
    assert!(ink["timeout"].as_u64() > ink["ok"].as_u64(), "{ink}");
}

#[test]
#[cfg_attr(
    not(jobfile_browser_tests),
    ignore = "set JOBFILE_TEST_BROWSER=1 (needs chromium)"
)]
fn a_tooltip_shows_the_bar_under_the_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let page = all_statuses_page(dir.path());
    let seen = browse(&page, &["--hover", "timeout"]);
    assert_clean(&seen);
    let hover = &seen["hover"];
    assert_eq!(hover["shown"], true, "{hover}");
    let tip = hover["text"].as_str().unwrap();
    assert!(tip.starts_with("timeout timeout\n"), "{tip}");
    assert!(tip.contains("error timed out after 300ms"), "{tip}");
    assert!(tip.contains("args []"), "{tip}");
    let seen = browse(&page, &["--hover", "failed"]);
    let tip = seen["hover"]["text"].as_str().unwrap();
    assert!(
        tip.contains("args [\"fails on purpose\"]") || tip.contains("args [\"stops the run\"]"),
        "{tip}"
    );
    assert!(tip.contains("error "), "{tip}");
}

#[test]
#[cfg_attr(
    not(jobfile_browser_tests),
    ignore = "set JOBFILE_TEST_BROWSER=1 (needs chromium)"
)]
fn a_map_with_failures_is_listed_a_page_at_a_time() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 3
[functions.odd]
shell = 'if [ $(($1 % 2)) = 1 ]; then echo "item $1 is odd" >&2; exit 3; fi'
[[task]]
id = "items"
function = "odd"
map = { range = [0, 120] }
"#,
    );
    let page = job.file("map.html");
    job.run(&[
        "-o",
        job.file("map.jsonl").to_str().unwrap(),
        "--report",
        page.to_str().unwrap(),
    ])
    .assert_code(1);
    let seen = browse(&page, &["--hover", "failed"]);
    assert_clean(&seen);
    let text = seen["text"].as_str().unwrap();
    assert!(
        text.contains("\n60 ok\n") && text.contains("\n60 failed\n"),
        "{text}"
    );
    assert!(text.contains("60 records · page 1 of 2"), "{text}");
    // The first page lists items 1, 3, ... 99, with the end of stderr.
    assert!(
        text.contains("items\t1\tfailed\texited with code 3\t\nitem 1 is odd\n"),
        "{text}"
    );
    assert!(
        text.contains("item 99 is odd") && !text.contains("item 101 is odd"),
        "{text}"
    );
    assert!(seen["ink"]["failed"].as_u64().unwrap() > 0);
    let tip = seen["hover"]["text"].as_str().unwrap();
    assert!(tip.starts_with("items ["), "{tip}");
    assert!(tip.contains("error exited with code 3"), "{tip}");
}

#[test]
#[cfg_attr(
    not(jobfile_browser_tests),
    ignore = "set JOBFILE_TEST_BROWSER=1 (needs chromium)"
)]
fn reproducible_results_still_show_the_failures() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("rep.jsonl");
    run_file(
        &repo_path("tests/fixtures/junit/all-statuses.toml"),
        &["-o", results.to_str().unwrap(), "--reproducible"],
    )
    .assert_code(1);
    let out = jobfile([OsStr::new("report"), results.as_os_str()]).output();
    assert!(out.status.success());
    let seen = browse(&dir.path().join("rep.html"), &[]);
    assert_clean(&seen);
    let text = seen["text"].as_str().unwrap();
    assert!(text.contains("These records carry no timing"), "{text}");
    assert!(text.contains("fails on purpose") && text.contains("timed out after 300ms"));
    assert_eq!(seen["ink"], serde_json::json!({}), "no timeline");
}

#[test]
#[cfg_attr(
    not(jobfile_browser_tests),
    ignore = "set JOBFILE_TEST_BROWSER=1 (needs chromium)"
)]
fn the_checks_see_a_request_and_a_script_error() {
    // The same checks on a page spoiled on purpose: they must not pass.
    let dir = tempfile::tempdir().unwrap();
    let page = all_statuses_page(dir.path());
    let text = std::fs::read_to_string(&page).unwrap();
    let spoiled = dir.path().join("spoiled.html");
    std::fs::write(
        &spoiled,
        text.replacen(
            "<body>\n",
            "<body>\n<img src=\"http://127.0.0.1:9/x.png\"><script>null.x</script>\n",
            1,
        ),
    )
    .unwrap();
    let seen = browse(&spoiled, &[]);
    let errors = seen["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap_or_default().contains("TypeError")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap_or_default().contains("127.0.0.1:9/x.png"))
            || !seen["requests"].as_array().unwrap().is_empty(),
        "the image load is seen: {seen}"
    );
}

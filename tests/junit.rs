//! The JUnit report as a CI server reads it, parsed back with a real XML
//! parser: a failure's text holds the error and the end of stderr (what
//! GitLab and Jenkins show as the test's details), each testcase's class
//! is its task, and map items are named after what they ran on. Checked
//! against Jenkins' junit-10.xsd when xmllint is there.

mod common;

use common::*;
use quick_xml::Reader;
use quick_xml::events::Event;

/// A testcase as read back: its attributes, its failure's message and
/// text, its system-err.
#[derive(Debug, Default)]
struct Case {
    classname: String,
    name: String,
    failure_message: Option<String>,
    failure_text: String,
    system_err: String,
}

fn cases(xml: &str) -> Vec<Case> {
    let mut reader = Reader::from_str(xml);
    let mut cases: Vec<Case> = Vec::new();
    let mut inside = String::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |k: &str| xml_attr(&e, k);
                let name = e.name().into_inner().to_string();
                match name.as_str() {
                    "testcase" => cases.push(Case {
                        classname: attr("classname").unwrap(),
                        name: attr("name").unwrap(),
                        ..Default::default()
                    }),
                    "failure" => cases.last_mut().unwrap().failure_message = attr("message"),
                    _ => {}
                }
                inside = name;
            }
            Event::Text(t) => {
                let text = t.xml10_content().into_owned();
                if let Some(case) = cases.last_mut() {
                    match inside.as_str() {
                        "failure" => case.failure_text.push_str(&text),
                        "system-err" => case.system_err.push_str(&text),
                        _ => {}
                    }
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => match &*r {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        _ => "'".into(),
                    },
                };
                if let Some(case) = cases.last_mut() {
                    match inside.as_str() {
                        "failure" => case.failure_text.push_str(&c),
                        "system-err" => case.system_err.push_str(&c),
                        _ => {}
                    }
                }
            }
            Event::End(_) => inside.clear(),
            _ => {}
        }
    }
    cases
}

const MATRIX: &str = r#"
version = 1
name = "matrix"
[functions.check]
shell = '''
i=0; while [ $i -lt 30 ]; do echo "noise $i" >&2; i=$((i+1)); done
if [ "$JOBFILE_ARG_DB" = mysql ]; then echo "AssertionError: 3 != 4 <on> $JOBFILE_ARG_PYTHON" >&2; exit 1; fi
'''
[functions.read]
shell = 'echo "read $1"'
[[task]]
id = "tests"
function = "check"
map = { product = { python = ["3.11", "3.12"], db = ["pg", "mysql"] } }
[[task]]
id = "files"
function = "read"
map = { glob = "data/*.csv" }
[[task]]
id = "build"
function = "read"
args = ["x"]
"#;

fn junit() -> String {
    let job = Job::new(MATRIX);
    job.write("data/東京.csv", "");
    job.write("data/b.csv", "");
    let out = job.run_from(
        job.dir.path(),
        &["--format", "junit", "--reproducible", "-o", "report.xml"],
    );
    out.assert_code(1);
    std::fs::read_to_string(job.file("report.xml")).unwrap()
}

#[test]
fn failures_hold_the_error_and_the_end_of_stderr() {
    let xml = junit();
    let cases = cases(&xml);
    let failed = cases
        .iter()
        .find(|c| c.name == "tests[1] python=3.11 db=mysql")
        .unwrap_or_else(|| panic!("{cases:#?}"));
    assert_eq!(
        failed.failure_message.as_deref(),
        Some("exited with code 1")
    );
    assert!(
        failed
            .failure_text
            .starts_with("exited with code 1\n\nlast 20 lines of stderr:\n"),
        "{:?}",
        failed.failure_text
    );
    assert!(
        failed
            .failure_text
            .ends_with("noise 29\nAssertionError: 3 != 4 <on> 3.11"),
        "{:?}",
        failed.failure_text
    );
    assert!(!failed.failure_text.contains("noise 10\n"), "only the tail");
    // All of stderr is still in system-err.
    assert!(failed.system_err.starts_with("noise 0\n"));
    let ok = cases
        .iter()
        .find(|c| c.name == "tests[0] python=3.11 db=pg")
        .unwrap();
    assert_eq!(ok.failure_message, None);
}

#[test]
fn classnames_are_tasks_and_names_name_map_items() {
    let xml = junit();
    assert!(
        xml.contains("<testsuite name=\"matrix\""),
        "the job is the suite"
    );
    let cases = cases(&xml);
    let names: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (c.classname.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("tests", "tests[0] python=3.11 db=pg"),
            ("tests", "tests[1] python=3.11 db=mysql"),
            ("tests", "tests[2] python=3.12 db=pg"),
            ("tests", "tests[3] python=3.12 db=mysql"),
            ("files", "files[0] data/b.csv"),
            ("files", "files[1] data/東京.csv"),
            ("build", "build"),
        ]
    );
    assert_valid_junit(&xml);
}

#[test]
fn text_and_live_name_map_items_in_a_pipe_too() {
    let job = Job::new(MATRIX);
    job.write(
        "data/a-rather-long-file-name-for-a-data-set-that-is-not-cut.csv",
        "",
    );
    let out = job.run(&["--format", "text", "--reproducible", "--live"]);
    out.assert_code(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[1].starts_with("failed     tests[1] python=3.11 db=mysql  exited with code 1 — AssertionError: 3 != 4 <on> 3.11"), "{}", out.stdout);
    assert!(
        lines[4].starts_with(
            "ok         files[0] data/a-rather-long-file-name-for-a-data-set-that-is-not-cut.csv  read data/"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("[tests[3] python=3.12 db=mysql]! AssertionError"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "[files[0] data/a-rather-long-file-name-for-a-data-set-that-is-not-cut.csv] read data/"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[build] read x"), "{}", out.stderr);
    // The closing list, on stderr, names them too.
    assert!(
        out.stderr.contains(
            "2 records not ok:\n  failed    tests[1] python=3.11 db=mysql: exited with code 1\n"
        ),
        "{}",
        out.stderr
    );
}

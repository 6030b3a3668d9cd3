//! Python functions that cannot be used: what `jobfile check` finds before
//! anything runs (a module that cannot be found, a bad `MODULE:NAME`,
//! `returns` on a Python function, a missing or old interpreter), that it
//! finds them without running a module, and what a run records for what
//! only a run can find (an import that raises or exits, a NAME that is not
//! there or not callable).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::json;

/// A job whose Python files sit beside it.
fn py_job(toml: &str, files: &[(&str, &str)]) -> Job {
    let job = Job::new(toml);
    for (name, text) in files {
        job.write(name, text);
    }
    job
}

/// The `error:` headlines, each with the `file:line:col` under it.
fn errors(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(message) = line.strip_prefix("error: ") else {
            continue;
        };
        let Some(place) = lines.get(i + 1).and_then(|l| l.trim().strip_prefix("--> ")) else {
            continue;
        };
        let at = place.rsplit_once("job.toml:").map_or(place, |(_, at)| at);
        found.push((at.to_owned(), message.to_owned()));
    }
    found
}

fn assert_check_fails(out: &RunOutput, expected: &[(&str, &str)]) {
    let text = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "{text}");
    let found = errors(text);
    for (at, words) in expected {
        assert!(
            found
                .iter()
                .any(|(place, message)| place == at && message.contains(words)),
            "no error at {at} saying `{words}`:\n{text}"
        );
    }
    assert_eq!(
        found.len(),
        expected.len(),
        "other errors than expected:\n{text}"
    );
}

/// Writes `imported-NAME` beside itself when it is run.
fn marking_module(name: &str) -> String {
    format!(
        "import os\nopen(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'imported-{name}'), 'w').close()\ndef work(*a):\n    return a\n"
    )
}

#[test]
fn check_is_silent_on_a_good_job_and_runs_no_module() {
    let job = py_job(
        "version = 1\n[python]\npath = [\"src\"]\n[functions.a]\npython = \"beside:work\"\n[functions.b]\npython = \"inner:work\"\n[functions.c]\npython = \"pkg.sub:work\"\n[[task]]\nfunction = \"a\"\n[[task]]\nfunction = \"b\"\n[[task]]\nfunction = \"c\"\n",
        &[
            ("beside.py", marking_module("beside").as_str()),
            ("src/inner.py", marking_module("inner").as_str()),
            ("pkg/__init__.py", marking_module("pkg").as_str()),
            ("pkg/sub.py", marking_module("sub").as_str()),
        ],
    );
    let out = job.command("check").env_remove("JOBFILE_PYTHON").output();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert!(out.stdout.is_empty());
    for name in ["beside", "inner", "pkg", "sub"] {
        let file = if name == "inner" {
            format!("src/imported-{name}")
        } else if name == "pkg" || name == "sub" {
            format!("pkg/imported-{name}")
        } else {
            format!("imported-{name}")
        };
        assert!(!job.file(&file).exists(), "check ran the module {name}");
    }
}

#[test]
fn check_reports_a_missing_module_at_its_python_key() {
    let job = py_job(
        "version = 1\n[functions.work]\npython = \"nosuch:work\"\n[functions.fine]\npython = \"here:work\"\n[functions.inpkg]\npython = \"pkg.nosuch:work\"\n[functions.notpkg]\npython = \"here.deeper:work\"\n[[task]]\nfunction = \"work\"\n[[task]]\nfunction = \"fine\"\n[[task]]\nfunction = \"inpkg\"\n[[task]]\nfunction = \"notpkg\"\n",
        &[
            ("here.py", marking_module("here").as_str()),
            ("pkg/__init__.py", marking_module("pkg").as_str()),
        ],
    );
    let out = job.command("check").env_remove("JOBFILE_PYTHON").output();
    assert_check_fails(
        &out,
        &[
            ("3:10", "nosuch"),
            ("7:10", "pkg.nosuch"),
            ("9:10", "here.deeper"),
        ],
    );
    let text = &out.stderr;
    // The line itself is shown.
    assert!(text.contains("python = \"nosuch:work\""), "{text}");
    assert!(!job.file("imported-here").exists(), "check ran here.py");
    assert!(
        !job.file("pkg/imported-pkg").exists(),
        "check ran pkg/__init__.py"
    );
}

#[test]
fn run_refuses_a_job_with_a_missing_module_and_runs_nothing() {
    let job = py_job(
        "version = 1\n[functions.work]\npython = \"nosuch:work\"\n[functions.mark]\nshell = 'touch ran'\ncwd = \".\"\n[[task]]\nfunction = \"mark\"\n[[task]]\nfunction = \"work\"\n",
        &[],
    );
    let out = job.run(&[]);
    out.assert_code(2);
    assert!(out.stderr.contains("nosuch"), "{}", out.stderr);
    assert!(out.stderr.contains(":3:10"), "{}", out.stderr);
    assert!(!job.file("ran").exists());
    assert_eq!(out.stdout, "");
}

#[test]
fn check_reports_every_bad_module_name_pair_at_once() {
    let job = py_job(
        "version = 1\n[functions.a]\npython = \"nocolon\"\n[functions.b]\npython = \"mod:\"\n[functions.c]\npython = \":name\"\n[functions.d]\npython = \"mod:1bad\"\n[functions.e]\npython = \"bad-module:f\"\n[functions.f]\npython = \"mod:a..b\"\n",
        &[("mod.py", "def f():\n    pass\n")],
    );
    let out = job.command("check").env_remove("JOBFILE_PYTHON").output();
    assert_check_fails(
        &out,
        &[
            ("3:10", "nocolon"),
            ("5:10", "is not a function name"),
            ("7:10", "is not a module name"),
            ("9:10", "1bad"),
            ("11:10", "bad-module"),
            ("13:10", "a..b"),
        ],
    );
}

#[test]
fn check_rejects_returns_on_a_python_function() {
    let job = py_job(
        "version = 1\n[functions.work]\npython = \"mod:work\"\nreturns = \"json\"\n[[task]]\nfunction = \"work\"\n",
        &[("mod.py", "def work():\n    return 1\n")],
    );
    let out = job.command("check").env_remove("JOBFILE_PYTHON").output();
    assert_check_fails(&out, &[("4:1", "`returns` on the Python function `work`")]);
}

#[test]
fn check_reports_a_missing_interpreter_at_the_python_key() {
    let job = py_job(
        "version = 1\n[python]\ninterpreter = \"/nonexistent/python3\"\n[functions.work]\npython = \"mod:work\"\n[[task]]\nfunction = \"work\"\n",
        &[("mod.py", "def work():\n    return 1\n")],
    );
    let out = job.command("check").env_remove("JOBFILE_PYTHON").output();
    assert_check_fails(&out, &[("5:10", "/nonexistent/python3")]);
    assert!(
        out.stderr.contains("named by `[python] interpreter`"),
        "{}",
        out.stderr
    );
    let text = &out.stderr;
    assert!(text.contains("help:"), "{text}");
    // And run refuses it too, before anything starts.
    let run = job.run(&[]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("/nonexistent/python3"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn check_reports_a_missing_jobfile_python_at_the_first_python_key() {
    let job = py_job(
        "version = 1\n[functions.square]\nbuiltin = \"square\"\n[functions.work]\npython = \"mod:work\"\n[[task]]\nfunction = \"work\"\n",
        &[("mod.py", "def work():\n    return 1\n")],
    );
    let out = job
        .command("check")
        .env_remove("JOBFILE_PYTHON")
        .envs(&[("JOBFILE_PYTHON", "/nonexistent")])
        .output();
    assert_check_fails(&out, &[("5:10", "/nonexistent")]);
    // `[python] interpreter` wins over the variable.
    let job2 = py_job(
        "version = 1\n[python]\ninterpreter = \"python3\"\n[functions.work]\npython = \"mod:work\"\n[[task]]\nfunction = \"work\"\n",
        &[("mod.py", "def work():\n    return 1\n")],
    );
    let out = job2
        .command("check")
        .env_remove("JOBFILE_PYTHON")
        .envs(&[("JOBFILE_PYTHON", "/nonexistent")])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
}

#[test]
fn a_job_without_python_functions_needs_no_interpreter() {
    let job = py_job(
        "version = 1\n[python]\ninterpreter = \"/nonexistent\"\n[functions.square]\nbuiltin = \"square\"\n[[task]]\nfunction = \"square\"\nargs = [3]\n",
        &[],
    );
    let out = job
        .command("check")
        .env_remove("JOBFILE_PYTHON")
        .envs(&[("JOBFILE_PYTHON", "/nonexistent")])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
}

#[test]
fn check_reports_an_interpreter_older_than_3_8_and_one_that_is_not_python() {
    // Stand-ins that answer the probe as an old Python would, or fail.
    let stand_ins = tempfile::tempdir().unwrap();
    let old = stand_ins.path().join("old-python");
    let not = stand_ins.path().join("not-python");
    std::fs::write(
        &old,
        "#!/bin/sh\necho '{\"version\": [3, 6, 15], \"missing\": {}}'\n",
    )
    .unwrap();
    std::fs::write(&not, "#!/bin/sh\necho 'this is no python' >&2\nexit 1\n").unwrap();
    for path in [&old, &not] {
        let mut perms = std::fs::metadata(path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(path, perms).unwrap();
    }
    let job_with = |interpreter: &Path| {
        py_job(
            &format!(
                "version = 1\n[python]\ninterpreter = \"{}\"\n[functions.work]\npython = \"mod:work\"\n[[task]]\nfunction = \"work\"\n",
                interpreter.display()
            ),
            &[("mod.py", "def work():\n    return 1\n")],
        )
    };
    let job = job_with(&old);
    let out = job.command("check").env_remove("JOBFILE_PYTHON").output();
    let text = &out.stderr;
    assert_check_fails(&out, &[("5:10", "3.6.15")]);
    assert!(text.contains("3.8"), "{text}");

    let job = job_with(&not);
    let out = job.command("check").env_remove("JOBFILE_PYTHON").output();
    let text = &out.stderr;
    assert_check_fails(&out, &[("5:10", "not-python")]);
    assert!(text.contains("this is no python"), "{text}");
}

// ----- what only a run finds -----

#[test]
fn an_import_that_raises_fails_every_call_with_its_error() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.broken]
python = "broken:work"
[functions.fine]
python = "fine:work"
[[task]]
id = "broken"
function = "broken"
map = [1, 2, 3]
[[task]]
id = "fine"
function = "fine"
"#,
        &[
            (
                "broken.py",
                "import os\nSETTING = os.environ['JOBFILE_NO_SUCH_SETTING']\ndef work(x):\n    return x\n",
            ),
            ("fine.py", "def work():\n    return 'fine'\n"),
        ],
    );
    // check cannot see it: the module is there.
    let checked = job.command("check").env_remove("JOBFILE_PYTHON").output();
    assert_eq!(checked.status.code(), Some(0), "{}", checked.stderr);
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let broken: Vec<&Record> = records.iter().filter(|r| r.task() == "broken").collect();
    assert_eq!(broken.len(), 3);
    for r in &broken {
        assert_eq!(r.status(), "failed", "{}", r.0);
        assert_eq!(r.error(), "KeyError: 'JOBFILE_NO_SUCH_SETTING'", "{}", r.0);
        assert_eq!(r.get("exit_code"), &json!(null));
        assert!(r.stderr().contains("broken.py\", line 2"), "{}", r.0);
        assert!(
            r.stderr()
                .ends_with("KeyError: 'JOBFILE_NO_SUCH_SETTING'\n"),
            "{}",
            r.0
        );
    }
    assert_eq!(record(&records, "fine").value(), &json!("fine"));
    out.assert_nothing_left();
}

#[test]
fn a_name_that_is_missing_or_not_callable_fails_its_calls() {
    let job = py_job(
        r#"
version = 1
[functions.missing]
python = "mod:nosuch"
[functions.value]
python = "mod:VALUE"
[functions.deep]
python = "mod:Box.nosuch"
[functions.fine]
python = "mod:work"
[[task]]
id = "missing"
function = "missing"
[[task]]
id = "value"
function = "value"
[[task]]
id = "deep"
function = "deep"
[[task]]
id = "fine"
function = "fine"
"#,
        &[(
            "mod.py",
            "VALUE = 3\nclass Box:\n    pass\ndef work():\n    return 'fine'\n",
        )],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let missing = record(&records, "missing");
    assert_eq!(missing.status(), "failed", "{}", missing.0);
    assert!(
        missing.error().starts_with("AttributeError: "),
        "{}",
        missing.0
    );
    assert!(missing.error().contains("nosuch"), "{}", missing.0);
    let value = record(&records, "value");
    assert_eq!(value.status(), "failed", "{}", value.0);
    assert!(value.error().starts_with("TypeError: "), "{}", value.0);
    assert!(value.error().contains("not callable"), "{}", value.0);
    assert!(value.error().contains("int"), "{}", value.0);
    let deep = record(&records, "deep");
    assert_eq!(deep.status(), "failed", "{}", deep.0);
    assert!(deep.error().contains("Box.nosuch"), "{}", deep.0);
    assert_eq!(record(&records, "fine").value(), &json!("fine"));
}

#[test]
fn a_module_that_exits_at_import_fails_its_calls_and_not_the_others() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.exits]
python = "exits:work"
[functions.bare]
python = "bare:work"
[functions.fine]
python = "fine:work"
[[task]]
id = "exits"
function = "exits"
map = [1, 2]
[[task]]
id = "bare"
function = "bare"
[[task]]
id = "fine"
function = "fine"
map = [1, 2]
"#,
        &[
            (
                "exits.py",
                "import sys\nsys.exit(4)\ndef work(x):\n    return x\n",
            ),
            (
                "bare.py",
                "import sys\nsys.exit()\ndef work():\n    return 1\n",
            ),
            ("fine.py", "def work(x):\n    return x * 10\n"),
        ],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    for r in records.iter().filter(|r| r.task() == "exits") {
        assert_eq!(r.status(), "failed", "{}", r.0);
        assert_eq!(r.error(), "SystemExit: 4", "{}", r.0);
    }
    let bare = record(&records, "bare");
    assert_eq!(bare.status(), "failed", "{}", bare.0);
    assert!(bare.error().starts_with("SystemExit"), "{}", bare.0);
    let fine: Vec<_> = records
        .iter()
        .filter(|r| r.task() == "fine")
        .map(|r| r.value().clone())
        .collect();
    assert_eq!(fine, [json!(10), json!(20)], "{}", show(&records));
    out.assert_nothing_left();
}

#[test]
fn a_module_that_kills_the_interpreter_at_import_crashes_its_calls_and_the_run_ends() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.dies]
python = "dies:work"
[functions.square]
builtin = "square"
[[task]]
id = "dies"
function = "dies"
map = [1, 2, 3]
[[task]]
id = "square"
function = "square"
args = [4]
"#,
        &[(
            "dies.py",
            "import os\nos._exit(7)\ndef work(x):\n    return x\n",
        )],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let dies: Vec<&Record> = records.iter().filter(|r| r.task() == "dies").collect();
    assert_eq!(dies.len(), 3, "{}", show(&records));
    for r in &dies {
        // Every interpreter that imports the module dies of it.
        assert_eq!(r.status(), "crashed", "{}", r.0);
        assert_eq!(r.get("exit_code"), &json!(7), "{}", r.0);
    }
    assert_eq!(record(&records, "square").value(), &json!(16));
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
    out.assert_nothing_left();
}

#[test]
fn what_a_module_prints_at_import_stays_out_of_the_results() {
    let job = py_job(
        r#"
version = 1
[functions.work]
python = "loud:work"
[[task]]
id = "work"
function = "work"
"#,
        &[(
            "loud.py",
            "import os\nprint('hello from the import')\nos.write(1, b'raw from the import\\n')\ndef work():\n    return 'worked'\n",
        )],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(records.len(), 1, "{}", out.stdout);
    let work = record(&records, "work");
    assert_eq!(work.value(), &json!("worked"));
    assert_eq!(work.stdout(), "");
    assert!(
        out.stderr.contains("hello from the import"),
        "{}",
        out.stderr
    );
}

//! Python functions (`python = "MODULE:NAME"`) through the real binary: the
//! modules are written into each test's folder beside its job file. This
//! file covers what a call sees and gives back: arguments, values, output,
//! exceptions, `env` and `cwd`, generators and streams, shared values,
//! `--live`, `--dry-run`, and Python beside builtins. Interpreters that die,
//! hang or misbehave are in `python_processes.rs`; `check` and modules that
//! cannot be used are in `python_check.rs`.

mod common;

use common::*;
use serde_json::{Value, json};

/// The number 3.14 that the seed writes (not an approximation of pi).
fn seed_num() -> Value {
    serde_json::from_str("3.14").unwrap()
}

/// A job whose Python files (`NAME.py`, or `folder/NAME.py`) sit beside it.
fn py_job(toml: &str, files: &[(&str, &str)]) -> Job {
    let job = Job::new(toml);
    for (name, text) in files {
        job.write(name, text);
    }
    job
}

/// The records of task `id`'s map items, in output order.
fn items<'a>(records: &'a [Record], id: &str) -> Vec<&'a Record> {
    records.iter().filter(|r| r.task() == id).collect()
}

fn values(records: &[&Record]) -> Vec<Value> {
    records.iter().map(|r| r.value().clone()).collect()
}

// ----- arguments and values -----

const ARGS_PY: &str = r#"
import os, sys

def show(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}

def pair(a, b="default"):
    return [a, b]

def nothing():
    return None

def tuples():
    return (1, (2, 3), "x", [(4,)])

def types(*args):
    return [type(a).__name__ for a in args]

class Box:
    @staticmethod
    def twice(x):
        return 2 * x

    @classmethod
    def name(cls):
        return cls.__name__

    class Inner:
        @staticmethod
        def deep():
            return "deep"
"#;

#[test]
fn args_kwargs_and_map_items_reach_the_function_as_python_values() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.show]
python = "args:show"
[functions.pair]
python = "args:pair"
[functions.types]
python = "args:types"
[[task]]
id = "positional"
function = "show"
args = [1, "two", [3, 4], { four = 4 }, true, 2.5]
kwargs = { k = "v", n = 7 }
[[task]]
id = "kw"
function = "pair"
kwargs = { b = "given", a = "first" }
[[task]]
id = "default"
function = "pair"
args = ["only"]
[[task]]
id = "types"
function = "types"
args = [1, 1.5, "s", true, [1], { a = 1 }]
[[task]]
id = "items"
function = "show"
map = [[1, 2], { a = 1, b = "x" }, "plain", 7, [[1, 2]], []]
"#,
        &[("args.py", ARGS_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(
        record(&records, "positional").value(),
        &json!({"args": [1, "two", [3, 4], {"four": 4}, true, 2.5], "kwargs": {"k": "v", "n": 7}})
    );
    assert_eq!(record(&records, "kw").value(), &json!(["first", "given"]));
    assert_eq!(
        record(&records, "default").value(),
        &json!(["only", "default"])
    );
    assert_eq!(
        record(&records, "types").value(),
        &json!(["int", "float", "str", "bool", "list", "dict"])
    );
    let mapped = items(&records, "items");
    assert_eq!(
        values(&mapped),
        [
            // An array is the positional args (starmap).
            json!({"args": [1, 2], "kwargs": {}}),
            // A table is the kwargs.
            json!({"args": [], "kwargs": {"a": 1, "b": "x"}}),
            // Anything else is the one argument.
            json!({"args": ["plain"], "kwargs": {}}),
            json!({"args": [7], "kwargs": {}}),
            json!({"args": [[1, 2]], "kwargs": {}}),
            json!({"args": [], "kwargs": {}}),
        ],
        "{}",
        show(&records)
    );
    let indexes: Vec<_> = mapped.iter().map(|r| r.index()).collect();
    assert_eq!(indexes, (0..6).map(Some).collect::<Vec<_>>());
    for r in &records {
        assert_eq!(r.status(), "ok", "{}", r.0);
        assert_eq!(r.get("exit_code"), &Value::Null, "{}", r.0);
        assert_eq!(r.get("signal"), &Value::Null, "{}", r.0);
        assert_eq!(r.error(), "", "{}", r.0);
    }
}

#[test]
fn none_is_null_and_tuples_are_arrays() {
    let job = py_job(
        r#"
version = 1
[functions.nothing]
python = "args:nothing"
[functions.tuples]
python = "args:tuples"
[[task]]
id = "nothing"
function = "nothing"
[[task]]
id = "tuples"
function = "tuples"
"#,
        &[("args.py", ARGS_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let nothing = record(&records, "nothing");
    assert!(nothing.has("value"), "{}", nothing.0);
    assert_eq!(nothing.value(), &Value::Null);
    assert_eq!(
        record(&records, "tuples").value(),
        &json!([1, [2, 3], "x", [[4]]])
    );
}

#[test]
fn a_dotted_name_reaches_static_and_class_methods_and_nested_classes() {
    let job = py_job(
        r#"
version = 1
[functions.twice]
python = "args:Box.twice"
[functions.name]
python = "args:Box.name"
[functions.deep]
python = "args:Box.Inner.deep"
[[task]]
id = "twice"
function = "twice"
args = [21]
[[task]]
id = "name"
function = "name"
[[task]]
id = "deep"
function = "deep"
"#,
        &[("args.py", ARGS_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(record(&records, "twice").value(), &json!(42));
    assert_eq!(record(&records, "name").value(), &json!("Box"));
    assert_eq!(record(&records, "deep").value(), &json!("deep"));
}

#[test]
fn python_path_and_the_job_folder_are_on_sys_path_whatever_the_callers_folder() {
    let job = py_job(
        r#"
version = 1
[python]
path = ["src", "more/lib"]
[functions.inside]
python = "inside:where"
[functions.deeper]
python = "deeper:where"
[functions.beside]
python = "beside:where"
[functions.package]
python = "pkg.sub:where"
[functions.paths]
python = "beside:paths"
[[task]]
id = "inside"
function = "inside"
[[task]]
id = "deeper"
function = "deeper"
[[task]]
id = "beside"
function = "beside"
[[task]]
id = "package"
function = "package"
[[task]]
id = "paths"
function = "paths"
"#,
        &[
            ("src/inside.py", "def where():\n    return 'src/inside'\n"),
            (
                "more/lib/deeper.py",
                "def where():\n    return 'more/lib/deeper'\n",
            ),
            (
                "beside.py",
                "import sys\ndef where():\n    return 'beside'\ndef paths():\n    return sys.path\n",
            ),
            ("pkg/__init__.py", ""),
            ("pkg/sub.py", "def where():\n    return __name__\n"),
        ],
    );
    // From a folder that holds none of the modules.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = job.run_from(elsewhere.path(), &[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(record(&records, "inside").value(), &json!("src/inside"));
    assert_eq!(
        record(&records, "deeper").value(),
        &json!("more/lib/deeper")
    );
    assert_eq!(record(&records, "beside").value(), &json!("beside"));
    assert_eq!(record(&records, "package").value(), &json!("pkg.sub"));
    let paths: Vec<String> = record(&records, "paths")
        .value()
        .as_array()
        .expect("sys.path is a list")
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap();
    let first: Vec<_> = paths[..3]
        .iter()
        .map(|p| canon(std::path::Path::new(p)))
        .collect();
    // `[python] path` first, in its order, then the job file's folder.
    let want: Vec<_> = [
        job.file("src"),
        job.file("more/lib"),
        job.dir.path().to_owned(),
    ]
    .iter()
    .map(|f| canon(f))
    .collect();
    assert_eq!(first, want, "sys.path: {paths:?}");
    // Not the working folder (""): a call's `cwd` must not change imports.
    assert!(!paths.iter().any(|p| p.is_empty()), "sys.path: {paths:?}");
}

// ----- values that are not JSON -----

#[test]
fn a_value_that_is_not_json_fails_the_call_and_names_its_type() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.bad]
python = "values:bad"
[functions.pid]
python = "values:pid"
[[task]]
id = "before"
function = "pid"
[[task]]
id = "bad"
function = "bad"
map = ["set", "object", "nan", "inf", "int-keys", "nested", "bytes"]
[[task]]
id = "after"
function = "pid"
"#,
        &[(
            "values.py",
            r#"
import os

class Thing:
    pass

def bad(kind):
    print("making", kind)
    return {
        "set": lambda: {1, 2},
        "object": lambda: Thing(),
        "nan": lambda: float("nan"),
        "inf": lambda: [1.0, float("inf")],
        "int-keys": lambda: {1: "one"},
        "nested": lambda: {"ok": [1, {"deep": {3}}]},
        "bytes": lambda: b"raw",
    }[kind]()

def pid():
    return os.getpid()
"#,
        )],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    let bad = items(&records, "bad");
    assert_eq!(bad.len(), 7, "{}", show(&records));
    let expected = [
        ("set", "set"),
        ("object", "Thing"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("int-keys", "int"),
        ("nested", "set"),
        ("bytes", "bytes"),
    ];
    for (r, (kind, named)) in bad.iter().zip(expected) {
        assert_eq!(r.get("args"), &json!([kind]), "{}", r.0);
        assert_eq!(r.status(), "failed", "{}", r.0);
        assert!(
            r.error().contains(named),
            "{kind}: the error does not name `{named}`: {}",
            r.0
        );
        assert!(r.error().contains("JSON"), "{}", r.0);
        assert_eq!(r.value(), &Value::Null, "{}", r.0);
        assert_eq!(r.get("exit_code"), &Value::Null, "{}", r.0);
        assert_eq!(r.get("signal"), &Value::Null, "{}", r.0);
        // What it printed before returning is still its output.
        assert_eq!(r.stdout(), format!("making {kind}\n"), "{}", r.0);
    }
    // Not a crash: the interpreter served on.
    let before = record(&records, "before");
    let after = record(&records, "after");
    assert_eq!(after.status(), "ok");
    assert_eq!(before.value(), after.value(), "{}", show(&records));
    assert_eq!(before.worker(), after.worker());
}

// ----- output -----

const TALK_PY: &str = r#"
import ctypes, os, subprocess, sys, time

def talk(tag):
    print("print", tag, flush=True)
    os.write(1, b"raw " + tag.encode() + b"\n")
    subprocess.run(["echo", "child " + tag], check=True)
    libc = ctypes.CDLL(None)
    libc.printf(b"c-level %s\n", tag.encode())
    libc.fflush(None)
    print("err", tag, file=sys.stderr, flush=True)
    os.write(2, b"raw err " + tag.encode() + b"\n")
    subprocess.run(["sh", "-c", "echo child err " + tag + " >&2"], check=True)
    # Left in Python's buffer: flushed at the end of the call.
    print("last", tag, end="")
    return tag

def chatty(tag, n):
    for i in range(n):
        print(tag, i)
        if i % 50 == 0:
            time.sleep(0.001)
    return n
"#;

#[test]
fn stdout_and_stderr_are_captured_at_the_descriptor_level_call_by_call() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.talk]
python = "talk:talk"
[[task]]
id = "talk"
function = "talk"
map = ["A", "B", "C"]
"#,
        &[("talk.py", TALK_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let talk = items(&records, "talk");
    assert_eq!(talk.len(), 3);
    for (r, tag) in talk.iter().zip(["A", "B", "C"]) {
        assert_eq!(r.value(), &json!(tag));
        assert_eq!(
            r.stdout(),
            format!("print {tag}\nraw {tag}\nchild {tag}\nc-level {tag}\nlast {tag}"),
            "{}",
            r.0
        );
        assert_eq!(
            r.stderr(),
            format!("err {tag}\nraw err {tag}\nchild err {tag}\n"),
            "{}",
            r.0
        );
    }
    // One interpreter served the three calls.
    assert_eq!(talk[0].worker(), talk[2].worker());
}

#[test]
fn the_output_of_calls_on_one_worker_or_many_is_never_mixed() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.chatty]
python = "talk:chatty"
[[task]]
id = "chatty"
function = "chatty"
map = [["a", 400], ["b", 400], ["c", 400], ["d", 400], ["e", 400], ["f", 400]]
"#,
        &[("talk.py", TALK_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let chatty = items(&records, "chatty");
    assert_eq!(chatty.len(), 6);
    for r in &chatty {
        let tag = r.get("args")[0].as_str().unwrap().to_owned();
        let expected: String = (0..400).map(|i| format!("{tag} {i}\n")).collect();
        assert_eq!(r.stdout(), expected, "{tag}");
        assert_eq!(r.value(), &json!(400));
    }
}

#[test]
fn live_copies_a_calls_lines_to_stderr_with_its_id() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.talk]
python = "talk:talk"
[[task]]
id = "first"
function = "talk"
args = ["one"]
[[task]]
id = "items"
function = "talk"
map = ["x"]
"#,
        &[("talk.py", TALK_PY)],
    );
    let out = job.run(&["--live"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    for line in [
        "print one",
        "raw one",
        "child one",
        "err one",
        "raw err one",
        "child err one",
        "last one",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("[first]") && l.ends_with(line)),
            "no live line `{line}` for first:\n{}",
            out.stderr
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[items") && l.ends_with("print x")),
        "{}",
        out.stderr
    );
    // The records are as without --live.
    let records = out.records();
    assert_eq!(
        record(&records, "first").stdout(),
        "print one\nraw one\nchild one\nc-level one\nlast one"
    );
    assert!(!out.stdout.contains("[first]"));
}

// ----- exceptions -----

const RAISE_PY: &str = r#"
import os, sys

class MyError(Exception):
    pass

def div(a, b):
    return a / b

def noisy():
    print("on stdout")
    print("a warning", file=sys.stderr)
    raise MyError("it went wrong: 42")

def blank():
    raise RuntimeError()

def sysexit(code):
    sys.exit(code)

def interrupt():
    raise KeyboardInterrupt

def pid():
    return os.getpid()
"#;

#[test]
fn an_exception_fails_the_call_with_type_and_message_and_a_traceback_at_the_end_of_stderr() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.div]
python = "raising:div"
[functions.noisy]
python = "raising:noisy"
[functions.blank]
python = "raising:blank"
[[task]]
id = "div"
function = "div"
args = [1, 0]
[[task]]
id = "noisy"
function = "noisy"
[[task]]
id = "blank"
function = "blank"
[[task]]
id = "fine"
function = "div"
args = [6, 4]
"#,
        &[("raising.py", RAISE_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(ids(&records), ["div", "noisy", "blank", "fine"]);

    let div = record(&records, "div");
    assert_eq!(div.status(), "failed", "{}", div.0);
    assert_eq!(div.error(), "ZeroDivisionError: division by zero");
    assert_eq!(div.get("exit_code"), &Value::Null);
    assert_eq!(div.get("signal"), &Value::Null);
    assert_eq!(div.value(), &Value::Null);
    let stderr = div.stderr();
    assert!(
        stderr.starts_with("Traceback (most recent call last):\n"),
        "{stderr}"
    );
    assert!(stderr.contains("raising.py\", line 8, in div"), "{stderr}");
    assert!(stderr.contains("return a / b"), "{stderr}");
    assert!(
        stderr.ends_with("ZeroDivisionError: division by zero\n"),
        "{stderr}"
    );

    let noisy = record(&records, "noisy");
    assert_eq!(noisy.status(), "failed");
    assert_eq!(noisy.error(), "MyError: it went wrong: 42");
    assert_eq!(noisy.stdout(), "on stdout\n");
    let stderr = noisy.stderr();
    assert!(
        stderr.starts_with("a warning\nTraceback (most recent call last):\n"),
        "the traceback is not after what the call wrote: {stderr}"
    );
    assert!(stderr.contains("in noisy"), "{stderr}");
    assert!(stderr.ends_with("MyError: it went wrong: 42\n"), "{stderr}");

    let blank = record(&records, "blank");
    assert_eq!(blank.status(), "failed");
    assert_eq!(blank.error(), "RuntimeError");

    assert_eq!(record(&records, "fine").value(), &json!(1.5));
}

#[test]
fn system_exit_and_keyboard_interrupt_fail_the_call_and_the_interpreter_serves_on() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.sysexit]
python = "raising:sysexit"
[functions.interrupt]
python = "raising:interrupt"
[functions.pid]
python = "raising:pid"
[[task]]
id = "pid-0"
function = "pid"
[[task]]
id = "exit-3"
function = "sysexit"
args = [3]
[[task]]
id = "pid-1"
function = "pid"
[[task]]
id = "exit-0"
function = "sysexit"
args = [0]
[[task]]
id = "exit-text"
function = "sysexit"
args = ["bye"]
[[task]]
id = "interrupt"
function = "interrupt"
[[task]]
id = "pid-2"
function = "pid"
"#,
        &[("raising.py", RAISE_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(
        ids(&records),
        [
            "pid-0",
            "exit-3",
            "pid-1",
            "exit-0",
            "exit-text",
            "interrupt",
            "pid-2"
        ]
    );
    let exit3 = record(&records, "exit-3");
    assert_eq!(exit3.status(), "failed", "{}", exit3.0);
    assert_eq!(exit3.error(), "SystemExit: 3");
    assert_eq!(exit3.get("exit_code"), &Value::Null, "{}", exit3.0);
    assert!(exit3.stderr().ends_with("SystemExit: 3\n"), "{}", exit3.0);
    // sys.exit(0) in a call is no success either: the call did not return.
    let exit0 = record(&records, "exit-0");
    assert_eq!(exit0.status(), "failed", "{}", exit0.0);
    assert!(exit0.error().starts_with("SystemExit"), "{}", exit0.0);
    assert_eq!(record(&records, "exit-text").error(), "SystemExit: bye");
    let interrupt = record(&records, "interrupt");
    assert_eq!(interrupt.status(), "failed", "{}", interrupt.0);
    assert_eq!(interrupt.error(), "KeyboardInterrupt");
    assert_eq!(interrupt.get("signal"), &Value::Null);
    // One interpreter throughout.
    let pids: Vec<&Value> = ["pid-0", "pid-1", "pid-2"]
        .iter()
        .map(|id| record(&records, id).value())
        .collect();
    assert!(pids[0].is_i64(), "{}", show(&records));
    assert_eq!(pids[0], pids[1], "{}", show(&records));
    assert_eq!(pids[0], pids[2], "{}", show(&records));
    let workers: Vec<i64> = records.iter().map(|r| r.worker()).collect();
    assert!(workers.iter().all(|w| *w == workers[0]), "{workers:?}");
}

// ----- env and cwd -----

#[test]
fn env_and_cwd_hold_for_one_call_and_are_put_back_after_it() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.env]
python = "envcwd:env"
[functions.cwd]
python = "envcwd:cwd"
[functions.always]
python = "envcwd:env"
env = { FROM_FUNCTION = "f" }
[[task]]
id = "with-env"
function = "env"
args = ["JOBFILE_PY_TEST_VAR", "HOME"]
env = { JOBFILE_PY_TEST_VAR = "set for this call", HOME = "/elsewhere" }
[[task]]
id = "without-env"
function = "env"
args = ["JOBFILE_PY_TEST_VAR", "HOME"]
[[task]]
id = "function-env"
function = "always"
args = ["FROM_FUNCTION"]
[[task]]
id = "after-function-env"
function = "env"
args = ["FROM_FUNCTION"]
[[task]]
id = "with-cwd"
function = "cwd"
cwd = "sub"
[[task]]
id = "without-cwd"
function = "cwd"
"#,
        &[
            (
                "envcwd.py",
                r#"
import os, subprocess

def env(*names):
    seen = {n: os.environ.get(n) for n in names}
    # A child process sees the same environment.
    child = subprocess.run(["sh", "-c", "echo \"${%s-unset}\"" % names[0]],
                           capture_output=True, text=True).stdout.strip()
    return [seen, child]

def cwd():
    with open("here.txt") as f:
        return [os.getcwd(), f.read()]
"#,
            ),
            ("sub/here.txt", "in sub"),
            ("here.txt", "in the job folder"),
        ],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let home = std::env::var("HOME").ok();
    assert_eq!(
        record(&records, "with-env").value(),
        &json!([{"JOBFILE_PY_TEST_VAR": "set for this call", "HOME": "/elsewhere"}, "set for this call"])
    );
    assert_eq!(
        record(&records, "without-env").value(),
        &json!([{"JOBFILE_PY_TEST_VAR": null, "HOME": home}, "unset"]),
        "{}",
        show(&records)
    );
    assert_eq!(
        record(&records, "function-env").value(),
        &json!([{"FROM_FUNCTION": "f"}, "f"])
    );
    assert_eq!(
        record(&records, "after-function-env").value(),
        &json!([{"FROM_FUNCTION": null}, "unset"])
    );
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap();
    let with = record(&records, "with-cwd").value();
    assert_eq!(
        canon(std::path::Path::new(with[0].as_str().unwrap())),
        canon(&job.file("sub"))
    );
    assert_eq!(with[1], json!("in sub"));
    let without = record(&records, "without-cwd").value();
    assert_eq!(
        canon(std::path::Path::new(without[0].as_str().unwrap())),
        canon(job.dir.path()),
        "the working folder was not put back: {}",
        show(&records)
    );
    assert_eq!(without[1], json!("in the job folder"));
    // One interpreter saw all of it.
    let workers: Vec<i64> = records.iter().map(|r| r.worker()).collect();
    assert!(workers.iter().all(|w| *w == workers[0]), "{workers:?}");
}

// ----- generators and streams -----

const GEN_PY: &str = r#"
import time

def count(n):
    for i in range(n):
        yield i

def write():
    for value in ["A", "B", "C"]:
        print("Put %s to queue..." % value, flush=True)
        yield value
        time.sleep(0.3)

def pairs():
    yield [1, 2]
    yield (3, 4)
    yield {"a": 5, "b": 6}
    yield 7

def add(a, b=100):
    return a + b

def read(value):
    return "Get %s from queue." % value

def empty():
    return
    yield

def broken():
    yield 1
    yield 2
    raise ValueError("no more")

def bad_item():
    yield 1
    yield {2, 3}
"#;

#[test]
fn a_generators_value_is_the_array_of_what_it_yields() {
    let job = py_job(
        r#"
version = 1
[functions.count]
python = "gen:count"
[functions.empty]
python = "gen:empty"
[functions.pairs]
python = "gen:pairs"
[functions.broken]
python = "gen:broken"
[functions.bad_item]
python = "gen:bad_item"
[[task]]
id = "count"
function = "count"
args = [4]
[[task]]
id = "empty"
function = "empty"
[[task]]
id = "pairs"
function = "pairs"
[[task]]
id = "broken"
function = "broken"
[[task]]
id = "bad-item"
function = "bad_item"
"#,
        &[("gen.py", GEN_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(record(&records, "count").value(), &json!([0, 1, 2, 3]));
    assert_eq!(record(&records, "empty").value(), &json!([]));
    assert_eq!(
        record(&records, "pairs").value(),
        &json!([[1, 2], [3, 4], {"a": 5, "b": 6}, 7])
    );
    let broken = record(&records, "broken");
    assert_eq!(broken.status(), "failed", "{}", broken.0);
    assert_eq!(broken.error(), "ValueError: no more");
    let bad = record(&records, "bad-item");
    assert_eq!(bad.status(), "failed", "{}", bad.0);
    assert!(bad.error().contains("set"), "{}", bad.0);
}

#[test]
fn a_generator_feeds_a_stream_map_while_it_still_runs() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.write]
python = "gen:write"
[functions.read]
python = "gen:read"
[[task]]
id = "writer"
function = "write"
[[task]]
id = "reader"
function = "read"
map = { stream = "writer" }
"#,
        &[("gen.py", GEN_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.task_records();
    assert_eq!(
        ids(&records),
        ["writer", "reader", "reader", "reader"],
        "{}",
        show(&records)
    );
    let writer = &records[0];
    assert_eq!(writer.value(), &json!(["A", "B", "C"]));
    // A Python producer's items are its values, not its lines.
    assert_eq!(
        writer.stdout(),
        "Put A to queue...\nPut B to queue...\nPut C to queue...\n"
    );
    let readers: Vec<&Record> = records[1..].iter().collect();
    assert_eq!(
        values(&readers),
        [
            json!("Get A from queue."),
            json!("Get B from queue."),
            json!("Get C from queue.")
        ]
    );
    for (i, r) in readers.iter().enumerate() {
        assert_eq!(r.index(), Some(i as u64));
    }
    let w = writer.interval();
    assert!(
        readers[0].interval().start < w.end && readers[1].interval().start < w.end,
        "the consumers waited for the producer to end:\n{}",
        show(&records)
    );
}

#[test]
fn a_yielded_array_is_a_consumers_positional_args_and_a_table_its_kwargs() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.pairs]
python = "gen:pairs"
[functions.add]
python = "gen:add"
[[task]]
id = "pairs"
function = "pairs"
[[task]]
id = "sums"
function = "add"
map = { stream = "pairs" }
"#,
        &[("gen.py", GEN_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let sums = items(&records, "sums");
    assert_eq!(values(&sums), [json!(3), json!(7), json!(11), json!(107)]);
    assert_eq!(sums[0].get("args"), &json!([1, 2]));
    assert_eq!(sums[2].get("kwargs"), &json!({"a": 5, "b": 6}));
    assert_eq!(sums[3].get("args"), &json!([7]));
}

#[test]
fn a_producer_that_raises_still_feeds_what_it_yielded() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.broken]
python = "gen:broken"
[functions.read]
python = "gen:read"
[[task]]
id = "broken"
function = "broken"
[[task]]
id = "reader"
function = "read"
map = { stream = "broken" }
[[task]]
id = "after"
function = "read"
args = [{ result = "reader" }]
"#,
        &[("gen.py", GEN_PY)],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(record(&records, "broken").status(), "failed");
    let readers = items(&records, "reader");
    assert_eq!(
        values(&readers),
        [json!("Get 1 from queue."), json!("Get 2 from queue.")],
        "{}",
        show(&records)
    );
    assert_eq!(record(&records, "after").status(), "skipped");
}

// ----- shared values -----

#[test]
fn jobfile_shared_is_atomic_across_concurrent_calls() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 4
[shared]
count = 0
num = 0.0
arr = [0, 1, 2]
log = []
seen = {}
[functions.bump]
python = "sharing:bump"
[functions.note]
python = "sharing:note"
[functions.setv]
python = "sharing:setv"
[functions.get]
python = "sharing:get"
[[task]]
id = "bump"
function = "bump"
map = [200, 200, 200, 200, 200, 200, 200, 200]
[[task]]
id = "note"
function = "note"
map = { range = [0, 20] }
[[task]]
id = "setv"
function = "setv"
[[task]]
id = "get"
function = "get"
after = ["bump", "note", "setv"]
"#,
        &[(
            "sharing.py",
            r#"
import jobfile

def bump(n):
    last = None
    for _ in range(n):
        last = jobfile.shared.add("count", 1)
    return last

def note(x):
    length = jobfile.shared.append("log", x)
    size = jobfile.shared.put("seen", str(x), x * x)
    return [length, size]

def setv():
    return [jobfile.shared.set("num", 3.14), jobfile.shared.set("arr[0]", 5)]

def get():
    return [jobfile.shared.get("count"), jobfile.shared.get("arr[0]"), jobfile.shared.get("num")]
"#,
        )],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    let last = records.last().expect("records");
    assert_eq!(last.task(), "@shared");
    let shared = last.value();
    assert_eq!(shared["count"], json!(1600), "{}", last.0);
    assert_eq!(shared["num"], seed_num());
    assert_eq!(shared["arr"], json!([5, 1, 2]));
    let mut log: Vec<i64> = shared["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    log.sort();
    assert_eq!(log, (0..20).collect::<Vec<_>>());
    let seen = shared["seen"].as_object().unwrap();
    assert_eq!(seen.len(), 20);
    for x in 0..20i64 {
        assert_eq!(seen[&x.to_string()], json!(x * x));
    }
    // Return values as the builtins': add gives the new number, append the
    // list's length, put the dict's size, set the value.
    let mut bumps: Vec<i64> = items(&records, "bump")
        .iter()
        .map(|r| r.value().as_i64().unwrap())
        .collect();
    bumps.sort();
    assert_eq!(bumps[7], 1600, "the last add did not see 1600");
    for r in items(&records, "note") {
        let v = r.value().as_array().unwrap();
        assert!((1..=20).contains(&v[0].as_i64().unwrap()), "{}", r.0);
        assert!((1..=20).contains(&v[1].as_i64().unwrap()), "{}", r.0);
    }
    assert_eq!(record(&records, "setv").value(), &json!([seed_num(), 5]));
    assert_eq!(
        record(&records, "get").value(),
        &json!([1600, 5, seed_num()])
    );
}

#[test]
fn a_bad_shared_operation_raises_in_the_call() {
    let job = py_job(
        r#"
version = 1
[shared]
count = 0
[functions.wrong]
python = "sharing:wrong"
[[task]]
id = "unknown"
function = "wrong"
args = ["nosuch"]
[[task]]
id = "not-a-list"
function = "wrong"
args = ["count"]
"#,
        &[(
            "sharing.py",
            r#"
import jobfile

def wrong(name):
    try:
        jobfile.shared.append(name, 1)
    except Exception as e:
        return [type(e).__name__, str(e)]
    return "no error"
"#,
        )],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    for id in ["unknown", "not-a-list"] {
        let v = record(&records, id).value();
        assert_eq!(v[0], json!("RuntimeError"), "{id}: {v}");
        assert!(!v[1].as_str().unwrap().is_empty(), "{id}: {v}");
    }
    assert_eq!(
        records.last().unwrap().value(),
        &json!({"count": 0}),
        "a failed operation changed a value"
    );
}

// ----- beside builtins, --dry-run -----

#[test]
fn a_builtin_and_a_python_function_share_a_pool_and_each_others_values() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.square]
builtin = "square"
[functions.cube]
python = "mixed:cube"
[functions.total]
python = "mixed:total"
[functions.echo]
builtin = "echo"
[[task]]
id = "squares"
function = "square"
map = { range = [0, 5] }
[[task]]
id = "cubes"
function = "cube"
map = { result = "squares" }
[[task]]
id = "total"
function = "total"
args = [{ result = "cubes" }]
[[task]]
id = "echo"
function = "echo"
args = [{ result = "total" }]
"#,
        &[(
            "mixed.py",
            "def cube(x):\n    return x ** 3\n\ndef total(xs):\n    return sum(xs)\n",
        )],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(
        values(&items(&records, "squares")),
        [json!(0), json!(1), json!(4), json!(9), json!(16)]
    );
    assert_eq!(
        values(&items(&records, "cubes")),
        [json!(0), json!(1), json!(64), json!(729), json!(4096)]
    );
    assert_eq!(record(&records, "total").value(), &json!(4890));
    assert_eq!(record(&records, "echo").value(), &json!([4890]));
}

#[test]
fn dry_run_shows_each_call_with_its_values_and_imports_nothing() {
    let job = py_job(
        r#"
version = 1
[functions.work]
python = "dry:work"
[functions.twice]
python = "dry:Box.twice"
[[task]]
id = "one"
function = "work"
args = [1, "two", [3]]
kwargs = { flag = true }
[[task]]
id = "items"
function = "work"
map = [[1, 2], { a = "x" }, "plain"]
[[task]]
id = "method"
function = "twice"
args = [{ result = "one" }]
"#,
        &[(
            "dry.py",
            "open('imported', 'w').close()\ndef work(*a, **k):\n    return a\nclass Box:\n    @staticmethod\n    def twice(x):\n        return 2 * x\n",
        )],
    );
    let out = job.run(&["--dry-run"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            r#"one: dry:work(1, "two", [3], flag=true)"#,
            r#"items[0]: dry:work(1, 2)"#,
            r#"items[1]: dry:work(a="x")"#,
            r#"items[2]: dry:work("plain")"#,
            r#"method: dry:Box.twice("<result of one>")"#,
        ],
        "{}",
        out.stdout
    );
    assert!(
        !job.file("imported").exists(),
        "--dry-run imported the module"
    );
}

// ----- the interpreter, text -----

#[test]
fn the_interpreter_of_python_settings_is_the_one_that_runs_the_calls() {
    // A stand-in that notes each start, then runs python3.
    let job = py_job(
        r#"
version = 1
[python]
interpreter = "INTERPRETER"
[pool]
processes = 2
[functions.exe]
python = "who:exe"
[[task]]
id = "exe"
function = "exe"
map = [1, 2, 3]
"#,
        &[(
            "who.py",
            "import os\ndef exe(x):\n    return os.environ.get('JOBFILE_PY_WRAPPED')\n",
        )],
    );
    let wrapper = job.file("wrapped-python");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho started >> '{}'\nJOBFILE_PY_WRAPPED=yes exec python3 \"$@\"\n",
            job.file("starts").display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();
    let text = std::fs::read_to_string(&job.path)
        .unwrap()
        .replace("INTERPRETER", wrapper.to_str().unwrap());
    std::fs::write(&job.path, text).unwrap();
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    for r in items(&records, "exe") {
        assert_eq!(r.value(), &json!("yes"), "{}", r.0);
    }
    let starts = std::fs::read_to_string(job.file("starts")).unwrap();
    assert!(!starts.is_empty());
}

#[test]
fn text_beyond_ascii_goes_in_and_out_unchanged() {
    let job = py_job(
        r#"
version = 1
[functions.echo]
python = "text:echo"
[[task]]
id = "echo"
function = "echo"
args = ["héllo ✓ 日本"]
kwargs = { "ключ" = "значение" }
"#,
        &[(
            "text.py",
            "import sys\ndef echo(s, **kw):\n    print(s)\n    print(list(kw), file=sys.stderr)\n    return [s, kw]\n",
        )],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let r = record(&out.records(), "echo").clone();
    assert_eq!(
        r.value(),
        &json!(["héllo ✓ 日本", {"ключ": "значение"}]),
        "{}",
        r.0
    );
    assert_eq!(r.stdout(), "héllo ✓ 日本\n");
    assert_eq!(r.stderr(), "['ключ']\n");
}

#[test]
fn integers_beyond_64_bits_fail_the_call_instead_of_being_rounded() {
    let job = py_job(
        r#"
version = 1
[functions.big]
python = "ints:big"
[functions.edge]
python = "ints:edge"
[[task]]
id = "big"
function = "big"
[[task]]
id = "edge"
function = "edge"
"#,
        &[(
            "ints.py",
            "def big():\n    return {'n': [2 ** 70]}\ndef edge():\n    return [2 ** 64 - 1, -(2 ** 63)]\n",
        )],
    );
    let out = job.run(&[]);
    let records = out.records();
    let big = record(&records, "big");
    assert_eq!(big.status(), "failed", "{}", big.0);
    let error = big.error();
    assert!(
        error.starts_with("TypeError: ") && error.contains("beyond 64 bits"),
        "{error}"
    );
    assert!(error.contains("['n'][0]"), "{error}");
    let edge = record(&records, "edge");
    assert_eq!(edge.status(), "ok", "{}", edge.0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("\"task\":\"edge\""))
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.contains("\"value\":[18446744073709551615,-9223372036854775808]"),
        "{line}"
    );
}

#[test]
fn python_callbacks_get_the_value_or_the_error_message() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.work]
python = "cb:work"
[functions.on_ok]
python = "cb:on_ok"
[functions.on_err]
python = "cb:on_err"
[[task]]
id = "good"
function = "work"
args = [21]
callback = "on_ok"
error_callback = "on_err"
[[task]]
id = "bad"
function = "work"
args = [-1]
callback = "on_ok"
error_callback = "on_err"
"#,
        &[(
            "cb.py",
            r#"
def work(x):
    if x < 0:
        raise ValueError("negative: %d" % x)
    return x * 2

def on_ok(v):
    print("callback got", v)
    return ["ok", v]

def on_err(e):
    return ["error", e]
"#,
        )],
    );
    let out = job.run(&[]);
    out.assert_code(1);
    let records = out.records();
    assert_eq!(
        ids(&records),
        ["good", "good:callback", "bad", "bad:error_callback"]
    );
    let callback = record(&records, "good:callback");
    assert_eq!(callback.get("args"), &json!([42]));
    assert_eq!(callback.value(), &json!(["ok", 42]));
    assert_eq!(callback.stdout(), "callback got 42\n");
    let error_callback = record(&records, "bad:error_callback");
    assert_eq!(
        error_callback.value(),
        &json!(["error", "ValueError: negative: -1"])
    );
}

#[test]
fn a_command_consumes_the_values_a_python_generator_yields() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 2
[functions.gen]
python = "values:gen"
[functions.sh]
shell = 'echo "got $1 $2 [$JOBFILE_ARG_K]"'
[[task]]
id = "gen"
function = "gen"
[[task]]
id = "consume"
function = "sh"
map = { stream = "gen" }
"#,
        &[(
            "values.py",
            "def gen():\n    yield 'A'\n    yield 1\n    yield [2, 'b']\n    yield {'k': 'v'}\n",
        )],
    );
    let out = job.run(&[]);
    out.assert_code(0);
    let records = out.records();
    assert_eq!(
        values(&items(&records, "consume")),
        [
            json!("got A  []"),
            json!("got 1  []"),
            json!("got 2 b []"),
            json!("got   [v]")
        ],
        "{}",
        show(&records)
    );
}

#[test]
fn resume_reruns_only_the_failed_calls_of_a_python_map() {
    let job = py_job(
        r#"
version = 1
[functions.work]
python = "resumed:work"
[[task]]
id = "m"
function = "work"
map = [1, 2, 3, 4]
"#,
        &[(
            "resumed.py",
            r#"
import os

def work(x):
    with open("calls.log", "a") as f:
        f.write("%d\n" % x)
    if x == 3 and not os.path.exists("fixed"):
        raise ValueError("not yet")
    return x * 10
"#,
        )],
    );
    let calls = |job: &Job| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_to_string(job.file("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    let first = job.run_from(job.dir.path(), &["-o", "results.jsonl"]);
    first.assert_code(1);
    assert_eq!(calls(&job), ["1", "2", "3", "4"]);
    std::fs::remove_file(job.file("calls.log")).unwrap();
    job.write("fixed", "");
    let second = job.run_from(job.dir.path(), &["-o", "results.jsonl", "--resume"]);
    second.assert_code(0);
    assert_eq!(calls(&job), ["3"], "more than the failed item ran again");
    let records = parse_jsonl(&std::fs::read_to_string(job.file("results.jsonl")).unwrap());
    assert_eq!(
        values(&items(&records, "m")),
        [json!(10), json!(20), json!(30), json!(40)]
    );
}

#[test]
fn jobfile_shared_works_from_threads_inside_a_call() {
    // Three tries of a race that hangs most of them.
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[shared]
count = 0
[functions.bump]
python = "threads:bump"
timeout = "5s"
[[task]]
id = "bump"
function = "bump"
map = [400, 400, 400]
"#,
        &[(
            "threads.py",
            r#"
import jobfile
from concurrent.futures import ThreadPoolExecutor

def bump(n):
    with ThreadPoolExecutor(4) as pool:
        seen = sorted(pool.map(lambda _: jobfile.shared.add("count", 1), range(n)))
    return [len(seen), len(set(seen))]
"#,
        )],
    );
    let out = job.run(&[]);
    let records = out.records();
    for r in items(&records, "bump") {
        assert_eq!(r.status(), "ok", "{}", r.0);
        // Every add saw a count of its own.
        assert_eq!(r.value(), &json!([400, 400]), "{}", r.0);
    }
    assert_eq!(records.last().unwrap().value(), &json!({"count": 1200}));
    out.assert_code(0);
}

// ----- text that is not UTF-8 -----

/// A file name with a byte that is not UTF-8, as Python sees it (with a
/// lone surrogate, `os.fsdecode`): what `os.listdir` gives for such a file.
const UNDECODABLE_PY: &str = r#"
import os

NAME = os.fsdecode(b"caf\xe9.txt")

def pid():
    return os.getpid()

def open_it():
    try:
        with open(NAME) as f:
            return f.read()
    except OSError:
        raise ValueError("cannot read " + NAME) from None

def name():
    return NAME

def names():
    yield NAME
"#;

#[test]
fn an_error_about_an_undecodable_file_name_fails_the_call() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.open_it]
python = "undecodable:open_it"
timeout = "5s"
[functions.pid]
python = "undecodable:pid"
[[task]]
id = "before"
function = "pid"
[[task]]
id = "open"
function = "open_it"
[[task]]
id = "after"
function = "pid"
"#,
        &[("undecodable.py", UNDECODABLE_PY)],
    );
    let out = job.run(&[]);
    let records = out.records();
    let open = record(&records, "open");
    assert_eq!(open.status(), "failed", "{}", open.0);
    assert!(
        open.error().starts_with("ValueError: cannot read caf"),
        "{}",
        open.0
    );
    assert_eq!(
        record(&records, "before").value(),
        record(&records, "after").value(),
        "{}",
        show(&records)
    );
    out.assert_code(1);
}

#[test]
fn a_value_holding_an_undecodable_file_name_fails_the_call_and_the_interpreter_serves_on() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 1
[functions.name]
python = "undecodable:name"
timeout = "5s"
[functions.names]
python = "undecodable:names"
timeout = "5s"
[functions.pid]
python = "undecodable:pid"
[[task]]
id = "before"
function = "pid"
[[task]]
id = "name"
function = "name"
[[task]]
id = "names"
function = "names"
[[task]]
id = "after"
function = "pid"
"#,
        &[("undecodable.py", UNDECODABLE_PY)],
    );
    let out = job.run(&[]);
    let records = out.records();
    for id in ["name", "names"] {
        let r = record(&records, id);
        // Either it is refused like any value JSON in UTF-8 cannot hold, or
        // it is written with the byte replaced; never a dead interpreter.
        assert!(
            r.status() == "failed" || r.status() == "ok",
            "{}",
            show(&records)
        );
        if r.status() == "failed" {
            assert!(r.error().starts_with("TypeError: "), "{}", r.0);
        }
    }
    assert_eq!(
        record(&records, "before").value(),
        record(&records, "after").value(),
        "the interpreter did not serve on:\n{}",
        show(&records)
    );
}

#[test]
fn dry_run_says_a_python_stream_is_made_of_yielded_values() {
    let out = run_file(&repo_path("jobs/python-queue.toml"), &["--dry-run"]);
    out.assert_code(0);
    let reader = out
        .stdout
        .lines()
        .find(|l| l.starts_with("reader: "))
        .expect("a line for the reader")
        .to_owned();
    assert!(!reader.contains("lines"), "{reader}");
    assert!(reader.contains("yield"), "{reader}");
}

#[test]
fn two_reproducible_runs_of_a_python_job_give_the_same_bytes() {
    let job = py_job(
        r#"
version = 1
[pool]
processes = 3
[functions.work]
python = "repro:work"
[functions.fail]
python = "repro:fail"
[[task]]
id = "work"
function = "work"
map = { range = [0, 30] }
[[task]]
id = "fail"
function = "fail"
args = [{ result = "work" }]
"#,
        &[(
            "repro.py",
            r#"
import random, sys, time

def work(x):
    # Uneven durations, so that calls end in another order each run.
    time.sleep(random.random() * 0.02)
    print("item", x)
    print("note", x, file=sys.stderr)
    return {"x": x, "square": x * x}

def fail(values):
    raise ValueError("got %d values" % len(values))
"#,
        )],
    );
    let first = job.run(&["--reproducible"]);
    first.assert_code(1);
    let second = job.run(&["--reproducible"]);
    second.assert_code(1);
    assert_eq!(first.records().len(), 31);
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(
        record(&first.records(), "fail").error(),
        "ValueError: got 30 values"
    );
}

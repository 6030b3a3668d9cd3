//! The command line's conventions, through the built binary: quiet exits
//! on a closed pipe, `--color`, `JOBFILE_*` option variables, `-j 0` and
//! `-j N%`, the per-task variables, `--task` subsets, and how shell
//! functions see `[vars]` and fail on the first failing command.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};

use common::{Job, RunOutput, jobfile, repo_path};

/// A pipe whose read end is already closed: every write to the other end
/// fails with `EPIPE`, as when `head` has read all it wanted.
fn closed_pipe() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors that we own.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2");
    // SAFETY: both descriptors were just made and belong to nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    write
}

#[test]
fn printing_into_a_closed_pipe_is_quiet() {
    let job = repo_path("jobs/seed-map-square.toml");
    let job = job.to_str().unwrap();
    for args in [
        vec!["schema"],
        vec!["plan", job],
        vec!["plan", job, "--format", "json"],
        vec!["run", job, "--dry-run"],
    ] {
        let out = jobfile(&args).stdout(closed_pipe()).output();
        assert_eq!(out.stderr, "", "jobfile {args:?} wrote to stderr");
        assert_eq!(
            out.status.code(),
            Some(0),
            "jobfile {args:?}: {:?}",
            out.status
        );
    }
}

#[test]
fn a_run_into_a_closed_pipe_stops_quietly_with_status_1() {
    let job = repo_path("jobs/seed-map-square.toml");
    for format in ["jsonl", "json", "csv", "text"] {
        let out = jobfile(["run", job.to_str().unwrap(), "--format", format])
            .stdout(closed_pipe())
            .output();
        assert_eq!(out.stderr, "", "--format {format}");
        // The results could not be written: status 1, as documented.
        assert_eq!(out.status.code(), Some(1), "--format {format}");
    }
}

#[test]
fn shared_get_into_a_closed_pipe_is_quiet() {
    // A command's `jobfile shared get` with its stdout on a FIFO whose one
    // reader (fd 3) has closed: its write fails with EPIPE.
    let job = Job::new(
        r#"
version = 1
[shared]
n = 41
[functions.get]
shell = 'mkfifo p; exec 3<>p; exec 4>p; exec 3>&-; "$JOBFILE" shared get n >&4; echo "status=$?"'
[[task]]
id = "g"
function = "get"
"#,
    );
    let out = job.run(&["--format", "jsonl"]);
    out.assert_code(0);
    let records = out.task_records();
    assert_eq!(records[0].stdout(), "status=0\n");
    assert_eq!(records[0].stderr(), "");
}

/// An invalid job file, for diagnostics.
fn bad_job() -> Job {
    Job::new("version = 1\n[pool]\nprocesses = \"four\"\n")
}

#[test]
fn color_follows_the_choice_and_the_conventional_variables() {
    let job = bad_job();
    let path = job.path.to_str().unwrap();
    let check = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["check", path];
        all.extend_from_slice(args);
        let out = jobfile(&all)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("JOBFILE_COLOR")
            .envs(env)
            .output();
        assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
        assert!(out.stderr.contains("processes"), "{}", out.stderr);
        out.stderr.contains("\x1b[")
    };
    // stderr is a pipe here: auto means no colour.
    assert!(!check(&[], &[]));
    assert!(check(&["--color", "always"], &[]));
    assert!(check(&["--color=always"], &[("NO_COLOR", "1")]));
    assert!(!check(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]));
    assert!(check(&["--color", "auto"], &[("CLICOLOR_FORCE", "1")]));
    assert!(!check(&[], &[("CLICOLOR_FORCE", "0")]));
    assert!(!check(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]));
    assert!(check(&[], &[("JOBFILE_COLOR", "always")]));
    assert!(!check(
        &[],
        &[("JOBFILE_COLOR", "never"), ("CLICOLOR_FORCE", "1")]
    ));
    // The command line wins over the variable.
    assert!(!check(
        &["--color", "never"],
        &[("JOBFILE_COLOR", "always")]
    ));
    // `--color` comes before the subcommand too.
    let out = jobfile(["--color", "always", "check", path]).output();
    assert!(out.stderr.contains("\x1b["), "{}", out.stderr);
    // clap's own errors follow the choice too.
    let out = jobfile(["--color", "always", "run"]).output();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("\x1b["), "{}", out.stderr);
    let out = jobfile(["--color=never", "run"])
        .envs(&[("CLICOLOR_FORCE", "1")])
        .output();
    assert!(!out.stderr.contains("\x1b["), "{}", out.stderr);
    // A bad choice is a command-line error.
    let out = jobfile(["check", path])
        .envs(&[("JOBFILE_COLOR", "sometimes")])
        .output();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("sometimes"), "{}", out.stderr);
}

/// Two tasks on a pool of 2 where `a` ends only after `b` has: in
/// completion order `b` comes first, in submission order `a` does. `a`
/// waits a little more once `b` has made its file, for `b`'s exit to reach
/// the engine first on a loaded machine.
const TWO_TASKS: &str = r#"
version = 1
[pool]
processes = 2
[functions.wait_for_b]
shell = 'i=0; while [ ! -e b.done ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; sleep 0.5; echo a'
[functions.make_b]
shell = 'touch b.done; echo b'
[[task]]
id = "a"
function = "wait_for_b"
[[task]]
id = "b"
function = "make_b"
"#;

#[test]
fn option_variables_are_read_and_the_command_line_wins() {
    let job = Job::new(TWO_TASKS);
    let path = job.path.to_str().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let _ = std::fs::remove_file(job.file("b.done"));
        let mut all = vec!["run", path];
        all.extend_from_slice(args);
        jobfile(&all).envs(env).output()
    };
    let ids = |o: &RunOutput| -> Vec<String> {
        common::parse_jsonl(&o.stdout)
            .iter()
            .map(|r| r.task().to_string())
            .collect()
    };
    // JOBFILE_FORMAT
    let out = run(&[], &[("JOBFILE_FORMAT", "csv")]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("task,"), "{}", out.stdout);
    let out = run(&["--format", "jsonl"], &[("JOBFILE_FORMAT", "csv")]);
    assert_eq!(ids(&out), ["a", "b"]);
    // JOBFILE_ORDER
    let out = run(&[], &[("JOBFILE_ORDER", "completion")]);
    assert_eq!(ids(&out), ["b", "a"]);
    let out = run(
        &["--order", "submission"],
        &[("JOBFILE_ORDER", "completion")],
    );
    assert_eq!(ids(&out), ["a", "b"]);
    // Each variable is checked as its option is.
    for (var, bad) in [
        ("JOBFILE_FORMAT", "xml"),
        ("JOBFILE_ORDER", "random"),
        ("JOBFILE_PROGRESS", "sometimes"),
        ("JOBFILE_JOBS", "many"),
    ] {
        let out = run(&[], &[(var, bad)]);
        assert_eq!(out.status.code(), Some(2), "{var}={bad}");
        assert!(out.stderr.contains(bad), "{var}={bad}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    // JOBFILE_PROGRESS=always draws a bar on stderr even off a terminal;
    // never draws none.
    let out = run(&[], &[("JOBFILE_PROGRESS", "always")]);
    assert!(out.stderr.contains(" done, "), "{}", out.stderr);
    let out = run(&["--progress", "never"], &[("JOBFILE_PROGRESS", "always")]);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

/// The CPUs this process may use, as `-j 0` counts them.
fn usable_cpus() -> usize {
    // SAFETY: sched_getaffinity fills the zeroed set we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        libc::CPU_COUNT(&set) as usize
    }
}

/// A map of `n` items where each item waits (bounded) until every item
/// has started, then prints its slot: all `n` run at once, so `n` must
/// not exceed the pool.
fn slots_job(n: usize, processes: usize) -> Job {
    Job::new(&format!(
        r#"
version = 1
[pool]
processes = {processes}
[functions.meet]
shell = '''
touch "started-$JOBFILE_INDEX"
i=0
while [ "$(ls | grep -c '^started-')" -lt {n} ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done
echo "$JOBFILE_TASK $JOBFILE_INDEX $JOBFILE_SLOT $(ls | grep -c '^started-')"
'''
[[task]]
id = "meet"
function = "meet"
map = {{ range = [0, {n}] }}
"#
    ))
}

/// Runs a [`slots_job`] and gives each item's slot, checking the other
/// variables on the way.
fn slots(job: &Job, n: usize, args: &[&str], env: &[(&str, &str)]) -> Vec<usize> {
    let mut all = vec!["run", job.path.to_str().unwrap(), "--format", "jsonl"];
    all.extend_from_slice(args);
    let out = jobfile(&all).envs(env).output();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let records = common::parse_jsonl(&out.stdout);
    assert_eq!(records.len(), n);
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let words: Vec<&str> = r.stdout().split_whitespace().collect();
            assert_eq!(words[0], "meet");
            assert_eq!(words[1], i.to_string(), "JOBFILE_INDEX");
            assert_eq!(
                words[3],
                n.to_string(),
                "every item started before any ended"
            );
            words[2].parse().unwrap()
        })
        .collect()
}

#[test]
fn concurrent_units_have_distinct_slots_within_the_pool() {
    let job = slots_job(3, 3);
    let mut got = slots(&job, 3, &[], &[]);
    got.sort();
    assert_eq!(got, [1, 2, 3]);
}

#[test]
fn jobs_zero_and_shares_count_the_usable_cpus() {
    let cpus = usable_cpus();
    let job = slots_job(cpus, 1);
    let mut got = slots(&job, cpus, &["-j", "0"], &[]);
    got.sort();
    assert_eq!(got, (1..=cpus).collect::<Vec<_>>());

    let half = (cpus / 2).max(1);
    let job = slots_job(half, 1);
    let mut got = slots(&job, half, &["-j", "50%"], &[]);
    got.sort();
    assert_eq!(got, (1..=half).collect::<Vec<_>>());
    // JOBFILE_JOBS, overridden by -j.
    let job = slots_job(half, 1);
    let mut got = slots(&job, half, &[], &[("JOBFILE_JOBS", "50%")]);
    got.sort();
    assert_eq!(got, (1..=half).collect::<Vec<_>>());
    let job = slots_job(1, 4);
    assert_eq!(slots(&job, 1, &["-j", "1"], &[("JOBFILE_JOBS", "x")]), [1]);

    let job = bad_job();
    for bad in ["x", "-1", "0%", "1.5", "%", "12q"] {
        let jobs = format!("--jobs={bad}");
        let out = jobfile(["run", job.path.to_str().unwrap(), &jobs]).output();
        assert_eq!(out.status.code(), Some(2), "-j {bad}");
        assert!(
            out.stderr.contains("expected a number of processes"),
            "-j {bad}: {}",
            out.stderr
        );
    }
}

#[test]
fn slots_stay_within_the_pool_across_many_units() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
max_tasks_per_child = 2
[functions.slot]
shell = 'echo "$JOBFILE_SLOT"'
[[task]]
id = "s"
function = "slot"
map = { range = [0, 12] }
"#,
    );
    let out = job.run(&["--format", "jsonl"]);
    out.assert_code(0);
    let records = out.task_records();
    let workers: std::collections::BTreeSet<i64> = records.iter().map(|r| r.worker()).collect();
    // Workers were replaced (2 units each), and their replacements took
    // the numbers 1 and 2 again.
    assert!(workers.len() >= 6, "{workers:?}");
    for r in &records {
        assert!(matches!(r.stdout(), "1\n" | "2\n"), "{}", r.stdout());
    }
}

#[test]
fn task_variables_reach_python_calls_and_callbacks() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 1
[functions.env]
shell = 'echo "$JOBFILE_TASK|${JOBFILE_INDEX-unset}|$JOBFILE_SLOT"'
[[task]]
id = "one"
function = "env"
callback = "env"
"#,
    );
    job.write(
        "envmod.py",
        "import os\ndef env(x):\n    return [os.environ.get(k) for k in ('JOBFILE_TASK', 'JOBFILE_INDEX', 'JOBFILE_SLOT', 'JOBFILE_VAR_W')]\n",
    );
    let text = std::fs::read_to_string(&job.path).unwrap()
        + "[vars]\nw = \"5\"\n[functions.py]\npython = \"envmod:env\"\n[[task]]\nid = \"py\"\nfunction = \"py\"\nmap = [7, 8]\n[[task]]\nid = \"py1\"\nfunction = \"py\"\nargs = [0]\n";
    std::fs::write(&job.path, text).unwrap();
    let out = job.run(&["--format", "jsonl"]);
    out.assert_code(0);
    let records = out.task_records();
    assert_eq!(records[0].stdout(), "one|unset|1\n");
    assert_eq!(records[1].task(), "one:callback");
    assert_eq!(records[1].stdout(), "one:callback|unset|1\n");
    // Python calls see them in os.environ, call by call.
    let py: Vec<&serde_json::Value> = records[2..].iter().map(|r| r.value()).collect();
    assert_eq!(py[0], &serde_json::json!(["py", "0", "1", "5"]));
    assert_eq!(py[1], &serde_json::json!(["py", "1", "1", "5"]));
    assert_eq!(py[2], &serde_json::json!(["py1", null, "1", "5"]));
}

const PIPELINE: &str = r#"
version = 1
[functions.say]
shell = 'echo "$JOBFILE_TASK"'
[[task]]
id = "setup"
function = "say"
mode = "blocking"
[[task]]
id = "build"
function = "say"
[[task]]
id = "test"
function = "say"
after = ["build"]
[[task]]
id = "lint"
function = "say"
[[task]]
id = "report"
function = "say"
args = [{ result = "test" }]
[[task]]
id = "deploy"
function = "say"
after = ["report"]
"#;

#[test]
fn task_subsets_run_the_named_tasks_and_their_dependencies() {
    let job = Job::new(PIPELINE);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--format", "jsonl"];
        all.extend_from_slice(args);
        let out = job.run(&all);
        out.assert_code(0);
        out.task_records()
            .iter()
            .map(|r| r.task().to_string())
            .collect()
    };
    // Dependencies through `after` and result references, in file order;
    // the blocking `setup` orders the file but is no input; dependents
    // (`deploy`) are left out.
    assert_eq!(ids(&["--task", "report"]), ["build", "test", "report"]);
    assert_eq!(ids(&["--task", "lint"]), ["lint"]);
    assert_eq!(
        ids(&["--task", "lint", "--task", "test"]),
        ["build", "test", "lint"]
    );
    assert_eq!(
        ids(&["--task", "setup", "--task", "lint"]),
        ["setup", "lint"]
    );
    assert_eq!(ids(&[]).len(), 6);
    // Shared values still end with their record.
    let out = job.run(&["--format", "jsonl", "--task", "lint", "--dry-run"]);
    out.assert_code(0);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(out.stdout.starts_with("lint: "), "{}", out.stdout);

    let out = job.run(&["--task", "tset"]);
    out.assert_code(2);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("--task `tset`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("did you mean `test`?"),
        "{}",
        out.stderr
    );
    let out = job.run(&["--task", "zzzzzz"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("its tasks are `setup`, `build`"),
        "{}",
        out.stderr
    );
    let out = job.run(&["--task", "lint", "--resume", "-o", "out.jsonl"]);
    out.assert_code(2);
}

#[test]
fn shell_scripts_run_as_written_and_set_e_stops_them_at_the_first_failure() {
    let job = Job::new(
        r#"
version = 1
[functions.strict]
shell = '''
set -e
false
echo "not reached"
'''
[functions.lenient]
shell = '''
false
echo "reached"
'''
[functions.tested]
shell = 'if false; then echo no; fi; false || echo "handled"'
[[task]]
id = "strict"
function = "strict"
[[task]]
id = "lenient"
function = "lenient"
[[task]]
id = "tested"
function = "tested"
"#,
    );
    let out = job.run(&["--format", "jsonl"]);
    out.assert_code(1);
    let records = out.task_records();
    assert_eq!(records[0].status(), "failed");
    assert_eq!(records[0].get("exit_code"), &serde_json::json!(1));
    assert_eq!(records[0].stdout(), "");
    assert_eq!(records[1].status(), "ok");
    assert_eq!(records[1].stdout(), "reached\n");
    assert_eq!(records[2].status(), "ok");
    assert_eq!(records[2].stdout(), "handled\n");
}

#[test]
fn vars_reach_commands_and_shell_scripts_as_environment_variables() {
    let job = Job::new(
        r#"
version = 1
[vars]
width = "200"
out-dir = "thumbs"
[functions.sh]
shell = 'echo "$JOBFILE_VAR_WIDTH $JOBFILE_VAR_OUT_DIR"'
[functions.cmd]
command = ["sh", "-c", 'echo "{vars.width} $JOBFILE_VAR_WIDTH"']
[functions.overridden]
shell = 'echo "$JOBFILE_VAR_WIDTH"'
env = { JOBFILE_VAR_WIDTH = "mine" }
[[task]]
id = "sh"
function = "sh"
[[task]]
id = "cmd"
function = "cmd"
[[task]]
id = "overridden"
function = "overridden"
"#,
    );
    let out = job.run(&["--format", "jsonl", "--set", "width=400"]);
    out.assert_code(0);
    let records = out.task_records();
    assert_eq!(records[0].stdout(), "400 thumbs\n");
    assert_eq!(records[1].stdout(), "400 400\n");
    assert_eq!(records[2].stdout(), "mine\n");
}

#[test]
fn the_man_page_describes_the_commands() {
    let out = jobfile(["man"]).output();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let page = &out.stdout;
    assert!(
        page.starts_with(".ie") || page.contains(".TH jobfile"),
        "{page}"
    );
    for word in ["run", "check", "plan", "schema", "\\-\\-color"] {
        assert!(page.contains(word), "{word} missing");
    }
    let out = jobfile(["man"]).stdout(closed_pipe()).output();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stderr, "");
}

#[test]
fn a_closed_stderr_does_not_panic() {
    let job = repo_path("jobs/seed-map-square.toml");
    let bad = bad_job();
    for (args, code) in [
        (vec!["run", job.to_str().unwrap(), "--format", "jsonl"], 0),
        (
            vec!["run", job.to_str().unwrap(), "--live", "--format", "jsonl"],
            0,
        ),
        (vec!["check", bad.path.to_str().unwrap()], 2),
        (vec!["run", bad.path.to_str().unwrap()], 2),
    ] {
        let out = jobfile(&args).stderr(closed_pipe()).output();
        assert_eq!(out.status.code(), Some(code), "jobfile {args:?}");
    }
}

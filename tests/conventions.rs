//! The command line's conventions, through the built binary: quiet exits
//! on a closed pipe, `--color`, `JOBFILE_*` option variables, `-j 0` and
//! `-j N%`, the per-task variables, `--task` subsets, and how shell
//! functions see `[vars]` and fail on the first failing command.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};

use common::{Job, bin, repo_path};

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

/// `jobfile ARGS...` with its standard output on a closed pipe.
fn run_into_closed_pipe(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(closed_pipe()))
        .stderr(Stdio::piped())
        .output()
        .expect("start jobfile")
}

/// `jobfile ARGS...` with extra environment variables, waited for.
fn jobfile(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("start jobfile")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
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
        let out = run_into_closed_pipe(&args);
        assert_eq!(stderr(&out), "", "jobfile {args:?} wrote to stderr");
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
        let out = run_into_closed_pipe(&["run", job.to_str().unwrap(), "--format", format]);
        assert_eq!(stderr(&out), "", "--format {format}");
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

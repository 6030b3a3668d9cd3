//! Workers as Slurm job steps: one allocation per pool, one `srun` step per
//! worker, spoken to over the step's stdin and stdout.
//!
//! This module owns the Slurm command-line tools (`salloc`, `srun`,
//! `scancel`, `squeue`) and nothing else: it does not read frames, poll, or
//! decide when a worker is lost. The engine wraps a [`Step`]'s `stdin` and
//! `stdout` in its line-framed connection and reaps [`Step::child`] with
//! `try_wait`, as it does for forked workers.
//!
//! How the pieces behave (measured on a one-node Slurm 22.05, see
//! `ci/local-slurm.sh` and `tests/slurm.rs`):
//!
//! - `salloc --no-shell` returns once the allocation is granted and prints
//!   `Granted job allocation J` on stderr; while it waits it prints
//!   `Pending job allocation J`, which lets a timeout cancel that job.
//! - `srun` forwards a task's stdout only up to the last newline, so every
//!   frame must end with `\n` (the protocol does). srun's stdout carries only
//!   the task's stdout; srun's own messages and the task's stderr go to
//!   srun's stderr, which the step inherits so that it can never block.
//! - [`StepMode::Exact`] (`--exact`, the default) gives each step one of the
//!   allocation's CPUs: as many steps run as tasks were requested, and a
//!   further step waits (silently, under `--quiet`) until one ends.
//!   [`StepMode::Overlap`] (`--overlap`) lets any number of steps share the
//!   CPUs. On a multi-node allocation `--overlap` steps may all land on the
//!   first node (not measured: one node only), so `--exact` is the default.
//! - Closing a step's stdin ends the worker (EOF) and srun exits 0 about
//!   8 ms later. [`Step::terminate`] (SIGTERM to srun) and
//!   [`Allocation::cancel_step`] (`scancel J.S`) end the task within 25 ms;
//!   srun exits 137 and the step is gone, so a replacement `--exact` step is
//!   ready 25-30 ms later, as after a worker that died by itself.
//!   [`Step::kill`] (SIGKILL to srun) ends the task as fast (slurmstepd
//!   cancels the step), but the step keeps its CPU until slurmstepd has
//!   cleaned up: a replacement `--exact` step then waits 2.3 s (`--overlap`:
//!   25-30 ms). Stop steps with TERM, and KILL only the srun that ignores it.
//!   A single SIGINT to srun does nothing, so it is never used.
//! - An allocation outlives its owner if the owner is killed with SIGKILL
//!   (its steps do not: their stdin reaches EOF). Pass a `time` limit to
//!   bound that.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::protocol::set_nonblocking;

/// How long [`Allocation::request`] waits for `salloc` by default.
pub const ALLOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`Allocation::release`] waits for the job to leave `squeue`.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often `squeue` is asked while waiting for a job or step to go.
const SQUEUE_INTERVAL: Duration = Duration::from_millis(50);

/// What to ask `salloc` for: the `[pools.NAME]` keys of a Slurm pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmRequest {
    /// `-p`: the partition; Slurm's default partition when `None`.
    pub partition: Option<String>,
    /// `-N`: the number of nodes; Slurm decides when `None`.
    pub nodes: Option<u32>,
    /// `-t`: the time limit, in any format Slurm takes (`"10:00"`, `"1-0"`).
    pub time: Option<String>,
    /// `-n`: the number of tasks, one per worker.
    pub tasks: usize,
    /// `-J`: the job name shown by `squeue`.
    pub job_name: String,
}

impl SlurmRequest {
    /// The `salloc` arguments for this request.
    pub fn salloc_args(&self) -> Vec<String> {
        let mut args = vec![
            "--no-shell".to_owned(),
            "-n".to_owned(),
            self.tasks.to_string(),
        ];
        if let Some(p) = &self.partition {
            args.extend(["-p".to_owned(), p.clone()]);
        }
        if let Some(n) = self.nodes {
            args.extend(["-N".to_owned(), n.to_string()]);
        }
        if let Some(t) = &self.time {
            args.extend(["-t".to_owned(), t.clone()]);
        }
        args.extend(["-J".to_owned(), self.job_name.clone()]);
        args
    }
}

/// Why an allocation could not be had or given back.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// A Slurm tool is not on `PATH`.
    #[error(
        "{program} not found: is Slurm installed? `{program}` must be on PATH (and SLURM_CONF set if the configuration is not in /etc/slurm)"
    )]
    NotFound { program: &'static str },
    /// A Slurm tool could not be started or talked to.
    #[error("could not run {program}: {source}")]
    Io {
        program: &'static str,
        #[source]
        source: io::Error,
    },
    /// `salloc` ended without granting an allocation.
    #[error("salloc refused the allocation ({status}): {message}")]
    Refused { status: ExitStatus, message: String },
    /// No allocation was granted in time; a pending request was cancelled.
    #[error("no Slurm allocation within {waited:?} (salloc said: {message})")]
    TimedOut { waited: Duration, message: String },
    /// A Slurm query (`squeue`) failed.
    #[error("{program} failed ({status}): {message}")]
    Failed {
        program: &'static str,
        status: ExitStatus,
        message: String,
    },
    /// `scancel` failed.
    #[error("scancel {target} failed: {message}")]
    Cancel { target: String, message: String },
    /// No step of this allocation has the name a [`Step`] was started with.
    #[error("no step named {name} in job {job_id} (it has ended, or not started yet)")]
    NoSuchStep { job_id: u32, name: String },
    /// The job was still listed by `squeue` after it was cancelled.
    #[error("job {job_id} still listed by squeue {waited:?} after scancel")]
    StillListed { job_id: u32, waited: Duration },
}

/// Whether steps get CPUs of their own (`--exact`) or share them
/// (`--overlap`). See the module docs for what each costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepMode {
    /// `--exact`: one CPU per step; no more steps run than tasks allocated.
    #[default]
    Exact,
    /// `--overlap`: steps share the allocation's CPUs; any number run.
    Overlap,
}

impl StepMode {
    fn flag(self) -> &'static str {
        match self {
            StepMode::Exact => "--exact",
            StepMode::Overlap => "--overlap",
        }
    }
}

/// A granted Slurm allocation (`salloc --no-shell`). It is cancelled by
/// [`Allocation::release`], or when dropped.
#[derive(Debug)]
pub struct Allocation {
    job_id: u32,
    job_name: String,
    mode: StepMode,
    /// Numbers the steps' names, so that one can be found in `squeue`.
    next_step: AtomicU32,
    released: bool,
}

/// One worker: a running `srun ... WORKER worker` and its pipes.
#[derive(Debug)]
pub struct Step {
    /// The `srun` process, leader of its own process group.
    pub child: Child,
    /// The worker's standard input (write frames here; close it to end it).
    pub stdin: OwnedFd,
    /// The worker's standard output (frames come from here).
    pub stdout: OwnedFd,
    /// The step's name (`srun -J`), unique within the allocation.
    pub name: String,
}

impl Step {
    /// Asks srun to end the step: SIGTERM, which srun passes on to the task
    /// and then exits (137) once the step is gone. The caller still reaps
    /// [`Step::child`].
    pub fn terminate(&self) -> io::Result<()> {
        nix::sys::signal::kill(pid_of(&self.child), nix::sys::signal::Signal::SIGTERM)
            .map_err(io::Error::from)
    }

    /// Ends srun at once (SIGKILL); slurmstepd then cancels the task
    /// itself, but the step holds its CPU for about 2.3 s more. For an srun
    /// that did not end after [`Step::terminate`].
    pub fn kill(&mut self) -> io::Result<()> {
        self.child.kill()
    }
}

impl Allocation {
    /// Asks Slurm for an allocation and waits up to [`ALLOCATION_TIMEOUT`].
    pub fn request(opts: &SlurmRequest) -> Result<Allocation, SlurmError> {
        Allocation::request_within(opts, ALLOCATION_TIMEOUT)
    }

    /// [`Allocation::request`] with another time limit. A request still
    /// pending at the limit is cancelled.
    pub fn request_within(opts: &SlurmRequest, limit: Duration) -> Result<Allocation, SlurmError> {
        let mut child = Command::new("salloc")
            .args(opts.salloc_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| spawn_error("salloc", e))?;
        let Some(stderr) = child.stderr.take().map(OwnedFd::from) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SlurmError::Io {
                program: "salloc",
                source: io::Error::other("its stderr is not piped"),
            });
        };
        let deadline = Instant::now() + limit;
        let (text, at_eof) = read_until(&stderr, deadline).map_err(|e| {
            let _ = child.kill();
            let _ = child.wait();
            SlurmError::Io {
                program: "salloc",
                source: e,
            }
        })?;
        if !at_eof {
            // SIGINT makes salloc revoke a pending request; scancel covers
            // a salloc that does not get to it.
            let _ = nix::sys::signal::kill(pid_of(&child), nix::sys::signal::Signal::SIGINT);
            if let Some(id) = job_id_after(&text, "Pending job allocation ") {
                let _ = scancel(&id.to_string());
            }
            let _ = wait_or_kill(&mut child, Duration::from_secs(2));
            return Err(SlurmError::TimedOut {
                waited: limit,
                message: last_line(&text),
            });
        }
        let status =
            wait_or_kill(&mut child, Duration::from_secs(5)).map_err(|e| SlurmError::Io {
                program: "salloc",
                source: e,
            })?;
        match job_id_after(&text, "Granted job allocation ") {
            Some(job_id) if status.success() => Ok(Allocation {
                job_id,
                job_name: opts.job_name.clone(),
                mode: StepMode::default(),
                next_step: AtomicU32::new(0),
                released: false,
            }),
            granted => {
                if let Some(id) = granted {
                    let _ = scancel(&id.to_string());
                }
                Err(SlurmError::Refused {
                    status,
                    message: text.trim().to_owned(),
                })
            }
        }
    }

    /// The Slurm job id.
    pub fn job_id(&self) -> u32 {
        self.job_id
    }

    /// How new steps share the allocation's CPUs.
    pub fn step_mode(&self) -> StepMode {
        self.mode
    }

    /// Changes how steps started from now on share the CPUs.
    pub fn set_step_mode(&mut self, mode: StepMode) {
        self.mode = mode;
    }

    /// The `srun` arguments for a step named `name` running `worker_binary`.
    pub fn srun_args(&self, name: &str, worker_binary: &Path) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = [
            format!("--jobid={}", self.job_id),
            "-n1".to_owned(),
            "-N1".to_owned(),
            "--quiet".to_owned(),
            self.mode.flag().to_owned(),
            format!("--job-name={name}"),
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        args.push(worker_binary.into());
        args.push("worker".into());
        args
    }

    /// Starts `WORKER_BINARY worker` as a step of this allocation, in its
    /// own process group, with stdin and stdout piped and stderr inherited.
    /// The worker is up once it has sent its `ready` frame.
    pub fn spawn_step(&self, worker_binary: &Path) -> io::Result<Step> {
        let n = self.next_step.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}.w{n}", self.job_name);
        let mut child = Command::new("srun")
            .args(self.srun_args(&name, worker_binary))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => io::Error::new(
                    io::ErrorKind::NotFound,
                    SlurmError::NotFound { program: "srun" },
                ),
                _ => e,
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("srun's stdin and stdout are not piped"));
        };
        let (stdin, stdout) = (OwnedFd::from(stdin), OwnedFd::from(stdout));
        Ok(Step {
            child,
            stdin,
            stdout,
            name,
        })
    }

    /// The step id (`S` of `J.S`) of the running step named `name`
    /// ([`Step::name`]), from `squeue`.
    pub fn step_id(&self, name: &str) -> Result<u32, SlurmError> {
        let out = squeue(&["-h", "-s", "-j", &self.job_id.to_string(), "-o", "%i %j"])?;
        let prefix = format!("{}.", self.job_id);
        out.lines()
            .filter_map(|l| l.trim().split_once(' '))
            .find(|(_, listed)| listed.trim() == name)
            .and_then(|(id, _)| id.strip_prefix(&prefix)?.parse().ok())
            .ok_or_else(|| SlurmError::NoSuchStep {
                job_id: self.job_id,
                name: name.to_owned(),
            })
    }

    /// Ends the step named `name` with `scancel J.S`; its srun then exits
    /// 137. [`Step::terminate`] does the same without asking Slurm.
    pub fn cancel_step(&self, name: &str) -> Result<(), SlurmError> {
        let id = self.step_id(name)?;
        scancel(&format!("{}.{id}", self.job_id))
    }

    /// Cancels the allocation (`scancel J`) and waits up to
    /// [`RELEASE_TIMEOUT`] until `squeue` no longer lists it. Its steps end
    /// with it. Doing it twice is harmless.
    pub fn release(&mut self) -> Result<(), SlurmError> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        scancel(&self.job_id.to_string())?;
        let deadline = Instant::now() + RELEASE_TIMEOUT;
        loop {
            // squeue fails with "Invalid job id" once the job is purged.
            match squeue(&["-h", "-j", &self.job_id.to_string(), "-o", "%A"]) {
                Ok(out) if !out.trim().is_empty() => {}
                _ => return Ok(()),
            }
            if Instant::now() >= deadline {
                return Err(SlurmError::StillListed {
                    job_id: self.job_id,
                    waited: RELEASE_TIMEOUT,
                });
            }
            std::thread::sleep(SQUEUE_INTERVAL);
        }
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

/// The worker binary a Slurm pool runs when none is configured: this one.
pub fn default_worker_binary() -> io::Result<PathBuf> {
    std::env::current_exe()
}

fn spawn_error(program: &'static str, e: io::Error) -> SlurmError {
    match e.kind() {
        io::ErrorKind::NotFound => SlurmError::NotFound { program },
        _ => SlurmError::Io { program, source: e },
    }
}

fn pid_of(child: &Child) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(child.id() as i32)
}

/// Reads `fd` until end of file or `deadline`; says whether it got to EOF.
fn read_until(fd: &OwnedFd, deadline: Instant) -> io::Result<(String, bool)> {
    set_nonblocking(fd.as_fd())?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok((String::from_utf8_lossy(&bytes).into_owned(), false));
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => return Ok((String::from_utf8_lossy(&bytes).into_owned(), true)),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Waits for `child`, killing it if it has not ended within `grace`.
fn wait_or_kill(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    let deadline = Instant::now() + grace;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return child.wait();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The job id that follows `marker` in salloc's messages.
fn job_id_after(text: &str, marker: &str) -> Option<u32> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("nothing")
        .trim()
        .to_owned()
}

/// Runs a short Slurm query or command and returns its stdout.
fn run_tool(program: &'static str, args: &[&str]) -> Result<String, SlurmError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(program, e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(SlurmError::Failed {
            program,
            status: out.status,
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn squeue(args: &[&str]) -> Result<String, SlurmError> {
    run_tool("squeue", args)
}

fn scancel(target: &str) -> Result<(), SlurmError> {
    run_tool("scancel", &[target])
        .map(drop)
        .map_err(|e| match e {
            SlurmError::Failed { message, .. } => SlurmError::Cancel {
                target: target.to_owned(),
                message,
            },
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SlurmRequest {
        SlurmRequest {
            partition: Some("debug".into()),
            nodes: Some(2),
            time: Some("10:00".into()),
            tasks: 4,
            job_name: "thumbs".into(),
        }
    }

    #[test]
    fn salloc_arguments_follow_the_request() {
        assert_eq!(
            request().salloc_args(),
            [
                "--no-shell",
                "-n",
                "4",
                "-p",
                "debug",
                "-N",
                "2",
                "-t",
                "10:00",
                "-J",
                "thumbs"
            ]
        );
        let bare = SlurmRequest {
            partition: None,
            nodes: None,
            time: None,
            tasks: 1,
            job_name: "j".into(),
        };
        assert_eq!(bare.salloc_args(), ["--no-shell", "-n", "1", "-J", "j"]);
    }

    #[test]
    fn job_ids_are_read_from_salloc_messages() {
        let text = "salloc: Pending job allocation 17\nsalloc: job 17 queued and waiting for resources\n\
                    salloc: job 17 has been allocated resources\nsalloc: Granted job allocation 17\n";
        assert_eq!(job_id_after(text, "Granted job allocation "), Some(17));
        assert_eq!(job_id_after(text, "Pending job allocation "), Some(17));
        assert_eq!(
            job_id_after(
                "salloc: error: invalid partition specified: x",
                "Granted job allocation "
            ),
            None
        );
        assert_eq!(last_line("a\nb\n\n"), "b");
    }

    #[test]
    fn srun_arguments_name_the_step_and_its_mode() {
        let mut a = Allocation {
            job_id: 5,
            job_name: "thumbs".into(),
            mode: StepMode::Exact,
            next_step: AtomicU32::new(0),
            released: true,
        };
        let args = a.srun_args("thumbs.w0", Path::new("/bin/jobfile"));
        assert_eq!(
            args,
            [
                "--jobid=5",
                "-n1",
                "-N1",
                "--quiet",
                "--exact",
                "--job-name=thumbs.w0",
                "/bin/jobfile",
                "worker"
            ]
        );
        a.set_step_mode(StepMode::Overlap);
        assert!(
            a.srun_args("x", Path::new("w"))
                .contains(&"--overlap".into())
        );
    }

    #[test]
    fn missing_tools_say_so() {
        let e = spawn_error("salloc", io::Error::from(io::ErrorKind::NotFound));
        assert!(
            e.to_string()
                .starts_with("salloc not found: is Slurm installed?"),
            "{e}"
        );
    }
}

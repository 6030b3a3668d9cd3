//! A granted allocation and its steps: starting `srun` steps on the
//! allocation's nodes, knowing which nodes are left, giving it back.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::placement::{Placement, parse_cpu_layout};
use super::request::{ALLOCATION_TIMEOUT, AllocationRequest, SlurmRequest};
use super::sentinel::Sentinel;
use super::tools::{RELEASE_TIMEOUT, SlurmError, hostnames, run_tool, scancel, squeue};

/// How often `squeue` is asked while waiting for a job or step to go.
const SQUEUE_INTERVAL: Duration = Duration::from_millis(50);

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
/// [`Allocation::release`], when dropped, or by its [`Sentinel`] when this
/// process dies first.
#[derive(Debug)]
pub struct Allocation {
    job_id: u32,
    job_name: String,
    mode: StepMode,
    /// Numbers the steps' names, so that one can be found in `squeue`.
    next_step: AtomicU32,
    released: bool,
    /// Where placed steps go; loaded by [`Allocation::load_nodes`].
    placement: Option<Placement>,
    sentinel: Option<Sentinel>,
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
    /// The node it was placed on (`srun -w`), if it was placed.
    pub node: Option<String>,
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
    /// pending at the limit is cancelled. The engine does not wait like
    /// this: it polls an [`AllocationRequest`].
    pub fn request_within(opts: &SlurmRequest, limit: Duration) -> Result<Allocation, SlurmError> {
        AllocationRequest::start(opts, limit)?.wait()
    }

    /// The allocation salloc granted as job `job_id`.
    pub(super) fn granted(job_id: u32, job_name: String, sentinel: Option<Sentinel>) -> Allocation {
        Allocation {
            job_id,
            job_name,
            mode: StepMode::default(),
            next_step: AtomicU32::new(0),
            released: false,
            placement: None,
            sentinel,
        }
    }

    /// The Slurm job id.
    pub fn job_id(&self) -> u32 {
        self.job_id
    }

    /// The pid of the sentinel that cancels the job if this process dies.
    pub fn sentinel_pid(&self) -> Option<u32> {
        self.sentinel.as_ref().map(Sentinel::pid)
    }

    /// How new steps share the allocation's CPUs.
    pub fn step_mode(&self) -> StepMode {
        self.mode
    }

    /// Changes how steps started from now on share the CPUs.
    pub fn set_step_mode(&mut self, mode: StepMode) {
        self.mode = mode;
    }

    /// Learns the allocation's nodes and its CPUs on each (`scontrol show
    /// job -d`); from then on [`Allocation::spawn_placed`] places steps
    /// itself, with `--overlap`.
    pub fn load_nodes(&mut self) -> Result<(), SlurmError> {
        let text = run_tool(
            "scontrol",
            &["-o", "show", "job", "-d", &self.job_id.to_string()],
        )?;
        let mut layout = parse_cpu_layout(&text, hostnames)?;
        if layout.is_empty() {
            // No per-node detail: every node of the list, one CPU each.
            layout = hostnames(&field(&text, "NodeList").unwrap_or_default())?
                .into_iter()
                .map(|n| (n, 1))
                .collect();
        }
        self.placement = Some(Placement::new(layout));
        self.mode = StepMode::Overlap;
        Ok(())
    }

    /// The placement of steps over the nodes, once loaded.
    pub fn placement(&self) -> Option<&Placement> {
        self.placement.as_ref()
    }

    /// The `srun` arguments for a step named `name` running `worker_binary`,
    /// on `node` if one is given.
    pub fn srun_args(
        &self,
        name: &str,
        worker_binary: &Path,
        node: Option<&str>,
    ) -> Vec<std::ffi::OsString> {
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
        if let Some(node) = node {
            args.push(format!("--nodelist={node}").into());
        }
        args.push(worker_binary.into());
        args.push("worker".into());
        args
    }

    /// Starts `WORKER_BINARY worker` as a step of this allocation, wherever
    /// Slurm puts it, in its own process group, with stdin and stdout piped
    /// and stderr inherited. The worker is up once it has sent its `ready`
    /// frame.
    pub fn spawn_step(&self, worker_binary: &Path) -> io::Result<Step> {
        self.spawn_on(worker_binary, None)
    }

    /// [`Allocation::spawn_step`] on the node [`Placement`] picks (after
    /// [`Allocation::load_nodes`]); tell it with [`Allocation::step_ended`]
    /// when the step is over. An error when no node is left.
    pub fn spawn_placed(&mut self, worker_binary: &Path) -> io::Result<Step> {
        let node = match &self.placement {
            None => None,
            Some(p) => Some(p.pick().map(str::to_owned).ok_or_else(|| {
                io::Error::other(format!(
                    "no node of job {} is left to start a worker on",
                    self.job_id
                ))
            })?),
        };
        let step = self.spawn_on(worker_binary, node.as_deref())?;
        if let (Some(p), Some(node)) = (&mut self.placement, &node) {
            p.started(node);
        }
        Ok(step)
    }

    fn spawn_on(&self, worker_binary: &Path, node: Option<&str>) -> io::Result<Step> {
        let n = self.next_step.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}.w{n}", self.job_name);
        let mut child = Command::new("srun")
            .args(self.srun_args(&name, worker_binary, node))
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
            node: node.map(str::to_owned),
        })
    }

    /// A placed step on `node` is over; `ready` says whether its worker had
    /// said it was ready. When it had not, or when `check_nodes` is set
    /// (the step was lost, not let go), asks Slurm which nodes the job
    /// still has. Returns the nodes found lost just now, and whether `node`
    /// gets no more workers because they do not start there.
    pub fn step_ended(
        &mut self,
        node: &str,
        ready: bool,
        check_nodes: bool,
    ) -> (Vec<String>, bool) {
        let Some(p) = &mut self.placement else {
            return (Vec::new(), false);
        };
        let given_up = p.ended(node, ready);
        // A node known to be lost already says why its other steps end.
        if (!check_nodes && ready) || p.is_lost(node) {
            return (Vec::new(), given_up);
        }
        let lost = match alive_nodes(self.job_id) {
            Ok(alive) => p.keep_only(&alive),
            Err(_) => Vec::new(),
        };
        (lost, given_up)
    }

    /// Is `node` known to be lost?
    pub fn node_lost(&self, node: &str) -> bool {
        self.placement.as_ref().is_some_and(|p| p.is_lost(node))
    }

    /// Can another worker be placed (a node is left that takes one)?
    pub fn can_place(&self) -> bool {
        self.placement.as_ref().is_none_or(|p| p.pick().is_some())
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
    /// with it; the sentinel is told and ends too. Doing it twice is
    /// harmless.
    pub fn release(&mut self) -> Result<(), SlurmError> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        let cancelled = scancel(&self.job_id.to_string());
        if cancelled.is_err() {
            // The sentinel tries again, once this process lets it go.
            self.sentinel = None;
        }
        cancelled?;
        let deadline = Instant::now() + RELEASE_TIMEOUT;
        loop {
            // squeue fails with "Invalid job id" once the job is purged.
            match squeue(&["-h", "-j", &self.job_id.to_string(), "-o", "%A"]) {
                Ok(out) if !out.trim().is_empty() => {}
                _ => break,
            }
            if Instant::now() >= deadline {
                return Err(SlurmError::StillListed {
                    job_id: self.job_id,
                    waited: RELEASE_TIMEOUT,
                });
            }
            std::thread::sleep(SQUEUE_INTERVAL);
        }
        if let Some(sentinel) = self.sentinel.take() {
            sentinel.disarm();
        }
        Ok(())
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

/// The nodes job `job_id` still has that answer: its `NodeList` (which
/// shrinks when a node fails under `--no-kill`) without the nodes `sinfo`
/// shows as not responding, down, drained or failed.
fn alive_nodes(job_id: u32) -> Result<Vec<String>, SlurmError> {
    let text = run_tool("scontrol", &["-o", "show", "job", &job_id.to_string()])?;
    let list = field(&text, "NodeList").unwrap_or_default();
    let nodes = hostnames(&list)?;
    if nodes.is_empty() {
        return Ok(nodes);
    }
    let states = run_tool("sinfo", &["-h", "-N", "-n", &list, "-o", "%N %T"])?;
    let bad: Vec<&str> = states
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, state)| {
            let s = state.trim().to_ascii_lowercase();
            s.ends_with('*')
                || ["down", "drain", "fail", "not_responding"]
                    .iter()
                    .any(|b| s.contains(b))
        })
        .map(|(n, _)| n)
        .collect();
    Ok(nodes
        .into_iter()
        .filter(|n| !bad.contains(&n.as_str()))
        .collect())
}

/// The value of `KEY=value` in `scontrol -o` output.
fn field(text: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .filter(|v| *v != "(null)")
        .map(str::to_owned)
}

fn pid_of(child: &Child) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(child.id() as i32)
}

/// Waits for `child`, killing it if it has not ended within `grace`.
pub(super) fn wait_or_kill(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srun_arguments_name_the_step_its_mode_and_its_node() {
        let mut a = Allocation::granted(5, "thumbs".into(), None);
        a.released = true;
        let args = a.srun_args("thumbs.w0", Path::new("/bin/jobfile"), None);
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
        let args = a.srun_args("x", Path::new("w"), Some("node2"));
        assert!(args.contains(&"--overlap".into()));
        assert!(args.contains(&"--nodelist=node2".into()));
    }

    #[test]
    fn scontrol_fields() {
        let text = "JobId=5 JobName=t ReqNodeList=(null) NodeList=node[1-2] BatchHost=node1";
        assert_eq!(field(text, "NodeList").as_deref(), Some("node[1-2]"));
        assert_eq!(field(text, "ReqNodeList"), None);
        assert_eq!(field(text, "Missing"), None);
    }
}

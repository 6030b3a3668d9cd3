//! A Slurm pool behind the launcher seam: its allocation (asked for on the
//! first start, polled with the engine's other descriptors, released at the
//! end) and its workers, one `srun` step each, placed on the nodes left.
//!
//! The short queries (`sinfo`, `scontrol` when the allocation is granted
//! and when a step was lost) are synchronous: they answer in milliseconds.
//!
//! Must not: decide when a worker starts or stops, or what its units
//! become; the engine does.

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::launcher::{LaunchError, Launcher, Started};
use crate::exec::fork_server::WorkerExit;
use crate::exec::process::{pidfd_open, signal_name};
use crate::exec::protocol::Conn;
use crate::exec::slurm::{
    ALLOCATION_TIMEOUT, Allocation, AllocationRequest, SlurmRequest, default_worker_binary,
};
use crate::spec::Pool;

/// Where the pool's allocation stands.
enum Grant {
    /// Not asked for (yet, or again after a refusal).
    None,
    /// `salloc` runs; dropping it withdraws the request.
    Asked(AllocationRequest),
    Granted(Allocation),
}

/// The workers of one Slurm pool, as steps of its allocation.
pub struct SlurmLauncher {
    /// The pool's name, for messages.
    name: String,
    request: SlurmRequest,
    worker_binary: Option<PathBuf>,
    grant: Grant,
    /// The `srun`s not reaped yet, by pid.
    steps: HashMap<u32, Child>,
    /// The node each placed step runs on, until it is over.
    nodes: HashMap<u32, String>,
}

impl SlurmLauncher {
    /// The launcher of `pool`, whose workers are `size` steps of the job
    /// `job_name`'s allocation (asked for on the first start).
    pub fn new(pool: &Pool, size: usize, job_name: &str) -> SlurmLauncher {
        SlurmLauncher {
            name: pool.name.clone(),
            request: SlurmRequest {
                partition: pool.slurm.partition.clone(),
                nodes: pool.slurm.nodes,
                time: pool.slurm.time.clone(),
                tasks: size,
                job_name: format!("jobfile-{job_name}"),
            },
            worker_binary: pool.slurm.worker_binary.clone(),
            grant: Grant::None,
            steps: HashMap::new(),
            nodes: HashMap::new(),
        }
    }
}

impl Launcher for SlurmLauncher {
    /// The first start asks for the allocation, without waiting: the
    /// request is polled with everything else.
    fn spawn(&mut self) -> Result<Started, LaunchError> {
        use LaunchError::{Failed, Pending};
        let alloc = match &mut self.grant {
            Grant::Granted(alloc) => alloc,
            Grant::Asked(_) => return Err(Pending),
            Grant::None => {
                let pending =
                    AllocationRequest::start(&self.request, ALLOCATION_TIMEOUT).map_err(|e| {
                        Failed(format!("no Slurm allocation for pool `{}`: {e}", self.name))
                    })?;
                self.grant = Grant::Asked(pending);
                return Err(Pending);
            }
        };
        let binary = match &self.worker_binary {
            Some(p) => p.clone(),
            None => {
                default_worker_binary().map_err(|e| Failed(format!("cannot find jobfile: {e}")))?
            }
        };
        let step = alloc.spawn_placed(&binary).map_err(|e| {
            Failed(format!(
                "cannot start a Slurm step for pool `{}`: {e}",
                self.name
            ))
        })?;
        let conn = Conn::new(step.stdout, Some(step.stdin)).map_err(|e| Failed(e.to_string()))?;
        let pid = step.child.id();
        self.steps.insert(pid, step.child);
        if let Some(node) = step.node {
            self.nodes.insert(pid, node);
        }
        Ok(Started {
            pid,
            conn,
            remote: true,
        })
    }

    fn signal(&mut self, pid: u32, signal: Signal) {
        if self.steps.contains_key(&pid) {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    }

    /// srun passes SIGTERM on as the end of its step, within milliseconds;
    /// a SIGKILL would hold the step's CPU for seconds.
    fn kill(&mut self, pid: u32) {
        self.signal(pid, Signal::SIGTERM);
    }

    fn try_exit(&mut self, pid: u32) -> Option<WorkerExit> {
        let Some(child) = self.steps.get_mut(&pid) else {
            return Some(WorkerExit::Exited(0));
        };
        let exit = child.try_wait().ok().flatten().map(WorkerExit::of_status);
        if exit.is_some() {
            self.steps.remove(&pid);
        }
        exit
    }

    fn wait(&mut self, pid: u32) {
        if let Some(mut child) = self.steps.remove(&pid) {
            let _ = child.wait();
        }
    }

    fn exit_fd(&mut self, pid: u32) -> Option<OwnedFd> {
        self.steps
            .contains_key(&pid)
            .then(|| pidfd_open(Pid::from_raw(pid as i32)).ok())
            .flatten()
    }

    /// Reaps the `srun`s left (their stdin is closed, so their steps end)
    /// and gives the allocation back.
    fn end(&mut self) {
        let until = Instant::now() + Duration::from_secs(2);
        for (_, mut child) in self.steps.drain() {
            loop {
                match child.try_wait() {
                    Ok(None) if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Ok(None) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => break,
                }
            }
        }
        // A request still pending is withdrawn when dropped.
        if let Grant::Granted(mut alloc) = std::mem::replace(&mut self.grant, Grant::None)
            && let Err(e) = alloc.release()
        {
            eprintln!("warning: releasing the Slurm allocation: {e}");
        }
    }

    fn pending(&self) -> Option<(BorrowedFd<'_>, Instant)> {
        match &self.grant {
            Grant::Asked(r) => Some((r.fd(), r.deadline())),
            _ => None,
        }
    }

    /// Reads what `salloc` said: a granted allocation learns its nodes; a
    /// refused one makes the pool give up.
    fn advance(&mut self) -> Option<Result<(), String>> {
        let Grant::Asked(request) = &mut self.grant else {
            return None;
        };
        let answer = request.advance()?;
        let name = &self.name;
        match answer {
            Ok(mut alloc) => {
                if let Err(e) = alloc.load_nodes() {
                    eprintln!(
                        "warning: pool `{name}`: the nodes of Slurm job {} are not known ({e}); Slurm places the workers",
                        alloc.job_id()
                    );
                }
                self.grant = Grant::Granted(alloc);
                Some(Ok(()))
            }
            Err(e) => {
                let error = format!("no Slurm allocation for pool `{name}`: {e}");
                self.grant = Grant::None;
                Some(Err(error))
            }
        }
    }

    /// The step's node has one worker less; after a loss (or a step that
    /// was never ready) the allocation is asked which nodes it still has.
    fn ended(&mut self, pid: u32, ready: bool, lost: bool) -> Option<String> {
        let node = self.nodes.remove(&pid)?;
        let Grant::Granted(alloc) = &mut self.grant else {
            return None;
        };
        let name = &self.name;
        let (newly_lost, given_up) = alloc.step_ended(&node, ready, lost);
        for n in newly_lost {
            eprintln!(
                "warning: pool `{name}` lost Slurm node {n}: the units its workers ran are crashed; new workers start on the nodes left"
            );
        }
        if given_up {
            eprintln!(
                "warning: pool `{name}`: workers on Slurm node {node} end before they are ready; no more start there"
            );
        }
        alloc.node_lost(&node).then_some(node)
    }

    /// Once no node is left that takes a worker (or, unplaced, after 3 in
    /// a row) the pool gives up.
    fn failed_start(&mut self, failures: u32, exit: Option<WorkerExit>) -> Option<String> {
        let alloc = match &self.grant {
            Grant::Granted(alloc) => Some(alloc),
            _ => None,
        };
        let placeable = alloc.is_some_and(|a| a.can_place() && a.placement().is_some());
        let unplaced = alloc.is_some_and(|a| a.placement().is_none());
        if placeable || (unplaced && failures < 3) {
            return None;
        }
        let how = match (exit.and_then(|e| e.signal()), exit.and_then(|e| e.code())) {
            (Some(s), _) => format!("was killed by signal {s} ({})", signal_name(s)),
            (None, Some(c)) => format!("exited with code {c}"),
            _ => "ended".to_string(),
        };
        let binary = match &self.worker_binary {
            Some(p) => format!("`worker_binary` ({})", p.display()),
            None => "this jobfile binary".to_string(),
        };
        Some(format!(
            "no worker of pool `{}` could start on its Slurm nodes: the last one {how} before it was ready (is {binary} there, and runnable, on every node?)",
            self.name
        ))
    }
}

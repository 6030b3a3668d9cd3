//! The seam between the engine and the processes of its pools: what
//! starts a worker, signals it, and says how it ended. One launcher serves
//! the local pools (the fork server, [`Forked`]); each Slurm pool has its
//! own ([`super::slurm_launcher::SlurmLauncher`]), which holds the pool's
//! allocation; tests give the engine workers that are threads.
//!
//! Must not: decide when a worker starts or stops, or what its units
//! become; the engine does.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Instant;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::exec::fork_server::{ForkServer, WorkerExit};
use crate::exec::groups;
use crate::exec::process::{children_of, pidfd_open};
use crate::exec::protocol::Conn;

/// A started worker: the process the engine controls and its connection.
pub struct Started {
    pub pid: u32,
    pub conn: Conn,
    /// It runs on another machine (a Slurm step): it starts its own Python
    /// interpreters, and when it ends before it is ready it ran nothing.
    pub remote: bool,
}

/// Why no worker was started.
pub enum LaunchError {
    /// Not yet: the pool's resources are asked for (a Slurm allocation);
    /// [`Launcher::pending`] is then polled, and the start tried again
    /// once [`Launcher::advance`] says they came.
    Pending,
    /// No worker can start: the pool gives up with this message.
    Failed(String),
}

/// Starts and stops the workers of pools.
pub trait Launcher {
    /// Starts a worker, or says why not.
    fn spawn(&mut self) -> Result<Started, LaunchError>;

    /// Sends `signal` to worker `pid`.
    fn signal(&mut self, pid: u32, signal: Signal);

    /// Stops worker `pid` at once (a timeout, a cancel not answered).
    fn kill(&mut self, pid: u32) {
        self.signal(pid, Signal::SIGKILL);
    }

    /// How worker `pid` ended, if it has (reaping it); a pid that is not
    /// a child any more counts as exited with 0.
    fn try_exit(&mut self, pid: u32) -> Option<WorkerExit>;

    /// Waits for worker `pid` to end (after a SIGKILL).
    fn wait(&mut self, pid: u32);

    /// A descriptor that becomes readable once worker `pid` has ended, for
    /// the poll; `None` if there is none (the loop then looks again soon).
    fn exit_fd(&mut self, pid: u32) -> Option<OwnedFd>;

    /// At the end of the run: kills and reaps whatever else is left, and
    /// gives back what was asked for.
    fn end(&mut self);

    /// While a start is [`LaunchError::Pending`]: the descriptor to poll
    /// and when to look again at the latest.
    fn pending(&self) -> Option<(BorrowedFd<'_>, Instant)> {
        None
    }

    /// After a poll, while [`Launcher::pending`]: `Some(Ok)` once workers
    /// can start, `Some(Err)` with the message the pool gives up with when
    /// they never will, `None` while it still waits.
    fn advance(&mut self) -> Option<Result<(), String>> {
        None
    }

    /// Worker `pid` is over, lost (`lost`) or let go; `ready` says whether
    /// it had said it was ready. The name of its node when that node is
    /// lost (which then says why its units crashed).
    fn ended(&mut self, _pid: u32, _ready: bool, _lost: bool) -> Option<String> {
        None
    }

    /// A remote worker ended before it was ready, the `failures`-th in a
    /// row: the message the pool gives up with, or `None` to try again.
    fn failed_start(&mut self, _failures: u32, _exit: Option<WorkerExit>) -> Option<String> {
        None
    }
}

/// Workers forked by the fork server, children of this process.
pub struct Forked {
    server: ForkServer,
}

impl Forked {
    pub fn new(server: ForkServer) -> Forked {
        Forked { server }
    }

    fn fork(&mut self) -> io::Result<crate::exec::fork_server::Spawned> {
        match self.server.spawn() {
            Ok(spawned) => Ok(spawned),
            // The fork server is gone (killed from outside). A new one is
            // forked only while this process has one thread, which
            // `ForkServer::start` checks and says.
            Err(e) => {
                self.server = ForkServer::start()
                    .map_err(|e2| io::Error::other(format!("{e}; no new fork server: {e2}")))?;
                self.server.spawn()
            }
        }
    }
}

impl Launcher for Forked {
    fn spawn(&mut self) -> Result<Started, LaunchError> {
        let spawned = self
            .fork()
            .map_err(|e| LaunchError::Failed(format!("cannot start a worker: {e}")))?;
        let conn = Conn::new(spawned.conn, None).map_err(|e| LaunchError::Failed(e.to_string()))?;
        Ok(Started {
            pid: spawned.pid,
            conn,
            remote: false,
        })
    }

    fn signal(&mut self, pid: u32, signal: Signal) {
        let _ = kill(Pid::from_raw(pid as i32), signal);
    }

    fn try_exit(&mut self, pid: u32) -> Option<WorkerExit> {
        let exit = try_reap(pid);
        if exit.is_some() {
            // Reaped: its pid may be a new worker's from now on.
            groups::forget(pid);
        }
        exit
    }

    fn wait(&mut self, pid: u32) {
        let _ = waitpid(Pid::from_raw(pid as i32), None);
        groups::forget(pid);
    }

    fn exit_fd(&mut self, pid: u32) -> Option<OwnedFd> {
        pidfd_open(Pid::from_raw(pid as i32)).ok()
    }

    fn end(&mut self) {
        // Orphans the engine adopted as a subreaper; the fork server ends
        // on its own when its socket closes.
        for pid in children_of(std::process::id()) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "jobfile-forksrv" {
                continue;
            }
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
    }
}

/// The exit of child `pid` if it has ended (reaping it), else `None`.
pub(super) fn try_reap(pid: u32) -> Option<WorkerExit> {
    match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => None,
        Ok(WaitStatus::Exited(_, code)) => Some(WorkerExit::Exited(code)),
        Ok(WaitStatus::Signaled(_, signal, _)) => Some(WorkerExit::Killed(signal as i32)),
        // Stopped or continued: it has not ended.
        Ok(_) => None,
        // ECHILD: not ours (any more); nothing to wait for.
        Err(_) => Some(WorkerExit::Exited(0)),
    }
}

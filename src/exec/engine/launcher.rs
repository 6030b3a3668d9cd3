//! The seam between the engine and the processes of local pools: what
//! starts a worker, signals it, and says how it ended. The fork server is
//! the one the runs use; tests give the engine workers that are threads.
//!
//! Must not: decide when a worker starts or stops, or what its units
//! become; the engine does.

use std::io;
use std::os::fd::OwnedFd;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::exec::fork_server::{ForkServer, Spawned, WorkerExit, thread_count};
use crate::exec::process::{children_of, pidfd_open};

/// Starts and stops the workers of local pools.
pub trait Launcher {
    /// Starts a worker: its pid and the engine's end of its connection.
    fn spawn(&mut self) -> io::Result<Spawned>;

    /// Sends `signal` to worker `pid`.
    fn signal(&mut self, pid: u32, signal: Signal);

    /// How worker `pid` ended, if it has (reaping it); a pid that is not
    /// a child any more counts as exited with 0.
    fn try_exit(&mut self, pid: u32) -> Option<WorkerExit>;

    /// Waits for worker `pid` to end (after a SIGKILL).
    fn wait(&mut self, pid: u32);

    /// A descriptor that becomes readable once worker `pid` has ended, for
    /// the poll; `None` if there is none (the loop then looks again soon).
    fn exit_fd(&mut self, pid: u32) -> Option<OwnedFd>;

    /// At the end of the run: kills and reaps whatever else is left (what
    /// dead workers' commands left behind).
    fn end(&mut self);
}

/// Workers forked by the fork server, children of this process.
pub struct Forked {
    server: ForkServer,
}

impl Forked {
    pub fn new(server: ForkServer) -> Forked {
        Forked { server }
    }
}

impl Launcher for Forked {
    fn spawn(&mut self) -> io::Result<Spawned> {
        match self.server.spawn() {
            Ok(spawned) => Ok(spawned),
            // The fork server is gone (killed from outside). A new one may
            // be forked only while this process has one thread.
            Err(e) if thread_count() == 1 => {
                self.server = ForkServer::start()
                    .map_err(|e2| io::Error::other(format!("{e}; no new fork server: {e2}")))?;
                self.server.spawn()
            }
            Err(e) => Err(e),
        }
    }

    fn signal(&mut self, pid: u32, signal: Signal) {
        let _ = kill(Pid::from_raw(pid as i32), signal);
    }

    fn try_exit(&mut self, pid: u32) -> Option<WorkerExit> {
        try_reap(pid)
    }

    fn wait(&mut self, pid: u32) {
        let _ = waitpid(Pid::from_raw(pid as i32), None);
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

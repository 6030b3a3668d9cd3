//! The fork server: a single-threaded process forked from the engine at
//! start-up, before any thread exists, that forks every worker.
//!
//! Forking a process that runs threads copies locks other threads may
//! hold; the engine may run threads (hashing inputs, the progress bar), so
//! it never forks workers itself. It asks the fork server, which answers
//! with the new worker's pid and the engine's end of its socket (passed
//! with `SCM_RIGHTS`), and reports each worker's exit status on a pipe.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::unistd::{ForkResult, fork};

use super::worker;

/// The engine's handle on the fork server.
pub struct ForkServer {
    ctl: UnixStream,
    exits: OwnedFd,
    pid: u32,
}

/// A worker the fork server made.
pub struct Spawned {
    pub pid: u32,
    /// The engine's end of the worker's socket.
    pub conn: OwnedFd,
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerExit {
    pub pid: u32,
    /// Raw wait status.
    pub status: i32,
}

impl WorkerExit {
    /// The signal that killed the worker, if one did.
    pub fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }

    /// The worker's exit code, if it exited.
    pub fn code(&self) -> Option<i32> {
        libc::WIFEXITED(self.status).then(|| libc::WEXITSTATUS(self.status))
    }
}

/// Number of threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

impl ForkServer {
    /// Forks the fork server. Call it while the process has one thread.
    pub fn start() -> io::Result<ForkServer> {
        debug_assert_eq!(
            thread_count(),
            1,
            "the fork server must be forked before any thread"
        );
        let (engine_end, server_end) = UnixStream::pair()?;
        let (exits_read, exits_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let engine_pid = nix::unistd::getpid();
        // SAFETY: the caller guarantees this process is single-threaded, so
        // the child gets a consistent copy of every lock and allocator.
        match unsafe { fork() }? {
            ForkResult::Child => {
                drop(engine_end);
                drop(exits_read);
                let code = serve(server_end, exits_write, engine_pid);
                // SAFETY: _exit ends the child without running the engine's
                // atexit handlers or flushing its copied stdio buffers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(server_end);
                drop(exits_write);
                super::protocol::set_nonblocking(exits_read.as_fd())?;
                Ok(ForkServer {
                    ctl: engine_end,
                    exits: exits_read,
                    pid: child.as_raw() as u32,
                })
            }
        }
    }

    /// Pid of the fork server.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Asks for a new worker.
    pub fn spawn(&mut self) -> io::Result<Spawned> {
        self.ctl.write_all(&[1])?;
        let mut pid = [0u8; 4];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut pid)];
        let msg = recvmsg::<()>(
            self.ctl.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        if msg.bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the fork server is gone",
            ));
        }
        let mut fd = None;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&raw) = fds.first() {
                    // SAFETY: SCM_RIGHTS gave this process a new descriptor
                    // that nothing else owns.
                    fd = Some(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
        }
        let conn = fd.ok_or_else(|| io::Error::other("the fork server sent no socket"))?;
        Ok(Spawned {
            pid: u32::from_le_bytes(pid),
            conn,
        })
    }

    /// The pipe that becomes readable when a worker has ended.
    pub fn exits_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.exits.as_fd()
    }

    /// Worker exits reported so far.
    pub fn read_exits(&mut self) -> Vec<WorkerExit> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8 * 64];
        let mut file = std::fs::File::from(match self.exits.try_clone() {
            Ok(fd) => fd,
            Err(_) => return out,
        });
        // Records are 8 bytes and written atomically (less than PIPE_BUF).
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            for rec in buf[..n].chunks_exact(8) {
                let pid = i32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
                let status = i32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]);
                out.push(WorkerExit {
                    pid: pid as u32,
                    status,
                });
            }
        }
        out
    }
}

/// Self-pipe written by the fork server's SIGCHLD handler.
static CHILD_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_child(_: libc::c_int) {
    let fd = CHILD_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; a full pipe just drops the byte.
        unsafe {
            libc::write(fd, [0u8].as_ptr().cast(), 1);
        }
    }
}

/// The fork server's loop. Returns its exit code.
fn serve(ctl: UnixStream, exits: OwnedFd, engine: nix::unistd::Pid) -> i32 {
    // SAFETY: prctl with PR_SET_PDEATHSIG only changes this process's own
    // attributes.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    if nix::unistd::getppid() != engine {
        return 1; // the engine died before we could watch it
    }
    set_name("jobfile-forksrv");
    let Ok((wake_read, wake_write)) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
    else {
        return 1;
    };
    CHILD_PIPE.store(wake_write.as_raw_fd(), Ordering::Relaxed);
    let chld = SigAction::new(
        SigHandler::Handler(on_child),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler only writes to a pipe; single-threaded process.
    unsafe {
        let _ = sigaction(Signal::SIGCHLD, &chld);
        let _ = sigaction(Signal::SIGINT, &ignore);
        let _ = sigaction(Signal::SIGPIPE, &ignore);
    }
    let mut exits = std::fs::File::from(exits);
    let mut ctl = ctl;
    loop {
        let mut fds = [
            PollFd::new(ctl.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake_read.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 1,
        }
        let ctl_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let child_ready = fds[1].revents().is_some_and(|r| !r.is_empty());
        if child_ready {
            let mut sink = [0u8; 64];
            while nix::unistd::read(&wake_read, &mut sink).is_ok_and(|n| n > 0) {}
            reap(&mut exits);
        }
        if ctl_ready {
            let mut req = [0u8; 1];
            match ctl.read(&mut req) {
                Ok(0) | Err(_) => return 0, // the engine is done
                Ok(_) => {}
            }
            if spawn_worker(&ctl, &exits, &wake_read, &wake_write).is_err() {
                return 1;
            }
        }
    }
}

/// Reaps every ended worker and reports it to the engine.
fn reap(exits: &mut std::fs::File) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on our own children.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        let mut rec = [0u8; 8];
        rec[..4].copy_from_slice(&pid.to_le_bytes());
        rec[4..].copy_from_slice(&status.to_le_bytes());
        let _ = exits.write_all(&rec);
    }
}

fn spawn_worker(
    ctl: &UnixStream,
    exits: &std::fs::File,
    wake_read: &OwnedFd,
    wake_write: &OwnedFd,
) -> io::Result<()> {
    let (engine_end, worker_end) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    debug_assert_eq!(thread_count(), 1, "the fork server forks with one thread");
    let server = nix::unistd::getpid();
    // SAFETY: the fork server is single-threaded (asserted above).
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The worker keeps only its own end of its socket.
            let _ = nix::unistd::close(ctl.as_raw_fd());
            let _ = nix::unistd::close(exits.as_raw_fd());
            let _ = nix::unistd::close(wake_read.as_raw_fd());
            let _ = nix::unistd::close(wake_write.as_raw_fd());
            drop(engine_end);
            CHILD_PIPE.store(-1, Ordering::Relaxed);
            let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
            // SAFETY: single-threaded child; restores the default disposition.
            unsafe {
                let _ = sigaction(Signal::SIGCHLD, &dfl);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            }
            worker::install_worker_signals();
            if nix::unistd::getppid() != server {
                // SAFETY: see the fork server's own exit.
                unsafe { libc::_exit(1) }
            }
            set_name("jobfile-worker");
            let code = match worker_end.try_clone() {
                Ok(out) => worker::serve(worker_end, out),
                Err(_) => 1,
            };
            // SAFETY: end the worker without running inherited atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(worker_end);
            let pid = (child.as_raw() as u32).to_le_bytes();
            let fds = [engine_end.as_raw_fd()];
            sendmsg::<()>(
                ctl.as_raw_fd(),
                &[IoSlice::new(&pid)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::empty(),
                None,
            )?;
            Ok(())
        }
    }
}

/// Sets the process name shown by `ps` (at most 15 bytes).
fn set_name(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string we own.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c.as_ptr());
        }
    }
}

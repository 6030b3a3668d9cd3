//! The fork server: a single-threaded process forked from the engine at
//! start-up, before any thread exists, that forks every worker.
//!
//! Forking a process that runs threads copies locks other threads may
//! hold; the engine may run threads (hashing inputs, the progress bar), so
//! it never forks workers itself. It asks the fork server, which answers
//! with the new worker's pid and the engine's end of its socket (passed
//! with `SCM_RIGHTS`).
//!
//! Workers are the engine's own children all the same: the fork server
//! forks twice, the middle process exits at once, and the orphaned worker
//! is adopted by the engine, a child subreaper. So the engine reaps its
//! workers and reads their exit status itself, a worker's parent-death
//! signal is tied to the engine, and a worker does not depend on the fork
//! server staying alive.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::unistd::{ForkResult, Pid, fork};

use super::worker;

/// The engine's handle on the fork server.
pub struct ForkServer {
    ctl: UnixStream,
}

/// A worker the fork server made.
pub struct Spawned {
    pub pid: u32,
    /// The engine's end of the worker's socket.
    pub conn: OwnedFd,
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerExit {
    /// It exited with this code.
    Exited(i32),
    /// A signal (this number) killed it.
    Killed(i32),
}

impl WorkerExit {
    /// The signal that killed the worker, if one did.
    pub fn signal(&self) -> Option<i32> {
        match *self {
            WorkerExit::Killed(s) => Some(s),
            WorkerExit::Exited(_) => None,
        }
    }

    /// The worker's exit code, if it exited.
    pub fn code(&self) -> Option<i32> {
        match *self {
            WorkerExit::Exited(c) => Some(c),
            WorkerExit::Killed(_) => None,
        }
    }

    /// The exit of a child process `std` waited for.
    pub fn of_status(status: std::process::ExitStatus) -> WorkerExit {
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            Some(s) => WorkerExit::Killed(s),
            None => WorkerExit::Exited(status.code().unwrap_or(0)),
        }
    }
}

/// Number of threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// An error unless this process has one thread: forking (or changing the
/// environment) is only sound then. `what` names what needs it.
pub fn ensure_single_threaded(what: &str) -> io::Result<()> {
    match thread_count() {
        1 => Ok(()),
        n => Err(io::Error::other(format!(
            "{what} needs a single-threaded process, and this one runs {n} threads"
        ))),
    }
}

/// Waits (up to `limit`) until this process has one thread again, as after
/// a thread pool is dropped: its threads end shortly after, not at once.
pub fn wait_single_threaded(limit: std::time::Duration) -> bool {
    let until = Instant::now() + limit;
    while thread_count() > 1 {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Makes this process the one that adopts orphaned descendants: the
/// workers the fork server makes, and what a dead worker's commands leave.
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)?;
    Ok(())
}

impl ForkServer {
    /// Forks the fork server, after [`become_subreaper`]. Fails, forking
    /// nothing, unless the process has one thread.
    pub fn start() -> io::Result<ForkServer> {
        ensure_single_threaded("starting the fork server")?;
        super::groups::install();
        let (engine_end, server_end) = UnixStream::pair()?;
        let engine_pid = nix::unistd::getpid();
        // SAFETY: this process has one thread (checked above, and nothing
        // in between starts one), so the child gets a consistent copy of
        // every lock and of the allocator.
        match unsafe { fork() }? {
            ForkResult::Child => {
                drop(engine_end);
                // A panic must never unwind out of here into the engine's
                // frames, which this process has a copy of.
                let code =
                    std::panic::catch_unwind(|| serve(server_end, engine_pid)).unwrap_or(101);
                // SAFETY: _exit ends the child without running the engine's
                // atexit handlers or flushing its copied stdio buffers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { .. } => {
                drop(server_end);
                Ok(ForkServer { ctl: engine_end })
            }
        }
    }

    /// Asks for a new worker; it becomes a child of this process.
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
}

/// The fork server's loop. Returns its exit code.
fn serve(mut ctl: UnixStream, engine: Pid) -> i32 {
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
        return 1; // nothing would end this process with the engine
    }
    if nix::unistd::getppid() != engine {
        return 1; // the engine died before we could watch it
    }
    set_name(c"jobfile-forksrv");
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: setting dispositions in a single-threaded process.
    unsafe {
        let _ = sigaction(Signal::SIGINT, &ignore);
        let _ = sigaction(Signal::SIGPIPE, &ignore);
    }
    loop {
        let mut req = [0u8; 1];
        match ctl.read(&mut req) {
            Ok(0) => return 0, // the engine is done
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return 1,
        }
        match spawn_worker(&ctl) {
            Ok(None) => {}
            // This process is the new worker: it lets go of the fork
            // server's socket and serves.
            Ok(Some(conn)) => {
                drop(ctl);
                return run_worker(conn, engine);
            }
            Err(_) => return 1,
        }
    }
}

/// Forks a worker through a middle process that exits at once, so the
/// worker is adopted by the engine; sends the engine its pid and socket.
/// Returns `Some(socket)` in the worker, `None` in the fork server.
fn spawn_worker(ctl: &UnixStream) -> io::Result<Option<OwnedFd>> {
    let (engine_end, worker_end) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    let (pid_read, pid_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the fork server is single-threaded: it is the child of a
    // fork made with one thread and starts none.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The middle process: fork the worker, say its pid, exit.
            // SAFETY: a child of a single-threaded process is single-threaded.
            let code = match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    // The worker: it returns to the fork server's loop,
                    // which owns (and closes) `ctl`. Closing `ctl` here, by
                    // its number, left an owned descriptor closed twice.
                    drop(engine_end);
                    drop(pid_read);
                    drop(pid_write);
                    return Ok(Some(worker_end));
                }
                Ok(ForkResult::Parent { child }) => {
                    let pid = (child.as_raw() as u32).to_le_bytes();
                    match nix::unistd::write(&pid_write, &pid) {
                        Ok(4) => 0,
                        _ => 1,
                    }
                }
                Err(_) => 1,
            };
            // SAFETY: _exit ends the child without running inherited
            // atexit handlers or flushing copied stdio buffers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(worker_end);
            drop(pid_write);
            let mut pid = [0u8; 4];
            let read = std::fs::File::from(pid_read).read_exact(&mut pid);
            // The middle process has exited (or is about to): reap it.
            let _ = nix::sys::wait::waitpid(child, None);
            read?;
            let fds = [engine_end.as_raw_fd()];
            sendmsg::<()>(
                ctl.as_raw_fd(),
                &[IoSlice::new(&pid)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::empty(),
                None,
            )?;
            Ok(None)
        }
    }
}

/// The worker, once forked: waits to be adopted by the engine, ties its
/// life to the engine's, and serves.
fn run_worker(conn: OwnedFd, engine: Pid) -> i32 {
    if worker::install_worker_signals().is_err() {
        return 1;
    }
    // The middle process exits at once; then the engine, a subreaper,
    // adopts this process.
    let until = Instant::now() + Duration::from_secs(5);
    while nix::unistd::getppid() != engine {
        if Instant::now() > until {
            return 1;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    if nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).is_err() {
        return 1; // nothing would end this worker with the engine
    }
    if nix::unistd::getppid() != engine {
        return 1; // the engine died in between
    }
    set_name(c"jobfile-worker");
    super::groups::claim(std::process::id());
    let code = match conn.try_clone() {
        Ok(out) => worker::serve(conn, out),
        Err(_) => 1,
    };
    super::groups::release();
    code
}

/// Sets the process name shown by `ps` (at most 15 bytes). Only a
/// convenience: a failure changes nothing else.
fn set_name(name: &std::ffi::CStr) {
    let _ = nix::sys::prctl::set_name(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fork_server_from_a_process_with_threads() {
        // The test harness runs this on a thread of its own: two at least.
        let (stop, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || wait.recv());
        let err = ForkServer::start().err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("needs a single-threaded process")),
            "{err:?}"
        );
        let _ = stop.send(());
        let _ = other.join();
    }
}

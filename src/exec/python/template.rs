//! The template interpreter, engine side: started once per run (when the
//! job has Python functions), before the fork server and any thread. It
//! imports the job's modules once and forks each worker's interpreter from
//! itself, on requests that arrive at its listening socket.
//!
//! It dies with the engine (`PR_SET_PDEATHSIG`, then it kills every
//! interpreter it made), and the engine stops it at the end of the run. If
//! it is gone, workers start fresh interpreters themselves.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::runtime_args;
use super::setup::PythonSetup;
use crate::shared::SocketDir;
use crate::spec::Job;

/// How long the template may take to end after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// The running template.
pub struct Template {
    child: Child,
    socket: PathBuf,
    /// The private folder of the socket, removed when dropped.
    _dir: SocketDir,
}

impl Template {
    /// Starts the template for `job`'s modules.
    pub fn start(job: &Job) -> io::Result<Template> {
        let dir = SocketDir::create()?;
        let socket = dir.path().join("python.sock");
        let listener = UnixListener::bind(&socket)?;
        let setup = PythonSetup::of_job(job, None);
        let engine = std::process::id();
        let listen_fd = listener.as_raw_fd();
        let stderr = io::stderr().as_raw_fd();
        let mut command = Command::new(&setup.interpreter);
        command
            .args(runtime_args())
            .arg("template")
            .arg(setup.config(engine))
            .current_dir(&job.dir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: between fork and exec the closure only calls
        // async-signal-safe functions (dup2, fcntl, prctl, getppid, _exit)
        // on descriptors and attributes of the child itself.
        unsafe {
            command.pre_exec(move || {
                // What a module prints while it is imported goes to the
                // engine's stderr, never into the results on stdout.
                if libc::dup2(stderr, 1) < 0 {
                    return Err(io::Error::last_os_error());
                }
                if listen_fd == 3 {
                    if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(listen_fd, 3) < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() as u32 != engine {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        // Only the template listens: if it dies, workers' connections are
        // refused at once instead of waiting.
        drop(listener);
        Ok(Template {
            child,
            socket,
            _dir: dir,
        })
    }

    /// The socket workers connect to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The template's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the template and every interpreter it made: SIGTERM, then
    /// SIGKILL if it has not ended within a moment.
    pub fn stop(mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(pid, Signal::SIGTERM);
            let until = Instant::now() + STOP_WAIT;
            while Instant::now() < until {
                match self.child.try_wait() {
                    Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                    _ => return,
                }
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

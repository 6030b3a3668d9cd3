//! The sentinel: a small process that cancels an allocation when the engine
//! is gone without having given it back (killed by SIGKILL, say).
//!
//! It is `/bin/sh` reading one line from a pipe whose write end only the
//! engine holds (close-on-exec, so no `srun` or command inherits it). When
//! the engine releases the allocation it writes `released` and closes the
//! pipe, and the sentinel exits without doing anything; when the engine dies,
//! the kernel closes the pipe, the sentinel reads end of file and runs
//! `scancel J`. It runs in a session of its own, so the signals that end the
//! engine's process group or session (a kill of the group, a terminal's
//! SIGINT or SIGHUP) do not reach it, and it has no parent-death signal
//! (that is cleared on fork), so it lives on when the engine dies. When the
//! engine is a child subreaper, the sentinel is its child and is reaped by
//! it; orphaned, it is reaped by whichever subreaper is above.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use nix::fcntl::OFlag;

/// What the sentinel runs: `$1` is the job id.
const SCRIPT: &str = r#"IFS= read -r line; [ "$line" = released ] || exec scancel "$1""#;

/// A running sentinel for one job; see the module docs.
#[derive(Debug)]
pub struct Sentinel {
    child: Child,
    /// The write end of the sentinel's pipe; `None` once it was told.
    pipe: Option<std::fs::File>,
}

impl Sentinel {
    /// Starts a sentinel that cancels job `job_id` if this process dies
    /// before [`Sentinel::disarm`].
    pub fn start(job_id: u32) -> io::Result<Sentinel> {
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", SCRIPT, "jobfile-sentinel", &job_id.to_string()])
            .stdin(Stdio::from(read))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setsid is async-signal-safe and touches no memory of the
        // parent; it is the only thing done between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(Sentinel {
            child,
            pipe: Some(std::fs::File::from(write)),
        })
    }

    /// The sentinel's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tells the sentinel that the job was given back, and waits for it to
    /// exit: it cancels nothing.
    pub fn disarm(mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(b"released\n");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Sentinel {
    /// Not disarmed: closing the pipe makes the sentinel cancel the job, as
    /// if the engine had died; it is then reaped.
    fn drop(&mut self) {
        self.pipe = None;
        let _ = self.child.wait();
    }
}

//! Asking for an allocation without waiting for it: `salloc --no-shell`
//! runs as a child whose stderr the engine polls with its other
//! descriptors, and [`AllocationRequest::advance`] reads what it said.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::allocation::{Allocation, wait_or_kill};
use super::sentinel::Sentinel;
use super::tools::{SlurmError, partition_nodes, scancel, spawn_error};
use crate::exec::readiness::set_nonblocking;

/// How long a request waits for `salloc` by default.
pub const ALLOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// What to ask `salloc` for: the `[pools.NAME]` keys of a Slurm pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmRequest {
    /// `-p`: the partition; Slurm's default partition when `None`.
    pub partition: Option<String>,
    /// `-N`: the number of nodes; Slurm decides when `None`.
    pub nodes: Option<u32>,
    /// `-t`: the time limit, in any format Slurm takes (`"10:00"`, `"1-0"`).
    pub time: Option<String>,
    /// The number of workers: `-n`, or with `nodes` as many tasks per node
    /// as it takes to hold them all.
    pub tasks: usize,
    /// `-J`: the job name shown by `squeue`.
    pub job_name: String,
}

impl SlurmRequest {
    /// The `salloc` arguments for this request. `--no-kill` keeps the job
    /// when one of its nodes fails.
    pub fn salloc_args(&self) -> Vec<String> {
        let mut args = vec!["--no-shell".to_owned(), "--no-kill".to_owned()];
        match self.nodes {
            Some(n) => {
                let per_node = self.tasks.div_ceil(n.max(1) as usize).max(1);
                args.extend([
                    "-N".to_owned(),
                    n.to_string(),
                    format!("--ntasks-per-node={per_node}"),
                ]);
            }
            None => args.extend(["-n".to_owned(), self.tasks.max(1).to_string()]),
        }
        if let Some(p) = &self.partition {
            args.extend(["-p".to_owned(), p.clone()]);
        }
        if let Some(t) = &self.time {
            args.extend(["-t".to_owned(), t.clone()]);
        }
        args.extend(["-J".to_owned(), self.job_name.clone()]);
        args
    }
}

/// A `salloc` under way. Poll [`AllocationRequest::fd`] for input and call
/// [`AllocationRequest::advance`] when it is readable or at
/// [`AllocationRequest::deadline`]. Dropping it withdraws the request.
#[derive(Debug)]
pub struct AllocationRequest {
    child: Option<Child>,
    stderr: OwnedFd,
    text: Vec<u8>,
    deadline: Instant,
    limit: Duration,
    job_name: String,
    job_id: Option<u32>,
    sentinel: Option<Sentinel>,
}

impl AllocationRequest {
    /// Starts `salloc` for `opts`; the request is withdrawn if not granted
    /// within `limit`. A request for more nodes than the partition has is
    /// refused here, at once.
    pub fn start(opts: &SlurmRequest, limit: Duration) -> Result<AllocationRequest, SlurmError> {
        if let Some(wanted) = opts.nodes {
            if let Some((partition, has)) = partition_nodes(opts.partition.as_deref())? {
                if wanted > has {
                    return Err(SlurmError::TooFewNodes {
                        partition,
                        wanted,
                        has,
                    });
                }
            }
        }
        let mut cmd = Command::new("salloc");
        cmd.args(opts.salloc_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and the only call between fork
        // and exec. A pending salloc whose engine died withdraws its request
        // on SIGINT, as it does when the engine gives up waiting.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGINT)?;
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| spawn_error("salloc", e))?;
        let stderr = match child.stderr.take().map(OwnedFd::from) {
            Some(fd) => fd,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SlurmError::Io {
                    program: "salloc",
                    source: io::Error::other("its stderr is not piped"),
                });
            }
        };
        if let Err(e) = set_nonblocking(stderr.as_fd()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SlurmError::Io {
                program: "salloc",
                source: e,
            });
        }
        Ok(AllocationRequest {
            child: Some(child),
            stderr,
            text: Vec::new(),
            deadline: Instant::now() + limit,
            limit,
            job_name: opts.job_name.clone(),
            job_id: None,
            sentinel: None,
        })
    }

    /// The descriptor to poll for input (salloc's stderr).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stderr.as_fd()
    }

    /// When the request is withdrawn if it has not been granted.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Reads what salloc said so far, without blocking. `None` while it
    /// still waits; then the allocation, or why there is none.
    pub fn advance(&mut self) -> Option<Result<Allocation, SlurmError>> {
        let mut chunk = [0u8; 4096];
        let at_eof = loop {
            match nix::unistd::read(&self.stderr, &mut chunk) {
                Ok(0) => break true,
                Ok(n) => self.text.extend_from_slice(&chunk[..n]),
                Err(nix::errno::Errno::EAGAIN) => break false,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    return Some(Err(SlurmError::Io {
                        program: "salloc",
                        source: e.into(),
                    }));
                }
            }
        };
        let text = String::from_utf8_lossy(&self.text).into_owned();
        if self.job_id.is_none() {
            self.job_id = job_id_after(&text, "Pending job allocation ")
                .or_else(|| job_id_after(&text, "Granted job allocation "));
            if let Some(id) = self.job_id {
                // From now on a dead engine leaves nothing behind.
                self.sentinel = Sentinel::start(id).ok();
            }
        }
        if !at_eof {
            if Instant::now() < self.deadline {
                return None;
            }
            self.withdraw();
            return Some(Err(SlurmError::TimedOut {
                waited: self.limit,
                message: last_line(&text),
            }));
        }
        let status = match self.child.take() {
            Some(mut child) => match wait_or_kill(&mut child, Duration::from_secs(5)) {
                Ok(status) => status,
                Err(e) => {
                    return Some(Err(SlurmError::Io {
                        program: "salloc",
                        source: e,
                    }));
                }
            },
            None => {
                return Some(Err(SlurmError::Io {
                    program: "salloc",
                    source: io::Error::other("the request was already answered"),
                }));
            }
        };
        match job_id_after(&text, "Granted job allocation ") {
            Some(job_id) if status.success() => {
                let sentinel = match self.sentinel.take() {
                    Some(s) => Some(s),
                    None => Sentinel::start(job_id).ok(),
                };
                Some(Ok(Allocation::granted(
                    job_id,
                    self.job_name.clone(),
                    sentinel,
                )))
            }
            granted => {
                if let Some(id) = granted.or(self.job_id) {
                    let _ = scancel(&id.to_string());
                }
                Some(Err(SlurmError::Refused {
                    status,
                    message: text.trim().to_owned(),
                }))
            }
        }
    }

    /// Waits (blocking) until the request is answered.
    pub fn wait(mut self) -> Result<Allocation, SlurmError> {
        loop {
            if let Some(answer) = self.advance() {
                return answer;
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.stderr.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    return Err(SlurmError::Io {
                        program: "salloc",
                        source: e.into(),
                    });
                }
            }
        }
    }

    /// Withdraws a pending request: SIGINT makes salloc revoke it, and
    /// scancel covers a salloc that does not get to it.
    fn withdraw(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            if let Some(id) = self.job_id {
                let _ = scancel(&id.to_string());
            }
            let _ = wait_or_kill(&mut child, Duration::from_secs(2));
        }
        if let Some(sentinel) = self.sentinel.take() {
            // The job is cancelled already; the sentinel need not.
            sentinel.disarm();
        }
    }
}

impl Drop for AllocationRequest {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// The job id that follows `marker` in salloc's messages.
pub(super) fn job_id_after(text: &str, marker: &str) -> Option<u32> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SlurmRequest {
        SlurmRequest {
            partition: Some("debug".into()),
            nodes: Some(3),
            time: Some("10:00".into()),
            tasks: 7,
            job_name: "thumbs".into(),
        }
    }

    #[test]
    fn salloc_arguments_follow_the_request() {
        assert_eq!(
            request().salloc_args(),
            [
                "--no-shell",
                "--no-kill",
                "-N",
                "3",
                "--ntasks-per-node=3",
                "-p",
                "debug",
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
            tasks: 4,
            job_name: "j".into(),
        };
        assert_eq!(
            bare.salloc_args(),
            ["--no-shell", "--no-kill", "-n", "4", "-J", "j"]
        );
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
}

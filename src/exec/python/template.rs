//! The template interpreter, engine side: started once per run (when the
//! job has Python functions), before the fork server and any thread. It
//! imports the job's modules once and forks each worker's interpreter from
//! itself, on requests that arrive at its listening socket.
//!
//! It dies with the engine (`PR_SET_PDEATHSIG`, then it kills every
//! interpreter it made), and the engine stops it at the end of the run. If
//! it is gone, workers start fresh interpreters themselves.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::probe::parse_report;
use super::runtime_args;
use super::setup::PythonSetup;
use crate::shared::SocketDir;
use crate::spec::{Job, PythonReport, PythonSettings};

/// How long the template may take to end after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// The running template.
pub struct Template {
    child: Child,
    socket: PathBuf,
    /// The private folder of the socket, removed when dropped.
    _dir: SocketDir,
}

/// A template started while the job was checked, for `prepare` to take.
static STARTED: Mutex<Option<Template>> = Mutex::new(None);

impl Template {
    /// The template for `job`: the one started while the job was checked
    /// ([`probe_and_start`]), else a new one.
    pub fn start(job: &Job) -> io::Result<Template> {
        let started = STARTED.lock().ok().and_then(|mut t| t.take());
        match started {
            Some(t) => Ok(t),
            None => {
                let setup = PythonSetup::of_job(job, None);
                Template::spawn(&setup, &job.dir, None).map(|(t, _)| t)
            }
        }
    }

    /// Starts the template; with `report`, it first writes what `check`
    /// asks (version, missing modules) on a pipe, read here.
    fn spawn(
        setup: &PythonSetup,
        dir: &Path,
        report: Option<()>,
    ) -> io::Result<(Template, Option<OwnedFd>)> {
        let socket_dir = SocketDir::create()?;
        let socket = socket_dir.path().join("python.sock");
        let listener = UnixListener::bind(&socket)?;
        let engine = std::process::id();
        let listen_fd = listener.as_raw_fd();
        let (report_r, report_w) = match report {
            Some(()) => {
                let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
                (Some(r), Some(w))
            }
            None => (None, None),
        };
        let report_fd = report_w.as_ref().map_or(-1, |w| w.as_raw_fd());
        let stderr = io::stderr().as_raw_fd();
        let mut config: serde_json::Value =
            serde_json::from_str(&setup.config(engine)).unwrap_or_default();
        config["report"] = serde_json::Value::Bool(report.is_some());
        let mut command = Command::new(&setup.interpreter);
        command
            .args(runtime_args())
            .arg("template")
            .arg(config.to_string())
            .current_dir(dir)
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
                for (from, to) in [(listen_fd, 3), (report_fd, 4)] {
                    if from < 0 {
                        continue;
                    }
                    let ok = if from == to {
                        libc::fcntl(to, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(from, to)
                    };
                    if ok < 0 {
                        return Err(io::Error::last_os_error());
                    }
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
        drop(report_w);
        let template = Template {
            child,
            socket,
            _dir: socket_dir,
        };
        Ok((template, report_r))
    }

    /// The socket workers connect to.
    pub fn socket(&self) -> &Path {
        &self.socket
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

/// `check`'s probe for `run`: starts the template, which answers what the
/// probe asks before it imports anything, and keeps it for `prepare`. One
/// interpreter start serves both (with a version manager's shim in front
/// of `python3`, a start can cost more than the work).
pub fn probe_and_start(
    settings: &PythonSettings,
    dir: &Path,
    modules: &[String],
) -> Result<PythonReport, String> {
    let setup = PythonSetup::of_settings(settings, dir, modules);
    let (template, report) = Template::spawn(&setup, dir, Some(())).map_err(|e| e.to_string())?;
    let Some(report) = report else {
        return Err("no report from the interpreter".into());
    };
    let mut text = String::new();
    let read = std::fs::File::from(report).read_to_string(&mut text);
    let parsed = read
        .ok()
        .and_then(|_| text.lines().last().map(String::from))
        .ok_or_else(|| "it did not answer".to_string())
        .and_then(|line| parse_report(&line));
    match parsed {
        Ok(report) => {
            if let Ok(mut slot) = STARTED.lock() {
                *slot = Some(template);
            }
            Ok(report)
        }
        Err(_) => {
            template.stop();
            // Ask again the plain way, for its clearer message.
            super::probe(settings, dir, modules)
        }
    }
}

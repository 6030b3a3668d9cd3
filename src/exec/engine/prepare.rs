//! What must exist before any thread: the shared-values socket, the
//! environment of tasks, the signal pipe and the fork server.

use std::os::unix::net::UnixListener;

use super::launcher::{Forked, Launcher};
use crate::exec::fork_server::{ForkServer, become_subreaper, ensure_single_threaded};
use crate::exec::python::Template;
use crate::exec::signals::SignalPipe;
use crate::shared::SharedStore;
use crate::spec::Job;

/// The engine's resources that must exist before any thread: the fork
/// server and the shared-values socket.
pub struct Prepared {
    /// The fork server, behind the engine's launcher seam.
    pub(super) launcher: Box<dyn Launcher>,
    pub(super) shared: Option<(SharedStore, UnixListener, crate::shared::SocketDir)>,
    pub(super) signals: SignalPipe,
    /// The template interpreter, when the job has Python functions.
    pub(super) python: Option<Template>,
}

/// Sets up what must exist before any thread: call it first in `run`.
/// Fails, changing nothing, unless the process has one thread.
pub fn prepare(job: &Job) -> std::io::Result<Prepared> {
    ensure_single_threaded("preparing the run")?;
    let shared = if job.shared.is_empty() {
        None
    } else {
        let dir = crate::shared::SocketDir::create()?;
        let path = dir.socket_path();
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        // SAFETY: the process has one thread (checked above; nothing here
        // starts one), so changing the environment races with nothing.
        unsafe { std::env::set_var(crate::shared::ENV_VAR, &path) };
        Some((SharedStore::new(job.shared.clone()), listener, dir))
    };
    if let Ok(exe) = std::env::current_exe() {
        let dir = exe.parent().map(|d| d.to_path_buf()).unwrap_or_default();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir];
        paths.extend(std::env::split_paths(&path));
        // SAFETY: as above, single-threaded.
        unsafe {
            std::env::set_var("JOBFILE", &exe);
            if let Ok(joined) = std::env::join_paths(paths) {
                std::env::set_var("PATH", joined);
            }
        }
    }
    let signals = SignalPipe::install()?;
    // Workers are forked by the fork server but adopted by the engine.
    become_subreaper()?;
    // Before the fork server, so that no worker holds the template's
    // listening socket: if the template dies, requests fail at once.
    let python = if job.uses_python() {
        Some(Template::start(job)?)
    } else {
        None
    };
    let fork_server = ForkServer::start()?;
    Ok(Prepared {
        launcher: Box::new(Forked::new(fork_server)),
        shared,
        signals,
        python,
    })
}

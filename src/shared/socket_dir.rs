//! The private directory that holds the engine's shared-value socket for
//! one run, and the guard that removes it.
//!
//! The directory is what keeps other users out: it is made fresh with mode
//! 0700 (never reused, so a directory planted by someone else is skipped),
//! under `$XDG_RUNTIME_DIR` when there is one, else the temporary
//! directory. The engine binds its listener at [`SocketDir::socket_path`]
//! and exports that path in [`super::ENV_VAR`].

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The file name of the socket inside the directory.
const SOCKET_NAME: &str = "shared.sock";

/// A Unix socket path must fit in `sockaddr_un.sun_path` (108 bytes on
/// Linux, 104 on macOS, with the trailing NUL); stay under both.
const MAX_SOCKET_PATH: usize = 100;

/// How many names to try before giving up on a crowded directory.
const ATTEMPTS: u32 = 64;

/// Distinguishes the directories made by one process.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A private directory for one run's socket, removed (with everything in
/// it) when the guard is dropped by the process that made it.
///
/// Workers are forked from the engine and so inherit a copy of the guard;
/// only the process that created the directory removes it, so a worker
/// that happens to drop its copy leaves the run's socket alone.
#[derive(Debug)]
pub struct SocketDir {
    path: PathBuf,
    owner: u32,
}

impl SocketDir {
    /// Makes a fresh directory under `$XDG_RUNTIME_DIR` if it is set to an
    /// absolute directory, else under [`std::env::temp_dir`]; under `/tmp`
    /// when either would make the socket path too long for `bind`.
    pub fn create() -> io::Result<SocketDir> {
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute() && dir.is_dir());
        let base = runtime.unwrap_or_else(std::env::temp_dir);
        let base = if fits(&base) {
            base
        } else {
            PathBuf::from("/tmp")
        };
        SocketDir::create_in(&base)
    }

    /// Makes a fresh directory (mode 0700) inside `base`.
    pub fn create_in(base: &Path) -> io::Result<SocketDir> {
        let pid = std::process::id();
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            let path = base.join(unique_name(pid));
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    let dir = SocketDir { path, owner: pid };
                    // The umask may have taken bits away; 0700 is what the
                    // socket needs to be usable by its owner alone.
                    fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o700))?;
                    return Ok(dir);
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no free directory name")))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the engine binds its socket: `shared.sock` in the directory.
    pub fn socket_path(&self) -> PathBuf {
        self.path.join(SOCKET_NAME)
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        if std::process::id() == self.owner {
            // Best effort: a directory left behind in a temporary location
            // is harmless, and a destructor has nobody to report to.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// `jobfile-PID-TIME-N`: unique among live processes by the pid, and the
/// time and counter move past leftovers of a dead process with the same pid.
fn unique_name(pid: u32) -> String {
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("jobfile-{pid}-{nanos:x}-{count}")
}

/// Whether a socket in a directory made under `base` fits in `sun_path`.
fn fits(base: &Path) -> bool {
    let longest = base
        .join(format!("jobfile-{}-{:x}-{}", u32::MAX, u32::MAX, u32::MAX))
        .join(SOCKET_NAME);
    longest.as_os_str().len() <= MAX_SOCKET_PATH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_fresh_and_removed_on_drop() {
        let base = tempfile::tempdir().unwrap();
        let one = SocketDir::create_in(base.path()).unwrap();
        let two = SocketDir::create_in(base.path()).unwrap();
        assert_ne!(one.path(), two.path());
        assert_eq!(one.path().parent(), Some(base.path()));
        let mode = fs::metadata(one.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(one.socket_path(), one.path().join("shared.sock"));

        fs::write(one.path().join("leftover"), b"x").unwrap();
        let path = one.path().to_path_buf();
        drop(one);
        assert!(!path.exists());
        assert!(two.path().exists());
    }

    #[test]
    fn another_process_copy_does_not_remove() {
        let base = tempfile::tempdir().unwrap();
        let dir = SocketDir::create_in(base.path()).unwrap();
        let path = dir.path().to_path_buf();
        // What a forked worker holds: the same guard, another pid.
        let copy = SocketDir {
            path: path.clone(),
            owner: dir.owner.wrapping_add(1),
        };
        drop(copy);
        assert!(path.exists());
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn missing_base_is_an_error() {
        let base = tempfile::tempdir().unwrap();
        let err = SocketDir::create_in(&base.path().join("nope")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn long_bases_do_not_fit() {
        assert!(fits(Path::new("/run/user/1000")));
        assert!(fits(Path::new("/tmp")));
        assert!(!fits(&Path::new("/").join("x".repeat(80))));
    }

    #[test]
    fn create_uses_a_base_that_fits() {
        let dir = SocketDir::create().unwrap();
        assert!(dir.socket_path().as_os_str().len() <= MAX_SOCKET_PATH);
        assert!(dir.path().is_dir());
    }
}

//! Process helpers shared by the engine and its workers: the grace before
//! a SIGKILL, this machine's name, a process's children, signal names,
//! a pidfd to wait for an exit in a poll.
//!
//! Must not: hold state or decide what to stop; callers do.

use std::io::{self, ErrorKind};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Grace between SIGTERM and SIGKILL for a command, an interpreter or a
/// unit that must stop (a timeout, a cancel, the end of a run).
pub const GRACE: Duration = Duration::from_secs(2);

/// This machine's host name (`uname -n`, as this process's UTS namespace
/// has it), if it has one.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The pids whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<i32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    if let Ok(text) = std::fs::read_to_string(path) {
        return text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    // Without CONFIG_PROC_CHILDREN: scan every process's parent.
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(child) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // The parent is the second field after the command's `)`.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(pid) {
                out.push(child);
            }
        }
    }
    out
}

/// The name of a signal number, like `SIGKILL`.
pub fn signal_name(sig: i32) -> &'static str {
    Signal::try_from(sig).map_or("unknown signal", Signal::as_str)
}

/// Opens a pidfd for `pid`, which becomes readable when it exits.
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and a flags word, both plain integers,
    // and returns a new fd or -1; no memory is shared with the kernel.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let raw = i32::try_from(ret).map_err(|_| io::Error::from(ErrorKind::InvalidData))?;
    // SAFETY: the kernel has just returned this fd, open and owned by no one
    // else; it is created close-on-exec.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

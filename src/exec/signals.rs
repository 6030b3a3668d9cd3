//! SIGINT and SIGTERM reach the engine's loop through a self-pipe: the
//! handler only writes the signal's number.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: __errno_location gives this thread's errno, which the
    // interrupted code may be about to read: the handler puts it back.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: reading this thread's errno through its own pointer.
    let saved = unsafe { *errno };
    let fd = PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write is async-signal-safe.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// The read end of the self-pipe; dropping it does not restore handlers.
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalPipe {
    /// Installs the handlers for SIGINT and SIGTERM.
    pub fn install() -> std::io::Result<SignalPipe> {
        let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
        let (read, write) = nix::unistd::pipe2(flags)?;
        PIPE.store(write.as_raw_fd(), Ordering::Relaxed);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: the handler only writes one byte to a pipe.
        unsafe {
            sigaction(Signal::SIGINT, &action)?;
            sigaction(Signal::SIGTERM, &action)?;
            sigaction(Signal::SIGPIPE, &ignore)?;
        }
        Ok(SignalPipe {
            read,
            _write: write,
        })
    }

    /// A pipe no handler writes to: for tests of the engine, which must
    /// not take the test runner's signals.
    #[cfg(test)]
    pub fn unconnected() -> std::io::Result<SignalPipe> {
        let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
        let (read, write) = nix::unistd::pipe2(flags)?;
        Ok(SignalPipe {
            read,
            _write: write,
        })
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The first signal received since the last call, if any.
    pub fn take(&self) -> Option<Signal> {
        let mut buf = [0u8; 16];
        let mut first = None;
        while let Ok(n) = nix::unistd::read(&self.read, &mut buf) {
            if n == 0 {
                break;
            }
            if first.is_none() {
                first = Signal::try_from(i32::from(buf[0])).ok();
            }
        }
        first
    }
}

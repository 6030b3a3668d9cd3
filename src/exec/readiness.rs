//! Waiting for input on a few descriptors at once, some of which may be
//! absent: the poll loops of a command and of a Python interpreter; and
//! making a descriptor non-blocking, for loops that poll it.
//!
//! Must not: read, retry, or decide what readiness means; callers do.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Polls the present descriptors of `fds` for input; gives each slot's
/// events (empty for an absent one). `EINTR` comes back as an error.
pub(crate) fn poll_in<const N: usize>(
    fds: [Option<BorrowedFd<'_>>; N],
    timeout: PollTimeout,
) -> nix::Result<[PollFlags; N]> {
    let mut polled = Vec::with_capacity(N);
    let mut slots = [None; N];
    for (slot, fd) in fds.into_iter().enumerate() {
        if let Some(fd) = fd {
            slots[slot] = Some(polled.len());
            polled.push(PollFd::new(fd, PollFlags::POLLIN));
        }
    }
    poll(&mut polled, timeout)?;
    Ok(slots.map(|slot| {
        slot.and_then(|i| polled[i].revents())
            .unwrap_or(PollFlags::empty())
    }))
}

/// Converts a wait into a poll timeout in whole milliseconds, rounded up so
/// that the deadline has passed when poll returns.
pub(crate) fn poll_timeout(d: Duration) -> PollTimeout {
    let ms = d.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms)
        .ok()
        .and_then(|ms| PollTimeout::try_from(ms).ok())
        .unwrap_or(PollTimeout::MAX)
}

/// Sets `O_NONBLOCK` on a descriptor, keeping its other status flags
/// (those nix has no name for too).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

//! What an in-process call (a builtin, a registered Rust function) writes
//! to file descriptors 1 and 2, captured call by call, as a command's
//! pipes are.
//!
//! A worker points its fd 1 and fd 2 at two memory files once, when it
//! starts. Most calls print nothing, and a builtin like `noop` runs in
//! about a microsecond, so finding that out must cost no system call: the
//! first page of each file is also mapped, and its first byte is set to
//! `0xFF`, a byte that UTF-8 text never holds. A write lands at offset 0
//! and changes that byte; then (only then) the file's offset says how much
//! was written, the bytes are read back, and the file is reset for the
//! next call. Output whose very first byte is `0xFF` (binary) is not seen
//! until a later call writes text. Child processes a function starts
//! inherit the same descriptors, so their output is captured too.
//!
//! Must not be used by a process whose fd 1 is its protocol channel: the
//! worker moves that away (duplicates it) first.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Output captured from one call.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Captured {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    /// Some was dropped: over the limit.
    pub(crate) truncated: bool,
}

/// This process's fd 1 and fd 2, pointed at memory files.
pub(crate) struct OutputCapture {
    out: MemFile,
    err: MemFile,
    limit: usize,
}

impl OutputCapture {
    /// Points fd 1 and fd 2 at two new memory files; keeps at most `limit`
    /// bytes of each per call.
    pub(crate) fn install(limit: usize) -> io::Result<OutputCapture> {
        let out = MemFile::new("jobfile-stdout")?;
        let err = MemFile::new("jobfile-stderr")?;
        // What std has buffered for the old fd 1 goes there first.
        let _ = io::stdout().flush();
        for (file, target) in [(&out, 1), (&err, 2)] {
            // SAFETY: dup2 onto fd 1 or 2 replaces what they pointed at;
            // std's stdout and stderr handles hold no descriptor of their
            // own, only the numbers 1 and 2, so nothing else owned closes.
            if unsafe { libc::dup2(file.fd.as_raw_fd(), target) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(OutputCapture { out, err, limit })
    }

    /// Takes what was written since the last call, leaving both files empty.
    pub(crate) fn take(&mut self) -> Captured {
        // print! without a newline waits in std's buffer.
        let _ = io::stdout().flush();
        let mut captured = Captured::default();
        captured.truncated |= self.out.drain(self.limit, &mut captured.stdout);
        captured.truncated |= self.err.drain(self.limit, &mut captured.stderr);
        captured
    }
}

/// What the first byte of a memory file is set to while it holds nothing.
const UNWRITTEN: u8 = 0xFF;

/// The size a memory file is kept at (and mapped): one page.
const PAGE: usize = 4096;

/// A memory file, also at fd 1 or fd 2, with its first page mapped. It is
/// kept here too, so that a function that closes fd 1 or 2 cannot make the
/// capture read something else.
struct MemFile {
    fd: OwnedFd,
    /// The first page, shared with the file.
    page: *mut u8,
}

impl MemFile {
    fn new(name: &str) -> io::Result<MemFile> {
        let fd = memfd(name)?;
        // SAFETY: ftruncate on a descriptor we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), PAGE as libc::off_t) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: maps the file's first page, which exists (just sized);
        // the mapping is released in Drop, and nothing else unmaps it.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let file = MemFile {
            fd,
            page: page.cast(),
        };
        file.mark_unwritten();
        Ok(file)
    }

    fn first_byte(&self) -> u8 {
        // SAFETY: `page` maps PAGE >= 1 bytes for as long as self lives;
        // volatile, because writes to the file change it behind the
        // compiler's back.
        unsafe { std::ptr::read_volatile(self.page) }
    }

    fn mark_unwritten(&self) {
        // SAFETY: as in `first_byte`; the mapping is writable.
        unsafe { std::ptr::write_volatile(self.page, UNWRITTEN) }
    }

    /// Moves what was written since the last drain into `buf` (at most
    /// `limit` bytes) and resets the file. Returns whether some was dropped.
    fn drain(&mut self, limit: usize, buf: &mut Vec<u8>) -> bool {
        if self.first_byte() == UNWRITTEN {
            return false;
        }
        let fd = self.fd.as_raw_fd();
        // SAFETY: lseek on a descriptor we own.
        let end = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }.max(0) as usize;
        let keep = end.min(limit);
        buf.resize(keep, 0);
        let mut got = 0;
        while got < keep {
            // SAFETY: pread into the part of `buf` not yet filled, which is
            // `keep - got` bytes long.
            let n = unsafe {
                libc::pread(
                    fd,
                    buf[got..].as_mut_ptr().cast(),
                    keep - got,
                    got as libc::off_t,
                )
            };
            if n <= 0 {
                if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            got += n as usize;
        }
        buf.truncate(got);
        // SAFETY: ftruncate and lseek on a descriptor we own. A file that
        // grew past its page gives the memory back; the page stays mapped.
        unsafe {
            if end > PAGE {
                libc::ftruncate(fd, PAGE as libc::off_t);
            }
            libc::lseek(fd, 0, libc::SEEK_SET);
        }
        self.mark_unwritten();
        end > keep
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        // SAFETY: unmaps the page mapped in `new`, used by nothing after.
        unsafe {
            libc::munmap(self.page.cast(), PAGE);
        }
    }
}

fn memfd(name: &str) -> io::Result<OwnedFd> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: memfd_create reads a NUL-terminated name we own and returns
    // a new descriptor (or -1).
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_reads_what_was_written_and_resets() {
        let mut mem = MemFile::new("t").unwrap();
        let mut file = std::fs::File::from(mem.fd.try_clone().unwrap());
        let mut buf = Vec::new();
        assert!(!mem.drain(100, &mut buf));
        assert!(buf.is_empty());
        file.write_all(b"hello\n").unwrap();
        assert!(!mem.drain(100, &mut buf));
        assert_eq!(buf, b"hello\n");
        // Longer than the page, and cut at the limit.
        let long = vec![b'x'; 3 * PAGE];
        file.write_all(&long).unwrap();
        let mut buf = Vec::new();
        assert!(!mem.drain(usize::MAX, &mut buf));
        assert_eq!(buf, long);
        file.write_all(b"0123456789").unwrap();
        let mut buf = Vec::new();
        assert!(mem.drain(4, &mut buf));
        assert_eq!(buf, b"0123");
        let mut buf = Vec::new();
        assert!(!mem.drain(4, &mut buf));
        assert!(buf.is_empty());
        // A NUL byte first is output too.
        file.write_all(b"\0a").unwrap();
        assert!(!mem.drain(100, &mut buf));
        assert_eq!(buf, b"\0a");
    }
}

//! The one table of exit statuses.

/// Exit status of `jobfile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Every task ended ok (or the command did what it was asked).
    Ok = 0,
    /// At least one task did not end ok.
    TaskFailed = 1,
    /// The job file or the command line is invalid; nothing ran.
    Invalid = 2,
    /// Stopped by SIGINT.
    Interrupted = 130,
    /// Stopped by SIGTERM.
    Terminated = 143,
}

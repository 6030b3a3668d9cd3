//! Writing to standard output and standard error without panicking.
//!
//! `println!` and `eprintln!` panic when the stream is gone, so
//! `jobfile schema | head -1` would end with a panic and status 101. Here a
//! closed standard output (`EPIPE`) ends the command quietly, as ripgrep
//! does: the reader has all it wanted. Any other error is reported.

use std::io::{self, Write};

use super::exit::ExitCode;

/// Writes a diagnostic line to standard error, above the progress bar
/// when one is up; a standard error that is gone is ignored (there is
/// nowhere left to say so).
macro_rules! diag {
    ($($arg:tt)*) => {{
        $crate::report::screen::eprint_lines(&format!($($arg)*));
    }};
}

/// Writes text to standard error as is (rendered diagnostics end with
/// their own newline), above the progress bar when one is up, ignoring a
/// standard error that is gone.
pub(crate) fn diag_text(text: &str) {
    crate::report::screen::eprint_text(text);
}

/// Whether an error means the reader of a pipe went away.
pub(crate) fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// Prints `text` on standard output: [`ExitCode::Ok`] when it was written
/// or when the reader went away (a closed pipe), else an error message and
/// [`ExitCode::TaskFailed`].
pub(crate) fn print_stdout(text: &[u8]) -> ExitCode {
    let mut out = io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::Ok,
        Err(e) => stdout_failed(&e),
    }
}

/// What a failed write to standard output means for the exit status:
/// quiet success for a closed pipe, an error otherwise.
pub(crate) fn stdout_failed(e: &io::Error) -> ExitCode {
    if is_broken_pipe(e) {
        ExitCode::Ok
    } else {
        diag!("error: cannot write to standard output: {e}");
        ExitCode::TaskFailed
    }
}

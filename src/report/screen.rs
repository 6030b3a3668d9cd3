//! The terminal while a run goes on. The progress bar, while it is up, is
//! the one owner of standard error: every line for a person (a `--live`
//! line, a failure, the closing list) is printed through it, so the bar
//! is taken away, the line written and the bar drawn again below it.
//! Results that go to the same terminal (standard output) are written
//! with the bar suspended, so no line is left half over an old bar.
//!
//! Standard error is one per process, so the bar that owns it is kept
//! here, once, while it is up; the engine is single-threaded and the
//! lock is never held while writing.

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;
use nix::sys::termios::{LocalFlags, SetArg, Termios, tcgetattr, tcsetattr};

/// The bar now on standard error, if one is up.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The terminal's settings before the bar changed them.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// The bar `bar` owns standard error until [`detach`].
///
/// While it is up, the terminal does not echo `^C`: the bar leaves the
/// cursor at the end of its line, where the echo would wrap to a line of
/// its own, and the bar, cleared after Ctrl-C, would stay on the screen
/// above it. The signal is delivered as ever.
pub(crate) fn attach(bar: &ProgressBar) {
    if let Ok(mut slot) = BAR.lock() {
        *slot = Some(bar.clone());
    }
    let stderr = io::stderr();
    if let (true, Ok(before)) = (stderr.is_terminal(), tcgetattr(&stderr)) {
        let mut quiet = before.clone();
        quiet.local_flags.remove(LocalFlags::ECHOCTL);
        if tcsetattr(&stderr, SetArg::TCSANOW, &quiet).is_ok() {
            if let Ok(mut saved) = SAVED.lock() {
                *saved = Some(before);
            }
        }
    }
}

/// No bar owns standard error any more; the terminal is as it was.
pub(crate) fn detach() {
    if let Ok(mut slot) = BAR.lock() {
        *slot = None;
    }
    if let Some(before) = SAVED.lock().ok().and_then(|mut s| s.take()) {
        let _ = tcsetattr(io::stderr(), SetArg::TCSANOW, &before);
    }
}

fn bar() -> Option<ProgressBar> {
    BAR.lock().ok().and_then(|slot| slot.clone())
}

/// Runs `f` with the bar taken off the terminal, then draws it again.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    match bar() {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// Prints `text` (one line or more, without the final newline) on
/// standard error, above the bar when one is up. A standard error that is
/// gone is ignored: there is nowhere left to say so.
pub fn eprint_lines(text: &str) {
    match bar().filter(|b| !b.is_hidden()) {
        // One draw: the lines, then the bar under them.
        Some(bar) => bar.println(text),
        None => {
            let _ = writeln!(io::stderr().lock(), "{text}");
        }
    }
}

/// Prints `text` on standard error as it is (it ends with its own
/// newline), above the bar when one is up.
pub fn eprint_text(text: &str) {
    match bar().filter(|b| !b.is_hidden()) {
        Some(bar) => bar.println(text.strip_suffix('\n').unwrap_or(text)),
        None => {
            let _ = io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

/// Standard output that is a terminal: each write the buffer in front of
/// it makes is done with the bar suspended.
#[derive(Debug, Default)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        suspend(|| {
            let mut out = io::stdout().lock();
            out.write_all(buf)?;
            out.flush()
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush()
    }
}

/// Whether standard output is a terminal (so results shown there share
/// the screen with the bar).
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Which stream a width is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The columns lines on `stream` should fit in: `COLUMNS` when it is set
/// to a number, else the terminal's width, else `None`: nothing to fit.
/// Results on standard output are fitted only on a terminal, so what a
/// pipe gets never depends on the environment.
pub fn width(stream: Stream) -> Option<usize> {
    let terminal = match stream {
        Stream::Stdout => io::stdout().is_terminal(),
        Stream::Stderr => io::stderr().is_terminal(),
    };
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    if stream == Stream::Stdout && !terminal {
        return None;
    }
    if let Some(c) = columns {
        return Some(c);
    }
    if !terminal {
        return None;
    }
    let size = match stream {
        Stream::Stdout => terminal_size::terminal_size_of(io::stdout()),
        Stream::Stderr => terminal_size::terminal_size_of(io::stderr()),
    };
    // A terminal that does not say its size (a new pty says 0) is taken
    // as the usual 80 columns.
    let columns = size.map_or(0, |(w, _)| usize::from(w.0));
    Some(if columns == 0 { 80 } else { columns.max(20) })
}

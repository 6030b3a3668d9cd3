//! The progress bar on standard error: done of total, running, failed, ETA.
//! Never part of the results.

use std::io::{self, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::Status;

/// The run's progress bar.
pub struct Progress {
    bar: ProgressBar,
    failed: u64,
    running: usize,
}

impl Progress {
    /// A bar for `total` records (a spinner with a count when unknown).
    /// `force` draws it even when stderr is not a terminal.
    pub fn new(total: Option<u64>, force: bool) -> Progress {
        let target = if force {
            ProgressDrawTarget::term_like_with_hz(Box::new(Stderr), 10)
        } else {
            ProgressDrawTarget::stderr_with_hz(10)
        };
        let bar = match total {
            Some(n) => {
                let bar = ProgressBar::with_draw_target(Some(n), target);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} done, {msg}, {elapsed} elapsed, ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, target);
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {pos} done, {msg}, {elapsed} elapsed")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar
            }
        };
        let p = Progress {
            bar,
            failed: 0,
            running: 0,
        };
        p.update_message();
        p
    }

    /// A record was written (or held for order).
    pub fn record(&mut self, status: Status) {
        if status != Status::Ok {
            self.failed += 1;
            self.update_message();
        }
        self.bar.inc(1);
    }

    /// Units running now.
    pub fn running(&mut self, n: usize) {
        if n != self.running {
            self.running = n;
            self.update_message();
        }
    }

    fn update_message(&self) {
        self.bar
            .set_message(format!("{} running, {} not ok", self.running, self.failed));
    }

    /// Removes the bar (the summary line follows).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Standard error as a terminal, for `--progress always` in a pipe.
#[derive(Debug)]
struct Stderr;

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        100
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            write!(io::stderr(), "\x1b[{n}A")?;
        }
        Ok(())
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            write!(io::stderr(), "\x1b[{n}B")?;
        }
        Ok(())
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            write!(io::stderr(), "\x1b[{n}C")?;
        }
        Ok(())
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n > 0 {
            write!(io::stderr(), "\x1b[{n}D")?;
        }
        Ok(())
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        writeln!(io::stderr(), "{s}")
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        write!(io::stderr(), "{s}")
    }

    fn clear_line(&self) -> io::Result<()> {
        write!(io::stderr(), "\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

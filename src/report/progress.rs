//! The progress bar on standard error: done of total, running, failed, ETA.
//! Never part of the results. While it is up it owns standard error
//! ([`screen`](super::screen)): lines are printed above it, never under.
//!
//! Above the bar: each failure as it ends, when the results go elsewhere;
//! when they are text on this terminal in submission order, the failures
//! still waiting for their turn are listed on the bar itself, so none
//! waits unseen behind one slow item, and each leaves when its line does.

use std::collections::BTreeMap;
use std::io::{self, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::Status;
use super::columns::{STATUS_WIDTH, cut, one_line, pad_right};
use super::screen::{self, Stream};

/// Failures listed on the bar at most; the others are counted.
const HELD_SHOWN: usize = 5;
/// Failures printed above the bar as they end, at most.
const PRINTED_MOST: usize = 100;

/// The run's progress bar.
pub struct Progress {
    bar: ProgressBar,
    failed: u64,
    running: usize,
    /// Columns of the terminal the bar is on.
    columns: usize,
    color: bool,
    /// Failures waiting for their turn, by (task, index), with their line:
    /// the first few; the others are only counted.
    held: BTreeMap<(String, Option<u64>), String>,
    held_more: u64,
    /// Failures printed above the bar so far.
    printed: usize,
}

impl Progress {
    /// A bar for `total` records (a spinner with a count when unknown).
    /// `force` draws it even when stderr is not a terminal.
    pub fn new(total: Option<u64>, force: bool, color: bool) -> Progress {
        let target = if force {
            ProgressDrawTarget::term_like_with_hz(Box::new(Stderr), 10)
        } else {
            ProgressDrawTarget::stderr_with_hz(10)
        };
        let columns = screen::width(Stream::Stderr).unwrap_or(FORCED_WIDTH);
        // The bar takes what the words leave, so the line never wraps.
        let bar_columns = columns.saturating_sub(58).clamp(10, 40);
        let bar = match total {
            Some(n) => {
                let bar = ProgressBar::with_draw_target(Some(n), target);
                bar.set_style(
                    ProgressStyle::with_template(&format!(
                        "{{prefix}}{{bar:{bar_columns}}} {{pos}}/{{len}} done, {{msg}}, \
                         {{elapsed}} elapsed, ETA {{eta}}"
                    ))
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, target);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}{spinner} {pos} done, {msg}, {elapsed} elapsed",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar
            }
        };
        screen::attach(&bar);
        let p = Progress {
            bar,
            failed: 0,
            running: 0,
            columns,
            color,
            held: BTreeMap::new(),
            held_more: 0,
            printed: 0,
        };
        p.update_message();
        p
    }

    /// A failure that just ended, printed above the bar: the first
    /// [`PRINTED_MOST`]; the others are counted on the bar only.
    pub fn println_failure(&mut self, status: Status, label: &str, error: &str) {
        self.printed += 1;
        if self.printed <= PRINTED_MOST {
            self.bar.println(self.failure_line(status, label, error));
        } else if self.printed == PRINTED_MOST + 1 {
            self.bar
                .println("… more failures are only counted here; the results hold them all");
        }
    }

    /// A failure waiting for its turn in submission order: shown on the
    /// bar until [`Progress::release`].
    pub fn hold(
        &mut self,
        task: &str,
        index: Option<u64>,
        status: Status,
        label: &str,
        error: &str,
    ) {
        if self.held.len() < HELD_SHOWN {
            let line = self.failure_line(status, label, error);
            self.held.insert((task.to_string(), index), line);
            self.update_prefix(true);
        } else {
            self.held_more += 1;
            self.update_prefix(false);
        }
    }

    /// The record of task `task`, item `index`, is out: off the bar.
    pub fn release(&mut self, task: &str, index: Option<u64>) {
        if self.held.is_empty() && self.held_more == 0 {
            return;
        }
        let listed = self.held.remove(&(task.to_string(), index)).is_some();
        if !listed {
            self.held_more = self.held_more.saturating_sub(1);
        }
        self.update_prefix(listed);
    }

    /// Lists the held failures on the bar. `now`: draw it at once, past
    /// the bar's rate limit, for a line that came or went; nothing else may
    /// draw the bar again while the one slow item runs.
    fn update_prefix(&self, now: bool) {
        let mut prefix = String::new();
        for line in self.held.values() {
            prefix.push_str(line);
            prefix.push('\n');
        }
        if self.held_more > 0 {
            prefix.push_str(&format!(
                "and {} more not ok, waiting for their turn\n",
                self.held_more
            ));
        }
        self.bar.set_prefix(prefix);
        if now {
            self.bar.force_draw();
        }
    }

    /// `failed    tests[3] python=3.12: exited with code 1`, fitted.
    fn failure_line(&self, status: Status, label: &str, error: &str) -> String {
        let head = one_line(&format!("{label}: {error}"));
        let head = cut(&head, self.columns.saturating_sub(STATUS_WIDTH + 1));
        let shown = pad_right(status.as_str(), STATUS_WIDTH);
        let shown = super::text_writer::paint(&shown, status, self.color);
        format!("{shown} {head}")
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

    /// Removes the bar (the summary line follows) and gives standard
    /// error back.
    pub fn finish(&self) {
        self.bar.set_prefix("");
        self.bar.finish_and_clear();
        screen::detach();
    }
}

impl Drop for Progress {
    /// A bar dropped without [`Progress::finish`] (a run that ended on an
    /// error, a panic) still leaves the terminal as it found it.
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
        screen::detach();
    }
}

/// Columns of a bar drawn off a terminal (`--progress always`).
const FORCED_WIDTH: usize = 100;

/// Standard error as a terminal, for `--progress always` in a pipe.
#[derive(Debug)]
struct Stderr;

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        let columns = screen::width(Stream::Stderr).unwrap_or(FORCED_WIDTH);
        u16::try_from(columns).unwrap_or(u16::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_failures_are_listed_then_counted_and_leave_as_they_come_out() {
        let mut p = Progress::new(Some(10), false, false);
        for i in 0..7 {
            p.hold(
                "t",
                Some(i),
                Status::Failed,
                &format!("t[{i}]"),
                "exited with code 1",
            );
        }
        assert_eq!((p.held.len(), p.held_more), (5, 2));
        assert!(p.held[&("t".to_string(), Some(0))].starts_with("failed    t[0]: exited"));
        p.release("t", Some(0));
        assert_eq!((p.held.len(), p.held_more), (4, 2));
        p.release("t", Some(6));
        p.release("t", Some(5));
        p.release("t", Some(5));
        assert_eq!((p.held.len(), p.held_more), (4, 0), "never below zero");
        p.finish();
    }
}

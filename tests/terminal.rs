//! What a person sees on a terminal: `jobfile run` under a pseudo-terminal
//! (`script(1)`), its bytes played on a small terminal emulator, and the
//! final screen checked: no stale progress bar lines (plain, `--live`,
//! after Ctrl-C), the failures listed with their stderr at the end, named
//! map items, and lines that fit 80 and 200 columns, CJK ids aligned.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use unicode_width::UnicodeWidthChar;

/// A terminal as wide as `columns`, with unlimited scrollback: printable
/// characters (wide ones take two cells) with the pending wrap of a real
/// terminal, CR, LF, backspace, cursor moves and erasing a line; other
/// escape sequences (colours) are read and ignored.
struct Screen {
    columns: usize,
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    pending_wrap: bool,
}

/// The cell to the right of a wide character.
const WIDE_TAIL: char = '\0';

impl Screen {
    fn play(bytes: &[u8], columns: usize) -> Screen {
        let mut s = Screen {
            columns,
            rows: vec![Vec::new()],
            row: 0,
            col: 0,
            pending_wrap: false,
        };
        let text = String::from_utf8_lossy(bytes);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => s.move_to(s.row, 0),
                '\n' => s.move_to(s.row + 1, s.col),
                '\x08' => s.move_to(s.row, s.col.saturating_sub(1)),
                '\x07' => {}
                '\x1b' => {
                    if chars.peek() != Some(&'[') {
                        chars.next();
                        continue;
                    }
                    chars.next();
                    let mut params = String::new();
                    let mut end = ' ';
                    for p in chars.by_ref() {
                        if p.is_ascii_alphabetic() || p == '~' {
                            end = p;
                            break;
                        }
                        params.push(p);
                    }
                    let n = params
                        .trim_start_matches('?')
                        .parse::<usize>()
                        .unwrap_or(1)
                        .max(1);
                    match end {
                        'A' => s.move_to(s.row.saturating_sub(n), s.col),
                        'B' => s.move_to(s.row + n, s.col),
                        'C' => s.move_to(s.row, (s.col + n).min(columns - 1)),
                        'D' => s.move_to(s.row, s.col.saturating_sub(n)),
                        'G' => s.move_to(s.row, n - 1),
                        'K' => {
                            let line = &mut s.rows[s.row];
                            match params.as_str() {
                                "2" => line.clear(),
                                "1" => line.iter_mut().take(s.col + 1).for_each(|c| *c = ' '),
                                _ => line.truncate(s.col),
                            }
                        }
                        _ => {}
                    }
                }
                c if c.is_control() => {}
                c => s.put(c),
            }
        }
        s
    }

    fn move_to(&mut self, row: usize, col: usize) {
        self.row = row;
        self.col = col;
        self.pending_wrap = false;
        while self.rows.len() <= row {
            self.rows.push(Vec::new());
        }
    }

    fn put(&mut self, c: char) {
        let w = c.width().unwrap_or(0);
        if w == 0 {
            return;
        }
        if self.pending_wrap || self.col + w > self.columns {
            self.move_to(self.row + 1, 0);
        }
        let line = &mut self.rows[self.row];
        while line.len() < self.col + w {
            line.push(' ');
        }
        line[self.col] = c;
        if w == 2 {
            line[self.col + 1] = WIDE_TAIL;
        }
        if self.col + w >= self.columns {
            self.col = self.columns - 1;
            self.pending_wrap = true;
        } else {
            self.col += w;
        }
    }

    /// The screen's lines, trailing blanks and blank lines at the end gone.
    fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                let s: String = r.iter().filter(|&&c| c != WIDE_TAIL).collect();
                s.trim_end().to_string()
            })
            .collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }

    /// Each line's width in cells.
    fn widths(&self) -> Vec<usize> {
        self.lines()
            .iter()
            .map(|l| l.chars().map(|c| c.width().unwrap_or(0)).sum())
            .collect()
    }
}

/// How a run on the terminal ended and what it left on the screen.
struct Shown {
    code: Option<i32>,
    screen: Screen,
}

impl Shown {
    fn text(&self) -> String {
        self.screen.lines().join("\n")
    }

    /// Lines that are a progress bar.
    fn bar_lines(&self) -> Vec<String> {
        self.screen
            .lines()
            .into_iter()
            .filter(|l| l.contains(" done, ") && l.contains(" running, "))
            .collect()
    }
}

/// `script(1)` running the shell command `cmd` on a new pty, in the job's
/// folder, its input and the bytes the terminal got on pipes.
fn under_script(job: &Job, cmd: &str) -> Child {
    Command::new("script")
        .args(["-qfec", cmd, "/dev/null"])
        .current_dir(job.dir.path())
        .env_remove("CI")
        .env_remove("COLUMNS")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script(1) runs")
}

/// Runs `jobfile run job.toml ARGS` in the job's folder on a terminal of
/// `columns`; with `interrupt`, types Ctrl-C once the file `started`
/// exists.
fn on_terminal(job: &Job, args: &str, columns: usize, interrupt: bool) -> Shown {
    let cmd = format!(
        "stty cols {columns} rows 40; exec {} run {} {args}",
        bin(),
        job.path.display()
    );
    let mut child = under_script(job, &cmd);
    let mut stdin = child.stdin.take().unwrap();
    if interrupt {
        let started = job.file("started");
        let limit = Instant::now() + RUN_LIMIT;
        while !started.exists() {
            assert!(Instant::now() < limit, "the job never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Long enough for the bar to be drawn with a failure above it.
        std::thread::sleep(Duration::from_millis(500));
        stdin.write_all(b"\x03").unwrap();
        stdin.flush().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    Shown {
        code: out.status.code(),
        screen: Screen::play(&out.stdout, columns),
    }
}

/// Items that end one after another, every fifth failing with a reason on
/// stderr.
const FLOW: &str = r#"
version = 1
name = "flow"
[pool]
processes = 2
[functions.work]
shell = 'sleep 0.12; echo "working on $1"; echo "note $1" >&2; [ $(( $1 % 5 )) -ne 3 ] || { echo "bad item $1" >&2; exit 1; }'
[[task]]
id = "items"
function = "work"
map = { range = [0, 12] }
"#;

#[test]
fn the_emulator_wraps_and_erases_as_a_terminal_does() {
    let s = Screen::play(b"abcd\x1b[2K\rxy\r\nfull", 4);
    assert_eq!(s.lines(), ["xy", "full"]);
    // A full line leaves the cursor at its end: what comes next wraps.
    let s = Screen::play("abcd^C\r\x1b[2Kz".as_bytes(), 4);
    assert_eq!(s.lines(), ["abcd", "z"]);
    let s = Screen::play("数据x\n".as_bytes(), 10);
    assert_eq!(s.widths(), [5]);
}

#[test]
fn records_on_the_terminal_leave_no_bar_behind() {
    let job = Job::new(FLOW);
    let shown = on_terminal(&job, "", 100, false);
    assert_eq!(shown.code, Some(1), "{}", shown.text());
    assert!(shown.bar_lines().is_empty(), "{}", shown.text());
    let lines = shown.screen.lines();
    let records: Vec<&String> = lines.iter().filter(|l| l.contains("items[")).collect();
    // Twelve records, then the closing list names the two failures.
    assert!(records.len() >= 12, "{}", shown.text());
    for (i, line) in records.iter().take(12).enumerate() {
        assert!(line.contains(&format!("items[{i}]")), "{line}");
    }
}

#[test]
fn live_lines_leave_no_bar_behind() {
    let job = Job::new(FLOW);
    let shown = on_terminal(&job, "--live -o results.jsonl", 100, false);
    assert_eq!(shown.code, Some(1), "{}", shown.text());
    assert!(shown.bar_lines().is_empty(), "{}", shown.text());
    let text = shown.text();
    for i in 0..12 {
        assert!(
            text.contains(&format!("[items[{i}]] working on {i}")),
            "{text}"
        );
        assert!(text.contains(&format!("[items[{i}]]! note {i}")), "{text}");
    }
}

#[test]
fn ctrl_c_leaves_no_bar_behind() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.work]
shell = 'if [ "$1" = slow ]; then touch started; sleep 30; fi; echo "why $1" >&2; exit 1'
[[task]]
id = "w"
function = "work"
map = ["slow", "quick"]
"#,
    );
    let shown = on_terminal(&job, "-o results.jsonl", 100, true);
    assert_eq!(shown.code, Some(130), "{}", shown.text());
    assert!(shown.bar_lines().is_empty(), "{}", shown.text());
    let text = shown.text();
    assert!(text.contains("w[1] quick: exited with code 1"), "{text}");
    assert!(text.contains("cancelled w[0] slow"), "{text}");
}

#[test]
fn failures_are_listed_with_their_stderr_when_results_go_to_a_file() {
    let job = Job::new(FLOW);
    let shown = on_terminal(&job, "-o results.jsonl", 100, false);
    let lines = shown.screen.lines();
    let at = lines
        .iter()
        .position(|l| l == "2 records not ok:")
        .unwrap_or_else(|| panic!("no closing list:\n{}", shown.text()));
    assert_eq!(
        lines[at + 1..at + 7],
        [
            "  failed    items[3]: exited with code 1",
            "            │ note 3",
            "            │ bad item 3",
            "  failed    items[8]: exited with code 1",
            "            │ note 8",
            "            │ bad item 8",
        ]
    );
    assert!(lines[at + 7].starts_with("jobfile: flow: 10 ok, 2 failed in "));
    // Each failure was shown as it ended, above the bar.
    assert!(
        lines[..at]
            .iter()
            .any(|l| l.starts_with("failed    items[3]: exited with code 1 — bad item 3"))
    );
}

/// Map items named after what they ran on, a CJK id and a long error.
const NAMED: &str = r#"
version = 1
name = "named"
[pool]
processes = 2
[functions.check]
shell = 'if [ "$JOBFILE_ARG_DB" = mysql ]; then echo "AssertionError: 3 != 4 on $JOBFILE_ARG_PYTHON, and a long explanation of what went wrong that goes on and on" >&2; exit 1; fi'
[functions.read]
shell = 'echo "read $1"'
[[task]]
id = "tests"
function = "check"
map = { product = { python = ["3.11", "3.12"], db = ["pg", "mysql"] } }
[[task]]
id = "files"
function = "read"
map = { glob = "data/*.csv" }
[[task]]
id = "数据处理任务"
function = "read"
args = ["x"]
"#;

fn named_job() -> Job {
    let job = Job::new(NAMED);
    job.write("data/a-rather-long-file-name-for-a-data-set.csv", "");
    job.write("data/東京.csv", "");
    job
}

#[test]
fn lines_fit_80_and_200_columns_and_cjk_ids_line_up() {
    let job = named_job();
    for columns in [80, 200] {
        let shown = on_terminal(&job, "--reproducible", columns, false);
        assert_eq!(shown.code, Some(1), "{}", shown.text());
        let lines = shown.screen.lines();
        for (line, width) in lines.iter().zip(shown.screen.widths()) {
            assert!(width <= columns, "{columns}: {line}");
        }
        let records: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("ok ") || l.starts_with("failed "))
            .take(7)
            .collect();
        assert_eq!(records.len(), 7, "{}", shown.text());
        // Where the value or error starts, in cells, on each line after
        // the widest label (the column only widens).
        let detail_at = |line: &str| {
            let at = line.find("  read ").or_else(|| line.find("  exited"));
            at.map(|at| {
                line[..at]
                    .chars()
                    .map(|c| c.width().unwrap_or(0))
                    .sum::<usize>()
            })
        };
        let cjk = records.iter().find(|l| l.contains("数据处理任务")).unwrap();
        let tokyo = records.iter().find(|l| l.contains("東京")).unwrap();
        assert_eq!(detail_at(cjk), detail_at(tokyo), "{cjk}\n{tokyo}");
        let text = shown.text();
        assert!(text.contains("tests[1] python=3.11 db=mysql"), "{text}");
        if columns == 200 {
            // Room enough: nothing is cut, the reason is there.
            assert!(
                text.contains("files[0] data/a-rather-long-file-name-for-a-data-set.csv"),
                "{text}"
            );
            assert!(text.contains("exited with code 1 — AssertionError: 3 != 4 on 3.11, and a long explanation of what went wrong that goes on and on"), "{text}");
        } else {
            assert!(text.contains("exited with code 1 — Assert"), "{text}");
        }
    }
}

#[test]
fn a_failure_waiting_behind_a_slow_item_is_shown_on_the_bar() {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.work]
shell = 'if [ "$1" = slow ]; then sleep 5; echo done; else echo "why $1" >&2; exit 1; fi'
[[task]]
id = "w"
function = "work"
map = ["slow", "quick"]
"#,
    );
    let cmd = format!(
        "stty cols 100 rows 40; exec {} run {}",
        bin(),
        job.path.display()
    );
    let mut child = under_script(&job, &cmd);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        })
    };
    // While the slow item runs, the quick failure is on the screen, above
    // the bar, before its own line (which waits for submission order).
    let limit = Instant::now() + Duration::from_secs(4);
    let waiting = loop {
        let screen = Screen::play(&seen.lock().unwrap(), 100);
        let lines = screen.lines();
        if lines
            .iter()
            .any(|l| l.starts_with("failed    w[1] quick: exited with code 1 — why quick"))
        {
            break lines;
        }
        assert!(Instant::now() < limit, "never shown:\n{}", lines.join("\n"));
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!waiting.iter().any(|l| l.starts_with("ok ")), "{waiting:?}");
    assert!(waiting.last().unwrap().contains(" done, "), "{waiting:?}");
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(1));
    // At the end it is gone from there: its line came out in its place.
    let screen = Screen::play(&seen.lock().unwrap(), 100);
    let lines = screen.lines();
    assert!(lines[0].starts_with("ok         w[0] slow"), "{lines:?}");
    assert!(lines[1].starts_with("failed     w[1] quick"), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("failed    w[1]")),
        "{lines:?}"
    );
}

#[test]
fn a_flood_of_failures_is_cut_short_above_the_bar_and_in_the_list() {
    let job = Job::new(
        r#"
version = 1
[pool]
processes = 2
[functions.no]
shell = 'echo "no $1" >&2; exit 1'
[[task]]
id = "all"
function = "no"
map = { range = [0, 150] }
"#,
    );
    let shown = on_terminal(&job, "-o results.jsonl", 100, false);
    assert_eq!(shown.code, Some(1), "{}", shown.text());
    assert!(shown.bar_lines().is_empty(), "{}", shown.text());
    let lines = shown.screen.lines();
    let above = lines
        .iter()
        .filter(|l| l.starts_with("failed    all["))
        .count();
    assert_eq!(above, 100, "{}", shown.text());
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("… more failures are only counted here"))
    );
    let listed = lines
        .iter()
        .filter(|l| l.starts_with("  failed    all["))
        .count();
    assert_eq!(listed, 50);
    assert!(
        lines.contains(&"  and 100 more not listed: see results.jsonl".to_string()),
        "{}",
        shown.text()
    );
    assert!(lines.iter().any(|l| l == "150 records not ok:"));
}

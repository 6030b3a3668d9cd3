//! The HTML page: the summary, the slowest records and the notices are
//! written here as plain HTML; the timeline and the list of records that
//! are not ok are drawn by the page's one script from the data block. The
//! page loads nothing: its content security policy forbids every request.

use std::fmt::Write;

use super::encode::{Caps, Encoded, encode};
use super::lanes::Lanes;
use super::page_data::PageData;
use super::summary::{Summary, human_ms};
use crate::report::STATUSES;

/// The most bytes a page may have; past it, texts are cut harder.
pub const PAGE_BUDGET: usize = 19_500_000;
/// How many of the slowest records are listed.
const SLOWEST: usize = 20;

const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// The whole page for `data`, within [`PAGE_BUDGET`] when cutting texts
/// can make it fit.
pub fn render(data: &PageData) -> String {
    render_within(data, PAGE_BUDGET)
}

/// The page for `data`, its texts cut harder until it has at most `budget`
/// bytes (or nothing more can be cut).
pub fn render_within(data: &PageData, budget: usize) -> String {
    let lanes = Lanes::of(data);
    let summary = Summary::of(data, &lanes);
    let mut page = String::new();
    for (level, caps) in Caps::LEVELS.into_iter().enumerate() {
        let encoded = encode(data, &lanes, &summary, caps);
        page = document(data, &lanes, &summary, &encoded, level > 0);
        if page.len() <= budget {
            break;
        }
    }
    page
}

fn document(
    data: &PageData,
    lanes: &Lanes,
    summary: &Summary,
    encoded: &Encoded,
    cut: bool,
) -> String {
    let mut h = String::with_capacity(encoded.base64.len() + 64 * 1024);
    let title = esc(&data.title);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · jobfile report</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
         <header><h1>{title}</h1><p class=\"sub\">jobfile report · {} records</p></header>\n",
        summary.total()
    );
    notices(&mut h, data, summary, encoded, cut);
    summary_section(&mut h, data, summary);
    if summary.timed > 0 {
        h.push_str(
            "<section id=\"timeline-section\">\n<h2>Timeline</h2>\n\
             <p class=\"hint\">One lane per worker; a worker that replaced another continues its \
             lane. Pale green: ok records that kept their worker less than half busy there. \
             Wheel to zoom, drag to pan, double-click to see it all.</p>\n\
             <div id=\"timeline-wrap\"><canvas id=\"timeline\" aria-label=\"timeline\"></canvas>\
             <div id=\"tooltip\" role=\"tooltip\" hidden></div></div>\n</section>\n",
        );
        slowest_section(&mut h, data, lanes);
    }
    let bad = summary.total() - summary.counts[0];
    let _ = write!(
        h,
        "<section id=\"problems\">\n<h2>Records not ok ({bad})</h2>\n"
    );
    if bad == 0 {
        h.push_str("<p>Every record is ok.</p>\n");
    } else {
        h.push_str(
            "<div id=\"problem-controls\"></div>\n<table id=\"problem-table\"><thead><tr>\
             <th>task</th><th>index</th><th>status</th><th>error</th><th>end of stderr</th>\
             </tr></thead><tbody></tbody></table>\n",
        );
    }
    h.push_str("</section>\n");
    // `<` is written as an escape, so no text can close the script element.
    let meta = encoded.meta.to_string().replace('<', "\\u003c");
    let _ = write!(
        h,
        "<script id=\"meta\" type=\"application/json\">{meta}</script>\n\
         <script id=\"data\" type=\"text/plain\">{}</script>\n<script>\n{SCRIPT}</script>\n\
         </body>\n</html>\n",
        encoded.base64
    );
    h
}

fn notices(h: &mut String, data: &PageData, summary: &Summary, encoded: &Encoded, cut: bool) {
    let mut notes: Vec<String> = Vec::new();
    if data.rows.is_empty() {
        notes.push("This results file holds no records: there is nothing to show.".into());
    } else if !data.timing_fields {
        notes.push(
            "These records carry no timing: they were written with <code>--reproducible</code>, \
             which leaves out <code>worker</code>, <code>started</code> and \
             <code>duration_ms</code>. There is no timeline, wall time or utilisation; the \
             counts and the records that are not ok are below."
                .into(),
        );
    } else if summary.timed == 0 {
        notes.push("No record has a start time (none ran): there is no timeline.".into());
    }
    if cut {
        let caps = &encoded.meta["caps"];
        notes.push(format!(
            "To keep this page small, arguments are cut to {} characters, errors to {} and \
             stderr to its last {} bytes; the results file has them whole.",
            caps["args"], caps["error"], caps["tail"]
        ));
    }
    if data.left_out > 0 {
        notes.push(format!(
            "{} texts (arguments, errors or stderr) were left out of this page to keep it \
             small; the results file has them.",
            data.left_out
        ));
    }
    if notes.is_empty() {
        return;
    }
    h.push_str("<section id=\"notices\">\n");
    for n in notes {
        let _ = writeln!(h, "<p class=\"notice\">{n}</p>");
    }
    h.push_str("</section>\n");
}

fn summary_section(h: &mut String, data: &PageData, s: &Summary) {
    h.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">\n");
    for (status, n) in STATUSES.iter().zip(s.counts) {
        let name = status.as_str();
        let _ = writeln!(
            h,
            "<div class=\"card {name}{}\"><span class=\"n\">{n}</span> \
             <span class=\"status s-{name}\">{name}</span></div>",
            if n == 0 { " zero" } else { "" }
        );
    }
    h.push_str("</div>\n<table class=\"figures\">\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row("records", s.total().to_string());
    if s.timed > 0 {
        row(
            "wall time",
            format!(
                "{} <span class=\"dim\">(first start to last end)</span>",
                human_ms(s.wall_ms)
            ),
        );
        row("summed durations", human_ms(s.busy_ms));
        if let Some(u) = s.utilisation() {
            row(
                "worker utilisation",
                format!(
                    "{:.1} % <span class=\"dim\">(busy time over {} workers × wall time)</span>",
                    u * 100.0,
                    s.lanes
                ),
            );
        }
        row(
            "workers",
            format!("{} lanes, {} worker processes", s.lanes, s.workers),
        );
        if let Some(first) = humantime_ms(s.first_ms) {
            row("first start", first);
        }
    }
    if let Some(shared) = &data.shared {
        row("shared values", format!("<code>{}</code>", esc(shared)));
    }
    h.push_str("</table>\n</section>\n");
}

/// A time in milliseconds since the epoch as records show it; `None` for
/// one RFC 3339 cannot show.
fn humantime_ms(ms: f64) -> Option<String> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::try_from_secs_f64(ms / 1000.0).ok()?;
    crate::report::record_json::rfc3339_millis(t)
}

fn slowest_section(h: &mut String, data: &PageData, lanes: &Lanes) {
    let mut timed: Vec<(f64, usize)> = data
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.span().map(|(_, d)| (d, i)))
        .collect();
    // Longest first; among equals, the earlier record first.
    let keep = timed.len().min(SLOWEST);
    if keep < timed.len() {
        timed.select_nth_unstable_by(keep, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        timed.truncate(keep);
    }
    timed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    h.push_str(
        "<section id=\"slowest\">\n<h2>Slowest records</h2>\n<table><thead><tr><th>task</th>\
         <th>index</th><th>duration</th><th>status</th><th>worker</th><th>arguments</th>\
         </tr></thead><tbody>\n",
    );
    for (d, i) in timed {
        let r = &data.rows[i];
        let lane = lanes.of_row.get(i).copied().flatten();
        let worker = match (r.worker(), lane) {
            (Some(w), Some(l)) => format!("{w} <span class=\"dim\">(lane {})</span>", l + 1),
            (Some(w), None) => w.to_string(),
            _ => "-".into(),
        };
        let name = r.status.as_str();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td><span class=\"status s-{name}\">{name}</span></td><td>{worker}</td>\
             <td><code>{}</code></td></tr>",
            esc(data.task_of(r)),
            r.index().map_or(String::new(), |x| x.to_string()),
            human_ms(d),
            esc(&super::page_data::cap_chars(data.args_of(r), 80)),
        );
    }
    h.push_str("</tbody></table>\n</section>\n");
}

/// `s` with the characters HTML gives a meaning escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::report::testing::assorted;

    #[test]
    fn the_page_is_self_contained_and_escapes_its_texts() {
        let mut d = PageData::new("<job>");
        for r in assorted() {
            d.push_record(&r);
        }
        let page = render(&d);
        assert!(page.contains("<title>&lt;job&gt; · jobfile report</title>"));
        assert!(page.contains("default-src 'none'"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(page.contains("<h2>Records not ok (5)</h2>"));
        // Only the page's own closing tags end its scripts.
        assert_eq!(page.matches("</script>").count(), 3);
        assert!(page.contains("<h2>Slowest records</h2>"));
        assert!(
            page.contains("&quot;num&quot;:3.5"),
            "the shared values are in the summary"
        );
    }

    #[test]
    fn a_page_without_timing_says_so() {
        let mut d = PageData::new("job");
        d.push_json(&json!({"task": "a", "status": "failed", "error": "boom"}))
            .unwrap();
        let page = render(&d);
        assert!(page.contains("written with <code>--reproducible</code>"));
        assert!(!page.contains("id=\"timeline\""));
        assert!(page.contains("<h2>Records not ok (1)</h2>"));
        let empty = render(&PageData::new("job"));
        assert!(empty.contains("holds no records"));
    }

    #[test]
    fn texts_are_cut_until_the_page_fits() {
        let mut d = PageData::new("job");
        // Arguments that do not compress: the first level is too big.
        let mut x: u64 = 1;
        for i in 0..60_000u64 {
            let mut s = String::new();
            for _ in 0..40 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(char::from(b'!' + (x % 90) as u8));
            }
            d.push_json(
                &json!({"task": "t", "index": i, "status": "ok", "args": [s],
                "worker": 1, "started": "2026-01-01T00:00:00.000Z", "duration_ms": 1.0}),
            )
            .unwrap();
        }
        let small = |d: &PageData| {
            let lanes = Lanes::of(d);
            let s = Summary::of(d, &lanes);
            encode(d, &lanes, &s, Caps::LEVELS[0]).base64.len()
        };
        assert!(
            small(&d) > 2_000_000,
            "the test's arguments compress too well"
        );
        let page = render_within(&d, 1_000_000);
        assert!(page.len() <= 1_000_000, "{}", page.len());
        assert!(page.contains("arguments are cut to"));
        assert!(!render(&d).contains("arguments are cut"), "it fits uncut");
    }
}

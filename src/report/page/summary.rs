//! The figures at the top of the page: counts by status, wall time, summed
//! durations and how busy the workers were.

use super::lanes::Lanes;
use super::page_data::PageData;
use crate::report::STATUSES;

/// The run at a glance.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Records of each status, in the order of [`STATUSES`].
    pub counts: [u64; 6],
    /// Records with a start and a duration.
    pub timed: u64,
    /// From the first start to the last end, in milliseconds.
    pub wall_ms: f64,
    /// The sum of the durations, in milliseconds.
    pub busy_ms: f64,
    /// Worker slots (lanes) and distinct worker processes.
    pub lanes: usize,
    pub workers: usize,
    /// The first start, in milliseconds since the Unix epoch.
    pub first_ms: f64,
}

impl Summary {
    /// The figures of `data`, whose lanes are `lanes`.
    pub fn of(data: &PageData, lanes: &Lanes) -> Summary {
        let mut counts = [0u64; 6];
        let (mut first, mut last, mut busy, mut timed) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0);
        for row in &data.rows {
            if let Some(i) = STATUSES.iter().position(|&s| s == row.status) {
                counts[i] += 1;
            }
            if let Some((s, d)) = row.span() {
                first = first.min(s);
                last = last.max(s + d);
                busy += d;
                timed += 1;
            }
        }
        let workers = lanes.lanes.iter().map(|l| l.workers.len()).sum();
        Summary {
            counts,
            timed,
            wall_ms: if timed > 0 { last - first } else { 0.0 },
            busy_ms: busy,
            lanes: lanes.lanes.len(),
            workers,
            first_ms: if timed > 0 { first } else { 0.0 },
        }
    }

    /// Busy time over lanes × wall time, from 0 to 1; `None` without timing.
    pub fn utilisation(&self) -> Option<f64> {
        (self.wall_ms > 0.0 && self.lanes > 0)
            .then(|| (self.busy_ms / (self.lanes as f64 * self.wall_ms)).min(1.0))
    }

    /// How many records there are.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A duration in milliseconds, for people: `850 ms`, `12.3 s`, `4 min 05 s`,
/// `2 h 03 min`.
pub fn human_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return "-".into();
    }
    if ms < 1000.0 {
        return format!("{ms:.1} ms");
    }
    let s = ms / 1000.0;
    if s < 60.0 {
        return format!("{s:.2} s");
    }
    let total = s.round() as u64;
    if total < 3600 {
        return format!("{} min {:02} s", total / 60, total % 60);
    }
    format!("{} h {:02} min", total / 3600, total % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn two_workers_half_busy() {
        let mut d = PageData::new("t");
        for (w, started, dur) in [
            (1, "2026-01-01T00:00:00.000Z", 1000.0),
            (2, "2026-01-01T00:00:00.000Z", 1000.0),
            (1, "2026-01-01T00:00:03.000Z", 1000.0),
        ] {
            d.push_json(&json!({"task": "t", "status": "ok", "worker": w,
                "started": started, "duration_ms": dur}))
                .unwrap();
        }
        d.push_json(&json!({"task": "u", "status": "skipped", "error": "x"}))
            .unwrap();
        let s = Summary::of(&d, &Lanes::of(&d));
        assert_eq!(s.counts, [3, 0, 0, 0, 1, 0]);
        assert_eq!(s.wall_ms, 4000.0);
        assert_eq!(s.busy_ms, 3000.0);
        assert_eq!(s.lanes, 2);
        assert_eq!(s.utilisation(), Some(3000.0 / 8000.0));
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_ms(41.23), "41.2 ms");
        assert_eq!(human_ms(12_345.0), "12.35 s");
        assert_eq!(human_ms(245_000.0), "4 min 05 s");
        assert_eq!(human_ms(7_380_000.0), "2 h 03 min");
    }
}

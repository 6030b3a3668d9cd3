//! The timeline's lanes: one per worker of a host. A worker that replaced
//! another (after a crash, or `max_tasks_per_child`) continues the lane of
//! the one it replaced: workers whose lifetimes, as the records show them,
//! do not overlap share a lane. So a lane is a worker slot, and the number
//! of lanes is the most workers that were alive at once.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use super::page_data::PageData;

/// A host's lanes free now, and its busy ones by when they free up.
type HostLanes = (BTreeSet<usize>, BinaryHeap<Reverse<(u64, usize)>>);

/// One lane of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// Number in [`PageData::hosts`], for workers on another machine.
    pub host: Option<u32>,
    /// The worker pids that ran in it, in order.
    pub workers: Vec<Option<u32>>,
}

/// The lanes, and the lane of each row that is on the timeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lanes {
    pub lanes: Vec<Lane>,
    /// For each row of the data: its lane, if it has a start and duration.
    pub of_row: Vec<Option<u32>>,
}

impl Lanes {
    /// Packs the workers seen in `data` into lanes, host by host (the
    /// engine's own first).
    pub fn of(data: &PageData) -> Lanes {
        // Each worker's lifetime: from its first start to its last end.
        let mut life: BTreeMap<(Option<u32>, Option<u32>), (f64, f64)> = BTreeMap::new();
        for row in &data.rows {
            if let Some((s, d)) = row.span() {
                let e = life.entry((row.host(), row.worker())).or_insert((s, s + d));
                e.0 = e.0.min(s);
                e.1 = e.1.max(s + d);
            }
        }
        let mut by_start: Vec<_> = life.into_iter().collect();
        by_start.sort_by(|a, b| {
            (a.0.0, a.1.0)
                .partial_cmp(&(b.0.0, b.1.0))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut lanes: Vec<Lane> = Vec::new();
        // Per host: the lanes free now, and the busy ones by when they free
        // up (times as the bits of positive floats, which sort alike).
        let mut hosts: HashMap<Option<u32>, HostLanes> = HashMap::new();
        let mut lane_of: BTreeMap<(Option<u32>, Option<u32>), u32> = BTreeMap::new();
        for ((host, worker), (first, last)) in by_start {
            let (free, busy) = hosts.entry(host).or_default();
            let first_bits = first.max(0.0).to_bits();
            while let Some(Reverse((at, lane))) = busy.peek().copied() {
                if at > first_bits {
                    break;
                }
                busy.pop();
                free.insert(lane);
            }
            // The lowest lane of this host whose last worker had ended.
            let i = match free.pop_first() {
                Some(i) => i,
                None => {
                    lanes.push(Lane {
                        host,
                        workers: Vec::new(),
                    });
                    lanes.len() - 1
                }
            };
            lanes[i].workers.push(worker);
            busy.push(Reverse((last.max(0.0).to_bits(), i)));
            lane_of.insert((host, worker), i as u32);
        }
        let of_row = data
            .rows
            .iter()
            .map(|r| {
                r.span()
                    .and_then(|_| lane_of.get(&(r.host(), r.worker())).copied())
            })
            .collect();
        Lanes { lanes, of_row }
    }

    /// A lane's label: its host (if any) and its workers' pids.
    pub fn label(&self, data: &PageData, lane: usize) -> String {
        let Some(l) = self.lanes.get(lane) else {
            return String::new();
        };
        let pids: Vec<String> = l
            .workers
            .iter()
            .take(3)
            .map(|w| w.map_or("?".to_string(), |p| p.to_string()))
            .collect();
        let mut label = pids.join(", ");
        if l.workers.len() > 3 {
            label.push_str(&format!(" +{}", l.workers.len() - 3));
        }
        match l.host.and_then(|h| data.hosts.strings.get(h as usize)) {
            Some(h) => format!("{h} {label}"),
            None => label,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn data(records: &[(Option<&str>, u32, &str, f64)]) -> PageData {
        let mut d = PageData::new("t");
        for (host, worker, started, dur) in records {
            let mut v = json!({"task": "t", "status": "ok", "worker": worker,
                "started": started, "duration_ms": dur});
            if let Some(h) = host {
                v["host"] = json!(h);
            }
            d.push_json(&v).unwrap();
        }
        d
    }

    #[test]
    fn a_replacement_worker_continues_its_lane() {
        let d = data(&[
            (None, 10, "2026-01-01T00:00:00.000Z", 1000.0),
            (None, 11, "2026-01-01T00:00:00.000Z", 5000.0),
            // 12 replaced 10, which had ended.
            (None, 12, "2026-01-01T00:00:02.000Z", 1000.0),
        ]);
        let lanes = Lanes::of(&d);
        assert_eq!(lanes.lanes.len(), 2);
        assert_eq!(lanes.of_row, vec![Some(0), Some(1), Some(0)]);
        assert_eq!(lanes.label(&d, 0), "10, 12");
    }

    #[test]
    fn a_lane_is_reused_by_the_lowest_number() {
        let d = data(&[
            (None, 1, "2026-01-01T00:00:00.000Z", 1000.0),
            (None, 2, "2026-01-01T00:00:00.000Z", 1000.0),
            (None, 3, "2026-01-01T00:00:00.000Z", 3000.0),
            // 1 and 2 have ended: 4 takes lane 0, 5 lane 1; 6 needs a new one.
            (None, 4, "2026-01-01T00:00:02.000Z", 500.0),
            (None, 5, "2026-01-01T00:00:02.000Z", 500.0),
            (None, 6, "2026-01-01T00:00:02.000Z", 500.0),
        ]);
        let lanes = Lanes::of(&d);
        assert_eq!(
            lanes.of_row,
            [0, 1, 2, 0, 1, 3].map(Some).to_vec(),
            "{:?}",
            lanes.lanes
        );
    }

    #[test]
    fn hosts_do_not_share_lanes() {
        let d = data(&[
            (Some("node1"), 10, "2026-01-01T00:00:00.000Z", 1000.0),
            (Some("node2"), 10, "2026-01-01T00:00:02.000Z", 1000.0),
        ]);
        let lanes = Lanes::of(&d);
        assert_eq!(lanes.lanes.len(), 2);
        assert_eq!(lanes.label(&d, 1), "node2 10");
    }

    #[test]
    fn rows_without_timing_have_no_lane() {
        let mut d = PageData::new("t");
        d.push_json(&json!({"task": "t", "status": "skipped", "worker": null, "started": null}))
            .unwrap();
        let lanes = Lanes::of(&d);
        assert!(lanes.lanes.is_empty());
        assert_eq!(lanes.of_row, vec![None]);
    }
}

//! The page's data block: the rows as columns of integers, each split into
//! byte planes, as many as its largest value needs (so runs of small
//! numbers compress to almost nothing), then the argument bytes and a JSON
//! table of strings, all compressed with zlib and written as base64. The browser
//! inflates it with `DecompressionStream`: one script, no library.
//!
//! Timed rows come first, lane by lane and by start within a lane, so the
//! page finds the bar under the pointer by binary search; a start is kept
//! as the distance from the previous start in its lane.

use serde_json::{Value, json};

use super::lanes::Lanes;
use super::page_data::{LEFT_OUT, PageData, cap_chars};
use super::summary::Summary;
use crate::report::columns::tail_of;
use crate::report::{STATUSES, Status};

/// How much of each text goes into the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Characters of a record's arguments (0: none).
    pub args: usize,
    /// Characters of an error.
    pub error: usize,
    /// Bytes at the end of stderr (0: none).
    pub tail: usize,
}

impl Caps {
    /// The caps tried in turn until the page fits its budget.
    pub const LEVELS: [Caps; 4] = [
        Caps {
            args: 200,
            error: 500,
            tail: 2048,
        },
        Caps {
            args: 60,
            error: 200,
            tail: 512,
        },
        Caps {
            args: 16,
            error: 100,
            tail: 128,
        },
        Caps {
            args: 0,
            error: 60,
            tail: 0,
        },
    ];
}

/// The encoded block and the description the page's script reads it by.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub meta: Value,
    pub base64: String,
}

/// Row numbers in page order: timed rows by lane and start, then the rest
/// in the order of the results.
pub fn page_order(data: &PageData, lanes: &Lanes) -> Vec<usize> {
    let mut timed: Vec<(u32, f64, usize)> = Vec::new();
    let mut rest = Vec::new();
    for (i, row) in data.rows.iter().enumerate() {
        match (lanes.of_row.get(i).copied().flatten(), row.span()) {
            (Some(l), Some((s, _))) => timed.push((l, s, i)),
            _ => rest.push(i),
        }
    }
    timed.sort_by(|a, b| {
        (a.0, a.1, a.2)
            .partial_cmp(&(b.0, b.1, b.2))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    timed.into_iter().map(|t| t.2).chain(rest).collect()
}

/// Encodes `data` with its texts cut to `caps`.
pub fn encode(data: &PageData, lanes: &Lanes, summary: &Summary, caps: Caps) -> Encoded {
    let order = page_order(data, lanes);
    let n = order.len();
    let m = summary.timed as usize;
    // A unit of 0.1 ms, doubled until the longest offset fits in 32 bits.
    let mut unit = 0.1f64;
    while summary.wall_ms / unit > f64::from(u32::MAX) / 2.0 {
        unit *= 2.0;
    }
    let units = |ms: f64| (ms / unit).round().clamp(0.0, f64::from(u32::MAX)) as u32;

    let mut status = Vec::with_capacity(n);
    let (mut task, mut index, mut worker, mut attempts) = (vec![], vec![], vec![], vec![]);
    let (mut error, mut tail, mut args_len) = (vec![], vec![], vec![]);
    let (mut start, mut dur) = (Vec::with_capacity(m), Vec::with_capacity(m));
    let mut args = Vec::new();
    let mut lane_rows: Vec<(u32, u32)> = vec![(0, 0); lanes.lanes.len()];
    let (mut prev_index, mut prev_lane, mut prev_start) = (0u32, u32::MAX, 0u32);
    for (at, &i) in order.iter().enumerate() {
        let row = &data.rows[i];
        status.push(STATUSES.iter().position(|&s| s == row.status).unwrap_or(0) as u8);
        task.push(row.task);
        let idx = row
            .index()
            .map_or(0, |x| x.saturating_add(1).min(u64::from(u32::MAX)) as u32);
        index.push(zigzag(idx.wrapping_sub(prev_index) as i32));
        prev_index = idx;
        worker.push(row.worker().unwrap_or(0));
        attempts.push(row.attempts);
        let table = |t: Option<u32>| match t {
            None => 0,
            Some(LEFT_OUT) => u32::MAX,
            Some(x) => x + 1,
        };
        error.push(table(row.error()));
        tail.push(if caps.tail == 0 { 0 } else { table(row.tail()) });
        let a = if caps.args == 0 {
            String::new()
        } else {
            cap_chars(data.args_of(row), caps.args)
        };
        args_len.push(a.len() as u32);
        args.extend_from_slice(a.as_bytes());
        if at < m {
            let (s, d) = row.span().unwrap_or((summary.first_ms, 0.0));
            let lane = lanes.of_row[i].unwrap_or(0);
            let s = units(s - summary.first_ms);
            if lane != prev_lane {
                lane_rows[lane as usize].0 = at as u32;
                prev_start = 0;
                prev_lane = lane;
            }
            lane_rows[lane as usize].1 += 1;
            start.push(s - prev_start.min(s));
            prev_start = s;
            dur.push(units(d));
        }
    }
    // The records that are not ok, in the order of the results.
    let mut page_pos = vec![0u32; n];
    for (at, &i) in order.iter().enumerate() {
        page_pos[i] = at as u32;
    }
    let bad: Vec<u32> = (0..n)
        .filter(|&i| data.rows[i].status != Status::Ok)
        .map(|i| page_pos[i])
        .collect();

    let errors: Vec<String> = data
        .errors
        .strings
        .iter()
        .map(|e| cap_chars(e, caps.error))
        .collect();
    let tails: Vec<&str> = data
        .tails
        .strings
        .iter()
        .map(|t| tail_of(t, caps.tail))
        .collect();
    let text = json!({
        "tasks": data.tasks.strings,
        "hosts": data.hosts.strings,
        "errors": errors,
        "tails": tails,
    })
    .to_string();

    let mut raw = Vec::new();
    let mut cols = serde_json::Map::new();
    // Only as many byte planes as the largest value needs.
    let mut put_u32 = |raw: &mut Vec<u8>, name: &str, v: &[u32]| {
        let max = v.iter().copied().max().unwrap_or(0);
        let planes = (4 - max.leading_zeros() / 8).max(1);
        cols.insert(name.into(), json!([raw.len(), v.len(), planes]));
        for k in 0..planes {
            raw.extend(v.iter().map(|x| (x >> (8 * k)) as u8));
        }
    };
    put_u32(&mut raw, "task", &task);
    put_u32(&mut raw, "index", &index);
    put_u32(&mut raw, "worker", &worker);
    put_u32(&mut raw, "attempts", &attempts);
    put_u32(&mut raw, "error", &error);
    put_u32(&mut raw, "tail", &tail);
    put_u32(&mut raw, "args_len", &args_len);
    put_u32(&mut raw, "start", &start);
    put_u32(&mut raw, "dur", &dur);
    put_u32(&mut raw, "bad", &bad);
    let mut put_bytes = |raw: &mut Vec<u8>, name: &str, v: &[u8]| {
        cols.insert(name.into(), json!([raw.len(), v.len(), 0]));
        raw.extend_from_slice(v);
    };
    put_bytes(&mut raw, "status", &status);
    put_bytes(&mut raw, "args", &args);
    put_bytes(&mut raw, "text", text.as_bytes());

    let packed = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
    let lanes_meta: Vec<Value> = lanes
        .lanes
        .iter()
        .enumerate()
        .map(|(l, _)| {
            json!({"label": lanes.label(data, l), "first": lane_rows[l].0, "count": lane_rows[l].1})
        })
        .collect();
    let meta = json!({
        "n": n,
        "timed": m,
        "unit_ms": unit,
        "first_ms": summary.first_ms,
        "wall_ms": summary.wall_ms,
        "statuses": STATUSES.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "lanes": lanes_meta,
        "cols": cols,
        "caps": {"args": caps.args, "error": caps.error, "tail": caps.tail},
        "bytes": raw.len(),
    });
    Encoded {
        meta,
        base64: base64(&packed),
    }
}

/// A signed step as an unsigned number that is small when the step is:
/// 0, -1, 1, -2... become 0, 1, 2, 3...
fn zigzag(d: i32) -> u32 {
    ((d << 1) ^ (d >> 31)) as u32
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    fn unpack(e: &Encoded) -> Vec<u8> {
        let b64 = &e.base64;
        let abc = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut nbits = 0;
        let mut bytes = Vec::new();
        for c in b64.bytes().filter(|&c| c != b'=') {
            bits = bits << 6 | abc.iter().position(|&a| a == c).unwrap() as u32;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                bytes.push((bits >> nbits) as u8);
            }
        }
        miniz_oxide::inflate::decompress_to_vec_zlib(&bytes).unwrap()
    }

    fn column(e: &Encoded, raw: &[u8], name: &str) -> Vec<u32> {
        let c = &e.meta["cols"][name];
        let [off, n, planes] = [0, 1, 2].map(|k| c[k].as_u64().unwrap() as usize);
        (0..n)
            .map(|i| {
                (0..planes)
                    .map(|k| u32::from(raw[off + k * n + i]) << (8 * k))
                    .sum()
            })
            .collect()
    }

    #[test]
    fn steps_back_stay_small() {
        assert_eq!([0, -1, 1, -2, 2].map(zigzag), [0, 1, 2, 3, 4]);
        assert_eq!(zigzag(i32::MIN), u32::MAX);
    }

    #[test]
    fn rows_go_by_lane_then_start_with_starts_as_steps() {
        let mut d = PageData::new("t");
        for (w, started, dur, status) in [
            (2, "2026-01-01T00:00:00.500Z", 100.0, "ok"),
            (1, "2026-01-01T00:00:01.000Z", 200.0, "failed"),
            (1, "2026-01-01T00:00:00.000Z", 300.0, "ok"),
        ] {
            d.push_json(&json!({"task": "t", "status": status, "worker": w, "error":
                (status != "ok").then_some("boom"), "started": started, "duration_ms": dur}))
                .unwrap();
        }
        d.push_json(&json!({"task": "u", "status": "skipped", "error": "dep"}))
            .unwrap();
        let lanes = Lanes::of(&d);
        let s = Summary::of(&d, &lanes);
        let e = encode(&d, &lanes, &s, Caps::LEVELS[0]);
        assert_eq!(page_order(&d, &lanes), vec![2, 1, 0, 3]);
        let raw = unpack(&e);
        assert_eq!(column(&e, &raw, "start"), vec![0, 10_000, 5_000]);
        assert_eq!(column(&e, &raw, "dur"), vec![3_000, 2_000, 1_000]);
        assert_eq!(column(&e, &raw, "worker"), vec![1, 1, 2, 0]);
        // Not ok, in the order of the results: the failure, then the skip.
        assert_eq!(column(&e, &raw, "bad"), vec![1, 3]);
        assert_eq!(column(&e, &raw, "error"), vec![0, 1, 0, 2]);
        assert_eq!(e.meta["lanes"][1]["first"], json!(2));
        assert_eq!(e.meta["lanes"][0]["count"], json!(2));
        assert_eq!(e.meta["timed"], json!(3));
    }
}

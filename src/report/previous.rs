//! Reading the records of an earlier run back, for `--resume`.

use std::io;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::{Format, Record, Status};

/// The records in an earlier results file; none when it does not exist.
/// Only `jsonl` and `json` can be read back.
pub fn read_previous(path: &Path, format: Format) -> io::Result<Vec<Record>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let values: Vec<Value> = match format {
        Format::Jsonl => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(path, e))?,
        Format::Json => serde_json::from_str(&text).map_err(|e| invalid(path, e))?,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("--resume reads jsonl or json results, not {other}"),
            ));
        }
    };
    Ok(values.iter().filter_map(record_from_json).collect())
}

fn invalid(path: &Path, e: serde_json::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} is not a results file: {e}", path.display()),
    )
}

/// A record from its JSON object; `None` for the `@shared` record or
/// anything that is not a record.
pub fn record_from_json(v: &Value) -> Option<Record> {
    let o = v.as_object()?;
    let task = o.get("task")?.as_str()?.to_string();
    if task == "@shared" {
        return None;
    }
    let status = match o.get("status")?.as_str()? {
        "ok" => Status::Ok,
        "failed" => Status::Failed,
        "timeout" => Status::Timeout,
        "crashed" => Status::Crashed,
        "skipped" => Status::Skipped,
        _ => Status::Cancelled,
    };
    let text = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let int = |k: &str| o.get(k).and_then(Value::as_i64);
    Some(Record {
        task,
        index: o.get("index").and_then(Value::as_u64),
        function: text("function"),
        args: o
            .get("args")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        kwargs: o
            .get("kwargs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(Map::new),
        status,
        value: o.get("value").cloned().unwrap_or(Value::Null),
        exit_code: int("exit_code").map(|c| c as i32),
        signal: int("signal").map(|c| c as i32),
        error: o.get("error").and_then(Value::as_str).map(str::to_string),
        stdout: text("stdout"),
        stderr: text("stderr"),
        truncated: o.get("truncated").and_then(Value::as_bool).unwrap_or(false),
        attempts: int("attempts").unwrap_or(0) as u32,
        worker: int("worker").map(|w| w as u32),
        host: o.get("host").and_then(Value::as_str).map(str::to_string),
        started: o
            .get("started")
            .and_then(Value::as_str)
            .and_then(|s| humantime::parse_rfc3339(s).ok())
            .map(|t| UNIX_EPOCH + t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)),
        duration_ms: o.get("duration_ms").and_then(Value::as_f64),
    })
}

//! Records for the tests of this module's writers.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::record::{Record, Status};

/// The example record of spec section 3 (plus one kwarg).
pub(crate) fn sample() -> Record {
    let mut kwargs = Map::new();
    kwargs.insert("mode".into(), json!("fast"));
    Record {
        task: "thumbs".into(),
        index: Some(3),
        function: "resize".into(),
        args: vec![json!("images/c.jpg")],
        kwargs,
        status: Status::Ok,
        value: Value::Null,
        exit_code: Some(0),
        signal: None,
        error: None,
        stdout: String::new(),
        stderr: String::new(),
        truncated: false,
        attempts: 1,
        worker: Some(4182),
        host: None,
        started: Some(UNIX_EPOCH + Duration::from_millis(1_795_773_600_000)),
        duration_ms: Some(41.23),
        print: None,
    }
}

/// One record of each status, a map item, a callback and `@shared`, with
/// text that needs escaping in every format.
pub(crate) fn assorted() -> Vec<Record> {
    let mut out = Vec::new();
    let mut ok = sample();
    ok.index = None;
    ok.task = "warmup".into();
    ok.value = json!("done, \"quoted\"\nnext line");
    ok.stdout = "done, \"quoted\"\nnext line\n".into();
    out.push(ok);
    for (i, status) in [Status::Ok, Status::Failed, Status::Timeout, Status::Crashed]
        .into_iter()
        .enumerate()
    {
        let mut r = sample();
        r.index = Some(i as u64);
        r.status = status;
        r.value = json!({"n": i, "list": [1, 2]});
        if status != Status::Ok {
            r.value = Value::Null;
            r.exit_code = if status == Status::Failed {
                Some(1)
            } else {
                None
            };
            r.signal = if status == Status::Timeout {
                Some(15)
            } else {
                None
            };
            r.error = Some(format!("<{status:?}> & 'why' \"\u{1}\u{7f}\u{fffe}\r\t]]>"));
            r.stderr = "bad\u{1b}byte <tag> & \r\n".into();
            r.truncated = true;
        }
        out.push(r);
    }
    out.push(Record::not_run(
        "later".into(),
        None,
        "nap".into(),
        Status::Skipped,
        "dependency `thumbs` failed".into(),
    ));
    out.push(Record::not_run(
        "never".into(),
        None,
        "nap".into(),
        Status::Cancelled,
        "the run was stopped".into(),
    ));
    let mut callback = sample();
    callback.task = "thumbs:callback".into();
    callback.index = None;
    callback.value = json!(42);
    out.push(callback);
    let mut shared = Record::not_run(
        "@shared".into(),
        None,
        String::new(),
        Status::Ok,
        String::new(),
    );
    shared.error = None;
    shared.value = json!({"num": 3.5, "log": ["a", "b"]});
    out.push(shared);
    out
}

//! The wire protocol between `jobfile shared` (or a builtin's worker) and
//! the engine, over a Unix stream socket.
//!
//! One request per connection: the client writes one JSON line, a
//! [`SharedOp`] (`{"op":"add","target":"num","number":1}\n`); the engine
//! writes back one JSON line, a [`Reply`] (`{"ok":1}\n` or
//! `{"error":"message"}\n`), and closes. The client does not half-close
//! its side, so a server may treat end-of-file as "gone".
//!
//! This file only encodes and decodes; it never touches a socket, so the
//! engine can call [`handle_line`] from its own poll loop.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::SharedError;
use super::op::SharedOp;
use super::store::SharedStore;

/// The name of the environment variable that holds the socket's path in
/// every task the engine starts.
pub const ENV_VAR: &str = "JOBFILE_SHARED";

/// The engine's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Reply {
    /// The operation succeeded with this result.
    Ok(Value),
    /// The operation failed (nothing changed); the message is for the user.
    Error(String),
}

impl Reply {
    /// The reply to an applied (or refused) operation.
    pub fn from_result(result: Result<Value, SharedError>) -> Reply {
        match result {
            Ok(value) => Reply::Ok(value),
            Err(err) => Reply::Error(err.to_string()),
        }
    }

    /// The reply as one line, with its trailing `\n`.
    pub fn to_line(&self) -> Vec<u8> {
        to_line(self).unwrap_or_else(|_| {
            // Unreachable in practice: a Value always serializes. Keep the
            // protocol intact anyway.
            b"{\"error\":\"the engine could not encode its reply\"}\n".to_vec()
        })
    }

    /// Parses a reply line (with or without its `\n`).
    pub fn from_line(line: &[u8]) -> Result<Reply, serde_json::Error> {
        serde_json::from_slice(trim_newline(line))
    }
}

/// A request line for `op`, with its trailing `\n`.
pub fn request_line(op: &SharedOp) -> Result<Vec<u8>, serde_json::Error> {
    to_line(op)
}

/// Parses a request line (with or without its `\n`).
pub fn parse_request(line: &[u8]) -> Result<SharedOp, SharedError> {
    serde_json::from_slice(trim_newline(line))
        .map_err(|err| SharedError::BadRequest(err.to_string()))
}

/// The engine's side of one request: parses `line`, applies it to `store`
/// and returns the reply line (with its trailing `\n`). Never fails: a bad
/// request gets an `error` reply and leaves the store unchanged.
pub fn handle_line(store: &mut SharedStore, line: &[u8]) -> Vec<u8> {
    let result = parse_request(line).and_then(|op| store.apply(&op));
    Reply::from_result(result).to_line()
}

fn to_line<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    // Compact JSON never contains a raw newline: strings escape it.
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    Ok(line)
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::Target;
    use serde_json::json;

    fn store() -> SharedStore {
        SharedStore::new(vec![("num".into(), json!(1)), ("log".into(), json!([]))])
    }

    #[test]
    fn reply_lines() {
        assert_eq!(
            Reply::Ok(json!([1, "a"])).to_line(),
            b"{\"ok\":[1,\"a\"]}\n"
        );
        assert_eq!(
            Reply::Error("no\nway".into()).to_line(),
            b"{\"error\":\"no\\nway\"}\n"
        );
        assert_eq!(
            Reply::from_line(b"{\"ok\":null}\n").unwrap(),
            Reply::Ok(json!(null))
        );
        assert_eq!(
            Reply::from_line(b"{\"error\":\"e\"}").unwrap(),
            Reply::Error("e".into())
        );
        assert!(Reply::from_line(b"{\"ok\":1,\"error\":\"e\"}").is_err());
        assert!(Reply::from_line(b"{}").is_err());
        assert!(Reply::from_line(b"").is_err());
    }

    #[test]
    fn request_round_trip() {
        let op = SharedOp::Append {
            target: Target::name("log"),
            value: json!("multi\nline"),
        };
        let line = request_line(&op).unwrap();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(parse_request(&line).unwrap(), op);
    }

    #[test]
    fn handle_line_applies_the_op() {
        let mut s = store();
        let reply = handle_line(
            &mut s,
            b"{\"op\":\"add\",\"target\":\"num\",\"number\":2}\n",
        );
        assert_eq!(reply, b"{\"ok\":3}\n");
        let reply = handle_line(
            &mut s,
            b"{\"op\":\"append\",\"target\":\"log\",\"value\":\"x\"}\r\n",
        );
        assert_eq!(reply, b"{\"ok\":1}\n");
        assert_eq!(s.snapshot(), json!({"num": 3, "log": ["x"]}));
    }

    #[test]
    fn handle_line_reports_op_errors() {
        let mut s = store();
        let reply = handle_line(
            &mut s,
            b"{\"op\":\"add\",\"target\":\"log\",\"number\":2}\n",
        );
        assert_eq!(
            Reply::from_line(&reply).unwrap(),
            Reply::Error("`add` needs a number, but `log` is a list".into())
        );
        assert_eq!(s, store());
    }

    #[test]
    fn handle_line_reports_bad_requests() {
        let mut s = store();
        for line in [
            &b"not json\n"[..],
            b"{\"op\":\"pop\",\"target\":\"x\"}\n",
            b"\n",
            b"\xff\xfe\n",
        ] {
            let reply = handle_line(&mut s, line);
            match Reply::from_line(&reply).unwrap() {
                Reply::Error(message) => {
                    assert!(message.starts_with("invalid request: "), "{message}")
                }
                other => panic!("expected an error, got {other:?}"),
            }
            assert_eq!(reply.last(), Some(&b'\n'));
        }
        assert_eq!(s, store());
    }
}

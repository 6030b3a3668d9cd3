//! The client side of the shared-value protocol: what `jobfile shared ...`
//! and a worker running a `shared.*` builtin do to reach the engine.
//!
//! One connection per operation (see [`super::wire`]): connect, write the
//! request line, read the reply line. The engine's loop applies operations
//! one at a time, so each request is atomic however many tasks ask at once.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

use super::op::SharedOp;
use super::wire::{ENV_VAR, Reply, request_line};

/// Why a request to the engine did not give a value.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The task was not started by a running engine.
    #[error(
        "{ENV_VAR} is not set: shared values can only be reached from a task run by `jobfile run`"
    )]
    NotInRun,

    /// No engine listens at the socket.
    #[error("cannot reach the engine at {}: {source}", path.display())]
    Connect {
        /// The socket's path.
        path: PathBuf,
        /// Why `connect` failed.
        source: io::Error,
    },

    /// The connection broke while sending or receiving.
    #[error("lost the connection to the engine at {}: {source}", path.display())]
    Io {
        /// The socket's path.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },

    /// The engine closed the connection without a reply line.
    #[error("the engine at {} closed the connection without replying", path.display())]
    NoReply {
        /// The socket's path.
        path: PathBuf,
    },

    /// The request could not be written as JSON.
    #[error("cannot encode the request: {0}")]
    Encode(String),

    /// The reply was not `{"ok": ...}` or `{"error": ...}`.
    #[error("the engine sent an unreadable reply: {0}")]
    BadReply(String),

    /// The engine refused the operation (nothing changed); its message.
    #[error("{0}")]
    Refused(String),
}

/// Sends `op` to the engine listening at `socket_path` and returns the
/// operation's result.
pub fn request(socket_path: &Path, op: &SharedOp) -> Result<Value, ClientError> {
    let line = request_line(op).map_err(|err| ClientError::Encode(err.to_string()))?;
    let stream = UnixStream::connect(socket_path).map_err(|source| ClientError::Connect {
        path: socket_path.to_path_buf(),
        source,
    })?;
    let io_error = |source| ClientError::Io {
        path: socket_path.to_path_buf(),
        source,
    };
    (&stream).write_all(&line).map_err(io_error)?;
    let no_reply = || ClientError::NoReply {
        path: socket_path.to_path_buf(),
    };
    let mut reply = Vec::new();
    match BufReader::new(&stream).read_until(b'\n', &mut reply) {
        // An engine that closes before reading all we sent resets the
        // connection instead of ending it: the same "no reply" for the user.
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => return Err(no_reply()),
        Err(err) => return Err(io_error(err)),
        Ok(_) if !reply.ends_with(b"\n") => return Err(no_reply()),
        Ok(_) => {}
    }
    match Reply::from_line(&reply).map_err(|err| ClientError::BadReply(err.to_string()))? {
        Reply::Ok(value) => Ok(value),
        Reply::Error(message) => Err(ClientError::Refused(message)),
    }
}

/// The engine's socket, from [`ENV_VAR`] in this process's environment.
pub fn socket_from_env() -> Result<PathBuf, ClientError> {
    socket_from(std::env::var_os(ENV_VAR))
}

fn socket_from(value: Option<OsString>) -> Result<PathBuf, ClientError> {
    match value {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(ClientError::NotInRun),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::{SharedStore, SocketDir, handle_line};
    use serde_json::json;
    use std::io::Read;
    use std::os::unix::net::UnixListener;
    use std::thread;

    fn words(op: &str, args: &[&str]) -> SharedOp {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        SharedOp::from_words(op, &args).unwrap()
    }

    /// Serves `count` connections with `handle_line`, one at a time like
    /// the engine loop, and hands the store back at the end.
    fn serve(
        listener: UnixListener,
        mut store: SharedStore,
        count: usize,
    ) -> thread::JoinHandle<SharedStore> {
        thread::spawn(move || {
            for _ in 0..count {
                let (stream, _) = listener.accept().unwrap();
                let mut line = Vec::new();
                BufReader::new(&stream)
                    .read_until(b'\n', &mut line)
                    .unwrap();
                (&stream)
                    .write_all(&handle_line(&mut store, &line))
                    .unwrap();
            }
            store
        })
    }

    #[test]
    fn round_trip_on_a_real_socket() {
        let dir = SocketDir::create_in(&std::env::temp_dir()).unwrap();
        let path = dir.socket_path();
        let listener = UnixListener::bind(&path).unwrap();
        let store = SharedStore::new(vec![
            ("num".into(), json!(0)),
            ("arr".into(), json!([0, 1, 2])),
            ("log".into(), json!([])),
            ("seen".into(), json!({})),
        ]);
        let server = serve(listener, store, 8);

        assert_eq!(
            request(&path, &words("add", &["num", "5"])).unwrap(),
            json!(5)
        );
        assert_eq!(
            request(&path, &words("add", &["arr[2]", "0.5"])).unwrap(),
            json!(2.5)
        );
        assert_eq!(
            request(&path, &words("append", &["log", "hello world"])).unwrap(),
            json!(1)
        );
        assert_eq!(
            request(&path, &words("put", &["seen", "k", "[1]"])).unwrap(),
            json!(1)
        );
        assert_eq!(
            request(&path, &words("set", &["arr[0]", "\"s\""])).unwrap(),
            json!("s")
        );
        match request(&path, &words("append", &["num", "1"])) {
            Err(ClientError::Refused(message)) => {
                assert_eq!(message, "`append` needs a list, but `num` is a number")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        match request(&path, &words("get", &["nmu"])) {
            Err(err @ ClientError::Refused(_)) => {
                assert_eq!(
                    err.to_string(),
                    "no shared value named `nmu`; did you mean `num`?"
                )
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(
            request(&path, &words("get", &["log"])).unwrap(),
            json!(["hello world"])
        );

        let store = server.join().unwrap();
        assert_eq!(
            serde_json::to_string(&store.snapshot()).unwrap(),
            r#"{"num":5,"arr":["s",1,2.5],"log":["hello world"],"seen":{"k":[1]}}"#
        );
    }

    #[test]
    fn no_engine_is_a_connect_error() {
        let dir = SocketDir::create_in(&std::env::temp_dir()).unwrap();
        let err = request(&dir.socket_path(), &words("get", &["x"])).unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
        assert!(err.to_string().starts_with("cannot reach the engine at "));
    }

    #[test]
    fn engine_closing_early_is_no_reply() {
        let dir = SocketDir::create_in(&std::env::temp_dir()).unwrap();
        let path = dir.socket_path();
        let listener = UnixListener::bind(&path).unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).unwrap();
            stream.write_all(b"{\"ok\":").unwrap();
        });
        let err = request(&path, &words("get", &["x"])).unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, ClientError::NoReply { .. }), "{err:?}");
    }

    #[test]
    fn garbage_reply_is_bad_reply() {
        let dir = SocketDir::create_in(&std::env::temp_dir()).unwrap();
        let path = dir.socket_path();
        let listener = UnixListener::bind(&path).unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = Vec::new();
            BufReader::new(&stream)
                .read_until(b'\n', &mut line)
                .unwrap();
            (&stream).write_all(b"{\"maybe\":1}\n").unwrap();
        });
        let err = request(&path, &words("get", &["x"])).unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, ClientError::BadReply(_)), "{err:?}");
    }

    #[test]
    fn socket_from_the_environment_value() {
        assert_eq!(
            socket_from(Some("/run/x.sock".into())).unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert!(matches!(socket_from(None), Err(ClientError::NotInRun)));
        let err = socket_from(Some("".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "JOBFILE_SHARED is not set: shared values can only be reached from a task run by `jobfile run`"
        );
    }
}

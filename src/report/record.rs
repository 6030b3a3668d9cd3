//! One result record: what a task (or one map item, or a callback) did.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::unit_print::UnitPrint;

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It ran and succeeded.
    Ok,
    /// It ran and failed (non-zero exit, signal, builtin error, bad JSON...).
    Failed,
    /// It was killed because it ran past its timeout.
    Timeout,
    /// The worker that ran it died.
    Crashed,
    /// A dependency did not end ok, so it never ran.
    Skipped,
    /// The run was stopped (failure policy or signal) before it could end.
    Cancelled,
}

impl Status {
    /// The lower-case name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Timeout => "timeout",
            Status::Crashed => "crashed",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
        }
    }

    /// It ran and did not end ok: `failed`, `timeout` or `crashed` (what
    /// a retry runs again; `skipped` and `cancelled` never ran).
    pub fn ran_and_failed(self) -> bool {
        matches!(self, Status::Failed | Status::Timeout | Status::Crashed)
    }
}

/// What a record stands for. Records and files keep it in the `task`
/// string (`ID`, `ID:callback`, `ID:error_callback`, `@shared`):
/// [`RecordKind::name`] writes that string and [`RecordKind::parse`] reads
/// it, nothing else does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A call or a map item of the task's own function.
    Main,
    /// The task's callback, after it ended ok.
    Callback,
    /// The task's error callback, after it failed.
    ErrorCallback,
    /// The final values of `[shared]`: no task's.
    Shared,
}

impl RecordKind {
    const SHARED: &str = "@shared";

    /// The `task` string of a record of this kind for task `id` (which
    /// `Shared` ignores).
    pub fn name(self, id: &str) -> String {
        match self {
            RecordKind::Main => id.to_string(),
            RecordKind::Callback => format!("{id}:callback"),
            RecordKind::ErrorCallback => format!("{id}:error_callback"),
            RecordKind::Shared => RecordKind::SHARED.to_string(),
        }
    }

    /// A record's `task` string as the task's id and the kind (the id is
    /// empty for `Shared`). Task ids hold no `:`, so anything after one
    /// that names no callback stays part of the id, which then matches no
    /// task.
    pub fn parse(name: &str) -> (&str, RecordKind) {
        if name == RecordKind::SHARED {
            return ("", RecordKind::Shared);
        }
        match name.rsplit_once(':') {
            Some((id, "callback")) => (id, RecordKind::Callback),
            Some((id, "error_callback")) => (id, RecordKind::ErrorCallback),
            _ => (name, RecordKind::Main),
        }
    }
}

/// One result record, as spec section 3 describes it.
///
/// The special `@shared` record (the final values of `[shared]`) is a
/// `Record` whose `task` is `"@shared"`; writers print only its `task`,
/// `status` and `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Task id; `ID:callback` / `ID:error_callback` for callbacks; `@shared`.
    pub task: String,
    /// Position of a map item; `None` for everything else.
    pub index: Option<u64>,
    /// Name of the function that ran (or would have run).
    pub function: String,
    /// Positional arguments after substitution of result references.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
    pub status: Status,
    /// What `returns` made of stdout, or a builtin's value.
    pub value: Value,
    pub exit_code: Option<i32>,
    /// Number of the signal that ended the process, if one did.
    pub signal: Option<i32>,
    /// Why the task is not ok; `None` exactly when `status` is `Ok`.
    pub error: Option<String>,
    pub stdout: String,
    pub stderr: String,
    /// Some captured output was cut off at the cap.
    pub truncated: bool,
    /// How many times the task ran (0 when it never started).
    pub attempts: u32,
    /// Pid of the worker process that ran the last attempt.
    pub worker: Option<u32>,
    /// Host name of the machine that ran it, when that is not the engine's
    /// (a Slurm node); `None` on the engine's machine.
    pub host: Option<String>,
    /// When the last attempt started.
    pub started: Option<SystemTime>,
    /// How long the last attempt took, in milliseconds.
    pub duration_ms: Option<f64>,
    /// What `--resume` needs to find this unit again and to tell whether
    /// it still stands; kept beside the results, never written in them.
    pub print: Option<UnitPrint>,
}

impl Record {
    /// A record for a task that never ran (`skipped` or `cancelled`).
    pub fn not_run(
        task: String,
        index: Option<u64>,
        function: String,
        status: Status,
        error: String,
    ) -> Record {
        Record {
            task,
            index,
            function,
            args: Vec::new(),
            kwargs: Map::new(),
            status,
            value: Value::Null,
            exit_code: None,
            signal: None,
            error: Some(error),
            stdout: String::new(),
            stderr: String::new(),
            truncated: false,
            attempts: 0,
            worker: None,
            host: None,
            started: None,
            duration_ms: None,
            print: None,
        }
    }

    /// Is this the final `@shared` record?
    pub fn is_shared(&self) -> bool {
        self.task == RecordKind::SHARED
    }

    /// The task id this record belongs to and what of it the record is.
    pub fn kind(&self) -> (&str, RecordKind) {
        RecordKind::parse(&self.task)
    }
}

//! The job file as written: serde types that mirror the TOML one to one.
//!
//! These types only know the shape of the file. Whether names resolve,
//! durations parse or templates have values is decided later, in
//! [`super::check`]. The JSON Schema (`jobfile schema`) is generated from
//! these same types, so the two never drift apart.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::map_source::{MapSchema, RawMap};
use crate::results::{Format, Order};

/// The whole job file.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "jobfile job file, version 1")]
pub struct RawJob {
    /// Format version; must be 1.
    pub version: i64,
    /// Name of the job; defaults to the file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Variables for `{vars.NAME}` placeholders; `--set NAME=VALUE` overrides them.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, VarValue>")]
    pub vars: Map<String, Value>,
    /// The default pool (the pool named `default`).
    #[serde(default)]
    pub pool: Option<RawPool>,
    /// Named pools, picked by a task's `pool` key.
    #[serde(default)]
    pub pools: BTreeMap<String, RawPool>,
    /// Where and how results are written.
    #[serde(default)]
    pub results: Option<RawResults>,
    /// The functions tasks can call.
    #[serde(default)]
    pub functions: BTreeMap<String, RawFunction>,
    /// The tasks, in submission order.
    #[serde(default)]
    pub task: Vec<RawTask>,
    /// Shared values held by the engine (Value, Array, Manager list or dict).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Value>")]
    pub shared: Map<String, Value>,
    /// How Python functions are run.
    #[serde(default)]
    pub python: Option<RawPython>,
}

/// `[python]`: the interpreter of the job's Python functions.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPython {
    /// The interpreter (a name on `PATH`, or a path such as a venv's
    /// `bin/python`); default: `$JOBFILE_PYTHON`, else `python3`.
    #[serde(default)]
    pub interpreter: Option<String>,
    /// Folders put first on `sys.path`, relative to the job file's folder
    /// (which is always on it).
    #[serde(default)]
    pub path: Option<Vec<String>>,
}

/// A variable's value, as the schema describes it: a string, number or
/// boolean, used as text. (Read as a plain value and checked by
/// [`super::check`], which gives a better message than an untagged enum.)
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum VarValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

/// A pool of worker processes: `[pool]` or `[pools.NAME]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    /// Number of worker processes; default: the CPUs this process may use.
    #[serde(default)]
    pub processes: Option<i64>,
    /// Tasks a worker runs before it is replaced by a fresh one; default: none.
    #[serde(default)]
    pub max_tasks_per_child: Option<i64>,
    /// A call run once in each new worker before its first task.
    #[serde(default)]
    pub initializer: Option<RawCall>,
    /// What a failure does to the rest of the run.
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
    /// Default task timeout, as `"250ms"`, `"30s"`, `"10m"`, `"2h"`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Default number of retries of a task.
    #[serde(default)]
    pub retries: Option<i64>,
    /// Where the workers run: forked here (`local`) or as Slurm job steps.
    #[serde(default)]
    pub backend: Option<Backend>,
    /// Slurm partition (backend = "slurm").
    #[serde(default)]
    pub partition: Option<String>,
    /// Slurm node count (backend = "slurm").
    #[serde(default)]
    pub nodes: Option<i64>,
    /// Slurm time limit, as Slurm writes it, e.g. `"10:00"` (backend = "slurm").
    #[serde(default)]
    pub time: Option<String>,
    /// Path of the `jobfile` binary started as `jobfile worker` on the nodes
    /// (backend = "slurm"); default: the running executable.
    #[serde(default)]
    pub worker_binary: Option<String>,
}

/// A function call with arguments (a pool's `initializer`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCall {
    /// Name of a function declared under `[functions]`, or a builtin.
    pub function: String,
    #[serde(default)]
    pub args: Vec<Value>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Value>")]
    pub kwargs: Map<String, Value>,
}

/// Failure policy of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Record failures; run everything that does not depend on them.
    #[default]
    Continue,
    /// Start nothing new after the first failure; let running tasks finish.
    Stop,
    /// Kill running tasks after the first failure.
    Terminate,
}

/// Where a pool's workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Worker processes forked on this machine.
    #[default]
    Local,
    /// `jobfile worker` steps started with `srun` in a Slurm allocation.
    Slurm,
}

/// `[results]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResults {
    /// Results file, relative to the job file's folder.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub format: Option<Format>,
    #[serde(default)]
    pub order: Option<Order>,
}

/// `[functions.NAME]`: exactly one of `command`, `shell`, `builtin`, `python`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFunction {
    /// An argv array with placeholders (`{0}`, `{name}`, `{item.stem}`, `{vars.X}`...).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// A script for `/bin/sh -c`; args are `"$1"`..., kwargs `JOBFILE_ARG_<NAME>`.
    #[serde(default)]
    pub shell: Option<String>,
    /// A function run inside the worker (`noop`, `echo`, `sleep`, ...).
    #[serde(default)]
    pub builtin: Option<String>,
    /// A Python function, `MODULE:NAME`, called in a warm interpreter.
    #[serde(default)]
    pub python: Option<String>,
    /// How stdout becomes the value.
    #[serde(default)]
    pub returns: Option<Returns>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retries: Option<i64>,
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// Working folder, relative to the job file's folder.
    #[serde(default)]
    pub cwd: Option<String>,
}

/// How a command's stdout becomes the task's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Returns {
    /// `null`.
    None,
    /// stdout, trailing newline trimmed.
    #[default]
    Text,
    /// An array of stdout's lines.
    Lines,
    /// stdout parsed as JSON; a parse failure fails the task.
    Json,
}

/// Submission mode of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `apply_async`: later tasks do not wait for it.
    #[default]
    Async,
    /// `apply`: tasks declared after it start only once it has ended.
    Blocking,
}

/// One `[[task]]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    /// Default: `<function>-<n>`, n its place in the file from 0.
    #[serde(default)]
    pub id: Option<String>,
    pub function: String,
    /// Positional args; `{ result = "ID" }` is task ID's value.
    #[serde(default)]
    pub args: Vec<Value>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Value>")]
    pub kwargs: Map<String, Value>,
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Ids of tasks this one waits for.
    #[serde(default)]
    pub after: Vec<String>,
    /// Run the function once per item.
    #[serde(default)]
    #[schemars(with = "Option<MapSchema>")]
    pub map: Option<RawMap>,
    /// Items of a map sent to a worker at once.
    #[serde(default)]
    pub chunksize: Option<i64>,
    /// Files whose content counts for `--resume` (globs; may hold the
    /// placeholders of a command, filled for each map item).
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Files each unit makes (globs, with placeholders like `inputs`): a
    /// unit that leaves one missing fails, and `--resume` reruns a unit
    /// whose outputs are gone or changed.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Name of the pool; default `default`.
    #[serde(default)]
    pub pool: Option<String>,
    /// Function run with this task's value when it ends ok.
    #[serde(default)]
    pub callback: Option<String>,
    /// Function run with the error message when it does not.
    #[serde(default)]
    pub error_callback: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retries: Option<i64>,
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub cwd: Option<String>,
}

/// The top-level keys of a job file, for "did you mean" and for the loader.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "name",
    "vars",
    "pool",
    "pools",
    "results",
    "functions",
    "task",
    "shared",
    "python",
];

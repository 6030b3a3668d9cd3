//! The checked job: every name resolved, every duration parsed, every
//! template parsed and every default applied. Built only by
//! [`super::check`]; everything after the spec layer works on this.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

pub use super::raw::{Backend, Mode, OnFailure, Returns};
use super::template::Template;
pub use crate::results::{Format, Order};

/// Index of a task in [`Job::tasks`], which is also its submission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub usize);

/// Index of a function in [`Job::functions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionId(pub usize);

/// Index of a pool in [`Job::pools`]; 0 is the pool named `default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolId(pub usize);

/// A checked job file.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    /// The job file.
    pub path: PathBuf,
    /// The folder relative paths in the file are resolved against.
    pub dir: PathBuf,
    pub vars: BTreeMap<String, String>,
    /// `pools[0]` is `default`.
    pub pools: Vec<Pool>,
    pub results: ResultsSpec,
    pub functions: Vec<Function>,
    /// In submission order.
    pub tasks: Vec<Task>,
    /// `[shared]`, in declaration order.
    pub shared: Vec<(String, Value)>,
    /// How Python functions run (`[python]`, with its defaults).
    pub python: PythonSettings,
}

impl Job {
    /// Does any function of the job run in a Python interpreter?
    pub fn uses_python(&self) -> bool {
        self.functions.iter().any(|f| f.kind.is_python())
    }
}

/// `[python]`, with its defaults applied.
#[derive(Debug, Clone, Default)]
pub struct PythonSettings {
    /// The interpreter, as given or from `$JOBFILE_PYTHON` (else `python3`).
    pub interpreter: String,
    /// Absolute folders put first on `sys.path`, after the job's folder.
    pub path: Vec<PathBuf>,
}

/// A Python function: `MODULE:NAME`, NAME possibly dotted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonTarget {
    pub module: String,
    pub name: String,
}

impl PythonTarget {
    /// Reads `MODULE:NAME`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<PythonTarget, String> {
        let Some((module, name)) = text.split_once(':') else {
            return Err(format!(
                "`{text}` is not `MODULE:NAME`: expected a module and a function, like `tasks:work`"
            ));
        };
        let dotted = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|part| {
                    let mut chars = part.chars();
                    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                        && chars.all(|c| c == '_' || c.is_alphanumeric())
                })
        };
        if !dotted(module) {
            return Err(format!(
                "`{module}` is not a module name: expected dotted Python identifiers, like `pkg.tasks`"
            ));
        }
        if !dotted(name) {
            return Err(format!(
                "`{name}` is not a function name: expected a Python identifier, or a dotted one like `Class.method`"
            ));
        }
        Ok(PythonTarget {
            module: module.to_string(),
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for PythonTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.module, self.name)
    }
}

/// A pool of workers.
#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    /// `None`: the CPUs this process may use.
    pub processes: Option<usize>,
    pub max_tasks_per_child: Option<u64>,
    pub initializer: Option<Call>,
    pub on_failure: OnFailure,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub backend: Backend,
    pub slurm: SlurmOptions,
}

/// Options of a Slurm pool.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub nodes: Option<u32>,
    pub time: Option<String>,
    pub worker_binary: Option<PathBuf>,
}

/// A function call with fixed arguments.
#[derive(Debug, Clone)]
pub struct Call {
    pub function: FunctionId,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
}

/// `[results]`, before the command line's overrides.
#[derive(Debug, Clone, Default)]
pub struct ResultsSpec {
    pub path: Option<PathBuf>,
    pub format: Option<Format>,
    pub order: Order,
}

/// A function.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub kind: FunctionKind,
    pub returns: Returns,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
}

/// What a function runs.
#[derive(Debug, Clone)]
pub enum FunctionKind {
    /// An argv of templates.
    Command(Vec<Template>),
    /// A `/bin/sh -c` script.
    Shell(String),
    /// A function of the worker's registry.
    Builtin(String),
    /// A Python function, called in a warm interpreter.
    Python(PythonTarget),
}

impl FunctionKind {
    /// Runs in the worker itself, with nothing to render or start.
    pub fn is_builtin(&self) -> bool {
        matches!(self, FunctionKind::Builtin(_))
    }

    /// Runs in the worker's Python interpreter.
    pub fn is_python(&self) -> bool {
        matches!(self, FunctionKind::Python(_))
    }
}

/// An argument: a value, or another task's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Value(Value),
    Result(TaskId),
}

/// Where a map's items come from.
#[derive(Debug, Clone)]
pub enum MapSource {
    Items(Vec<Value>),
    Range {
        start: i64,
        stop: i64,
        step: i64,
    },
    /// A file, one item per line (absolute path).
    Lines(PathBuf),
    /// A glob pattern relative to the job's folder; items are the matching
    /// paths as the pattern writes them, sorted.
    Glob(String),
    /// Every combination, as kwargs, row-major.
    Product(Vec<(String, Vec<Value>)>),
    /// Another task's value.
    Result(TaskId),
    /// The lines another task prints, while it runs.
    Stream(TaskId),
}

/// A checked task.
///
/// A big job is mostly tasks of an id, a function and a few args, so those
/// are fields and everything else (rarely set) sits behind one box, read
/// through methods of the same names: a task of the usual shape is 96
/// bytes, not 300. In that box, `after` and `kwargs` come first and the
/// rest is boxed once more, so that a task of a dependency graph does not
/// carry room for a map, files, callbacks and an env.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub function: FunctionId,
    pub args: Vec<Arg>,
    pub mode: Mode,
    pub pool: PoolId,
    /// Task, else function, else pool timeout.
    pub timeout: Option<Duration>,
    /// Task, else function, else pool retries.
    pub retries: u32,
    links: Option<Box<TaskLinks>>,
}

/// What a task of a graph often has, and the box of the rest.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskLinks {
    pub(crate) kwargs: Vec<(String, Arg)>,
    /// Explicit `after` dependencies.
    pub(crate) after: Vec<TaskId>,
    extras: Option<Box<TaskExtras>>,
}

/// What a task rarely has.
#[derive(Debug, Clone)]
pub(crate) struct TaskExtras {
    pub(crate) map: Option<MapSource>,
    pub(crate) chunksize: usize,
    /// Files whose content counts for `--resume`: globs relative to the
    /// job's folder, with placeholders filled for each unit.
    pub(crate) inputs: Vec<Template>,
    /// Files each unit makes, as `inputs`.
    pub(crate) outputs: Vec<Template>,
    pub(crate) callback: Option<FunctionId>,
    pub(crate) error_callback: Option<FunctionId>,
    /// The function's env with the task's on top.
    pub(crate) env: BTreeMap<String, String>,
    /// Task, else function cwd (absolute).
    pub(crate) cwd: Option<PathBuf>,
}

impl Default for TaskExtras {
    fn default() -> TaskExtras {
        TaskExtras {
            map: None,
            chunksize: 1,
            inputs: Vec::new(),
            outputs: Vec::new(),
            callback: None,
            error_callback: None,
            env: BTreeMap::new(),
            cwd: None,
        }
    }
}

/// The env of a task that sets none.
static NO_ENV: BTreeMap<String, String> = BTreeMap::new();

impl Job {
    /// The function of a task.
    pub fn function(&self, id: FunctionId) -> &Function {
        &self.functions[id.0]
    }

    /// A task by id.
    pub fn task(&self, id: TaskId) -> &Task {
        &self.tasks[id.0]
    }

    /// The id of the task called `name`.
    pub fn task_named(&self, name: &str) -> Option<TaskId> {
        self.tasks.iter().position(|t| t.id == name).map(TaskId)
    }
}

impl Task {
    /// A task with the id `id` and nothing resolved yet; the checker fills
    /// it in (a job is only handed out when every task resolved).
    pub(crate) fn unresolved(id: String) -> Task {
        Task {
            id,
            function: FunctionId(usize::MAX),
            args: Vec::new(),
            mode: Mode::default(),
            pool: PoolId(0),
            timeout: None,
            retries: 0,
            links: None,
        }
    }

    /// `after` and `kwargs`, made on first use.
    pub(crate) fn links_mut(&mut self) -> &mut TaskLinks {
        self.links.get_or_insert_with(Box::default)
    }

    /// The rarely set parts, made on first use.
    pub(crate) fn extras_mut(&mut self) -> &mut TaskExtras {
        self.links_mut().extras.get_or_insert_with(Box::default)
    }

    fn extras(&self) -> Option<&TaskExtras> {
        self.links.as_ref().and_then(|l| l.extras.as_deref())
    }

    /// Named args, in the order written.
    pub fn kwargs(&self) -> &[(String, Arg)] {
        self.links.as_ref().map_or(&[], |l| &l.kwargs)
    }

    /// Explicit `after` dependencies.
    pub fn after(&self) -> &[TaskId] {
        self.links.as_ref().map_or(&[], |l| &l.after)
    }

    pub fn map(&self) -> Option<&MapSource> {
        self.extras().and_then(|x| x.map.as_ref())
    }

    /// Items of a map sent to a worker at once.
    pub fn chunksize(&self) -> usize {
        self.extras().map_or(1, |x| x.chunksize)
    }

    /// Files whose content counts for `--resume`: globs relative to the
    /// job's folder, with placeholders filled for each unit.
    pub fn inputs(&self) -> &[Template] {
        self.extras().map_or(&[], |x| &x.inputs)
    }

    /// Files each unit makes, as [`Task::inputs`].
    pub fn outputs(&self) -> &[Template] {
        self.extras().map_or(&[], |x| &x.outputs)
    }

    pub fn callback(&self) -> Option<FunctionId> {
        self.extras().and_then(|x| x.callback)
    }

    pub fn error_callback(&self) -> Option<FunctionId> {
        self.extras().and_then(|x| x.error_callback)
    }

    /// The function's env with the task's on top.
    pub fn env(&self) -> &BTreeMap<String, String> {
        self.extras().map_or(&NO_ENV, |x| &x.env)
    }

    /// Task, else function cwd (absolute).
    pub fn cwd(&self) -> Option<&Path> {
        self.extras().and_then(|x| x.cwd.as_deref())
    }

    /// Every task whose value this task reads (args, kwargs, map source).
    pub fn result_refs(&self) -> impl Iterator<Item = TaskId> + '_ {
        let args = self.args.iter().chain(self.kwargs().iter().map(|(_, a)| a));
        let from_args = args.filter_map(|a| match a {
            Arg::Result(id) => Some(*id),
            Arg::Value(_) => None,
        });
        let from_map = match self.map() {
            Some(MapSource::Result(id)) => Some(*id),
            _ => None,
        };
        from_args.chain(from_map)
    }

    /// The producer of a `stream` map.
    pub fn stream_source(&self) -> Option<TaskId> {
        match self.map() {
            Some(MapSource::Stream(id)) => Some(*id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A big job is mostly plain tasks: what each costs is pinned.
    #[test]
    fn a_plain_task_is_small() {
        assert_eq!(std::mem::size_of::<Arg>(), std::mem::size_of::<Value>());
        assert!(
            std::mem::size_of::<Task>() <= 96,
            "{}",
            std::mem::size_of::<Task>()
        );
    }
}

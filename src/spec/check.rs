//! Validation: from a [`RawJob`] to a checked [`Job`], or every error.
//!
//! Each problem becomes a [`Diagnostic`] that names its place by path; the
//! checker never stops at the first one, so the user fixes them all at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::doc_path::DocPath;
use super::duration::{DURATION_HELP, parse_duration};
use super::job::*;
use super::load::{Unreadable, backticked};
use super::map_source::RawMap;
use super::python::{self, PythonProbe};
use super::raw::{RawCall, RawFunction, RawJob, RawPool, RawTask};
use super::suggest::did_you_mean;
use super::template::{ItemField, Part, Template};

/// What the checker needs to know beyond the file.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Names of the builtins the workers can run.
    pub builtins: Vec<String>,
    /// `--set NAME=VALUE` overrides of `[vars]`.
    pub var_overrides: Vec<(String, String)>,
    /// Asks the Python interpreter about the job's modules; `None` skips
    /// those checks.
    pub python_probe: Option<PythonProbe>,
}

/// Checks a raw job read from `path`; gives the job or every diagnostic.
pub fn check(
    raw: &RawJob,
    unreadable: &Unreadable,
    path: &Path,
    opts: &CheckOptions,
) -> Result<Job, Vec<Diagnostic>> {
    let mut cx = Checker {
        opts,
        unreadable,
        diags: Vec::new(),
        dir: path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf(),
        functions: Vec::new(),
        function_names: HashMap::new(),
        vars: BTreeMap::new(),
        python_functions: Vec::new(),
    };
    let root = DocPath::root();
    if !unreadable.version && raw.version != 1 {
        cx.diags.push(
            Diagnostic::at(
                root.key("version"),
                format!(
                    "unsupported `version = {}`: expected `version = 1`",
                    raw.version
                ),
            )
            .with_help("this jobfile reads version 1 of the format"),
        );
    }
    let name = raw.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "job".into())
    });
    cx.vars = cx.vars(raw);
    cx.declare_functions(raw);
    let pools = cx.pools(raw);
    let results = cx.results(raw);
    let tasks = cx.tasks(raw, &pools);
    let vars = std::mem::take(&mut cx.vars);
    let shared = raw
        .shared
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut job = Job {
        name,
        path: path.to_path_buf(),
        dir: cx.dir.clone(),
        vars,
        pools,
        results,
        functions: Vec::new(),
        tasks,
        shared,
        python: PythonSettings::default(),
    };
    job.functions = std::mem::take(&mut cx.functions);
    job.python = python::settings(raw.python.as_ref(), &cx.dir);
    if let (Some(probe), false) = (cx.opts.python_probe, cx.python_functions.is_empty()) {
        let origin = python::origin(raw.python.as_ref());
        let found = python::diagnose(
            probe,
            &mut job.python,
            &job.dir,
            &cx.python_functions,
            origin,
        );
        cx.diags.extend(found);
    }
    if cx.diags.is_empty() {
        if let Some(cycle) = crate::plan::find_cycle(&job) {
            cx.diags.push(cycle_diagnostic(&job, &cycle));
        }
    }
    if cx.diags.is_empty() {
        Ok(job)
    } else {
        Err(cx.diags)
    }
}

struct Checker<'a> {
    opts: &'a CheckOptions,
    /// The module of each Python function, with the place of its `python` key.
    python_functions: Vec<(String, DocPath)>,
    unreadable: &'a Unreadable,
    diags: Vec<Diagnostic>,
    dir: PathBuf,
    functions: Vec<Function>,
    function_names: HashMap<String, FunctionId>,
    vars: BTreeMap<String, String>,
}

impl Checker<'_> {
    fn vars(&mut self, raw: &RawJob) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        for (k, v) in &raw.vars {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    self.diags.push(Diagnostic::at(
                        DocPath::root().key("vars").key(k),
                        format!("`vars.{k}` must be a string, number or boolean"),
                    ));
                    continue;
                }
            };
            vars.insert(k.clone(), text);
        }
        for (k, v) in &self.opts.var_overrides {
            if vars.contains_key(k) {
                vars.insert(k.clone(), v.clone());
            } else {
                let names: Vec<&str> = raw.vars.keys().map(String::as_str).collect();
                let help = did_you_mean(k, &names).unwrap_or_else(|| {
                    if names.is_empty() {
                        "the job file has no `[vars]`".into()
                    } else {
                        format!("declared variables: {}", backticked(&names))
                    }
                });
                self.diags.push(
                    Diagnostic::at_file(format!(
                        "`--set {k}=...`: `[vars]` declares no variable `{k}`"
                    ))
                    .with_help(help),
                );
            }
        }
        vars
    }

    fn declare_functions(&mut self, raw: &RawJob) {
        for (name, f) in &raw.functions {
            let path = DocPath::root().key("functions").key(name);
            let function = self.function(name, f, &path);
            let id = FunctionId(self.functions.len());
            self.functions.push(function);
            self.function_names.insert(name.clone(), id);
        }
    }

    fn function(&mut self, name: &str, f: &RawFunction, path: &DocPath) -> Function {
        let given: Vec<&str> = [
            f.command.as_ref().map(|_| "command"),
            f.shell.as_ref().map(|_| "shell"),
            f.builtin.as_ref().map(|_| "builtin"),
            f.python.as_ref().map(|_| "python"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let kind = match (given.len(), &f.command, &f.shell, &f.builtin) {
            (1, None, None, None) => {
                let text = f.python.as_deref().unwrap_or_default();
                if f.returns.is_some() {
                    self.diags.push(
                        Diagnostic::at_key(
                            path.key("returns"),
                            format!("`returns` on the Python function `{name}`: its value is what it returns"),
                        )
                        .with_help("remove `returns`: a Python function's return value is turned into JSON"),
                    );
                }
                match PythonTarget::parse(text) {
                    Ok(target) => {
                        self.python_functions
                            .push((target.module.clone(), path.key("python")));
                        FunctionKind::Python(target)
                    }
                    Err(e) => {
                        self.diags.push(Diagnostic::at(path.key("python"), e));
                        FunctionKind::Shell(String::new())
                    }
                }
            }
            (1, Some(argv), _, _) => {
                if argv.is_empty() {
                    self.diags.push(
                        Diagnostic::at(
                            path.key("command"),
                            "an empty `command`: expected a program and its arguments",
                        )
                        .with_help("write it as an argv array, like [\"echo\", \"{0}\"]"),
                    );
                }
                let mut templates = Vec::new();
                for (i, arg) in argv.iter().enumerate() {
                    match Template::parse(arg) {
                        Ok(t) => templates.push(t),
                        Err(e) => {
                            self.diags.push(
                                Diagnostic::at(path.key("command").index(i), e.message)
                                    .with_label(format!("at character {}", e.offset + 1)),
                            );
                            templates.push(Template::empty());
                        }
                    }
                }
                FunctionKind::Command(templates)
            }
            (1, _, Some(script), _) => FunctionKind::Shell(script.clone()),
            (1, _, _, Some(b)) => {
                if !self.opts.builtins.iter().any(|n| n == b) {
                    let names: Vec<&str> = self.opts.builtins.iter().map(String::as_str).collect();
                    self.diags.push(
                        Diagnostic::at(path.key("builtin"), format!("unknown builtin `{b}`"))
                            .with_help(did_you_mean(b, &names).unwrap_or_else(|| {
                                format!("the builtins are {}", backticked(&names))
                            })),
                    );
                }
                FunctionKind::Builtin(b.clone())
            }
            (0, ..) => {
                self.diags.push(
                    Diagnostic::at(
                        path.clone(),
                        format!("function `{name}` has none of `command`, `shell`, `builtin`, `python`: expected exactly one"),
                    )
                    .with_help("add `command = [...]`, `shell = \"...\"`, `builtin = \"...\"` or `python = \"MODULE:NAME\"`"),
                );
                FunctionKind::Shell(String::new())
            }
            _ => {
                self.diags.push(Diagnostic::at_key(
                    path.key(given[1]),
                    format!(
                        "function `{name}` has both `{}` and `{}`: expected exactly one of `command`, `shell`, `builtin`, `python`",
                        given[0], given[1]
                    ),
                ));
                FunctionKind::Shell(String::new())
            }
        };
        Function {
            name: name.to_string(),
            kind,
            returns: f.returns.unwrap_or_default(),
            timeout: self.duration(f.timeout.as_deref(), &path.key("timeout")),
            retries: f
                .retries
                .and_then(|r| self.count(r, &path.key("retries"), 0, "retries")),
            env: f.env.clone().unwrap_or_default(),
            cwd: f.cwd.as_ref().map(|c| self.dir.join(c)),
        }
    }

    /// Resolves a function name: declared ones first, then builtins.
    fn resolve_function(&mut self, name: &str, path: &DocPath, what: &str) -> Option<FunctionId> {
        if let Some(id) = self.function_names.get(name) {
            return Some(*id);
        }
        if self.unreadable.functions.contains(name) {
            return None; // declared, but its table has an error already reported
        }
        if self.opts.builtins.iter().any(|b| b == name) {
            let id = FunctionId(self.functions.len());
            self.functions.push(Function {
                name: name.to_string(),
                kind: FunctionKind::Builtin(name.to_string()),
                returns: Returns::default(),
                timeout: None,
                retries: None,
                env: BTreeMap::new(),
                cwd: None,
            });
            self.function_names.insert(name.to_string(), id);
            return Some(id);
        }
        let mut names: Vec<&str> = self.function_names.keys().map(String::as_str).collect();
        names.sort_unstable();
        let help = did_you_mean(name, &names).unwrap_or_else(|| {
            if names.is_empty() {
                "declare it under `[functions.NAME]`, or use a builtin".to_string()
            } else {
                format!("declared functions: {}", backticked(&names))
            }
        });
        self.diags.push(
            Diagnostic::at(
                path.clone(),
                format!("unknown function `{name}` in `{what}`"),
            )
            .with_help(help),
        );
        None
    }

    fn duration(&mut self, text: Option<&str>, path: &DocPath) -> Option<std::time::Duration> {
        let text = text?;
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.diags
                    .push(Diagnostic::at(path.clone(), e).with_help(DURATION_HELP));
                None
            }
        }
    }

    fn count(&mut self, n: i64, path: &DocPath, min: i64, what: &str) -> Option<u32> {
        if n < min || n > u32::MAX as i64 {
            self.diags.push(Diagnostic::at(
                path.clone(),
                format!("`{what} = {n}`: expected a whole number of at least {min}"),
            ));
            return None;
        }
        u32::try_from(n).ok()
    }

    fn pools(&mut self, raw: &RawJob) -> Vec<Pool> {
        let default = raw.pool.clone().unwrap_or_default();
        let mut pools = vec![self.pool("default", &default, &DocPath::root().key("pool"))];
        for (name, p) in &raw.pools {
            let path = DocPath::root().key("pools").key(name);
            if name == "default" {
                if raw.pool.is_some() {
                    self.diags.push(
                        Diagnostic::at_key(
                            path,
                            "`[pools.default]` and `[pool]` both declare the pool named `default`",
                        )
                        .with_help("keep one of them"),
                    );
                } else {
                    pools[0] = self.pool(name, p, &path);
                }
                continue;
            }
            let pool = self.pool(name, p, &path);
            pools.push(pool);
        }
        pools
    }

    fn pool(&mut self, name: &str, p: &RawPool, path: &DocPath) -> Pool {
        let backend = p.backend.unwrap_or_default();
        if backend != Backend::Slurm {
            for (key, set) in [
                ("partition", p.partition.is_some()),
                ("nodes", p.nodes.is_some()),
                ("time", p.time.is_some()),
                ("worker_binary", p.worker_binary.is_some()),
            ] {
                if set {
                    self.diags.push(
                        Diagnostic::at_key(
                            path.key(key),
                            format!("`{key}` applies only to Slurm pools"),
                        )
                        .with_help("add `backend = \"slurm\"` to this pool, or remove the key"),
                    );
                }
            }
        }
        if let (Some(processes), Some(nodes)) = (p.processes, p.nodes) {
            if backend == Backend::Slurm && processes >= 1 && nodes > processes {
                self.diags.push(
                    Diagnostic::at(
                        path.key("nodes"),
                        format!(
                            "`nodes = {nodes}` is more than `processes = {processes}`: every node of the pool needs at least one worker"
                        ),
                    )
                    .with_help("lower `nodes`, or raise `processes` to at least `nodes`"),
                );
            }
        }
        let initializer = p
            .initializer
            .as_ref()
            .and_then(|call| self.call(call, &path.key("initializer")));
        Pool {
            name: name.to_string(),
            processes: p
                .processes
                .and_then(|n| self.count(n, &path.key("processes"), 1, "processes"))
                .map(|n| n as usize),
            max_tasks_per_child: p
                .max_tasks_per_child
                .and_then(|n| {
                    self.count(
                        n,
                        &path.key("max_tasks_per_child"),
                        1,
                        "max_tasks_per_child",
                    )
                })
                .map(u64::from),
            initializer,
            on_failure: p.on_failure.unwrap_or_default(),
            timeout: self.duration(p.timeout.as_deref(), &path.key("timeout")),
            retries: p
                .retries
                .and_then(|n| self.count(n, &path.key("retries"), 0, "retries"))
                .unwrap_or(0),
            backend,
            slurm: SlurmOptions {
                partition: p.partition.clone(),
                nodes: p
                    .nodes
                    .and_then(|n| self.count(n, &path.key("nodes"), 1, "nodes")),
                time: p.time.clone(),
                worker_binary: p.worker_binary.as_ref().map(PathBuf::from),
            },
        }
    }

    fn call(&mut self, call: &RawCall, path: &DocPath) -> Option<Call> {
        let function =
            self.resolve_function(&call.function, &path.key("function"), "initializer")?;
        let call = Call {
            function,
            args: call.args.clone(),
            kwargs: call.kwargs.clone(),
        };
        let shape = Shape::fixed(
            call.args.len(),
            call.kwargs.keys().cloned().collect(),
            false,
        );
        self.placeholders(function, &shape, "the initializer");
        Some(call)
    }

    fn results(&mut self, raw: &RawJob) -> ResultsSpec {
        let r = raw.results.clone().unwrap_or_default();
        ResultsSpec {
            path: r.path.map(|p| self.dir.join(p)),
            format: r.format,
            order: r.order.unwrap_or_default(),
        }
    }

    fn tasks(&mut self, raw: &RawJob, pools: &[Pool]) -> Vec<Task> {
        let root = DocPath::root().key("task");
        // Ids first: tasks may refer to tasks declared after them.
        let ids: Vec<String> = raw
            .task
            .iter()
            .enumerate()
            .map(|(n, t)| match self.unreadable.tasks.get(&n) {
                Some(id) => id.clone().unwrap_or_default(),
                None => {
                    t.id.clone()
                        .unwrap_or_else(|| format!("{}-{n}", t.function))
                }
            })
            .collect();
        let mut by_id: HashMap<&str, TaskId> = HashMap::new();
        // Ids of tasks with a shape error: a reference to one is not unknown.
        let mut broken: HashSet<&str> = HashSet::new();
        for (n, id) in ids.iter().enumerate() {
            if self.unreadable.tasks.contains_key(&n) {
                broken.insert(id);
                continue; // unreadable task, already reported
            }
            let path = root.index(n);
            if id.is_empty() || id.starts_with('@') || id.contains(':') {
                self.diags.push(Diagnostic::at(
                    path.key("id"),
                    format!("task id `{id}`: expected a non-empty name without `:` and not starting with `@`"),
                ));
            }
            if let Some(first) = by_id.get(id.as_str()) {
                let at = if raw.task[n].id.is_some() {
                    path.key("id")
                } else {
                    path.clone()
                };
                self.diags.push(
                    Diagnostic::at(at, format!("duplicate task id `{id}`")).with_help(format!(
                        "`task[{}]` already has this id; give each task its own `id`",
                        first.0
                    )),
                );
            } else {
                by_id.insert(id, TaskId(n));
            }
        }
        let mut tasks = Vec::with_capacity(raw.task.len());
        let known = KnownIds { by_id, broken };
        for (n, t) in raw.task.iter().enumerate() {
            if self.unreadable.tasks.contains_key(&n) {
                tasks.push(Task::unresolved(&ids[n]));
                continue;
            }
            let path = root.index(n);
            tasks.push(self.task(t, &ids[n], &path, &known, pools));
        }
        tasks
    }

    fn task(
        &mut self,
        t: &RawTask,
        id: &str,
        path: &DocPath,
        known: &KnownIds<'_>,
        pools: &[Pool],
    ) -> Task {
        let mut task = Task::unresolved(id);
        task.mode = t.mode.unwrap_or_default();
        let resolve_id = |cx: &mut Self, name: &str, at: DocPath, what: &str| -> Option<TaskId> {
            if let Some(id) = known.by_id.get(name) {
                return Some(*id);
            }
            if known.broken.contains(name) {
                return None; // that task has an error already reported
            }
            let mut names: Vec<&str> = known.by_id.keys().copied().collect();
            names.sort_unstable();
            let mut d = Diagnostic::at(at, format!("unknown task id `{name}` in `{what}`"));
            if let Some(h) = did_you_mean(name, &names) {
                d = d.with_help(h);
            }
            cx.diags.push(d);
            None
        };
        let function = self.resolve_function(&t.function, &path.key("function"), "function");
        if let Some(name) = &t.pool {
            match pools.iter().position(|p| &p.name == name) {
                Some(i) => task.pool = PoolId(i),
                None if self.unreadable.pools.contains(name) => {}
                None => {
                    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                    self.diags.push(
                        Diagnostic::at(path.key("pool"), format!("unknown pool `{name}`"))
                            .with_help(did_you_mean(name, &names).unwrap_or_else(|| {
                                format!("declared pools: {}", backticked(&names))
                            })),
                    );
                }
            }
        }
        for (i, a) in t.after.iter().enumerate() {
            if let Some(dep) = resolve_id(self, a, path.key("after").index(i), "after") {
                task.after.push(dep);
            }
        }
        for (i, a) in t.args.iter().enumerate() {
            let at = path.key("args").index(i);
            task.args.push(match result_ref(a) {
                Some(name) => match resolve_id(self, name, at.key("result"), "result") {
                    Some(dep) => Arg::Result(dep),
                    None => Arg::Value(Value::Null),
                },
                None => Arg::Value(a.clone()),
            });
        }
        for (k, a) in &t.kwargs {
            let at = path.key("kwargs").key(k);
            task.kwargs.push((
                k.clone(),
                match result_ref(a) {
                    Some(name) => match resolve_id(self, name, at.key("result"), "result") {
                        Some(dep) => Arg::Result(dep),
                        None => Arg::Value(Value::Null),
                    },
                    None => Arg::Value(a.clone()),
                },
            ));
        }
        if let Some(map) = &t.map {
            task.map = self.map_source(map, &path.key("map"), &resolve_id);
        }
        if let Some(c) = t.chunksize {
            if let Some(c) = self.count(c, &path.key("chunksize"), 1, "chunksize") {
                task.chunksize = c as usize;
                if t.map.is_none() {
                    self.diags.push(Diagnostic::at_key(
                        path.key("chunksize"),
                        "`chunksize` applies only to a task with a `map`",
                    ));
                }
            }
        }
        task.callback = t
            .callback
            .as_ref()
            .and_then(|c| self.resolve_function(c, &path.key("callback"), "callback"));
        task.error_callback = t
            .error_callback
            .as_ref()
            .and_then(|c| self.resolve_function(c, &path.key("error_callback"), "error_callback"));
        task.inputs = self.path_patterns(&t.inputs, &path.key("inputs"));
        task.outputs = self.path_patterns(&t.outputs, &path.key("outputs"));
        let timeout = self.duration(t.timeout.as_deref(), &path.key("timeout"));
        let retries = t
            .retries
            .and_then(|r| self.count(r, &path.key("retries"), 0, "retries"));
        let Some(function) = function else {
            return task;
        };
        task.function = function;
        let f = &self.functions[function.0];
        let pool = &pools[task.pool.0.min(pools.len() - 1)];
        task.timeout = timeout.or(f.timeout).or(pool.timeout);
        task.retries = retries.or(f.retries).unwrap_or(pool.retries);
        task.env = f.env.clone();
        task.env.extend(t.env.clone().unwrap_or_default());
        task.cwd = t
            .cwd
            .as_ref()
            .map(|c| self.dir.join(c))
            .or_else(|| f.cwd.clone());
        // A map that did not check has been reported; its items' shape is
        // unknown, so the function's placeholders cannot be judged.
        if t.map.is_none() || task.map.is_some() {
            self.task_placeholders(&task, path);
        } else {
            self.callback_placeholders(&task);
        }
        task
    }

    fn map_source(
        &mut self,
        map: &RawMap,
        path: &DocPath,
        resolve_id: &dyn Fn(&mut Self, &str, DocPath, &str) -> Option<TaskId>,
    ) -> Option<MapSource> {
        Some(match map {
            RawMap::Items(items) => MapSource::Items(items.clone()),
            RawMap::Range(r) => {
                let (start, stop, step) = match r.as_slice() {
                    [start, stop] => (*start, *stop, 1),
                    [start, stop, step] => (*start, *stop, *step),
                    _ => {
                        self.diags.push(Diagnostic::at(
                            path.key("range"),
                            format!("a range has 2 or 3 numbers, [start, stop] or [start, stop, step]; found {}", r.len()),
                        ));
                        return None;
                    }
                };
                if step == 0 {
                    self.diags.push(Diagnostic::at(
                        path.key("range").index(2),
                        "a range's step must not be 0",
                    ));
                    return None;
                }
                MapSource::Range { start, stop, step }
            }
            RawMap::Lines(file) => MapSource::Lines(self.dir.join(file)),
            RawMap::Glob(pattern) => {
                if let Err(e) = glob::Pattern::new(pattern) {
                    self.diags.push(Diagnostic::at(
                        path.key("glob"),
                        format!("`{pattern}` is not a valid glob: {}", e.msg),
                    ));
                    return None;
                }
                MapSource::Glob(pattern.clone())
            }
            RawMap::Product(table) => {
                let mut axes = Vec::new();
                for (k, v) in table {
                    match v {
                        Value::Array(values) => axes.push((k.clone(), values.clone())),
                        other => {
                            self.diags.push(Diagnostic::at(
                                path.key("product").key(k),
                                format!(
                                    "`product.{k}` must be an array of values, found {}",
                                    kind_of(other)
                                ),
                            ));
                            return None;
                        }
                    }
                }
                MapSource::Product(axes)
            }
            RawMap::Result(id) => {
                MapSource::Result(resolve_id(self, id, path.key("result"), "map.result")?)
            }
            RawMap::Stream(id) => {
                MapSource::Stream(resolve_id(self, id, path.key("stream"), "map.stream")?)
            }
        })
    }

    /// Checks that every placeholder of the task's function (and callbacks)
    /// has a value, for every item of a static map.
    fn task_placeholders(&mut self, task: &Task, path: &DocPath) {
        let kwargs: Vec<String> = task.kwargs.iter().map(|(k, _)| k.clone()).collect();
        let nargs = task.args.len();
        match &task.map {
            None => {
                let shape = Shape::fixed(nargs, kwargs, false);
                self.unit_placeholders(task, path, &shape, &format!("task `{}`", task.id));
            }
            Some(MapSource::Items(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let shape = Shape::for_item(item, nargs, &kwargs);
                    let before = self.diags.len();
                    self.unit_placeholders(
                        task,
                        path,
                        &shape,
                        &format!("task `{}`, map item {i} ({})", task.id, compact(item)),
                    );
                    if self.diags.len() > before {
                        break; // one item is enough to show the problem
                    }
                }
            }
            Some(MapSource::Product(axes)) => {
                let mut names = kwargs.clone();
                names.extend(axes.iter().map(|(k, _)| k.clone()));
                let shape = Shape::fixed(nargs, names, true);
                self.unit_placeholders(task, path, &shape, &format!("task `{}`", task.id));
            }
            Some(MapSource::Range { .. } | MapSource::Lines(_) | MapSource::Glob(_)) => {
                let shape = Shape::fixed(nargs + 1, kwargs, true);
                self.unit_placeholders(task, path, &shape, &format!("task `{}`", task.id));
            }
            Some(MapSource::Result(_) | MapSource::Stream(_)) => {
                // Items are known only at run time: check what does not
                // depend on their shape.
                let shape = Shape {
                    args: None,
                    kwargs: None,
                    item: true,
                };
                self.unit_placeholders(task, path, &shape, &format!("task `{}`", task.id));
            }
        }
        self.callback_placeholders(task);
    }

    /// The placeholders a unit of `task` fills: its function's, its
    /// `inputs`' and its `outputs`'.
    fn unit_placeholders(&mut self, task: &Task, path: &DocPath, shape: &Shape, who: &str) {
        self.placeholders(task.function, shape, who);
        self.path_placeholders(task, path, shape, who);
    }

    /// Checks the placeholders of a task's callbacks: they get one arg.
    fn callback_placeholders(&mut self, task: &Task) {
        let one = Shape::fixed(1, Vec::new(), false);
        if let Some(cb) = task.callback {
            self.placeholders(cb, &one, &format!("the callback of task `{}`", task.id));
        }
        if let Some(cb) = task.error_callback {
            self.placeholders(
                cb,
                &one,
                &format!("the error callback of task `{}`", task.id),
            );
        }
    }

    /// `inputs` or `outputs`: each a glob that may hold placeholders.
    fn path_patterns(&mut self, patterns: &[String], path: &DocPath) -> Vec<Template> {
        let mut out = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            let at = path.index(i);
            match Template::parse(pattern) {
                Ok(t) => {
                    // The literal text is the glob; placeholders are filled
                    // with escaped values, so they never add wildcards.
                    let literal: String = t
                        .parts()
                        .iter()
                        .map(|p| match p {
                            Part::Literal(s) => s.clone(),
                            _ => "x".to_string(),
                        })
                        .collect();
                    if let Err(e) = glob::Pattern::new(&literal) {
                        self.diags.push(Diagnostic::at(
                            at,
                            format!("`{pattern}` is not a valid glob: {}", e.msg),
                        ));
                    }
                    out.push(t);
                }
                Err(e) => {
                    self.diags.push(
                        Diagnostic::at(at, e.message)
                            .with_label(format!("at character {}", e.offset + 1)),
                    );
                    out.push(Template::empty());
                }
            }
        }
        out
    }

    /// Checks a task's `inputs` and `outputs` against what its units provide.
    fn path_placeholders(&mut self, task: &Task, path: &DocPath, shape: &Shape, who: &str) {
        for (key, templates) in [("inputs", &task.inputs), ("outputs", &task.outputs)] {
            let mut found = Vec::new();
            for (i, t) in templates.iter().enumerate() {
                for part in t.parts() {
                    if let Some(m) = missing_value(part, shape, who, &self.vars) {
                        if !found.contains(&(i, m.clone())) {
                            found.push((i, m));
                        }
                    }
                }
            }
            for (i, (placeholder, why)) in found {
                self.diags.push(
                    Diagnostic::at(
                        path.key(key).index(i),
                        format!("placeholder `{placeholder}` has no value in `{key}` of {who}"),
                    )
                    .with_help(why),
                );
            }
        }
    }

    /// Checks a command function's templates against what a call provides.
    fn placeholders(&mut self, function: FunctionId, shape: &Shape, who: &str) {
        let f = &self.functions[function.0];
        let FunctionKind::Command(templates) = &f.kind else {
            return;
        };
        let fpath = DocPath::root().key("functions").key(&f.name).key("command");
        let mut found = Vec::new();
        for (i, t) in templates.iter().enumerate() {
            for part in t.parts() {
                let missing = missing_value(part, shape, who, &self.vars);
                if let Some(m) = missing {
                    if !found.contains(&(i, m.clone())) {
                        found.push((i, m));
                    }
                }
            }
        }
        for (i, (placeholder, why)) in found {
            let d = Diagnostic::at(
                fpath.index(i),
                format!("placeholder `{placeholder}` has no value in {who}"),
            )
            .with_help(why);
            self.diags.push(d);
        }
    }
}

/// A placeholder `part` has no value in a call of `shape`: the placeholder
/// as written and why.
fn missing_value(
    part: &Part,
    shape: &Shape,
    who: &str,
    vars: &BTreeMap<String, String>,
) -> Option<(String, String)> {
    match part {
        Part::Literal(_) => None,
        Part::Positional(p) => match shape.args {
            Some(n) if *p >= n => Some((
                format!("{{{p}}}"),
                format!(
                    "{who} passes {n} positional arg{}",
                    if n == 1 { "" } else { "s" }
                ),
            )),
            _ => None,
        },
        Part::Keyword(k) => match &shape.kwargs {
            Some(names) if !names.contains(k) => Some((
                format!("{{{k}}}"),
                if names.is_empty() {
                    format!("{who} passes no kwargs")
                } else {
                    let n: Vec<&str> = names.iter().map(String::as_str).collect();
                    format!("{who} passes the kwargs {}", backticked(&n))
                },
            )),
            _ => None,
        },
        Part::Item(field) if !shape.item => Some((
            format!("{{{}}}", field.placeholder()),
            format!("{who} has no `map`, so there is no item"),
        )),
        Part::Item(ItemField::Whole | _) => None,
        Part::Var(v) if !vars.contains_key(v) => Some((
            format!("{{vars.{v}}}"),
            "`[vars]` does not declare it".into(),
        )),
        Part::Var(_) => None,
    }
}

/// The task ids a reference may name.
struct KnownIds<'a> {
    by_id: HashMap<&'a str, TaskId>,
    /// Ids of tasks that could not be read.
    broken: HashSet<&'a str>,
}

/// What a call provides to a template: `None` when unknown until run time.
struct Shape {
    args: Option<usize>,
    kwargs: Option<Vec<String>>,
    item: bool,
}

impl Shape {
    fn fixed(args: usize, kwargs: Vec<String>, item: bool) -> Shape {
        Shape {
            args: Some(args),
            kwargs: Some(kwargs),
            item,
        }
    }

    /// A map item: an array is the positional args, a table the kwargs,
    /// anything else `{0}` and `{item}`; the task's own args follow.
    fn for_item(item: &Value, nargs: usize, kwargs: &[String]) -> Shape {
        match item {
            Value::Array(a) => Shape::fixed(a.len() + nargs, kwargs.to_vec(), true),
            Value::Object(o) => {
                let mut names = kwargs.to_vec();
                names.extend(o.keys().cloned());
                Shape::fixed(nargs, names, true)
            }
            _ => Shape::fixed(1 + nargs, kwargs.to_vec(), true),
        }
    }
}

/// `{ result = "ID" }` as an argument.
fn result_ref(v: &Value) -> Option<&str> {
    match v {
        Value::Object(o) if o.len() == 1 => o.get("result")?.as_str(),
        _ => None,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(37).collect::<String>())
    } else {
        s
    }
}

fn cycle_diagnostic(job: &Job, cycle: &[TaskId]) -> Diagnostic {
    let names: Vec<String> = cycle
        .iter()
        .map(|t| format!("`{}`", job.task(*t).id))
        .collect();
    let first = cycle[0];
    let message = if cycle.len() == 1 {
        format!("task `{}` depends on itself", job.task(first).id)
    } else {
        format!("dependency cycle: {} -> {}", names.join(" -> "), names[0])
    };
    let path = DocPath::root().key("task").index(first.0);
    let task = job.task(first);
    let at = if !task.after.is_empty() {
        path.key("after")
    } else {
        path
    };
    Diagnostic::at(at, message).with_help(
        "a task cannot wait, through `after`, results, streams or a blocking task, for itself",
    )
}

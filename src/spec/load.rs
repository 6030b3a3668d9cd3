//! From TOML text to [`RawJob`], collecting every shape error.
//!
//! The TOML tree ([`super::toml_tree`]) is walked against the shape of the
//! `Raw*` types: each key is read on its own, so every wrong key of a
//! table is reported, each at its own value, in words of our own
//! (`pool.processes: expected an integer, found a string "4"`), with a
//! `help:` for the usual slips (`command = "echo hi"`). The walk knows the
//! types' keys by name; the names for "did you mean" and the variants of
//! an enum are taken from the JSON Schema the same types generate, so the
//! two cannot drift apart (a unit test reads every schema key back).
//!
//! Each `[[task]]` is read as soon as the parser hands it over, so a file
//! of many tasks is never held as a tree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::de::value::{Error as PlainError, StrDeserializer};
use serde_json::{Map, Number, Value as Json};

use super::check::default_task_id;
use super::diagnostic::Diagnostic;
use super::job::{Arg, Task};
use super::map_source::{MAP_SOURCES, RawMap};
use super::raw::{
    Mode, RawCall, RawFunction, RawJob, RawPool, RawPython, RawResults, RawTask, TOP_LEVEL_KEYS,
};
use super::suggest::did_you_mean;
use super::toml_tree::{self, Entry, Item, Table, Value};

/// What could be read of a document.
pub struct Loaded {
    /// Whether the text is valid TOML.
    pub parsed: bool,
    /// Everything but the tasks (`raw.task` is left empty).
    pub raw: RawJob,
    /// The tasks, each made a [`Task`] as soon as it was read.
    pub tasks: LoadedTasks,
    /// Whether `version` was present (a missing one is reported here).
    pub has_version: bool,
    /// The parts that were present but could not be read (already reported).
    pub unreadable: Unreadable,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parts of the file that exist but had a shape error, so that the checker
/// neither reports them twice nor calls a reference to them unknown.
#[derive(Debug, Clone, Default)]
pub struct Unreadable {
    /// `version` is there but is not an integer.
    pub version: bool,
    /// `[functions.NAME]` entries that could not be read.
    pub functions: HashSet<String>,
    /// `[pools.NAME]` entries (and `default` for `[pool]`) that could not be read.
    pub pools: HashSet<String>,
    /// Indexes of `[[task]]` tables that could not be read, with their `id`
    /// when it is a string.
    pub tasks: HashMap<usize, Option<String>>,
}

/// The tasks as the loader hands them on. Each is a [`Task`] as soon as
/// it is read, with its id and its args (a `{ result = "ID" }` arg still a
/// plain value: ids may name tasks further on), so that a file of many
/// tasks never holds them all as read; the checker finishes them, with
/// what [`Pending`] keeps of the file.
#[derive(Debug, Default)]
pub struct LoadedTasks {
    /// In file order; a task that could not be read stands in with only
    /// its id (or an empty one).
    pub tasks: Vec<Task>,
    /// What the checker still needs of each task, in the same order.
    pub pending: Vec<Pending>,
    /// The function names the tasks give, each once.
    pub function_names: Vec<String>,
    name_index: HashMap<String, u32>,
}

/// What the checker still needs of a task as written.
#[derive(Debug)]
pub struct Pending {
    /// Its function's name, an index in [`LoadedTasks::function_names`]
    /// (`u32::MAX` for a task that could not be read).
    pub function: u32,
    /// Whether it has an `id` of its own.
    pub has_id: bool,
    /// The keys it has beyond `id`, `function` and `args`, if any: only
    /// those it has (a whole [`RawTask`] is 480 bytes).
    pub rest: Option<Box<[RawKey]>>,
}

impl Pending {
    /// The task as written, without its `id`, `function` and `args`
    /// (`None` when it has nothing else).
    pub fn take_raw(&mut self) -> Option<RawTask> {
        let keys = self.rest.take()?;
        let mut t = RawTask::default();
        for key in keys {
            match key {
                RawKey::Kwargs(v) => t.kwargs = *v,
                RawKey::Mode(v) => t.mode = Some(v),
                RawKey::After(v) => t.after = v,
                RawKey::Map(v) => t.map = Some(*v),
                RawKey::Chunksize(v) => t.chunksize = Some(v),
                RawKey::Inputs(v) => t.inputs = v,
                RawKey::Outputs(v) => t.outputs = v,
                RawKey::Pool(v) => t.pool = Some(v),
                RawKey::Callback(v) => t.callback = Some(v),
                RawKey::ErrorCallback(v) => t.error_callback = Some(v),
                RawKey::Timeout(v) => t.timeout = Some(v),
                RawKey::Retries(v) => t.retries = Some(v),
                RawKey::Env(v) => t.env = Some(v),
                RawKey::Cwd(v) => t.cwd = Some(v),
            }
        }
        Some(t)
    }
}

/// One key of a task as written, beyond `id`, `function` and `args`, kept
/// until the checker finishes the task (32 bytes; the big ones boxed).
#[derive(Debug)]
pub enum RawKey {
    Kwargs(Box<Map<String, Json>>),
    Mode(Mode),
    After(Vec<String>),
    Map(Box<RawMap>),
    Chunksize(i64),
    Inputs(Vec<String>),
    Outputs(Vec<String>),
    Pool(String),
    Callback(String),
    ErrorCallback(String),
    Timeout(String),
    Retries(i64),
    Env(BTreeMap<String, String>),
    Cwd(String),
}

/// The keys `t` has (its `id`, `function` and `args` aside).
fn keys_of(t: RawTask) -> Vec<RawKey> {
    let mut keys = Vec::new();
    let mut put = |key: Option<RawKey>| keys.extend(key);
    put((!t.kwargs.is_empty()).then(|| RawKey::Kwargs(Box::new(t.kwargs))));
    put(t.mode.map(RawKey::Mode));
    put((!t.after.is_empty()).then_some(RawKey::After(t.after)));
    put(t.map.map(|m| RawKey::Map(Box::new(m))));
    put(t.chunksize.map(RawKey::Chunksize));
    put((!t.inputs.is_empty()).then_some(RawKey::Inputs(t.inputs)));
    put((!t.outputs.is_empty()).then_some(RawKey::Outputs(t.outputs)));
    put(t.pool.map(RawKey::Pool));
    put(t.callback.map(RawKey::Callback));
    put(t.error_callback.map(RawKey::ErrorCallback));
    put(t.timeout.map(RawKey::Timeout));
    put(t.retries.map(RawKey::Retries));
    put(t.env.map(RawKey::Env));
    put(t.cwd.map(RawKey::Cwd));
    keys
}

impl LoadedTasks {
    /// Room for `n` tasks, if the memory is there (else they grow as usual).
    fn reserve(&mut self, n: usize) {
        let _ = self.tasks.try_reserve_exact(n);
        let _ = self.pending.try_reserve_exact(n);
    }

    /// Task `n`, read whole; `rare`: whether it has keys beyond `id`,
    /// `function` and `args`.
    fn push(&mut self, n: usize, mut raw: RawTask, rare: bool) {
        let name = std::mem::take(&mut raw.function);
        let function = match self.name_index.get(name.as_str()) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.function_names.len()).unwrap_or(u32::MAX - 1);
                self.function_names.push(name.clone());
                self.name_index.insert(name, i);
                i
            }
        };
        let has_id = raw.id.is_some();
        let id = raw
            .id
            .take()
            .unwrap_or_else(|| default_task_id(&self.function_names[function as usize], n));
        let mut task = Task::unresolved(id);
        // In place: an `Arg` is the size of the value it wraps.
        task.args = std::mem::take(&mut raw.args)
            .into_iter()
            .map(Arg::Value)
            .collect();
        self.tasks.push(task);
        self.pending.push(Pending {
            function,
            has_id,
            rest: rare.then(|| keys_of(raw).into_boxed_slice()),
        });
    }

    /// Task `n` could not be read: it keeps its place, with `id`.
    fn push_unreadable(&mut self, id: Option<String>) {
        self.tasks.push(Task::unresolved(id.unwrap_or_default()));
        self.pending.push(Pending {
            function: u32::MAX,
            has_id: false,
            rest: None,
        });
    }
}

/// Parses `source` and reads every part it can.
pub fn load(source: &str) -> Loaded {
    let mut reader = Reader {
        source,
        diagnostics: Vec::new(),
    };
    let mut tasks = LoadedTasks::default();
    // One allocation for the tasks: a header per task is the usual shape.
    // (A count inflated by headers in strings or comments only costs
    // address space; if even that is refused, the vector grows as usual.)
    tasks.reserve(source.matches("[[task]]").count());
    let mut unreadable = Unreadable::default();
    let task_root = At::Key(&At::Root, "task");
    let parsed = {
        let mut on_task = |i: usize, item: Item<'_>| {
            reader.task_into(&task_root, i, &item, &mut tasks, &mut unreadable.tasks);
        };
        toml_tree::parse(source, Some(&mut on_task))
    };
    let root = match parsed {
        Ok(root) => root,
        Err(e) => {
            return Loaded {
                parsed: false,
                raw: RawJob::default(),
                tasks: LoadedTasks::default(),
                has_version: false,
                unreadable: Unreadable::default(),
                diagnostics: vec![Diagnostic::at_span(
                    e.span,
                    format!("invalid TOML: {}", e.message),
                )],
            };
        }
    };
    let mut raw = RawJob::default();
    let mut has_version = false;
    for (key, entry) in &root.entries {
        let at = At::Key(&At::Root, key);
        let item = &entry.item;
        let r = &mut reader;
        match key.as_ref() {
            "version" => {
                has_version = true;
                match r.integer(&at, item) {
                    Some(v) => raw.version = v,
                    None => unreadable.version = true,
                }
            }
            "name" => raw.name = r.string(&at, item),
            "vars" => raw.vars = r.json_table(&at, item).unwrap_or_default(),
            "shared" => raw.shared = r.json_table(&at, item).unwrap_or_default(),
            "pool" => {
                raw.pool = r.pool(&at, item);
                if raw.pool.is_none() {
                    unreadable.pools.insert("default".into());
                }
            }
            "results" => raw.results = r.results(&at, item),
            "python" => raw.python = r.python(&at, item),
            "pools" => raw.pools = r.named(&at, item, &mut unreadable.pools, Reader::pool),
            "functions" => {
                raw.functions = r.named(&at, item, &mut unreadable.functions, Reader::function);
            }
            "task" => match &item.value {
                // Read as the parser handed them over.
                Value::Array(a) if a.of_tables => {}
                Value::Array(a) => {
                    tasks.reserve(a.items.len());
                    for (i, t) in a.items.iter().enumerate() {
                        r.task_into(&at, i, t, &mut tasks, &mut unreadable.tasks);
                    }
                }
                _ => r.push(
                    Diagnostic::at_span(
                        item.span.clone(),
                        format!("task: expected an array of tables, found {}", r.found(item)),
                    )
                    .with_help("declare each task with a `[[task]]` header"),
                ),
            },
            other => {
                r.push(unknown_key(
                    entry,
                    format!("unknown key `{other}` at the top level of the job file"),
                    other,
                    TOP_LEVEL_KEYS,
                ));
            }
        }
    }
    if !has_version {
        reader.push(
            Diagnostic::at_file("missing `version`: a job file starts with `version = 1`")
                .with_help("add `version = 1` at the top of the file"),
        );
    }
    Loaded {
        parsed: true,
        raw,
        tasks,
        has_version,
        unreadable,
        diagnostics: reader.diagnostics,
    }
}

/// A place in the file, for messages (`task[2].retries`): built on the
/// stack as the walk goes down, written out only for an error.
#[derive(Clone, Copy)]
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    /// The last key of the path, if it ends with one.
    fn key(&self) -> Option<&str> {
        match self {
            At::Key(_, k) => Some(k),
            _ => None,
        }
    }

    /// Whether this is `NAME.KEY` for a top-level `NAME`.
    fn is_in_top_level(&self, name: &str) -> bool {
        matches!(self, At::Key(At::Key(At::Root, n), _) if *n == name)
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Root => f.write_str("the top level"),
            At::Key(At::Root, k) => f.write_str(k),
            At::Key(parent, k) => write!(f, "{parent}.{k}"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// The walk: reads values of the expected shapes, records a diagnostic for
/// each one that is not, and gives `None` for it.
struct Reader<'s> {
    source: &'s str,
    diagnostics: Vec<Diagnostic>,
}

/// Stores a read value; whether it could be read.
fn set<T>(slot: &mut T, value: Option<T>) -> bool {
    match value {
        Some(v) => {
            *slot = v;
            true
        }
        None => false,
    }
}

/// Stores a read optional value; whether it could be read.
fn set_some<T>(slot: &mut Option<T>, value: Option<T>) -> bool {
    let ok = value.is_some();
    *slot = value;
    ok
}

impl<'s> Reader<'s> {
    fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    /// The value as written in the file.
    fn written(&self, item: &Item<'_>) -> &'s str {
        self.source.get(item.span.clone()).unwrap_or("")
    }

    /// "a string "4"", "an integer 3", "an array"...
    fn found(&self, item: &Item<'_>) -> String {
        let kind = item.value.kind();
        match &item.value {
            Value::Array(_) | Value::Table(_) => kind.to_string(),
            _ => {
                let text = self.written(item);
                if text.chars().count() > 40 || text.contains('\n') {
                    kind.to_string()
                } else {
                    format!("{kind} {text}")
                }
            }
        }
    }

    /// Records "`at`: expected X, found Y", with a help line for the usual
    /// slips.
    fn wrong(&mut self, at: &At<'_>, item: &Item<'_>, expected: &str) {
        let mut d = Diagnostic::at_span(
            item.span.clone(),
            format!("{at}: expected {expected}, found {}", self.found(item)),
        );
        if let Some(help) = self.hint(at, item, expected) {
            d = d.with_help(help);
        }
        self.push(d);
    }

    /// A help line for a value of the wrong shape, when a likely fix is known.
    fn hint(&self, at: &At<'_>, item: &Item<'_>, expected: &str) -> Option<String> {
        let key = at.key().unwrap_or("");
        let written = self.written(item);
        match (&item.value, expected) {
            (_, "a table") if at.is_in_top_level("pools") => Some(format!(
                "each named pool is a table of its own, `[pools.NAME]`; the default pool \
                 is `[pool]`, where `{key}` would go"
            )),
            (_, "a table") if at.is_in_top_level("functions") => Some(format!(
                "each function is a table of its own: `[functions.NAME]`, with `{key}` in it"
            )),
            (Value::String(s), _) if key == "command" => {
                let words: Vec<String> = s
                    .split_whitespace()
                    .map(|w| Json::String(w.to_string()).to_string())
                    .collect();
                Some(format!(
                    "`command` is the program and its arguments, one string each: write \
                     `command = [{}]`, or use `shell = {written}` for a shell script",
                    words.join(", ")
                ))
            }
            (Value::Array(_), _) if key == "shell" => Some(
                "`shell` is one script for `/bin/sh -c`: write it as one string, or use \
                 `command = [...]` for the program and its arguments"
                    .into(),
            ),
            (Value::String(_), "a table") if key == "initializer" => Some(format!(
                "an initializer is a call: write `initializer = {{ function = {written} }}`, \
                 with `args = [...]` if it takes any"
            )),
            (Value::Integer(n), "an array of integers") if key == "range" => Some(format!(
                "a range is `[start, stop]` or `[start, stop, step]`: write `range = [0, {n}]`"
            )),
            (Value::Array(_) | Value::Table(_), _) => match (key, &item.value) {
                ("args", Value::Table(t)) if t.get("result").is_some() => Some(format!(
                    "`args` is an array, even of one result: write `args = [{written}]`"
                )),
                ("args", Value::Table(_)) => Some(
                    "`args` are positional: an array; named arguments go in \
                     `kwargs = { name = value }`"
                        .into(),
                ),
                ("kwargs", Value::Array(_)) => Some(
                    "`kwargs` are named: a table, like `kwargs = { name = value }`; \
                     positional ones go in `args = [...]`"
                        .into(),
                ),
                ("env", _) => {
                    Some("`env` is a table of strings: write `env = { NAME = \"value\" }`".into())
                }
                _ => None,
            },
            (_, e) if e.starts_with("an array") => Some(format!(
                "write `{key} = [{written}]`: an array, even of one"
            )),
            (Value::String(s), "an integer") if s.trim().parse::<i64>().is_ok() => {
                Some(format!("write `{key} = {}`, without quotes", s.trim()))
            }
            (Value::Integer(n), e) if e.starts_with("a duration") => Some(format!(
                "durations are strings with a unit: write `{key} = \"{n}s\"`"
            )),
            (Value::Float(f), e) if e.starts_with("a duration") && f.is_finite() => Some(format!(
                "durations are strings with a unit: write `{key} = \"{}ms\"`",
                (f * 1000.0).round()
            )),
            (Value::Integer(_) | Value::Float(_) | Value::Boolean(_), "a string") => {
                Some(format!("write `{key} = \"{written}\"`, in quotes"))
            }
            _ => None,
        }
    }

    /// Records an unknown key of `table` (at `at`), with "did you mean"
    /// among the keys of `T`'s schema.
    fn unknown<T: JsonSchema>(&mut self, at: &At<'_>, key: &str, entry: &Entry<'_>) {
        let known = schema_keys::<T>();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let d = unknown_key(entry, format!("unknown key `{key}` in `{at}`"), key, &known);
        self.push(d);
    }

    /// Records a missing required key of the table at `at`.
    fn missing(&mut self, at: &At<'_>, table: &Item<'_>, key: &str) {
        self.push(
            Diagnostic::at_span(table.span.clone(), format!("missing `{key}` in `{at}`"))
                .with_help(format!("add `{key} = ...` to this table")),
        );
    }

    fn string(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<String> {
        match &item.value {
            Value::String(s) => Some(s.to_string()),
            _ => {
                self.wrong(at, item, "a string");
                None
            }
        }
    }

    /// A duration is a string; the checker parses it.
    fn duration(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<String> {
        match &item.value {
            Value::String(s) => Some(s.to_string()),
            _ => {
                self.wrong(at, item, "a duration string such as \"30s\"");
                None
            }
        }
    }

    fn integer(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<i64> {
        match item.value {
            Value::Integer(i) => Some(i),
            _ => {
                self.wrong(at, item, "an integer");
                None
            }
        }
    }

    fn table<'t, 'v>(&mut self, at: &At<'_>, item: &'t Item<'v>) -> Option<&'t Table<'v>> {
        match &item.value {
            Value::Table(t) => Some(t),
            _ => {
                self.wrong(at, item, "a table");
                None
            }
        }
    }

    fn strings(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<Vec<String>> {
        self.array_of(at, item, "an array of strings", "a string", |v| match v {
            Value::String(s) => Some(s.to_string()),
            _ => None,
        })
    }

    fn integers(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<Vec<i64>> {
        self.array_of(
            at,
            item,
            "an array of integers",
            "an integer",
            |v| match v {
                Value::Integer(n) => Some(*n),
                _ => None,
            },
        )
    }

    /// An array whose every element `element` reads; each one it cannot
    /// read is reported at its own place, as `one` expected.
    fn array_of<T>(
        &mut self,
        at: &At<'_>,
        item: &Item<'_>,
        expected: &str,
        one: &str,
        element: impl Fn(&Value<'_>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Value::Array(a) = &item.value else {
            self.wrong(at, item, expected);
            return None;
        };
        let mut out = Vec::with_capacity(a.items.len());
        let mut ok = true;
        for (i, x) in a.items.iter().enumerate() {
            match element(&x.value) {
                Some(v) => out.push(v),
                None => {
                    self.wrong(&At::Index(at, i), x, one);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// `env`: a table of strings.
    fn env(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<BTreeMap<String, String>> {
        let Value::Table(t) = &item.value else {
            self.wrong(at, item, "a table of strings");
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (k, e) in &t.entries {
            match self.string(&At::Key(at, k), &e.item) {
                Some(v) => {
                    out.insert(k.to_string(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Any value, as JSON (args, kwargs, vars, shared values, map items).
    fn json(item: &Item<'_>) -> Json {
        match &item.value {
            Value::String(s) => Json::String(s.to_string()),
            Value::Integer(i) => Json::Number((*i).into()),
            Value::Float(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Value::Boolean(b) => Json::Bool(*b),
            Value::Datetime(d) => Json::String(d.clone()),
            Value::Array(a) => Json::Array(a.items.iter().map(Reader::json).collect()),
            Value::Table(t) => Json::Object(Reader::json_entries(t)),
        }
    }

    fn json_entries(t: &Table<'_>) -> Map<String, Json> {
        t.entries
            .iter()
            .map(|(k, e)| (k.to_string(), Reader::json(&e.item)))
            .collect()
    }

    fn json_array(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<Vec<Json>> {
        match &item.value {
            Value::Array(a) => Some(a.items.iter().map(Reader::json).collect()),
            _ => {
                self.wrong(at, item, "an array");
                None
            }
        }
    }

    fn json_table(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<Map<String, Json>> {
        self.table(at, item).map(Reader::json_entries)
    }

    /// One of the lowercase variants of `T` (as its schema lists them).
    fn variant<T: DeserializeOwned + JsonSchema>(
        &mut self,
        at: &At<'_>,
        item: &Item<'_>,
    ) -> Option<T> {
        let names = || schema_variants::<T>();
        let Value::String(s) = &item.value else {
            let names = names();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            self.wrong(at, item, &format!("one of {}", backticked(&names)));
            return None;
        };
        // A unit variant deserializes from its name alone; the error says
        // nothing we need, only that the name is not one of them.
        if let Ok(v) = T::deserialize(StrDeserializer::<PlainError>::new(s)) {
            return Some(v);
        }
        let names = names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut d = Diagnostic::at_span(
            item.span.clone(),
            format!(
                "{at}: expected {}, found {}",
                backticked(&names),
                self.written(item)
            ),
        );
        let help = match (at.key(), s.as_ref()) {
            // Python's words for the two modes.
            (Some("mode"), "sync" | "apply" | "synchronous") => {
                Some("`blocking` is the mode of `apply`: later tasks wait for this one".to_string())
            }
            (Some("mode"), "apply_async") => {
                Some("`async` is the mode of `apply_async` (the default)".to_string())
            }
            _ => did_you_mean(s, &names),
        };
        if let Some(help) = help {
            d = d.with_help(help);
        }
        self.push(d);
        None
    }

    /// `[pools.NAME]` or `[functions.NAME]`: each entry on its own.
    fn named<T>(
        &mut self,
        at: &At<'_>,
        item: &Item<'_>,
        unreadable: &mut HashSet<String>,
        read: fn(&mut Self, &At<'_>, &Item<'_>) -> Option<T>,
    ) -> BTreeMap<String, T> {
        let mut out = BTreeMap::new();
        let Value::Table(t) = &item.value else {
            self.wrong(at, item, "a table of named entries");
            return out;
        };
        for (name, e) in &t.entries {
            match read(self, &At::Key(at, name), &e.item) {
                Some(v) => {
                    out.insert(name.to_string(), v);
                }
                None => {
                    unreadable.insert(name.to_string());
                }
            }
        }
        out
    }

    fn pool(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<RawPool> {
        let t = self.table(at, item)?;
        let mut p = RawPool::default();
        let mut ok = true;
        for (key, e) in &t.entries {
            let k = At::Key(at, key);
            let v = &e.item;
            ok &= match key.as_ref() {
                "processes" => set_some(&mut p.processes, self.integer(&k, v)),
                "max_tasks_per_child" => set_some(&mut p.max_tasks_per_child, self.integer(&k, v)),
                "initializer" => set_some(&mut p.initializer, self.call(&k, v)),
                "on_failure" => set_some(&mut p.on_failure, self.variant(&k, v)),
                "timeout" => set_some(&mut p.timeout, self.duration(&k, v)),
                "retries" => set_some(&mut p.retries, self.integer(&k, v)),
                "backend" => set_some(&mut p.backend, self.variant(&k, v)),
                "partition" => set_some(&mut p.partition, self.string(&k, v)),
                "nodes" => set_some(&mut p.nodes, self.integer(&k, v)),
                "time" => set_some(&mut p.time, self.string(&k, v)),
                "worker_binary" => set_some(&mut p.worker_binary, self.string(&k, v)),
                _ => {
                    self.unknown::<RawPool>(at, key, e);
                    false
                }
            };
        }
        ok.then_some(p)
    }

    fn call(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<RawCall> {
        let t = self.table(at, item)?;
        let mut c = RawCall::default();
        let mut ok = true;
        let mut has_function = false;
        for (key, e) in &t.entries {
            let k = At::Key(at, key);
            let v = &e.item;
            ok &= match key.as_ref() {
                "function" => {
                    has_function = true;
                    set(&mut c.function, self.string(&k, v))
                }
                "args" => set(&mut c.args, self.json_array(&k, v)),
                "kwargs" => set(&mut c.kwargs, self.json_table(&k, v)),
                _ => {
                    self.unknown::<RawCall>(at, key, e);
                    false
                }
            };
        }
        if !has_function {
            self.missing(at, item, "function");
            ok = false;
        }
        ok.then_some(c)
    }

    fn results(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<RawResults> {
        let t = self.table(at, item)?;
        let mut r = RawResults::default();
        let mut ok = true;
        for (key, e) in &t.entries {
            let k = At::Key(at, key);
            let v = &e.item;
            ok &= match key.as_ref() {
                "path" => set_some(&mut r.path, self.string(&k, v)),
                "format" => set_some(&mut r.format, self.variant(&k, v)),
                "order" => set_some(&mut r.order, self.variant(&k, v)),
                _ => {
                    self.unknown::<RawResults>(at, key, e);
                    false
                }
            };
        }
        ok.then_some(r)
    }

    fn python(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<RawPython> {
        let t = self.table(at, item)?;
        let mut p = RawPython::default();
        let mut ok = true;
        for (key, e) in &t.entries {
            let k = At::Key(at, key);
            let v = &e.item;
            ok &= match key.as_ref() {
                "interpreter" => set_some(&mut p.interpreter, self.string(&k, v)),
                "path" => set_some(&mut p.path, self.strings(&k, v)),
                _ => {
                    self.unknown::<RawPython>(at, key, e);
                    false
                }
            };
        }
        ok.then_some(p)
    }

    fn function(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<RawFunction> {
        let t = self.table(at, item)?;
        let mut f = RawFunction::default();
        let mut ok = true;
        for (key, e) in &t.entries {
            let k = At::Key(at, key);
            let v = &e.item;
            ok &= match key.as_ref() {
                "command" => set_some(&mut f.command, self.strings(&k, v)),
                "shell" => set_some(&mut f.shell, self.string(&k, v)),
                "builtin" => set_some(&mut f.builtin, self.string(&k, v)),
                "python" => set_some(&mut f.python, self.string(&k, v)),
                "returns" => set_some(&mut f.returns, self.variant(&k, v)),
                "timeout" => set_some(&mut f.timeout, self.duration(&k, v)),
                "retries" => set_some(&mut f.retries, self.integer(&k, v)),
                "env" => set_some(&mut f.env, self.env(&k, v)),
                "cwd" => set_some(&mut f.cwd, self.string(&k, v)),
                _ => {
                    self.unknown::<RawFunction>(at, key, e);
                    false
                }
            };
        }
        ok.then_some(f)
    }

    /// Reads task `i` and appends it to `tasks`; a task with an error is a
    /// placeholder (so that positions stay those of the file) and is noted
    /// in `unreadable`, with its id when it has one.
    fn task_into(
        &mut self,
        parent: &At<'_>,
        i: usize,
        item: &Item<'_>,
        tasks: &mut LoadedTasks,
        unreadable: &mut HashMap<usize, Option<String>>,
    ) {
        let at = At::Index(parent, i);
        match self.task(&at, item) {
            Some((t, rare)) => tasks.push(i, t, rare),
            None => {
                let id = match &item.value {
                    Value::Table(t) => {
                        let text = |k: &str| match t.get(k).map(|e| &e.item.value) {
                            Some(Value::String(s)) => Some(s.to_string()),
                            _ => None,
                        };
                        text("id").or_else(|| text("function").map(|f| default_task_id(&f, i)))
                    }
                    _ => None,
                };
                unreadable.insert(i, id.clone());
                tasks.push_unreadable(id);
            }
        }
    }

    /// A task as written, and whether it has keys beyond `id`, `function`
    /// and `args`.
    fn task(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<(RawTask, bool)> {
        let t = self.table(at, item)?;
        let mut task = RawTask::default();
        let mut ok = true;
        let mut has_function = false;
        let mut rare = false;
        for (key, e) in &t.entries {
            let k = At::Key(at, key);
            let v = &e.item;
            rare |= !matches!(key.as_ref(), "id" | "function" | "args");
            ok &= match key.as_ref() {
                "id" => set_some(&mut task.id, self.string(&k, v)),
                "function" => {
                    has_function = true;
                    set(&mut task.function, self.string(&k, v))
                }
                "args" => set(&mut task.args, self.json_array(&k, v)),
                "kwargs" => set(&mut task.kwargs, self.json_table(&k, v)),
                "mode" => set_some(&mut task.mode, self.variant(&k, v)),
                "after" => set(&mut task.after, self.strings(&k, v)),
                "map" => set_some(&mut task.map, self.map(&k, v)),
                "chunksize" => set_some(&mut task.chunksize, self.integer(&k, v)),
                "inputs" => set(&mut task.inputs, self.strings(&k, v)),
                "outputs" => set(&mut task.outputs, self.strings(&k, v)),
                "pool" => set_some(&mut task.pool, self.string(&k, v)),
                "callback" => set_some(&mut task.callback, self.string(&k, v)),
                "error_callback" => set_some(&mut task.error_callback, self.string(&k, v)),
                "timeout" => set_some(&mut task.timeout, self.duration(&k, v)),
                "retries" => set_some(&mut task.retries, self.integer(&k, v)),
                "env" => set_some(&mut task.env, self.env(&k, v)),
                "cwd" => set_some(&mut task.cwd, self.string(&k, v)),
                _ => {
                    self.unknown::<RawTask>(at, key, e);
                    false
                }
            };
        }
        if !has_function {
            self.missing(at, item, "function");
            ok = false;
        }
        ok.then_some((task, rare))
    }

    /// `map`: the items, or a table naming exactly one source.
    fn map(&mut self, at: &At<'_>, item: &Item<'_>) -> Option<RawMap> {
        let t = match &item.value {
            Value::Array(a) => {
                return Some(RawMap::Items(a.items.iter().map(Reader::json).collect()));
            }
            Value::Table(t) => t,
            _ => {
                let mut d = Diagnostic::at_span(
                    item.span.clone(),
                    format!(
                        "{at}: expected an array of items or a table with one of {}, found {}",
                        backticked(MAP_SOURCES),
                        self.found(item)
                    ),
                );
                if let Value::String(_) = item.value {
                    let w = self.written(item);
                    d = d.with_help(format!(
                        "write `map = [{w}]` for one item, `map = {{ glob = {w} }}` for the \
                         files it matches, or `map = {{ lines = {w} }}` for the lines of a file"
                    ));
                }
                self.push(d);
                return None;
            }
        };
        let mut entries = t.entries.iter();
        let Some((key, e)) = entries.next() else {
            self.push(Diagnostic::at_span(
                item.span.clone(),
                format!(
                    "{at}: an empty map table: expected one of {}",
                    backticked(MAP_SOURCES)
                ),
            ));
            return None;
        };
        if let Some((extra, e2)) = entries.next() {
            self.push(Diagnostic::at_span(
                e2.key_span.clone(),
                format!("{at}: a map takes exactly one source, found `{key}` and `{extra}`"),
            ));
            return None;
        }
        let k = At::Key(at, key);
        let v = &e.item;
        match key.as_ref() {
            "range" => self.integers(&k, v).map(RawMap::Range),
            "lines" => self.string(&k, v).map(RawMap::Lines),
            "glob" => self.string(&k, v).map(RawMap::Glob),
            "product" => self.json_table(&k, v).map(RawMap::Product),
            "result" => self.string(&k, v).map(RawMap::Result),
            "stream" => self.string(&k, v).map(RawMap::Stream),
            other => {
                self.push(unknown_key(
                    e,
                    format!("unknown map source `{other}` in `{at}`"),
                    other,
                    MAP_SOURCES,
                ));
                None
            }
        }
    }
}

/// The schema of `T`, as JSON.
fn schema_of<T: JsonSchema>() -> Json {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Json::Null)
}

/// The keys of the struct `T`, from its schema.
fn schema_keys<T: JsonSchema>() -> Vec<String> {
    match schema_of::<T>().get("properties") {
        Some(Json::Object(p)) => p.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The string values of the enum `T`, from its schema (`enum` or the
/// `const` of each `oneOf`).
fn schema_variants<T: JsonSchema>() -> Vec<String> {
    let schema = schema_of::<T>();
    let mut out = Vec::new();
    if let Some(Json::Array(values)) = schema.get("enum") {
        out.extend(values.iter().filter_map(Json::as_str).map(str::to_string));
    }
    if let Some(Json::Array(cases)) = schema.get("oneOf") {
        for case in cases {
            if let Some(Json::String(s)) = case.get("const") {
                out.push(s.clone());
            }
            if let Some(Json::Array(values)) = case.get("enum") {
                out.extend(values.iter().filter_map(Json::as_str).map(str::to_string));
            }
        }
    }
    out
}

/// `a`, `b` or `c`.
pub(crate) fn backticked(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// An unknown key at its name, with the closest of `known` as a hint, or
/// the list of them when none is close.
fn unknown_key(entry: &Entry<'_>, message: String, key: &str, known: &[&str]) -> Diagnostic {
    Diagnostic::at_span(entry.key_span.clone(), message)
        .with_label("unknown key")
        .with_help(
            did_you_mean(key, known)
                .unwrap_or_else(|| format!("expected one of {}", backticked(known))),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Order;
    use crate::spec::raw::{Backend, Mode, OnFailure, Returns};

    /// Loads `text`; the diagnostics as `(line:col, message)`.
    fn errors(text: &str) -> Vec<(String, String)> {
        load(text)
            .diagnostics
            .iter()
            .map(|d| {
                let span = match &d.location {
                    super::super::diagnostic::Location::Span(s) => s.clone(),
                    _ => 0..0,
                };
                let l = super::super::diagnostic::Located::new(d, span, text);
                (format!("{}:{}", l.line, l.column), l.message)
            })
            .collect()
    }

    fn help(text: &str) -> Vec<String> {
        load(text)
            .diagnostics
            .into_iter()
            .filter_map(|d| d.help)
            .collect()
    }

    #[test]
    fn every_wrong_key_of_a_table_is_reported_at_its_value() {
        let text =
            "version = 1\n[[task]]\nfunction = \"f\"\nretries = \"2\"\nargs = 3\nmode = \"sync\"\n";
        assert_eq!(
            errors(text),
            vec![
                (
                    "4:11".into(),
                    "task[0].retries: expected an integer, found a string \"2\"".into()
                ),
                (
                    "5:8".into(),
                    "task[0].args: expected an array, found an integer 3".into()
                ),
                (
                    "6:8".into(),
                    "task[0].mode: expected `async` or `blocking`, found \"sync\"".into()
                ),
            ]
        );
    }

    #[test]
    fn nested_paths_name_the_place() {
        let text = "version = 1\n[pools.gpu]\nprocesses = \"4\"\n[functions.build]\ntimeout = 30\nenv = { A = 1 }\n";
        assert_eq!(
            errors(text),
            vec![
                (
                    "3:13".into(),
                    "pools.gpu.processes: expected an integer, found a string \"4\"".into()
                ),
                (
                    "5:11".into(),
                    "functions.build.timeout: expected a duration string such as \"30s\", found an integer 30".into()
                ),
                (
                    "6:13".into(),
                    "functions.build.env.A: expected a string, found an integer 1".into()
                ),
            ]
        );
        let l = load(text);
        assert!(l.unreadable.pools.contains("gpu"));
        assert!(l.unreadable.functions.contains("build"));
    }

    #[test]
    fn usual_slips_get_a_help_line() {
        let h = help("version = 1\n[functions.f]\ncommand = \"echo hi\"\n");
        assert_eq!(
            h,
            vec![
                "`command` is the program and its arguments, one string each: write \
                 `command = [\"echo\", \"hi\"]`, or use `shell = \"echo hi\"` for a shell script"
            ]
        );
        let h = help("version = 1\n[[task]]\nfunction = \"f\"\nafter = \"a\"\nargs = 3\n");
        assert_eq!(
            h,
            vec![
                "write `after = [\"a\"]`: an array, even of one",
                "write `args = [3]`: an array, even of one"
            ]
        );
        let h = help("version = 1\n[pool]\nprocesses = \"4\"\ntimeout = 30\n");
        assert_eq!(
            h,
            vec![
                "write `processes = 4`, without quotes",
                "durations are strings with a unit: write `timeout = \"30s\"`"
            ]
        );
        let h = help("version = 1\n[[task]]\nfunction = \"f\"\ntimeout = 1.5\n");
        assert_eq!(
            h,
            vec!["durations are strings with a unit: write `timeout = \"1500ms\"`"]
        );
        assert_eq!(
            super::super::duration::parse_duration("1500ms"),
            Ok(std::time::Duration::from_millis(1500))
        );
        let h = help("version = 1\n[pools]\nprocesses = 4\n[functions]\nshell = \"x\"\n");
        assert_eq!(
            h,
            vec![
                "each named pool is a table of its own, `[pools.NAME]`; the default pool \
                 is `[pool]`, where `processes` would go",
                "each function is a table of its own: `[functions.NAME]`, with `shell` in it"
            ]
        );
        let h = help(
            "version = 1\n[pool]\ninitializer = \"nap\"\n[[task]]\nfunction = \"f\"\n\
             map = { range = 10 }\nargs = { result = \"a\" }\n",
        );
        // Tasks are read as the parser hands them over, before the rest.
        assert_eq!(
            h,
            vec![
                "a range is `[start, stop]` or `[start, stop, step]`: write `range = [0, 10]`",
                "`args` is an array, even of one result: write `args = [{ result = \"a\" }]`",
                "an initializer is a call: write `initializer = { function = \"nap\" }`, \
                 with `args = [...]` if it takes any",
            ]
        );
        let h = help("version = 1\n[[task]]\nfunction = \"f\"\nmode = \"blokcing\"\n");
        assert_eq!(h, vec!["did you mean `blocking`?"]);
    }

    #[test]
    fn unknown_and_missing_keys() {
        let text = "version = 1\n[[task]]\nid = \"a\"\n[[task]]\nfunction = \"f\"\nagrs = [1]\n";
        assert_eq!(
            errors(text),
            vec![
                ("2:1".into(), "missing `function` in `task[0]`".into()),
                ("6:1".into(), "unknown key `agrs` in `task[1]`".into()),
            ]
        );
        let l = load(text);
        assert_eq!(l.tasks.tasks.len(), 2);
        assert_eq!(l.unreadable.tasks.get(&0), Some(&Some("a".to_string())));
        assert_eq!(l.unreadable.tasks.get(&1), Some(&Some("f-1".to_string())));
    }

    #[test]
    fn a_good_file_reads_whole() {
        let text = r#"version = 1
name = "n"
[vars]
w = 2
[pool]
processes = 2
on_failure = "stop"
backend = "local"
initializer = { function = "nap", args = [0] }
[results]
format = "jsonl"
order = "completion"
[functions.f]
command = ["echo", "{0}"]
returns = "lines"
env = { A = "1" }
[[task]]
function = "f"
args = [1, "a", 2.5, true]
kwargs = { k = [1] }
mode = "blocking"
map = { range = [0, 3] }
[[task]]
function = "f"
map = [[1], [2]]
"#;
        let mut l = load(text);
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let pool = l.raw.pool.expect("a pool");
        assert_eq!(pool.processes, Some(2));
        assert_eq!(pool.on_failure, Some(OnFailure::Stop));
        assert_eq!(pool.backend, Some(Backend::Local));
        assert_eq!(pool.initializer.map(|c| c.function), Some("nap".into()));
        assert_eq!(l.raw.results.and_then(|r| r.order), Some(Order::Completion));
        assert_eq!(l.raw.functions["f"].returns, Some(Returns::Lines));
        assert_eq!(l.tasks.tasks.len(), 2);
        let first = l.tasks.pending[0].take_raw().expect("keys beyond args");
        assert_eq!(first.mode, Some(Mode::Blocking));
        assert_eq!(first.kwargs["k"], Json::from(vec![1]));
        assert!(l.tasks.pending[1].rest.is_some(), "a map");
        assert_eq!(
            l.tasks.tasks[0].args,
            [1.into(), "a".into(), 2.5.into(), true.into()].map(Arg::Value)
        );
        assert_eq!(first.map, Some(RawMap::Range(vec![0, 3])));
        assert_eq!(l.tasks.function_names, ["f"]);
        assert_eq!(l.raw.vars["w"], Json::from(2));
        let l = load("version = 1\n[vars]\nwhen = 1979-05-27T07:32:00Z\n");
        assert_eq!(l.raw.vars["when"], Json::from("1979-05-27T07:32:00Z"));
    }

    /// Every key the schema lists is one the walk reads.
    #[test]
    fn every_schema_key_is_read() {
        fn check<T: JsonSchema>(header: &str, required: &str) {
            for key in schema_keys::<T>() {
                let text = format!("{header}\n{required}\n{key} = {{ x = [] }}\n");
                let found = errors(&text);
                assert!(
                    found
                        .iter()
                        .all(|(_, m)| !m.starts_with(&format!("unknown key `{key}`"))),
                    "{key}: {found:?}"
                );
            }
        }
        check::<RawPool>("version = 1\n[pool]", "");
        check::<RawFunction>("version = 1\n[functions.f]", "");
        check::<RawTask>("version = 1\n[[task]]", "");
        check::<RawResults>("version = 1\n[results]", "");
        check::<RawPython>("version = 1\n[python]", "");
        check::<RawCall>("version = 1\n[pool.initializer]", "");
        assert_eq!(schema_variants::<Mode>(), vec!["async", "blocking"]);
    }

    #[test]
    fn a_syntax_error_is_the_only_error() {
        let l = load("version = 1\nname = demo\n[[task]]\nretries = \"x\"\n");
        assert!(!l.parsed);
        assert_eq!(l.diagnostics.len(), 1);
        assert!(l.diagnostics[0].message.starts_with("invalid TOML: "));
    }

    #[test]
    fn map_shapes() {
        let e = errors(
            "version = 1\n[[task]]\nfunction = \"f\"\nmap = { glob = \"a\", lines = \"b\" }\n",
        );
        assert_eq!(
            e,
            vec![(
                "4:21".into(),
                "task[0].map: a map takes exactly one source, found `glob` and `lines`".into()
            )]
        );
        let e = errors("version = 1\n[[task]]\nfunction = \"f\"\nmap = { globe = \"a\" }\n");
        assert_eq!(e[0].1, "unknown map source `globe` in `task[0].map`");
    }
}

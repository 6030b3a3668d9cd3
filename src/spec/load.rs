//! From TOML text to [`RawJob`], collecting every shape error.
//!
//! serde stops at the first error of a value, so each top-level key, each
//! `[functions.NAME]`, each `[pools.NAME]` and each `[[task]]` is read on
//! its own: a file with errors in three tasks reports all three.

use std::collections::{HashMap, HashSet};

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{Document, Item};

use super::check::default_task_id;
use super::diagnostic::Diagnostic;
use super::doc_path::DocPath;
use super::raw::{RawFunction, RawJob, RawPool, RawPython, RawResults, RawTask, TOP_LEVEL_KEYS};
use super::suggest::did_you_mean;

/// What could be read of a document.
///
/// The parsed document itself is consumed while reading (copying a big one
/// would cost as much as parsing it); the spans of path-located errors are
/// looked up in a fresh parse, only when there are errors to show.
pub struct Loaded {
    /// Whether the text is valid TOML.
    pub parsed: bool,
    pub raw: RawJob,
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

/// Parses `source` and reads every part it can.
pub fn load(source: &str) -> Loaded {
    let mut diagnostics = Vec::new();
    let doc = match Document::parse(source.to_string()) {
        Ok(doc) => doc,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim_end().to_string();
            diagnostics.push(Diagnostic::at_span(
                span,
                format!("invalid TOML: {}", first_line(&message)),
            ));
            return Loaded {
                parsed: false,
                raw: RawJob::default(),
                has_version: false,
                unreadable: Unreadable::default(),
                diagnostics,
            };
        }
    };
    let mut raw = RawJob::default();
    let mut has_version = false;
    let mut unreadable = Unreadable::default();
    let root = DocPath::root();
    for (key, item) in doc.into_table() {
        let path = root.key(&key);
        match key.as_str() {
            "version" => {
                has_version = true;
                match read(item, &path, &mut diagnostics) {
                    Some(v) => raw.version = v,
                    None => unreadable.version = true,
                }
            }
            "name" => raw.name = read(item, &path, &mut diagnostics),
            "vars" => raw.vars = read(item, &path, &mut diagnostics).unwrap_or_default(),
            "shared" => raw.shared = read(item, &path, &mut diagnostics).unwrap_or_default(),
            "pool" => {
                raw.pool = read::<RawPool>(item, &path, &mut diagnostics);
                if raw.pool.is_none() {
                    unreadable.pools.insert("default".into());
                }
            }
            "results" => raw.results = read::<RawResults>(item, &path, &mut diagnostics),
            "python" => raw.python = read::<RawPython>(item, &path, &mut diagnostics),
            "pools" => {
                raw.pools = read_named(item, &path, &mut unreadable.pools, &mut diagnostics);
            }
            "functions" => {
                raw.functions = read_named::<RawFunction>(
                    item,
                    &path,
                    &mut unreadable.functions,
                    &mut diagnostics,
                );
            }
            "task" => raw.task = read_tasks(item, &path, &mut unreadable.tasks, &mut diagnostics),
            other => {
                let mut d = Diagnostic::at_key(
                    path.clone(),
                    format!("unknown key `{other}` at the top level of the job file"),
                )
                .with_label("unknown key");
                d.help =
                    Some(did_you_mean(other, TOP_LEVEL_KEYS).unwrap_or_else(|| {
                        format!("expected one of {}", backticked(TOP_LEVEL_KEYS))
                    }));
                diagnostics.push(d);
            }
        }
    }
    if !has_version {
        diagnostics.push(
            Diagnostic::at_file("missing `version`: a job file starts with `version = 1`")
                .with_help("add `version = 1` at the top of the file"),
        );
    }
    Loaded {
        parsed: true,
        raw,
        has_version,
        unreadable,
        diagnostics,
    }
}

/// Reads one value; on error records a diagnostic and gives `None`.
fn read<T: DeserializeOwned>(
    item: Item,
    path: &DocPath,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<T> {
    let value = match item {
        Item::Value(v) => v,
        Item::Table(t) => toml_edit::Value::InlineTable(t.into_inline_table()),
        Item::ArrayOfTables(a) => toml_edit::Value::Array(a.into_array()),
        Item::None => return None,
    };
    match T::deserialize(value.into_deserializer()) {
        Ok(v) => Some(v),
        Err(e) => {
            diagnostics.push(serde_diagnostic(&e, path));
            None
        }
    }
}

/// Reads `[functions.NAME]` or `[pools.NAME]`: each entry on its own.
fn read_named<T: DeserializeOwned>(
    item: Item,
    path: &DocPath,
    unreadable: &mut HashSet<String>,
    diagnostics: &mut Vec<Diagnostic>,
) -> std::collections::BTreeMap<String, T> {
    let mut out = std::collections::BTreeMap::new();
    let entries: Vec<(String, Item)> = match item {
        Item::Table(t) => t.into_iter().collect(),
        Item::Value(toml_edit::Value::InlineTable(t)) => t
            .into_iter()
            .map(|(k, v)| (k.to_string(), Item::Value(v)))
            .collect(),
        _ => {
            diagnostics.push(Diagnostic::at(
                path.clone(),
                format!("`{path}` must be a table of named entries"),
            ));
            return out;
        }
    };
    for (name, entry) in entries {
        let entry_path = path.key(&name);
        if !matches!(
            entry,
            Item::Table(_) | Item::Value(toml_edit::Value::InlineTable(_))
        ) {
            diagnostics.push(Diagnostic::at(
                entry_path.clone(),
                format!("`{entry_path}` must be a table"),
            ));
            unreadable.insert(name);
            continue;
        }
        match read(entry, &entry_path, diagnostics) {
            Some(v) => {
                out.insert(name, v);
            }
            None => {
                unreadable.insert(name);
            }
        }
    }
    out
}

/// Reads `[[task]]`: each task on its own; a task with an error is left out.
fn read_tasks(
    item: Item,
    path: &DocPath,
    unreadable: &mut HashMap<usize, Option<String>>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<RawTask> {
    let tables: Vec<Item> = match item {
        Item::ArrayOfTables(a) => a.into_iter().map(Item::Table).collect(),
        Item::Value(toml_edit::Value::Array(a)) => a.into_iter().map(Item::Value).collect(),
        _ => {
            diagnostics.push(
                Diagnostic::at(path.clone(), "`task` must be an array of tables")
                    .with_help("declare each task with a `[[task]]` header"),
            );
            return Vec::new();
        }
    };
    let mut tasks = Vec::new();
    for (i, t) in tables.into_iter().enumerate() {
        let task_path = path.index(i);
        if !matches!(
            t,
            Item::Table(_) | Item::Value(toml_edit::Value::InlineTable(_))
        ) {
            diagnostics.push(Diagnostic::at(task_path, "a task must be a table"));
            // Keep positions stable for later checks: an unreadable task is
            // a placeholder that validation skips.
            unreadable.insert(i, None);
            tasks.push(RawTask::default());
            continue;
        }
        let id = string_key(&t, "id")
            .or_else(|| string_key(&t, "function").map(|f| default_task_id(&f, i)));
        match read::<RawTask>(t, &task_path, diagnostics) {
            Some(task) => tasks.push(task),
            None => {
                unreadable.insert(i, id);
                tasks.push(RawTask::default());
            }
        }
    }
    tasks
}

/// The string value of `key` in a table, if it is one.
fn string_key(item: &Item, key: &str) -> Option<String> {
    match item {
        Item::Table(t) => t.get(key)?.as_str().map(str::to_string),
        Item::Value(toml_edit::Value::InlineTable(t)) => t.get(key)?.as_str().map(str::to_string),
        _ => None,
    }
}

/// Turns a serde error into a diagnostic, with "did you mean" for unknown keys.
fn serde_diagnostic(e: &toml_edit::de::Error, path: &DocPath) -> Diagnostic {
    let message = first_line(e.message()).to_string();
    let mut d = match e.span() {
        Some(span) => Diagnostic::at_span(span, message.clone()),
        None => Diagnostic::at(path.clone(), message.clone()),
    };
    if let Some((unknown, expected)) = parse_unknown(&message) {
        let known: Vec<&str> = expected.iter().map(String::as_str).collect();
        d.message = format!("unknown key `{unknown}` in `{}`", table_name(path));
        d.label = Some("unknown key".into());
        d.help = Some(
            did_you_mean(&unknown, &known)
                .unwrap_or_else(|| format!("expected one of {}", backticked(&known))),
        );
    } else if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        d.message = format!("missing `{field}` in `{}`", table_name(path));
        d.help = Some(format!("add `{field} = ...` to this table"));
    } else {
        d.message = format!("{} in `{path}`", message.trim_end_matches('.'));
    }
    d
}

fn table_name(path: &DocPath) -> String {
    match path.0.first() {
        Some(super::doc_path::Seg::Key(k)) if k == "task" => match path.0.get(1) {
            Some(super::doc_path::Seg::Index(i)) => format!("[[task]] #{}", i + 1),
            _ => "[[task]]".into(),
        },
        _ => format!("[{path}]"),
    }
}

/// Parses serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or `b`").
fn parse_unknown(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    let unknown = rest[..end].to_string();
    let expected = rest[end..]
        .split('`')
        .skip(2)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((unknown, expected))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
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

//! `jobfile plan`: the task graph as text, JSON or Graphviz dot.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::graph::Plan;
use super::items::ItemIter;
use crate::spec::{Job, MapSource, Mode};

/// Output format of `jobfile plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Dot,
}

/// Renders the plan of `job`.
pub fn render(job: &Job, plan: &Plan, format: PlanFormat) -> String {
    match format {
        PlanFormat::Text => text(job, plan),
        PlanFormat::Json => {
            let mut s = serde_json::to_string_pretty(&json_plan(job, plan)).unwrap_or_default();
            s.push('\n');
            s
        }
        PlanFormat::Dot => dot(job, plan),
    }
}

fn items(source: Option<&MapSource>) -> Value {
    match source {
        None => Value::Null,
        Some(s) => match ItemIter::len_hint(s) {
            Some(n) => json!(n),
            None => json!(source_name(s)),
        },
    }
}

fn source_name(s: &MapSource) -> &'static str {
    match s {
        MapSource::Items(_) => "items",
        MapSource::Range { .. } => "range",
        MapSource::Lines(_) => "lines",
        MapSource::Glob(_) => "glob",
        MapSource::Product(_) => "product",
        MapSource::Result(_) => "result",
        MapSource::Stream(_) => "stream",
    }
}

fn mode(m: Mode) -> &'static str {
    match m {
        Mode::Async => "async",
        Mode::Blocking => "blocking",
    }
}

/// The JSON rendering, as borrowed structs rather than a `Value` tree: a
/// plan of 100,000 tasks is written without building 100,000 maps.
#[derive(serde::Serialize)]
struct JsonPlan<'a> {
    job: &'a str,
    tasks: Vec<JsonTask<'a>>,
}

#[derive(serde::Serialize)]
struct JsonTask<'a> {
    id: &'a str,
    function: &'a str,
    mode: &'static str,
    pool: &'a str,
    after: Vec<JsonEdge<'a>>,
    items: Value,
    callback: Option<&'a str>,
    error_callback: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct JsonEdge<'a> {
    task: &'a str,
    kind: &'static str,
}

fn json_plan<'a>(job: &'a Job, plan: &Plan) -> JsonPlan<'a> {
    let tasks = job
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| JsonTask {
            id: &t.id,
            function: &job.function(t.function).name,
            mode: mode(t.mode),
            pool: &job.pools[t.pool.0].name,
            after: plan.deps[i]
                .iter()
                .map(|e| JsonEdge {
                    task: &job.task(e.on).id,
                    kind: e.kind.as_str(),
                })
                .collect(),
            items: items(t.map()),
            callback: t.callback().map(|f| job.function(f).name.as_str()),
            error_callback: t.error_callback().map(|f| job.function(f).name.as_str()),
        })
        .collect();
    JsonPlan {
        job: &job.name,
        tasks,
    }
}

fn text(job: &Job, plan: &Plan) -> String {
    let rows: Vec<[String; 6]> = job
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let deps: Vec<String> = plan.deps[i]
                .iter()
                .map(|e| format!("{}({})", job.task(e.on).id, e.kind.as_str()))
                .collect();
            let items = match items(t.map()) {
                Value::Null => "-".to_string(),
                Value::String(s) => s,
                v => v.to_string(),
            };
            [
                t.id.clone(),
                job.function(t.function).name.clone(),
                mode(t.mode).to_string(),
                job.pools[t.pool.0].name.clone(),
                if deps.is_empty() {
                    "-".into()
                } else {
                    deps.join(",")
                },
                items,
            ]
        })
        .collect();
    let header = ["TASK", "FUNCTION", "MODE", "POOL", "AFTER", "ITEMS"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(header.map(String::from)).chain(rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn dot(job: &Job, plan: &Plan) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = format!("digraph {} {{\n  rankdir=LR;\n", q(&job.name));
    for t in &job.tasks {
        let shape = if t.mode == Mode::Blocking {
            "box"
        } else {
            "ellipse"
        };
        let _ = writeln!(
            out,
            "  {} [label={}, shape={shape}];",
            q(&t.id),
            q(&format!("{}\n{}", t.id, job.function(t.function).name))
        );
    }
    for (i, deps) in plan.deps.iter().enumerate() {
        for e in deps {
            let _ = writeln!(
                out,
                "  {} -> {} [label={}];",
                q(&job.task(e.on).id),
                q(&job.tasks[i].id),
                q(e.kind.as_str())
            );
        }
    }
    out.push_str("}\n");
    out
}

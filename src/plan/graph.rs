//! Dependencies between tasks, and the cycle check.
//!
//! A task depends on: the tasks in its `after`; the tasks whose value it
//! reads (`{ result = ... }`, `map = { result = ... }`); the last blocking
//! task declared before it (the barrier of `apply`); and, for a stream
//! consumer, its producer, which must have *started* rather than ended.

use crate::spec::{Job, Mode, TaskId};

/// Why one task waits for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Listed in `after`.
    After,
    /// Reads the other task's value.
    Result,
    /// Declared after a blocking task.
    Barrier,
    /// Consumes the other task's output as it is printed.
    Stream,
}

impl EdgeKind {
    /// Lower-case name for the renderings.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::After => "after",
            EdgeKind::Result => "result",
            EdgeKind::Barrier => "barrier",
            EdgeKind::Stream => "stream",
        }
    }
}

/// One dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub on: TaskId,
    pub kind: EdgeKind,
}

/// The task graph. Map items are not nodes: they stay lazy (see
/// [`super::ItemIter`]), so a map of ten million items is one node.
#[derive(Debug, Clone)]
pub struct Plan {
    /// For each task, what it waits for (deduplicated, sorted by task).
    pub deps: Vec<Vec<Edge>>,
    /// For each task, the tasks that wait for it.
    pub dependents: Vec<Vec<TaskId>>,
}

impl Plan {
    /// Builds the graph of a checked job (which has no cycle).
    pub fn new(job: &Job) -> Plan {
        let deps: Vec<Vec<Edge>> = (0..job.tasks.len())
            .map(|i| edges(job, TaskId(i)))
            .collect();
        let mut dependents = vec![Vec::new(); job.tasks.len()];
        for (i, ds) in deps.iter().enumerate() {
            for e in ds {
                dependents[e.on.0].push(TaskId(i));
            }
        }
        Plan { deps, dependents }
    }
}

/// The edges of one task.
fn edges(job: &Job, id: TaskId) -> Vec<Edge> {
    let task = job.task(id);
    let mut out: Vec<Edge> = Vec::new();
    let mut add = |on: TaskId, kind: EdgeKind| {
        if let Some(e) = out.iter_mut().find(|e| e.on == on) {
            // A stream edge is weaker than any other: keep the stronger.
            if e.kind == EdgeKind::Stream && kind != EdgeKind::Stream {
                e.kind = kind;
            }
        } else {
            out.push(Edge { on, kind });
        }
    };
    for &on in &task.after {
        add(on, EdgeKind::After);
    }
    for on in task.result_refs() {
        add(on, EdgeKind::Result);
    }
    if let Some(on) = task.stream_source() {
        add(on, EdgeKind::Stream);
    }
    if let Some(b) = (0..id.0)
        .rev()
        .find(|&j| job.tasks[j].mode == Mode::Blocking)
    {
        add(TaskId(b), EdgeKind::Barrier);
    }
    out.sort_by_key(|e| e.on);
    out
}

/// A dependency cycle, as the ids on it in order, if the job has one.
pub fn find_cycle(job: &Job) -> Option<Vec<TaskId>> {
    let n = job.tasks.len();
    let deps: Vec<Vec<Edge>> = (0..n).map(|i| edges(job, TaskId(i))).collect();
    // Iterative depth-first search with colours; the stack holds the path.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour = vec![Colour::White; n];
    for start in 0..n {
        if colour[start] != Colour::White {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        colour[start] = Colour::Grey;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(edge) = deps[node].get(*next) {
                *next += 1;
                let to = edge.on.0;
                match colour[to] {
                    Colour::White => {
                        colour[to] = Colour::Grey;
                        stack.push((to, 0));
                    }
                    Colour::Grey => {
                        let from = stack.iter().position(|&(v, _)| v == to).unwrap_or(0);
                        let mut cycle: Vec<TaskId> =
                            stack[from..].iter().map(|&(v, _)| TaskId(v)).collect();
                        // Name the cycle from its first task in the file,
                        // in the direction of "waits for".
                        let min = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, t)| t.0)
                            .map_or(0, |(i, _)| i);
                        cycle.rotate_left(min);
                        return Some(cycle);
                    }
                    Colour::Black => {}
                }
            } else {
                colour[node] = Colour::Black;
                stack.pop();
            }
        }
    }
    None
}

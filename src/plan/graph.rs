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
    /// Builds the graph of a checked job (which has no cycle: see
    /// [`find_cycle`]).
    pub fn new(job: &Job) -> Plan {
        let deps = all_edges(job);
        let mut dependents = vec![Vec::new(); job.tasks.len()];
        for (i, ds) in deps.iter().enumerate() {
            for e in ds {
                dependents[e.on.0].push(TaskId(i));
            }
        }
        Plan { deps, dependents }
    }
}

/// The edges of every task, in one pass: the barrier of each task is the
/// last blocking task seen so far, so no task looks back over the others.
fn all_edges(job: &Job) -> Vec<Vec<Edge>> {
    let mut barrier = None;
    job.tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let e = edges(job, TaskId(i), barrier);
            if t.mode == Mode::Blocking {
                barrier = Some(TaskId(i));
            }
            e
        })
        .collect()
}

/// The edges of one task; `barrier` is the last blocking task before it.
fn edges(job: &Job, id: TaskId, barrier: Option<TaskId>) -> Vec<Edge> {
    let task = job.task(id);
    let mut out: Vec<Edge> = task
        .after()
        .iter()
        .map(|&on| Edge {
            on,
            kind: EdgeKind::After,
        })
        .chain(task.result_refs().map(|on| Edge {
            on,
            kind: EdgeKind::Result,
        }))
        .chain(barrier.map(|on| Edge {
            on,
            kind: EdgeKind::Barrier,
        }))
        .chain(task.stream_source().map(|on| Edge {
            on,
            kind: EdgeKind::Stream,
        }))
        .collect();
    // One edge per task waited for. A stream edge is weaker than any other
    // (it waits for a start, not an end): the stable sort puts the stronger
    // kinds first, in the order they were added, and the first one stays.
    out.sort_by_key(|e| (e.on, e.kind == EdgeKind::Stream));
    out.dedup_by_key(|e| e.on);
    out
}

/// Tasks that wait for each other, so none of them can start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The tasks on the cycle in the direction of "waits for", from the
    /// first of them in the file; one task when it waits for itself.
    pub tasks: Vec<TaskId>,
}

/// A dependency cycle of the job, if it has one. The job need not be
/// wholly checked: only the references that resolved are edges, so a
/// cycle is found alongside the file's other errors.
pub fn find_cycle(job: &Job) -> Option<Cycle> {
    find_cycle_in(&all_edges(job))
}

impl Plan {
    /// A dependency cycle of this graph.
    pub fn find_cycle(&self) -> Option<Cycle> {
        find_cycle_in(&self.deps)
    }
}

fn find_cycle_in(deps: &[Vec<Edge>]) -> Option<Cycle> {
    let n = deps.len();
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
                        return Some(Cycle { tasks: cycle });
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::plan::ItemIter;
    use crate::spec::{CheckOptions, check_source};

    fn job(text: &str) -> Job {
        let opts = CheckOptions {
            builtins: vec!["noop".into(), "square".into()],
            var_overrides: Vec::new(),
            python_probe: None,
        };
        check_source(Path::new("job.toml"), text, &opts).expect("a valid job")
    }

    #[test]
    fn a_huge_map_is_one_node_whose_length_is_computed() {
        let job = job("version = 1\n[[task]]\nfunction = \"noop\"\n\
             [[task]]\nfunction = \"square\"\nmap = { range = [0, 10000000] }\n");
        let plan = Plan::new(&job);
        assert_eq!(plan.deps.len(), job.tasks.len());
        assert_eq!(plan.dependents.len(), 2);
        let source = job.tasks[1].map().expect("a map");
        assert_eq!(ItemIter::len_hint(source), Some(10_000_000));
    }

    #[test]
    fn a_cycle_is_named_from_its_first_task_in_the_file() {
        let job = job("version = 1\n\
             [[task]]\nid = \"free\"\nfunction = \"noop\"\n\
             [[task]]\nid = \"a\"\nfunction = \"noop\"\nafter = [\"c\"]\n\
             [[task]]\nid = \"b\"\nfunction = \"noop\"\nargs = [{ result = \"a\" }]\n\
             [[task]]\nid = \"c\"\nfunction = \"noop\"\nmap = { stream = \"b\" }\n");
        let cycle = find_cycle(&job).expect("a cycle");
        assert_eq!(cycle.tasks, [TaskId(1), TaskId(3), TaskId(2)]);
        assert_eq!(Plan::new(&job).find_cycle(), Some(cycle));
    }

    #[test]
    fn each_task_waits_for_the_last_blocking_task_before_it() {
        let mut text = String::from("version = 1\n");
        for i in 0..20 {
            let mode = if i % 7 == 3 { "blocking" } else { "async" };
            text.push_str(&format!(
                "[[task]]\nid = \"t{i}\"\nfunction = \"noop\"\nmode = \"{mode}\"\n"
            ));
        }
        let job = job(&text);
        let plan = Plan::new(&job);
        for (i, deps) in plan.deps.iter().enumerate() {
            let expected = (0..i)
                .rev()
                .find(|&j| job.tasks[j].mode == Mode::Blocking)
                .map(|b| Edge {
                    on: TaskId(b),
                    kind: EdgeKind::Barrier,
                });
            assert_eq!(deps.first().copied(), expected, "task t{i}");
            assert!(deps.len() <= 1);
        }
        assert_eq!(plan.find_cycle(), None);
    }
}

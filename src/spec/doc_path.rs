//! Paths into the job file (`task[2].args[0].result`) and their source spans.
//!
//! Validation works on plain typed values and names the place of a problem
//! by its path; the span is looked up in the parsed document only when an
//! error is rendered.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use super::toml_tree::{self, Item, Table, Value};

/// One step of a [`DocPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(Box<str>),
    Index(usize),
}

/// A path from the document root to a value.
///
/// The checker makes one for every value it looks at and keeps almost
/// none, so a longer path shares its parent rather than copying it: one
/// step costs one small allocation, whatever the depth.
#[derive(Clone, Default)]
pub struct DocPath(Option<Arc<Step>>);

struct Step {
    parent: DocPath,
    seg: Seg,
}

impl DocPath {
    /// The root of the document.
    pub fn root() -> DocPath {
        DocPath(None)
    }

    /// This path, one key further.
    pub fn key(&self, k: &str) -> DocPath {
        self.then(Seg::Key(k.into()))
    }

    /// This path, one array index further.
    pub fn index(&self, i: usize) -> DocPath {
        self.then(Seg::Index(i))
    }

    fn then(&self, seg: Seg) -> DocPath {
        DocPath(Some(Arc::new(Step {
            parent: self.clone(),
            seg,
        })))
    }

    /// The steps from the root.
    pub fn segs(&self) -> Vec<&Seg> {
        let mut out = Vec::new();
        let mut at = &self.0;
        while let Some(step) = at {
            out.push(&step.seg);
            at = &step.parent.0;
        }
        out.reverse();
        out
    }
}

impl PartialEq for DocPath {
    fn eq(&self, other: &DocPath) -> bool {
        self.segs() == other.segs()
    }
}

impl Eq for DocPath {}

impl fmt::Debug for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocPath({self})")
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.segs().into_iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// What part of the value at a path a diagnostic points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The value itself (for a table: its header).
    Value,
    /// The key that names the value.
    Key,
}

/// The child of `item` at `seg`, with the span of its key when it has one.
fn child<'t, 's>(item: &'t Item<'s>, seg: &Seg) -> Option<(&'t Item<'s>, Option<Range<usize>>)> {
    match (&item.value, seg) {
        (Value::Table(t), Seg::Key(k)) => t.get(k).map(|e| (&e.item, Some(e.key_span.clone()))),
        (Value::Array(a), Seg::Index(i)) => {
            let i = i.checked_sub(a.taken)?;
            a.items.get(i).map(|v| (v, None))
        }
        _ => None,
    }
}

/// The spans of `wanted` in `source`, which is parsed again for them. Of
/// the `[[task]]` tables, only those a path goes into are kept, so that
/// showing an error in a big file does not build its whole tree.
pub fn spans_of<'s>(source: &'s str, wanted: &[(&DocPath, Anchor)]) -> Vec<Option<Range<usize>>> {
    let tasks: HashSet<usize> = wanted
        .iter()
        .filter_map(|(p, _)| match p.segs().as_slice() {
            [Seg::Key(k), Seg::Index(i), ..] if &**k == "task" => Some(*i),
            _ => None,
        })
        .collect();
    let mut kept: HashMap<usize, Item<'s>> = HashMap::new();
    let mut on_task = |i: usize, item: Item<'s>| {
        if tasks.contains(&i) {
            kept.insert(i, item);
        }
    };
    let Ok(root) = toml_tree::parse(source, Some(&mut on_task)) else {
        return vec![None; wanted.len()];
    };
    wanted
        .iter()
        .map(|(p, anchor)| span_of(&root, &kept, p, *anchor))
        .collect()
}

/// The span of the value (or key) at `path` in the document's root table
/// (with `tasks`, the `[[task]]` tables handed over while parsing); when
/// the path goes further than the document, the span of the deepest part
/// that exists.
pub fn span_of(
    root: &Table<'_>,
    tasks: &HashMap<usize, Item<'_>>,
    path: &DocPath,
    anchor: Anchor,
) -> Option<Range<usize>> {
    let all = path.segs();
    let mut segs = all.iter().copied();
    let (mut node, mut key_span) = match segs.next() {
        Some(Seg::Key(k)) => {
            let e = root.get(k)?;
            (&e.item, Some(e.key_span.clone()))
        }
        _ => return None,
    };
    if let (Value::Array(a), Some(Seg::Index(i))) = (&node.value, all.get(1)) {
        if let Some(task) = tasks.get(i).filter(|_| a.of_tables && *i < a.taken) {
            segs.next();
            node = task;
            key_span = None;
        }
    }
    let mut best = node.span.clone();
    for seg in segs {
        match child(node, seg) {
            Some((c, key)) => {
                key_span = key;
                best = c.span.clone();
                node = c;
            }
            None => return Some(best),
        }
    }
    match anchor {
        Anchor::Key => key_span.or(Some(best)),
        Anchor::Value => Some(best),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::toml_tree::parse;

    #[test]
    fn spans_of_values_keys_and_headers() {
        let text = "[pool]\nprocesses = 4\n[[task]]\nargs = [1, { result = \"a\" }]\n";
        let root = parse(text, None).expect("valid");
        let none = HashMap::new();
        let at = |p: &DocPath, a| span_of(&root, &none, p, a).map(|s| &text[s]);
        let pool = DocPath::root().key("pool");
        assert_eq!(at(&pool, Anchor::Value), Some("[pool]"));
        assert_eq!(at(&pool.key("processes"), Anchor::Key), Some("processes"));
        assert_eq!(at(&pool.key("processes"), Anchor::Value), Some("4"));
        let task = DocPath::root().key("task").index(0);
        assert_eq!(at(&task, Anchor::Value), Some("[[task]]"));
        let result = task.key("args").index(1).key("result");
        assert_eq!(at(&result, Anchor::Value), Some("\"a\""));
        // Past the document: the deepest part that exists.
        assert_eq!(
            at(&task.key("args").index(7), Anchor::Value),
            Some("[1, { result = \"a\" }]")
        );
    }
}

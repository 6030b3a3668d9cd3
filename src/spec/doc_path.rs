//! Paths into the job file (`task[2].args[0].result`) and their source spans.
//!
//! Validation works on plain typed values and names the place of a problem
//! by its path; the span is looked up in the parsed document only when an
//! error is rendered.

use std::fmt;
use std::ops::Range;

use toml_edit::{Document, Item, Table, Value};

/// One step of a [`DocPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root to a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocPath(pub Vec<Seg>);

impl DocPath {
    /// The root of the document.
    pub fn root() -> DocPath {
        DocPath(Vec::new())
    }

    /// This path, one key further.
    pub fn key(&self, k: &str) -> DocPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    /// This path, one array index further.
    pub fn index(&self, i: usize) -> DocPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn span(&self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Table(t) => t.span(),
            Node::Value(v) => v.span(),
        }
    }

    /// The child at `seg`, with the span of its key when it has one.
    fn child(&self, seg: &Seg) -> Option<(Node<'a>, Option<Range<usize>>)> {
        match (self, seg) {
            (Node::Item(Item::Table(t)), Seg::Key(_)) => Node::Table(t).child(seg),
            (Node::Item(Item::Value(v)), _) => Node::Value(v).child(seg),
            (Node::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => {
                a.get(*i).map(|t| (Node::Table(t), None))
            }
            (Node::Table(t), Seg::Key(k)) => {
                let (key, item) = t.get_key_value(k)?;
                Some((Node::Item(item), key.span()))
            }
            (Node::Value(Value::InlineTable(t)), Seg::Key(k)) => {
                let (key, item) = t.get_key_value(k)?;
                Some((Node::Item(item), key.span()))
            }
            (Node::Value(Value::Array(a)), Seg::Index(i)) => {
                a.get(*i).map(|v| (Node::Value(v), None))
            }
            _ => None,
        }
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

/// The span of the value (or key) at `path`; when the path goes further
/// than the document, the span of the deepest part that exists.
pub fn span_of(doc: &Document<String>, path: &DocPath, anchor: Anchor) -> Option<Range<usize>> {
    let mut node = Node::Table(doc.as_table());
    let mut best: Option<Range<usize>> = None;
    let mut key_span = None;
    for seg in &path.0 {
        match node.child(seg) {
            Some((child, key)) => {
                key_span = key;
                if let Some(s) = child.span() {
                    best = Some(s);
                } else if let Some(k) = &key_span {
                    best = Some(k.clone());
                }
                node = child;
            }
            None => return best,
        }
    }
    match anchor {
        Anchor::Key => key_span.or(best),
        Anchor::Value => best,
    }
}

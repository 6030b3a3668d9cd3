//! Lazy map items: each source yields its items one at a time, so a map
//! over ten million numbers or a huge file never sits in memory.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::spec::MapSource;

/// A map's items could not be produced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ItemsError(pub String);

/// An iterator over a map's items.
pub enum ItemIter {
    Values(std::vec::IntoIter<Value>),
    Range {
        next: i64,
        stop: i64,
        step: i64,
    },
    Lines {
        reader: BufReader<File>,
        path: PathBuf,
        failed: bool,
    },
    Product {
        axes: Vec<(String, Vec<Value>)>,
        odometer: Vec<usize>,
        done: bool,
    },
}

impl ItemIter {
    /// The items of a static source (everything but `result` and `stream`,
    /// which the engine feeds from the producing task). `dir` is the job's
    /// folder.
    pub fn new(source: &MapSource, dir: &Path) -> Result<ItemIter, ItemsError> {
        Ok(match source {
            MapSource::Items(items) => ItemIter::Values(items.clone().into_iter()),
            MapSource::Range { start, stop, step } => ItemIter::Range {
                next: *start,
                stop: *stop,
                step: *step,
            },
            MapSource::Lines(path) => {
                let file = crate::spec::open_lines(path).map_err(|e| {
                    ItemsError(format!(
                        "cannot read map lines from {}: {e}",
                        path.display()
                    ))
                })?;
                ItemIter::Lines {
                    reader: BufReader::new(file),
                    path: path.clone(),
                    failed: false,
                }
            }
            MapSource::Glob(pattern) => ItemIter::Values(glob_items(pattern, dir)?.into_iter()),
            MapSource::Product(axes) => ItemIter::Product {
                done: axes.iter().any(|(_, v)| v.is_empty()),
                odometer: vec![0; axes.len()],
                axes: axes.clone(),
            },
            MapSource::Result(_) | MapSource::Stream(_) => {
                return Err(ItemsError(
                    "items come from another task at run time".into(),
                ));
            }
        })
    }

    /// Is it known, without producing anything, that no item is left?
    /// (`false` when it cannot tell cheaply, as for a file's lines.)
    pub fn is_drained(&self) -> bool {
        match self {
            ItemIter::Values(it) => it.len() == 0,
            ItemIter::Range { next, stop, step } => {
                if *step > 0 {
                    *next >= *stop
                } else {
                    *next <= *stop
                }
            }
            ItemIter::Product { done, .. } => *done,
            ItemIter::Lines { .. } => false,
        }
    }

    /// The number of items, when known without producing them.
    pub fn len_hint(source: &MapSource) -> Option<u64> {
        match source {
            MapSource::Items(items) => Some(items.len() as u64),
            MapSource::Range { start, stop, step } => Some(range_len(*start, *stop, *step)),
            MapSource::Product(axes) => axes
                .iter()
                .try_fold(1u64, |acc, (_, v)| acc.checked_mul(v.len() as u64)),
            _ => None,
        }
    }
}

/// Python's `len(range(start, stop, step))`.
pub fn range_len(start: i64, stop: i64, step: i64) -> u64 {
    let (start, stop, step) = (start as i128, stop as i128, step as i128);
    let n = if step > 0 {
        (stop - start + step - 1) / step
    } else {
        (start - stop - step - 1) / -step
    };
    n.max(0) as u64
}

impl Iterator for ItemIter {
    type Item = Result<Value, ItemsError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ItemIter::Values(it) => it.next().map(Ok),
            ItemIter::Range { next, stop, step } => {
                let more = if *step > 0 {
                    *next < *stop
                } else {
                    *next > *stop
                };
                if !more {
                    return None;
                }
                let v = *next;
                match next.checked_add(*step) {
                    Some(n) => *next = n,
                    None => *next = *stop,
                }
                Some(Ok(Value::from(v)))
            }
            ItemIter::Lines {
                reader,
                path,
                failed,
            } => {
                if *failed {
                    return None;
                }
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) => None,
                    Ok(_) => {
                        if line.ends_with('\n') {
                            line.pop();
                            if line.ends_with('\r') {
                                line.pop();
                            }
                        }
                        Some(Ok(Value::String(line)))
                    }
                    Err(e) => {
                        *failed = true;
                        Some(Err(ItemsError(format!("reading {}: {e}", path.display()))))
                    }
                }
            }
            ItemIter::Product {
                axes,
                odometer,
                done,
            } => {
                if *done {
                    return None;
                }
                let item: Map<String, Value> = axes
                    .iter()
                    .zip(odometer.iter())
                    .map(|((k, vs), &i)| (k.clone(), vs[i].clone()))
                    .collect();
                // Row-major: the last axis turns fastest.
                *done = true;
                for pos in (0..odometer.len()).rev() {
                    odometer[pos] += 1;
                    if odometer[pos] < axes[pos].1.len() {
                        *done = false;
                        break;
                    }
                    odometer[pos] = 0;
                }
                Some(Ok(Value::Object(item)))
            }
        }
    }
}

fn glob_items(pattern: &str, dir: &Path) -> Result<Vec<Value>, ItemsError> {
    let items = crate::spec::glob_matches(pattern, dir).map_err(|e| ItemsError(e.to_string()))?;
    Ok(items.into_iter().map(Value::String).collect())
}

/// The items held in a task's value (`map = { result = ... }`): an array's
/// elements, or a text's lines.
pub fn items_of_value(value: &Value) -> Result<Vec<Value>, ItemsError> {
    match value {
        Value::Array(a) => Ok(a.clone()),
        Value::String(s) => Ok(s.lines().map(|l| Value::String(l.to_string())).collect()),
        other => Err(ItemsError(format!(
            "cannot map over {other}: expected an array or text"
        ))),
    }
}

/// The positional args and kwargs of one map item: an array is the args
/// (starmap), a table the kwargs, anything else the one arg. The task's
/// own args follow the item's; its kwargs are overridden by the item's.
pub fn item_call(
    item: &Value,
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> (Vec<Value>, Map<String, Value>) {
    // Most maps have no kwargs: an empty map is made, not cloned.
    let mut kw = if kwargs.is_empty() {
        Map::new()
    } else {
        kwargs.clone()
    };
    let mut positional = match item {
        Value::Array(a) => a.clone(),
        Value::Object(o) => {
            for (k, v) in o {
                kw.insert(k.clone(), v.clone());
            }
            Vec::new()
        }
        other => vec![other.clone()],
    };
    positional.extend(args.iter().cloned());
    (positional, kw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collect(source: MapSource) -> Vec<Value> {
        ItemIter::new(&source, Path::new("."))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn ranges_follow_python() {
        let r = |start, stop, step| collect(MapSource::Range { start, stop, step });
        assert_eq!(r(0, 4, 1), vec![json!(0), json!(1), json!(2), json!(3)]);
        assert_eq!(r(5, 0, -2), vec![json!(5), json!(3), json!(1)]);
        assert_eq!(r(0, 0, 1), Vec::<Value>::new());
        assert_eq!(range_len(0, 10_000_000, 1), 10_000_000);
        assert_eq!(range_len(5, 0, -2), 3);
        assert_eq!(range_len(0, 5, -1), 0);
    }

    #[test]
    fn product_is_row_major() {
        let items = collect(MapSource::Product(vec![
            ("a".into(), vec![json!(1), json!(2)]),
            ("b".into(), vec![json!("x"), json!("y")]),
        ]));
        assert_eq!(
            items,
            vec![
                json!({"a": 1, "b": "x"}),
                json!({"a": 1, "b": "y"}),
                json!({"a": 2, "b": "x"}),
                json!({"a": 2, "b": "y"}),
            ]
        );
        assert!(collect(MapSource::Product(vec![("a".into(), vec![])])).is_empty());
    }

    #[test]
    fn items_become_calls() {
        let kw = Map::new();
        assert_eq!(
            item_call(&json!([1, 2]), &[], &kw).0,
            vec![json!(1), json!(2)]
        );
        assert_eq!(
            item_call(&json!(3), &[json!("x")], &kw).0,
            vec![json!(3), json!("x")]
        );
        let (a, k) = item_call(&json!({"n": 1}), &[], &kw);
        assert!(a.is_empty());
        assert_eq!(k.get("n"), Some(&json!(1)));
    }
}

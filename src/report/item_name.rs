//! Names for map items, for people: `python=3.12 db=mysql` for an item of
//! a product, the path for a glob or `lines` item, the value for an item
//! of a plain list. Shown beside `task[index]` in the text format, JUnit
//! testcase names, `--live` labels and the closing list of failures; never
//! in a record's fields.
//!
//! A record does not carry its item, only the arguments made of it, so
//! the item is taken back out of them: the arguments the task itself
//! gives are known from the job ([`ItemShape`]), the rest is the item's.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::Record;

/// What the task of a map gives its items' calls besides the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemShape {
    /// Positional arguments of the task, after the item's.
    pub args: usize,
    /// Keyword arguments of the task.
    pub kwargs: Vec<String>,
    /// The keys of a product, in order: each item is these kwargs.
    pub keys: Option<Vec<String>>,
    /// Whether items get a name at all: a range's number says no more
    /// than its index.
    pub named: bool,
}

/// The shape of each map task, by task id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemNames {
    tasks: Arc<HashMap<String, ItemShape>>,
}

impl ItemNames {
    /// Names for the map tasks given.
    pub fn new(shapes: impl IntoIterator<Item = (String, ItemShape)>) -> ItemNames {
        ItemNames {
            tasks: Arc::new(shapes.into_iter().collect()),
        }
    }

    /// The name of the item a record is for; `None` for what is not a
    /// named map item.
    pub fn of_record(&self, r: &Record) -> Option<String> {
        let index = r.index?;
        let shape = self.tasks.get(&r.task).filter(|s| s.named)?;
        let name = match &shape.keys {
            Some(keys) => keys
                .iter()
                .filter_map(|k| r.kwargs.get(k).map(|v| format!("{k}={}", scalar(v))))
                .collect::<Vec<_>>()
                .join(" "),
            None => {
                let own = r.args.len().saturating_sub(shape.args);
                let extra: Map<String, Value> = r
                    .kwargs
                    .iter()
                    .filter(|(k, _)| !shape.kwargs.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                match own {
                    0 if extra.is_empty() => return None,
                    0 => item_name(&Value::Object(extra)),
                    1 => item_name(&r.args[0]),
                    n => item_name(&Value::Array(r.args[..n].to_vec())),
                }
            }
        };
        shown(name, index)
    }

    /// The name of `item`, an item of map task `task`, as it runs (for
    /// `--live`).
    pub fn of_item(&self, task: &str, index: Option<u64>, item: Option<&Value>) -> Option<String> {
        let index = index?;
        self.tasks.get(task).filter(|s| s.named)?;
        shown(item_name(item?), index)
    }
}

/// A name only when it says more than the index.
fn shown(name: String, index: u64) -> Option<String> {
    let name = name.trim().to_string();
    (!name.is_empty() && name != index.to_string()).then_some(name)
}

/// The name of an item: a string as it is, a table as `k=v k=v`, an array
/// as its elements with spaces between, anything else as compact JSON.
pub fn item_name(item: &Value) -> String {
    match item {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}={}", scalar(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(" "),
        other => scalar(other),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `task[index] name`, or `task[index]`, or `task`; whole: what shows it
/// on a line of its own width cuts it.
pub fn label(task: &str, index: Option<u64>, name: Option<&str>) -> String {
    let mut label = String::with_capacity(task.len() + 24 + name.map_or(0, str::len));
    label.push_str(task);
    if let Some(i) = index {
        label.push('[');
        label.push_str(itoa::Buffer::new().format(i));
        label.push(']');
    }
    if let Some(name) = name {
        label.push(' ');
        label.push_str(name);
    }
    label
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::report::testing::sample;

    fn names() -> ItemNames {
        ItemNames::new([
            (
                "tests".to_string(),
                ItemShape {
                    args: 0,
                    kwargs: vec!["verbose".into()],
                    keys: Some(vec!["python".into(), "db".into()]),
                    named: true,
                },
            ),
            (
                "thumbs".to_string(),
                ItemShape {
                    args: 1,
                    kwargs: vec![],
                    keys: None,
                    named: true,
                },
            ),
            (
                "squares".to_string(),
                ItemShape {
                    args: 0,
                    kwargs: vec![],
                    keys: None,
                    named: false,
                },
            ),
        ])
    }

    #[test]
    fn a_product_item_is_its_keys_in_order() {
        let mut r = sample();
        r.task = "tests".into();
        r.args = vec![];
        r.kwargs = json!({"db": "mysql", "verbose": true, "python": 3.12})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            names().of_record(&r).as_deref(),
            Some("python=3.12 db=mysql")
        );
    }

    #[test]
    fn a_path_item_is_the_path_and_the_task_args_are_left_out() {
        let mut r = sample();
        r.args = vec![json!("data/cities/東京.csv"), json!("--fast")];
        assert_eq!(
            names().of_record(&r).as_deref(),
            Some("data/cities/東京.csv")
        );
        r.args = vec![json!(["a", 1]), json!("--fast")];
        assert_eq!(
            names().of_record(&r).as_deref(),
            Some("a 1"),
            "an array item"
        );
        r.args = vec![json!("a"), json!("b"), json!("--fast")];
        assert_eq!(names().of_record(&r).as_deref(), Some("a b"), "starmap");
    }

    #[test]
    fn ranges_and_plain_tasks_have_no_names() {
        let mut r = sample();
        r.task = "squares".into();
        assert_eq!(names().of_record(&r), None);
        r.task = "thumbs".into();
        r.index = None;
        assert_eq!(names().of_record(&r), None);
        r.index = Some(3);
        r.args = vec![json!(3), json!("--fast")];
        assert_eq!(names().of_record(&r), None, "the same as the index");
    }

    #[test]
    fn running_items_are_named_alike() {
        let n = names();
        let item = json!({"python": "3.12", "db": "pg"});
        assert_eq!(
            n.of_item("tests", Some(1), Some(&item)).as_deref(),
            Some("python=3.12 db=pg")
        );
        assert_eq!(n.of_item("squares", Some(1), Some(&json!(5))), None);
        assert_eq!(n.of_item("other", Some(1), Some(&json!("x"))), None);
    }

    #[test]
    fn labels() {
        assert_eq!(label("a", None, None), "a");
        assert_eq!(label("a", Some(2), Some("x=1")), "a[2] x=1");
    }
}

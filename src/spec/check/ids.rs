//! Task ids: the default-id rule, what makes an id valid, duplicates, and
//! the one rule that resolves a reference to a task (`after`, a
//! `{ result = ... }` argument, `map.result`, `map.stream`).

use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, HashSet};

use super::super::diagnostic::Diagnostic;
use super::super::doc_path::DocPath;
use super::super::job::TaskId;
use super::super::load::Pending;
use super::super::suggest::did_you_mean;
use super::checker::Checker;

/// The id of a task without `id`: `<function>-<n>`, `n` its place among
/// all `[[task]]` tables, from 0.
pub(crate) fn default_task_id(function: &str, n: usize) -> String {
    format!("{function}-{n}")
}

/// The place of task `task` (or of its `key`) in the file, for a
/// diagnostic found after the check, such as a dependency cycle.
pub fn task_diagnostic(task: TaskId, key: Option<&str>, message: impl Into<String>) -> Diagnostic {
    let path = DocPath::root().key("task").index(task.0);
    Diagnostic::at(key.map_or(path.clone(), |k| path.key(k)), message)
}

/// The task ids a reference may name.
pub(super) struct KnownIds<'a> {
    by_id: HashMap<&'a str, TaskId>,
    /// Ids of tasks that could not be read (already reported).
    broken: HashSet<&'a str>,
    /// The ids, sorted, for hints: made once, at the first unknown one.
    sorted: OnceCell<Vec<&'a str>>,
    /// The hint for each unknown id met so far: a file that names one
    /// missing task many times looks for the closest id once.
    hints: RefCell<HashMap<String, Option<String>>>,
}

impl KnownIds<'_> {
    /// "did you mean" the closest known id to `name`, if one is close.
    fn hint(&self, name: &str) -> Option<String> {
        if let Some(hint) = self.hints.borrow().get(name) {
            return hint.clone();
        }
        let sorted = self.sorted.get_or_init(|| {
            let mut names: Vec<&str> = self.by_id.keys().copied().collect();
            names.sort_unstable();
            names
        });
        let hint = did_you_mean(name, sorted);
        self.hints
            .borrow_mut()
            .insert(name.to_string(), hint.clone());
        hint
    }
}

impl Checker<'_> {
    /// Checks every id (its form, that it is not taken) and gives the ids
    /// references may name.
    pub(super) fn known_ids<'a>(&mut self, ids: &'a [String], pending: &[Pending]) -> KnownIds<'a> {
        let root = DocPath::root().key("task");
        let mut known = KnownIds {
            by_id: HashMap::with_capacity(ids.len()),
            broken: HashSet::new(),
            sorted: OnceCell::new(),
            hints: RefCell::new(HashMap::new()),
        };
        for (n, id) in ids.iter().enumerate() {
            if self.unreadable.tasks.contains_key(&n) {
                known.broken.insert(id);
                continue; // unreadable task, already reported
            }
            let path = root.index(n);
            if id.is_empty() || id.starts_with('@') || id.contains(':') {
                self.diags.push(Diagnostic::at(
                    path.key("id"),
                    format!("task id `{id}`: expected a non-empty name without `:` and not starting with `@`"),
                ));
            }
            if let Some(first) = known.by_id.get(id.as_str()) {
                let at = if pending[n].has_id {
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
                known.by_id.insert(id, TaskId(n));
            }
        }
        known
    }

    /// Resolves a reference to a task by id; an unknown one is reported at
    /// `at` (`what` names the key), with the closest id as a hint.
    pub(super) fn resolve_task(
        &mut self,
        known: &KnownIds<'_>,
        name: &str,
        at: DocPath,
        what: &str,
    ) -> Option<TaskId> {
        if let Some(id) = known.by_id.get(name) {
            return Some(*id);
        }
        if known.broken.contains(name) {
            return None; // that task has an error already reported
        }
        let mut d = Diagnostic::at(at, format!("unknown task id `{name}` in `{what}`"));
        if let Some(h) = known.hint(name) {
            d = d.with_help(h);
        }
        self.diags.push(d);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, errors, help};

    #[test]
    fn default_ids_count_every_task_from_zero() {
        let text = "version = 1\n\
            [[task]]\nfunction = \"noop\"\n\
            [[task]]\nfunction = \"noop\"\n\
            [[task]]\nid = \"noop-1\"\nfunction = \"noop\"\n";
        assert_eq!(errors(text), [at("duplicate task id `noop-1`", 7, 6)]);
    }

    #[test]
    fn a_duplicate_default_id_points_at_the_task() {
        let text = "version = 1\n\
            [[task]]\nid = \"echo-1\"\nfunction = \"noop\"\n\
            [[task]]\nfunction = \"echo\"\n";
        assert_eq!(errors(text), [at("duplicate task id `echo-1`", 5, 1)]);
    }

    #[test]
    fn ids_have_no_colon_and_no_leading_at() {
        let text = "version = 1\n\
            [[task]]\nid = \"@shared\"\nfunction = \"noop\"\n\
            [[task]]\nid = \"a:b\"\nfunction = \"noop\"\n";
        let why = "expected a non-empty name without `:` and not starting with `@`";
        assert_eq!(
            errors(text),
            [
                at(&format!("task id `@shared`: {why}"), 3, 6),
                at(&format!("task id `a:b`: {why}"), 6, 6),
            ]
        );
    }

    #[test]
    fn an_unknown_id_gets_the_closest_one() {
        let text = "version = 1\n\
            [[task]]\nid = \"build\"\nfunction = \"noop\"\n\
            [[task]]\nfunction = \"noop\"\nafter = [\"biuld\"]\n";
        assert_eq!(
            errors(text),
            [at("unknown task id `biuld` in `after`", 7, 10)]
        );
        assert_eq!(help(text).as_deref(), Some("did you mean `build`?"));
    }

    #[test]
    fn a_reference_to_a_task_that_could_not_be_read_is_not_unknown() {
        let text = "version = 1\n\
            [[task]]\nid = \"a\"\nfunction = \"noop\"\nretries = \"x\"\n\
            [[task]]\nfunction = \"noop\"\nafter = [\"a\"]\n";
        let found = errors(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].1, found[0].2), (5, 11));
    }
}

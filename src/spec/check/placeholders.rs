//! Placeholders with no value: every `{0}`, `{name}`, `{item...}` and
//! `{vars.NAME}` of a command function, and of a task's `inputs` and
//! `outputs`, must have one in each call the job makes (each item of a
//! static map, the callbacks, the initializer).

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::diagnostic::Diagnostic;
use super::super::doc_path::DocPath;
use super::super::job::{FunctionId, FunctionKind, MapSource, Task};
use super::super::load::backticked;
use super::super::template::{Part, Template};
use super::checker::Checker;
use super::values::compact;

/// What a call provides to a template: `None` when unknown until run time.
pub(super) struct Shape {
    args: Option<usize>,
    kwargs: Option<Vec<String>>,
    item: bool,
}

impl Shape {
    pub(super) fn fixed(args: usize, kwargs: Vec<String>, item: bool) -> Shape {
        Shape {
            args: Some(args),
            kwargs: Some(kwargs),
            item,
        }
    }

    /// A map item: an array is the positional args, a table the kwargs,
    /// anything else `{0}` and `{item}`; the task's own args follow.
    fn for_item(item: &Value, nargs: usize, kwargs: &[String]) -> Shape {
        match item {
            Value::Array(a) => Shape::fixed(a.len() + nargs, kwargs.to_vec(), true),
            Value::Object(o) => {
                let mut names = kwargs.to_vec();
                names.extend(o.keys().cloned());
                Shape::fixed(nargs, names, true)
            }
            _ => Shape::fixed(1 + nargs, kwargs.to_vec(), true),
        }
    }
}

impl Checker<'_> {
    /// Checks that every placeholder of the task's function (and callbacks)
    /// has a value, for every item of a static map.
    pub(super) fn task_placeholders(&mut self, task: &Task, id: &str, path: &DocPath) {
        let command = matches!(
            self.functions[task.function.0].kind,
            FunctionKind::Command(_)
        );
        if command || !task.inputs().is_empty() || !task.outputs().is_empty() {
            self.unit_shapes(task, id, path);
        }
        self.callback_placeholders(task, id);
    }

    /// The units of a task, by what each provides.
    fn unit_shapes(&mut self, task: &Task, id: &str, path: &DocPath) {
        let kwargs: Vec<String> = task.kwargs().iter().map(|(k, _)| k.clone()).collect();
        let nargs = task.args.len();
        let who = format!("task `{id}`");
        match task.map() {
            None => {
                let shape = Shape::fixed(nargs, kwargs, false);
                self.unit_placeholders(task, path, &shape, &who);
            }
            Some(MapSource::Items(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let shape = Shape::for_item(item, nargs, &kwargs);
                    let before = self.diags.len();
                    self.unit_placeholders(
                        task,
                        path,
                        &shape,
                        &format!("{who}, map item {i} ({})", compact(item)),
                    );
                    if self.diags.len() > before {
                        break; // one item is enough to show the problem
                    }
                }
            }
            Some(MapSource::Product(axes)) => {
                let mut names = kwargs.clone();
                names.extend(axes.iter().map(|(k, _)| k.clone()));
                let shape = Shape::fixed(nargs, names, true);
                self.unit_placeholders(task, path, &shape, &who);
            }
            Some(MapSource::Range { .. } | MapSource::Lines(_) | MapSource::Glob(_)) => {
                let shape = Shape::fixed(nargs + 1, kwargs, true);
                self.unit_placeholders(task, path, &shape, &who);
            }
            Some(MapSource::Result(_) | MapSource::Stream(_)) => {
                // Items are known only at run time: check what does not
                // depend on their shape.
                let shape = Shape {
                    args: None,
                    kwargs: None,
                    item: true,
                };
                self.unit_placeholders(task, path, &shape, &who);
            }
        }
    }

    /// The placeholders a unit of `task` fills: its function's, its
    /// `inputs`' and its `outputs`'.
    fn unit_placeholders(&mut self, task: &Task, path: &DocPath, shape: &Shape, who: &str) {
        self.placeholders(task.function, shape, who);
        for (key, templates) in [("inputs", task.inputs()), ("outputs", task.outputs())] {
            for (i, (placeholder, why)) in missing_in(templates, shape, who, &self.vars) {
                self.diags.push(
                    Diagnostic::at(
                        path.key(key).index(i),
                        format!("placeholder `{placeholder}` has no value in `{key}` of {who}"),
                    )
                    .with_help(why),
                );
            }
        }
    }

    /// Checks the placeholders of a task's callbacks: they get one arg.
    pub(super) fn callback_placeholders(&mut self, task: &Task, id: &str) {
        let one = Shape::fixed(1, Vec::new(), false);
        if let Some(cb) = task.callback() {
            self.placeholders(cb, &one, &format!("the callback of task `{id}`"));
        }
        if let Some(cb) = task.error_callback() {
            self.placeholders(cb, &one, &format!("the error callback of task `{id}`"));
        }
    }

    /// Checks a command function's templates against what a call provides.
    pub(super) fn placeholders(&mut self, function: FunctionId, shape: &Shape, who: &str) {
        let f = &self.functions[function.0];
        let FunctionKind::Command(templates) = &f.kind else {
            return;
        };
        let at = DocPath::root().key("functions").key(&f.name).key("command");
        for (i, (placeholder, why)) in missing_in(templates, shape, who, &self.vars) {
            self.diags.push(
                Diagnostic::at(
                    at.index(i),
                    format!("placeholder `{placeholder}` has no value in {who}"),
                )
                .with_help(why),
            );
        }
    }
}

/// The placeholders of `templates` with no value in a call of `shape`:
/// the template's index, the placeholder as written and why; each once.
fn missing_in(
    templates: &[Template],
    shape: &Shape,
    who: &str,
    vars: &BTreeMap<String, String>,
) -> Vec<(usize, (String, String))> {
    let mut found = Vec::new();
    for (i, t) in templates.iter().enumerate() {
        for part in t.parts() {
            if let Some(m) = missing_value(part, shape, who, vars) {
                if !found.contains(&(i, m.clone())) {
                    found.push((i, m));
                }
            }
        }
    }
    found
}

/// A placeholder `part` has no value in a call of `shape`: the placeholder
/// as written and why.
fn missing_value(
    part: &Part,
    shape: &Shape,
    who: &str,
    vars: &BTreeMap<String, String>,
) -> Option<(String, String)> {
    match part {
        Part::Literal(_) => None,
        Part::Positional(p) => match shape.args {
            Some(n) if *p >= n => Some((
                format!("{{{p}}}"),
                format!(
                    "{who} passes {n} positional arg{}",
                    if n == 1 { "" } else { "s" }
                ),
            )),
            _ => None,
        },
        Part::Keyword(k) => match &shape.kwargs {
            Some(names) if !names.contains(k) => Some((
                format!("{{{k}}}"),
                if names.is_empty() {
                    format!("{who} passes no kwargs")
                } else {
                    let n: Vec<&str> = names.iter().map(String::as_str).collect();
                    format!("{who} passes the kwargs {}", backticked(&n))
                },
            )),
            _ => None,
        },
        Part::Item(field) if !shape.item => Some((
            format!("{{{}}}", field.placeholder()),
            format!("{who} has no `map`, so there is no item"),
        )),
        Part::Item(_) => None,
        Part::Var(v) if !vars.contains_key(v) => Some((
            format!("{{vars.{v}}}"),
            "`[vars]` does not declare it".into(),
        )),
        Part::Var(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, errors, help};

    const ECHO: &str = "version = 1\n[vars]\nout = \"o\"\n[functions.f]\n\
        command = [\"echo\", \"{0}\", \"{n}\", \"{item.stem}\", \"{vars.out}\", \"{vars.dir}\"]\n";

    #[test]
    fn each_placeholder_needs_a_value() {
        let text = format!("{ECHO}[[task]]\nid = \"t\"\nfunction = \"f\"\n");
        assert_eq!(
            errors(&text),
            [
                at("placeholder `{0}` has no value in task `t`", 5, 20),
                at("placeholder `{n}` has no value in task `t`", 5, 27),
                at("placeholder `{item.stem}` has no value in task `t`", 5, 34),
                at("placeholder `{vars.dir}` has no value in task `t`", 5, 63),
            ]
        );
    }

    #[test]
    fn one_item_of_a_static_map_is_enough_to_show_the_problem() {
        let text = "version = 1\n[functions.f]\ncommand = [\"echo\", \"{0}\", \"{n}\"]\n\
            [[task]]\nid = \"t\"\nfunction = \"f\"\nkwargs = { n = 1 }\n\
            map = [[1], [2, 3], [], []]\n";
        assert_eq!(
            errors(text),
            [at(
                "placeholder `{0}` has no value in task `t`, map item 2 ([])",
                3,
                20
            )]
        );
        assert_eq!(
            help(text).as_deref(),
            Some("task `t`, map item 2 ([]) passes 0 positional args")
        );
    }

    #[test]
    fn a_callback_gets_one_positional_arg() {
        let text = "version = 1\n[functions.tell]\ncommand = [\"echo\", \"{0}\", \"{1}\"]\n\
            [[task]]\nid = \"t\"\nfunction = \"noop\"\ncallback = \"tell\"\n";
        assert_eq!(
            errors(text),
            [at(
                "placeholder `{1}` has no value in the callback of task `t`",
                3,
                27
            )]
        );
    }

    #[test]
    fn outputs_take_the_placeholders_of_a_unit() {
        let text = "version = 1\n[[task]]\nid = \"t\"\nfunction = \"noop\"\n\
            outputs = [\"{item}.out\"]\n";
        assert_eq!(
            errors(text),
            [at(
                "placeholder `{item}` has no value in `outputs` of task `t`",
                5,
                12
            )]
        );
        assert_eq!(
            help(text).as_deref(),
            Some("task `t` has no `map`, so there is no item")
        );
    }
}

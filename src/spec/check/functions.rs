//! `[functions.NAME]`: exactly one of `command`, `shell`, `builtin`,
//! `python`; and the one rule that resolves a function name (a task's
//! `function`, a callback, an initializer): a declared function first,
//! then a builtin.

use std::collections::BTreeMap;

use super::super::diagnostic::Diagnostic;
use super::super::doc_path::DocPath;
use super::super::job::{Function, FunctionId, FunctionKind, PythonTarget, Returns};
use super::super::load::backticked;
use super::super::raw::{RawFunction, RawJob};
use super::super::suggest::did_you_mean;
use super::super::template::Template;
use super::checker::Checker;

impl Checker<'_> {
    /// Checks every `[functions.NAME]` and gives each its id.
    pub(super) fn declare_functions(&mut self, raw: &RawJob) {
        for (name, f) in &raw.functions {
            let path = DocPath::root().key("functions").key(name);
            let function = self.function(name, f, &path);
            let id = FunctionId(self.functions.len());
            self.functions.push(function);
            self.function_names.insert(name.clone(), id);
        }
    }

    fn function(&mut self, name: &str, f: &RawFunction, path: &DocPath) -> Function {
        let given: Vec<&str> = [
            f.command.as_ref().map(|_| "command"),
            f.shell.as_ref().map(|_| "shell"),
            f.builtin.as_ref().map(|_| "builtin"),
            f.python.as_ref().map(|_| "python"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let kind = match (given.len(), &f.command, &f.shell, &f.builtin) {
            (1, None, None, None) => {
                self.python_function(name, f.python.as_deref().unwrap_or_default(), f, path)
            }
            (1, Some(argv), _, _) => self.command(argv, path),
            (1, _, Some(script), _) => FunctionKind::Shell(script.clone()),
            (1, _, _, Some(b)) => {
                if !self.is_builtin(b) {
                    self.diags.push(
                        Diagnostic::at(path.key("builtin"), format!("unknown builtin `{b}`"))
                            .with_help(did_you_mean(b, &self.builtin_names()).unwrap_or_else(
                                || {
                                    format!(
                                        "the builtins are {}",
                                        backticked(&self.builtin_names())
                                    )
                                },
                            )),
                    );
                }
                FunctionKind::Builtin(b.clone())
            }
            (0, ..) => {
                self.diags.push(
                    Diagnostic::at(
                        path.clone(),
                        format!("function `{name}` has none of `command`, `shell`, `builtin`, `python`: expected exactly one"),
                    )
                    .with_help("add `command = [...]`, `shell = \"...\"`, `builtin = \"...\"` or `python = \"MODULE:NAME\"`"),
                );
                FunctionKind::Shell(String::new())
            }
            _ => {
                self.diags.push(Diagnostic::at_key(
                    path.key(given[1]),
                    format!(
                        "function `{name}` has both `{}` and `{}`: expected exactly one of `command`, `shell`, `builtin`, `python`",
                        given[0], given[1]
                    ),
                ));
                FunctionKind::Shell(String::new())
            }
        };
        Function {
            name: name.to_string(),
            kind,
            returns: f.returns.unwrap_or_default(),
            timeout: self.duration(f.timeout.as_deref(), || path.key("timeout")),
            retries: f
                .retries
                .and_then(|r| self.count(r, &path.key("retries"), 0, "retries")),
            env: f.env.clone().unwrap_or_default(),
            cwd: f.cwd.as_ref().map(|c| self.dir.join(c)),
        }
    }

    fn python_function(
        &mut self,
        name: &str,
        text: &str,
        f: &RawFunction,
        path: &DocPath,
    ) -> FunctionKind {
        if f.returns.is_some() {
            self.diags.push(
                Diagnostic::at_key(
                    path.key("returns"),
                    format!(
                        "`returns` on the Python function `{name}`: its value is what it returns"
                    ),
                )
                .with_help(
                    "remove `returns`: a Python function's return value is turned into JSON",
                ),
            );
        }
        match PythonTarget::parse(text) {
            Ok(target) => {
                self.python_functions
                    .push((target.module.clone(), path.key("python")));
                FunctionKind::Python(target)
            }
            Err(e) => {
                self.diags.push(Diagnostic::at(path.key("python"), e));
                FunctionKind::Shell(String::new())
            }
        }
    }

    fn command(&mut self, argv: &[String], path: &DocPath) -> FunctionKind {
        if argv.is_empty() {
            self.diags.push(
                Diagnostic::at(
                    path.key("command"),
                    "an empty `command`: expected a program and its arguments",
                )
                .with_help("write it as an argv array, like [\"echo\", \"{0}\"]"),
            );
        }
        let templates = argv
            .iter()
            .enumerate()
            .map(|(i, arg)| {
                self.template(arg, path.key("command").index(i))
                    .unwrap_or_else(Template::empty)
            })
            .collect();
        FunctionKind::Command(templates)
    }

    /// A parsed template; one that does not parse is reported at `at`.
    pub(super) fn template(&mut self, text: &str, at: DocPath) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                self.diags.push(
                    Diagnostic::at(at, e.message)
                        .with_label(format!("at character {}", e.offset + 1)),
                );
                None
            }
        }
    }

    fn is_builtin(&self, name: &str) -> bool {
        self.opts.builtins.iter().any(|b| b == name)
    }

    fn builtin_names(&self) -> Vec<&str> {
        self.opts.builtins.iter().map(String::as_str).collect()
    }

    /// Resolves a function name: declared ones first, then builtins. An
    /// unknown one is reported at `at()`, with the closest declared
    /// function or builtin as a hint.
    pub(super) fn resolve_function(
        &mut self,
        name: &str,
        at: impl FnOnce() -> DocPath,
        what: &str,
    ) -> Option<FunctionId> {
        if let Some(id) = self.function_names.get(name) {
            return Some(*id);
        }
        if self.unreadable.functions.contains(name) {
            return None; // declared, but its table has an error already reported
        }
        if self.is_builtin(name) {
            let id = FunctionId(self.functions.len());
            self.functions.push(Function {
                name: name.to_string(),
                kind: FunctionKind::Builtin(name.to_string()),
                returns: Returns::default(),
                timeout: None,
                retries: None,
                env: BTreeMap::new(),
                cwd: None,
            });
            self.function_names.insert(name.to_string(), id);
            return Some(id);
        }
        let mut names: Vec<&str> = self.function_names.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut candidates = names.clone();
        candidates.extend(self.builtin_names());
        let help = did_you_mean(name, &candidates).unwrap_or_else(|| {
            if names.is_empty() {
                "declare it under `[functions.NAME]`, or use a builtin".to_string()
            } else {
                format!("declared functions: {}", backticked(&names))
            }
        });
        self.diags.push(
            Diagnostic::at(at(), format!("unknown function `{name}` in `{what}`")).with_help(help),
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, errors, help};

    #[test]
    fn a_function_has_exactly_one_kind() {
        assert_eq!(
            errors("version = 1\n[functions.f]\ntimeout = \"1s\"\n"),
            [at(
                "function `f` has none of `command`, `shell`, `builtin`, `python`: expected exactly one",
                2,
                1
            )]
        );
        assert_eq!(
            errors("version = 1\n[functions.f]\ncommand = [\"true\"]\nshell = \"true\"\n"),
            [at(
                "function `f` has both `command` and `shell`: expected exactly one of `command`, `shell`, `builtin`, `python`",
                4,
                1
            )]
        );
    }

    #[test]
    fn an_empty_command_and_a_bad_template() {
        assert_eq!(
            errors("version = 1\n[functions.f]\ncommand = []\n"),
            [at(
                "an empty `command`: expected a program and its arguments",
                3,
                11
            )]
        );
        let found = errors("version = 1\n[functions.f]\ncommand = [\"echo\", \"{0\"]\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].1, found[0].2), (3, 20));
    }

    #[test]
    fn a_misspelt_builtin_gets_the_builtin() {
        let table = "version = 1\n[functions.f]\nbuiltin = \"squre\"\n";
        assert_eq!(errors(table), [at("unknown builtin `squre`", 3, 11)]);
        assert_eq!(help(table).as_deref(), Some("did you mean `square`?"));
        // Named by a task, the builtins are candidates as well as the
        // declared functions.
        let task = "version = 1\n[functions.sq]\nbuiltin = \"square\"\n\
            [[task]]\nfunction = \"squre\"\n";
        assert_eq!(
            errors(task),
            [at("unknown function `squre` in `function`", 5, 12)]
        );
        assert_eq!(help(task).as_deref(), Some("did you mean `square`?"));
    }

    #[test]
    fn an_unknown_function_lists_the_declared_ones() {
        let text = "version = 1\n[functions.build]\nshell = \"true\"\n\
            [[task]]\nfunction = \"deploy\"\n";
        assert_eq!(
            errors(text),
            [at("unknown function `deploy` in `function`", 5, 12)]
        );
        assert_eq!(help(text).as_deref(), Some("declared functions: `build`"));
    }

    #[test]
    fn python_functions() {
        assert_eq!(
            errors("version = 1\n[functions.f]\npython = \"tasks\"\n"),
            [at(
                "`tasks` is not `MODULE:NAME`: expected a module and a function, like `tasks:work`",
                3,
                10
            )]
        );
        assert_eq!(
            errors("version = 1\n[functions.f]\npython = \"tasks:work\"\nreturns = \"json\"\n"),
            [at(
                "`returns` on the Python function `f`: its value is what it returns",
                4,
                1
            )]
        );
    }
}

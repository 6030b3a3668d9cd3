//! `[vars]` and the command line's `--set NAME=VALUE` overrides.
//!
//! A `--set` has no place in the file. One that names no variable is shown
//! at the `[vars]` table it should be declared in (its header); when the
//! file has no `[vars]`, at the top of the file, where such a table would
//! go. Either way the message says the name came from the command line.

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::diagnostic::Diagnostic;
use super::super::doc_path::DocPath;
use super::super::load::backticked;
use super::super::raw::RawJob;
use super::super::suggest::did_you_mean;
use super::checker::Checker;

impl Checker<'_> {
    /// The variables' text, `--set` applied.
    pub(super) fn vars(&mut self, raw: &RawJob) -> BTreeMap<String, String> {
        let table = DocPath::root().key("vars");
        let mut vars = BTreeMap::new();
        for (k, v) in &raw.vars {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    self.diags.push(Diagnostic::at(
                        table.key(k),
                        format!("`vars.{k}` must be a string, number or boolean"),
                    ));
                    continue;
                }
            };
            vars.insert(k.clone(), text);
        }
        for (k, v) in &self.opts.var_overrides {
            if vars.contains_key(k) {
                vars.insert(k.clone(), v.clone());
                continue;
            }
            let names: Vec<&str> = raw.vars.keys().map(String::as_str).collect();
            let message =
                format!("`--set {k}=...` on the command line: `[vars]` declares no variable `{k}`");
            let help = did_you_mean(k, &names).unwrap_or_else(|| {
                if names.is_empty() {
                    format!("declare it under `[vars]`, as `{k} = ...`, to set it")
                } else {
                    format!("declared variables: {}", backticked(&names))
                }
            });
            // At the `[vars]` table; with none in the file, its path
            // resolves to the top of the file.
            let d = Diagnostic::at(table.clone(), message).with_help(help);
            self.diags.push(d);
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::testing::{at, errors, errors_in};

    fn with_sets(text: &str, sets: &[(&str, &str)]) -> Vec<(String, usize, usize)> {
        errors_in(Path::new("."), text, sets)
    }

    #[test]
    fn a_var_is_a_string_number_or_boolean() {
        assert_eq!(
            errors("version = 1\n[vars]\nok = 1\nbad = [1]\n"),
            [at("`vars.bad` must be a string, number or boolean", 4, 7)]
        );
    }

    #[test]
    fn an_unknown_set_points_at_the_vars_table() {
        let text = "version = 1\nname = \"x\"\n\n[vars]\nwidth = \"200\"\n";
        assert_eq!(
            with_sets(text, &[("widht", "400"), ("width", "300")]),
            [at(
                "`--set widht=...` on the command line: `[vars]` declares no variable `widht`",
                4,
                1
            )]
        );
    }

    #[test]
    fn an_unknown_set_without_vars_points_at_the_top() {
        let text = "version = 1\n[[task]]\nfunction = \"noop\"\n";
        assert_eq!(
            with_sets(text, &[("n", "1")]),
            [at(
                "`--set n=...` on the command line: `[vars]` declares no variable `n`",
                1,
                1
            )]
        );
    }
}

//! A task's `inputs` and `outputs`: globs that may hold the placeholders
//! of a command, filled for each unit.

use super::super::doc_path::DocPath;
use super::super::template::{Part, Template};
use super::checker::Checker;

impl Checker<'_> {
    /// The patterns of `inputs` or `outputs` (`key`) of the task at
    /// `task`, parsed.
    pub(super) fn unit_files(
        &mut self,
        patterns: &[String],
        task: &DocPath,
        key: &str,
    ) -> Vec<Template> {
        if patterns.is_empty() {
            return Vec::new();
        }
        let path = task.key(key);
        let mut out = Vec::with_capacity(patterns.len());
        for (i, pattern) in patterns.iter().enumerate() {
            let at = path.index(i);
            let Some(t) = self.template(pattern, at.clone()) else {
                out.push(Template::empty());
                continue;
            };
            // The literal text is the glob; placeholders are filled with
            // escaped values, so they never add wildcards.
            let literal: String = t
                .parts()
                .iter()
                .map(|p| match p {
                    Part::Literal(s) => s.as_str(),
                    _ => "x",
                })
                .collect();
            self.valid_glob(&literal, pattern, at);
            out.push(t);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, errors};

    #[test]
    fn inputs_and_outputs_are_globs_with_placeholders() {
        let text = "version = 1\n[[task]]\nfunction = \"echo\"\nmap = [\"a\"]\n\
            inputs = [\"{item}[\", \"ok/*.txt\"]\noutputs = [\"out/{item.stem\"]\n";
        assert_eq!(
            errors(text),
            [
                at(
                    "`{item}[` is not a valid glob: invalid range pattern",
                    5,
                    11
                ),
                at("an unclosed `{`: write `{{` for a literal brace", 6, 12),
            ]
        );
    }

    #[test]
    fn a_placeholder_never_makes_a_glob_invalid() {
        let text = "version = 1\n[[task]]\nfunction = \"echo\"\nmap = [\"[x\"]\n\
            inputs = [\"{item}\"]\n";
        assert_eq!(errors(text), []);
    }
}

//! A task's `map`: its source checked (a range's numbers, a glob's
//! pattern, a product's axes, the task a `result` or `stream` names), and
//! for a task that waits for nothing, its files: a glob that matches no
//! file and a `lines` file that cannot be read are errors before the run,
//! at the pattern or the file name. (A task that waits for another may
//! map over files that task makes; its files are looked at when it
//! starts.)

use serde_json::Value;

use super::super::diagnostic::Diagnostic;
use super::super::doc_path::DocPath;
use super::super::file_sources::{GlobError, glob_error, glob_matches, open_lines};
use super::super::job::{MapSource, Task};
use super::super::map_source::RawMap;
use super::checker::Checker;
use super::ids::KnownIds;
use super::values::kind_of;

impl Checker<'_> {
    /// The map source at `path`, or `None` when it has an error (reported).
    pub(super) fn map_source(
        &mut self,
        map: &RawMap,
        path: &DocPath,
        known: &KnownIds<'_>,
    ) -> Option<MapSource> {
        Some(match map {
            RawMap::Items(items) => MapSource::Items(items.clone()),
            RawMap::Range(r) => {
                let (start, stop, step) = match r.as_slice() {
                    [start, stop] => (*start, *stop, 1),
                    [start, stop, step] => (*start, *stop, *step),
                    _ => {
                        self.diags.push(Diagnostic::at(
                            path.key("range"),
                            format!("a range has 2 or 3 numbers, [start, stop] or [start, stop, step]; found {}", r.len()),
                        ));
                        return None;
                    }
                };
                if step == 0 {
                    self.diags.push(Diagnostic::at(
                        path.key("range").index(2),
                        "a range's step must not be 0",
                    ));
                    return None;
                }
                MapSource::Range { start, stop, step }
            }
            RawMap::Lines(file) => MapSource::Lines(self.dir.join(file)),
            RawMap::Glob(pattern) => {
                if !self.valid_glob(pattern, pattern, path.key("glob")) {
                    return None;
                }
                MapSource::Glob(pattern.clone())
            }
            RawMap::Product(table) => {
                let mut axes = Vec::new();
                for (k, v) in table {
                    match v {
                        Value::Array(values) => axes.push((k.clone(), values.clone())),
                        other => {
                            self.diags.push(Diagnostic::at(
                                path.key("product").key(k),
                                format!(
                                    "`product.{k}` must be an array of values, found {}",
                                    kind_of(other)
                                ),
                            ));
                            return None;
                        }
                    }
                }
                MapSource::Product(axes)
            }
            RawMap::Result(id) => {
                MapSource::Result(self.resolve_task(known, id, path.key("result"), "map.result")?)
            }
            RawMap::Stream(id) => {
                MapSource::Stream(self.resolve_task(known, id, path.key("stream"), "map.stream")?)
            }
        })
    }

    /// The job file's folder, for a help line.
    fn folder(&self) -> String {
        if self.dir == std::path::Path::new(".") {
            "the job file's folder, the current one".to_string()
        } else {
            format!("the job file's folder, `{}`", self.dir.display())
        }
    }

    /// Whether `literal` is a valid glob; when not, says so at `at`,
    /// naming the pattern as written (`shown`).
    pub(super) fn valid_glob(&mut self, literal: &str, shown: &str, at: DocPath) -> bool {
        match glob_error(literal) {
            None => true,
            Some(why) => {
                self.diags.push(Diagnostic::at(
                    at,
                    format!("`{shown}` is not a valid glob: {why}"),
                ));
                false
            }
        }
    }

    /// The files of a `glob` or `lines` map of a task (at `at`) that waits
    /// for nothing: they must be there now, as nothing will make them.
    pub(super) fn map_files(&mut self, task: &Task, id: &str, at: &DocPath) {
        let path = || at.key("map");
        match task.map() {
            Some(MapSource::Glob(pattern)) => match glob_matches(pattern, &self.dir) {
                Ok(_) => {}
                Err(GlobError::NoMatch { .. }) => self.diags.push(
                    Diagnostic::at(
                        path().key("glob"),
                        format!("`{pattern}` matches no file: task `{id}` would have no item"),
                    )
                    .with_help(format!(
                        "the pattern is matched in {}; a map needs at least one item",
                        self.folder()
                    )),
                ),
                Err(e) => self
                    .diags
                    .push(Diagnostic::at(path().key("glob"), e.to_string())),
            },
            Some(MapSource::Lines(file)) => {
                if let Err(why) = open_lines(file) {
                    self.diags.push(
                        Diagnostic::at(
                            path().key("lines"),
                            format!(
                                "cannot read {} for the `map` of task `{id}`: {why}",
                                file.display(),
                            ),
                        )
                        .with_help(format!(
                            "the file is looked for in {}; an empty one is fine (no items)",
                            self.folder()
                        )),
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, errors, errors_in};

    fn task(map: &str) -> String {
        format!("version = 1\n[[task]]\nid = \"t\"\nfunction = \"echo\"\nmap = {map}\n")
    }

    #[test]
    fn ranges() {
        assert_eq!(
            errors(&task("{ range = [1] }")),
            [at(
                "a range has 2 or 3 numbers, [start, stop] or [start, stop, step]; found 1",
                5,
                17
            )]
        );
        assert_eq!(
            errors(&task("{ range = [0, 10, 0] }")),
            [at("a range's step must not be 0", 5, 25)]
        );
        assert_eq!(errors(&task("{ range = [10, 0, -3] }")), []);
    }

    #[test]
    fn a_product_maps_over_arrays() {
        assert_eq!(
            errors(&task("{ product = { a = [1], b = 2 } }")),
            [at(
                "`product.b` must be an array of values, found a number",
                5,
                34
            )]
        );
    }

    #[test]
    fn a_bad_glob_is_reported_once() {
        assert_eq!(
            errors(&task("{ glob = \"a[\" }")),
            [at("`a[` is not a valid glob: invalid range pattern", 5, 16)]
        );
    }

    #[test]
    fn result_and_stream_name_a_task() {
        assert_eq!(
            errors(&task("{ result = \"nosuch\" }")),
            [at("unknown task id `nosuch` in `map.result`", 5, 18)]
        );
        assert_eq!(
            errors(&task("{ stream = \"nosuch\" }")),
            [at("unknown task id `nosuch` in `map.stream`", 5, 18)]
        );
    }

    #[test]
    fn a_glob_that_matches_nothing_is_an_error() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        assert_eq!(
            errors_in(dir.path(), &task("{ glob = \"in/*.txt\" }"), &[]),
            [at(
                "`in/*.txt` matches no file: task `t` would have no item",
                5,
                16
            )]
        );
        std::fs::create_dir(dir.path().join("in")).expect("a folder");
        std::fs::write(dir.path().join("in/a.txt"), "").expect("a file");
        assert_eq!(
            errors_in(dir.path(), &task("{ glob = \"in/*.txt\" }"), &[]),
            []
        );
    }

    #[test]
    fn a_missing_lines_file_is_an_error_and_an_empty_one_is_not() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let missing = dir.path().join("items.txt");
        assert_eq!(
            errors_in(dir.path(), &task("{ lines = \"items.txt\" }"), &[]),
            [at(
                &format!(
                    "cannot read {} for the `map` of task `t`: No such file or directory",
                    missing.display()
                ),
                5,
                17
            )]
        );
        std::fs::write(&missing, "").expect("a file");
        assert_eq!(
            errors_in(dir.path(), &task("{ lines = \"items.txt\" }"), &[]),
            []
        );
    }

    #[test]
    fn a_task_that_waits_for_an_unknown_task_still_waits() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let text = "version = 1\n[[task]]\nfunction = \"echo\"\nafter = [\"nosuch\"]\n\
            map = { glob = \"out/*\" }\n";
        assert_eq!(
            errors_in(dir.path(), text, &[]),
            [at("unknown task id `nosuch` in `after`", 4, 10)]
        );
    }

    #[test]
    fn the_files_of_a_task_that_waits_are_looked_at_when_it_starts() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let text = "version = 1\n\
            [[task]]\nid = \"make\"\nfunction = \"noop\"\n\
            [[task]]\nfunction = \"echo\"\nafter = [\"make\"]\nmap = { glob = \"out/*\" }\n\
            [[task]]\nfunction = \"echo\"\nargs = [{ result = \"make\" }]\nmap = { lines = \"list\" }\n\
            [[task]]\nfunction = \"noop\"\nmode = \"blocking\"\n\
            [[task]]\nfunction = \"echo\"\nmap = { glob = \"later/*\" }\n";
        assert_eq!(errors_in(dir.path(), text, &[]), []);
        // The blocking task itself waits for nothing.
        let text = "version = 1\n[[task]]\nfunction = \"echo\"\nmode = \"blocking\"\n\
            map = { glob = \"out/*\" }\n";
        assert_eq!(
            errors_in(dir.path(), text, &[]),
            [at(
                "`out/*` matches no file: task `echo-0` would have no item",
                5,
                16
            )]
        );
    }
}

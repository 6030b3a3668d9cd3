//! `[[task]]`: what a task calls, where, after what, with which arguments,
//! and the defaults it takes from its function and its pool.

use std::sync::LazyLock;

use super::super::diagnostic::Diagnostic;
use super::super::doc_path::DocPath;
use super::super::job::{Mode, Pool, PoolId, Task};
use super::super::load::{LoadedTasks, backticked};
use super::super::raw::RawTask;
use super::super::suggest::did_you_mean;
use super::args::reads_a_result;
use super::checker::Checker;
use super::ids::KnownIds;

/// The keys of a task that has none beyond `id`, `function` and `args`.
static PLAIN: LazyLock<RawTask> = LazyLock::new(RawTask::default);

impl Checker<'_> {
    /// Finishes every task the loader made, in file order; one that could
    /// not be read keeps its place with nothing resolved, so that ids keep
    /// their places.
    pub(super) fn tasks(&mut self, loaded: LoadedTasks, pools: &[Pool]) -> Vec<Task> {
        let LoadedTasks {
            mut tasks,
            pending,
            function_names,
            ..
        } = loaded;
        let root = DocPath::root().key("task");
        // The ids aside, for references to name (a task may refer to one
        // declared after it); each goes back to its task at the end.
        let ids: Vec<String> = tasks
            .iter_mut()
            .map(|t| std::mem::take(&mut t.id))
            .collect();
        let known = self.known_ids(&ids, &pending);
        // Whether a blocking task came before: the tasks after it wait.
        let mut blocked = false;
        for (n, (task, mut p)) in tasks.iter_mut().zip(pending).enumerate() {
            if self.unreadable.tasks.contains_key(&n) {
                continue;
            }
            let path = root.index(n);
            let rest = p.take_raw();
            let t = rest.as_ref().unwrap_or(&PLAIN);
            // As written: a misspelt `after` still says the task waits.
            let waits = blocked || !t.after.is_empty() || reads_a_result(&task.args, t);
            let function = &function_names[p.function as usize];
            self.task(task, function, t, &ids[n], &path, &known, pools);
            if !waits {
                self.map_files(task, &ids[n], &path);
            }
            blocked |= task.mode == Mode::Blocking;
        }
        drop(known);
        for (task, id) in tasks.iter_mut().zip(ids) {
            task.id = id;
        }
        tasks
    }

    /// Finishes a task: `function` is the name it gives, `t` the rest of
    /// what it has as written (its args are already in `task`).
    #[allow(clippy::too_many_arguments)]
    fn task(
        &mut self,
        task: &mut Task,
        function: &str,
        t: &RawTask,
        id: &str,
        path: &DocPath,
        known: &KnownIds<'_>,
        pools: &[Pool],
    ) {
        task.mode = t.mode.unwrap_or_default();
        let function = self.resolve_function(function, || path.key("function"), "function");
        if let Some(name) = &t.pool {
            if let Some(pool) = self.pool_named(name, pools, &path.key("pool")) {
                task.pool = pool;
            }
        }
        let mut after = Vec::new();
        for (i, a) in t.after.iter().enumerate() {
            if let Some(dep) = self.resolve_task(known, a, path.key("after").index(i), "after") {
                after.push(dep);
            }
        }
        if !after.is_empty() {
            task.links_mut().after = after;
        }
        self.resolve_args(known, &mut task.args, &path.key("args"));
        if !t.kwargs.is_empty() {
            let mut kwargs = Vec::with_capacity(t.kwargs.len());
            for (k, a) in &t.kwargs {
                let arg = self.arg(known, a, path.key("kwargs").key(k));
                kwargs.push((k.clone(), arg));
            }
            task.links_mut().kwargs = kwargs;
        }
        if let Some(map) = &t.map {
            if let Some(map) = self.map_source(map, &path.key("map"), known) {
                task.extras_mut().map = Some(map);
            }
        }
        if let Some(c) = t.chunksize {
            if let Some(c) = self.count(c, &path.key("chunksize"), 1, "chunksize") {
                task.extras_mut().chunksize = c as usize;
                if t.map.is_none() {
                    self.diags.push(Diagnostic::at_key(
                        path.key("chunksize"),
                        "`chunksize` applies only to a task with a `map`",
                    ));
                }
            }
        }
        let callback = t
            .callback
            .as_ref()
            .and_then(|c| self.resolve_function(c, || path.key("callback"), "callback"));
        let error_callback = t.error_callback.as_ref().and_then(|c| {
            self.resolve_function(c, || path.key("error_callback"), "error_callback")
        });
        let inputs = self.unit_files(&t.inputs, path, "inputs");
        let outputs = self.unit_files(&t.outputs, path, "outputs");
        if callback.is_some()
            || error_callback.is_some()
            || !inputs.is_empty()
            || !outputs.is_empty()
        {
            let x = task.extras_mut();
            x.callback = callback;
            x.error_callback = error_callback;
            x.inputs = inputs;
            x.outputs = outputs;
        }
        let timeout = self.duration(t.timeout.as_deref(), || path.key("timeout"));
        let retries = t
            .retries
            .and_then(|r| self.count(r, &path.key("retries"), 0, "retries"));
        let Some(function) = function else {
            return;
        };
        task.function = function;
        let f = &self.functions[function.0];
        let pool = &pools[task.pool.0.min(pools.len() - 1)];
        task.timeout = timeout.or(f.timeout).or(pool.timeout);
        task.retries = retries.or(f.retries).unwrap_or(pool.retries);
        let mut env = f.env.clone();
        env.extend(t.env.clone().unwrap_or_default());
        let cwd = t
            .cwd
            .as_ref()
            .map(|c| self.dir.join(c))
            .or_else(|| f.cwd.clone());
        if !env.is_empty() || cwd.is_some() {
            let x = task.extras_mut();
            x.env = env;
            x.cwd = cwd;
        }
        // A map that did not check has been reported; its items' shape is
        // unknown, so the function's placeholders cannot be judged.
        if t.map.is_none() || task.map().is_some() {
            self.task_placeholders(task, id, path);
        } else {
            self.callback_placeholders(task, id);
        }
    }

    /// The pool a task names, reported at `at` when there is none of that
    /// name (unless its table could not be read).
    fn pool_named(&mut self, name: &str, pools: &[Pool], at: &DocPath) -> Option<PoolId> {
        if let Some(i) = pools.iter().position(|p| p.name == name) {
            return Some(PoolId(i));
        }
        if !self.unreadable.pools.contains(name) {
            let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
            self.diags.push(
                Diagnostic::at(at.clone(), format!("unknown pool `{name}`")).with_help(
                    did_you_mean(name, &names)
                        .unwrap_or_else(|| format!("declared pools: {}", backticked(&names))),
                ),
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::super::super::check_source;
    use super::super::super::job::{Arg, MapSource, TaskId};
    use super::super::testing::{at, errors, help, options};

    #[test]
    fn tasks_made_as_read_are_finished_with_references_to_later_ones() {
        let text = "version = 1\n\
            [[task]]\nid = \"a\"\nfunction = \"echo\"\n\
            args = [{ result = \"b\" }, 7]\nkwargs = { k = { result = \"echo-2\" } }\n\
            [[task]]\nid = \"b\"\nfunction = \"f\"\nafter = [\"echo-2\"]\n\
            [[task]]\nfunction = \"echo\"\nmap = { result = \"b\" }\n\
            [functions.f]\nbuiltin = \"noop\"\nenv = { A = \"1\" }\n";
        let job = check_source(Path::new("job.toml"), text, &options(&[])).expect("a good job");
        let [a, b, c] = &job.tasks[..] else {
            panic!("three tasks: {:?}", job.tasks);
        };
        assert_eq!(
            (a.id.as_str(), b.id.as_str(), c.id.as_str()),
            ("a", "b", "echo-2")
        );
        assert_eq!(a.args, [Arg::Result(TaskId(1)), Arg::Value(json!(7))]);
        assert_eq!(a.kwargs(), [("k".to_string(), Arg::Result(TaskId(2)))]);
        assert_eq!(a.function, c.function);
        assert_eq!(job.function(b.function).name, "f");
        assert_eq!(b.after(), [TaskId(2)]);
        assert_eq!(b.env().get("A").map(String::as_str), Some("1"));
        assert!(matches!(c.map(), Some(MapSource::Result(TaskId(1)))));
        assert!(a.env().is_empty() && a.after().is_empty() && a.map().is_none());
        assert_eq!(a.chunksize(), 1);
    }

    #[test]
    fn an_unknown_pool_lists_the_declared_ones() {
        let text = "version = 1\n[pools.gpu]\nprocesses = 1\n\
            [[task]]\nfunction = \"noop\"\npool = \"fast\"\n";
        assert_eq!(errors(text), [at("unknown pool `fast`", 6, 8)]);
        assert_eq!(
            help(text).as_deref(),
            Some("declared pools: `default` or `gpu`")
        );
    }

    #[test]
    fn chunksize_needs_a_map() {
        assert_eq!(
            errors("version = 1\n[[task]]\nfunction = \"noop\"\nchunksize = 2\n"),
            [at("`chunksize` applies only to a task with a `map`", 4, 1)]
        );
        assert_eq!(
            errors("version = 1\n[[task]]\nfunction = \"noop\"\nmap = [1]\nchunksize = 0\n"),
            [at(
                "`chunksize = 0`: expected a whole number of at least 1",
                5,
                13
            )]
        );
    }

    #[test]
    fn callbacks_are_functions() {
        let text = "version = 1\n[[task]]\nfunction = \"noop\"\n\
            callback = \"nop\"\nerror_callback = \"ecko\"\n";
        assert_eq!(
            errors(text),
            [
                at("unknown function `nop` in `callback`", 4, 12),
                at("unknown function `ecko` in `error_callback`", 5, 18),
            ]
        );
    }

    #[test]
    fn a_task_overrides_with_its_own_timeout_and_retries() {
        assert_eq!(
            errors(
                "version = 1\n[[task]]\nfunction = \"noop\"\ntimeout = \"soon\"\nretries = -2\n"
            ),
            [
                at("`soon` is not a duration (expected number at 0)", 4, 11),
                at(
                    "`retries = -2`: expected a whole number of at least 0",
                    5,
                    11
                ),
            ]
        );
    }
}

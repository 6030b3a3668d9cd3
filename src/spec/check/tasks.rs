//! `[[task]]`: what a task calls, where, after what, with which arguments,
//! and the defaults it takes from its function and its pool.

use super::super::diagnostic::Diagnostic;
use super::super::doc_path::DocPath;
use super::super::job::{Mode, Pool, PoolId, Task};
use super::super::load::backticked;
use super::super::raw::{RawJob, RawTask};
use super::super::suggest::did_you_mean;
use super::args::reads_a_result;
use super::checker::Checker;
use super::ids::KnownIds;

impl Checker<'_> {
    /// Every task, in file order; one that could not be read stands in
    /// with nothing resolved, so that ids keep their places.
    pub(super) fn tasks(&mut self, raw: &RawJob, pools: &[Pool]) -> Vec<Task> {
        let root = DocPath::root().key("task");
        // Ids first: tasks may refer to tasks declared after them.
        let ids = self.task_ids(raw);
        let known = self.known_ids(raw, &ids);
        let mut tasks = Vec::with_capacity(raw.task.len());
        // Whether a blocking task came before: the tasks after it wait.
        let mut blocked = false;
        for (n, t) in raw.task.iter().enumerate() {
            if self.unreadable.tasks.contains_key(&n) {
                tasks.push(Task::unresolved(&ids[n]));
                continue;
            }
            let path = root.index(n);
            let task = self.task(t, &ids[n], &path, &known, pools);
            // As written: a misspelt `after` still says the task waits.
            let waits = blocked || !t.after.is_empty() || reads_a_result(t);
            if !waits {
                self.map_files(&task, &path);
            }
            blocked |= task.mode == Mode::Blocking;
            tasks.push(task);
        }
        tasks
    }

    fn task(
        &mut self,
        t: &RawTask,
        id: &str,
        path: &DocPath,
        known: &KnownIds<'_>,
        pools: &[Pool],
    ) -> Task {
        let mut task = Task::unresolved(id);
        task.mode = t.mode.unwrap_or_default();
        let function = self.resolve_function(&t.function, || path.key("function"), "function");
        if let Some(name) = &t.pool {
            if let Some(pool) = self.pool_named(name, pools, &path.key("pool")) {
                task.pool = pool;
            }
        }
        for (i, a) in t.after.iter().enumerate() {
            if let Some(dep) = self.resolve_task(known, a, path.key("after").index(i), "after") {
                task.after.push(dep);
            }
        }
        for (i, a) in t.args.iter().enumerate() {
            let arg = self.arg(known, a, path.key("args").index(i));
            task.args.push(arg);
        }
        for (k, a) in &t.kwargs {
            let arg = self.arg(known, a, path.key("kwargs").key(k));
            task.kwargs.push((k.clone(), arg));
        }
        if let Some(map) = &t.map {
            task.map = self.map_source(map, &path.key("map"), known);
        }
        if let Some(c) = t.chunksize {
            if let Some(c) = self.count(c, &path.key("chunksize"), 1, "chunksize") {
                task.chunksize = c as usize;
                if t.map.is_none() {
                    self.diags.push(Diagnostic::at_key(
                        path.key("chunksize"),
                        "`chunksize` applies only to a task with a `map`",
                    ));
                }
            }
        }
        task.callback = t
            .callback
            .as_ref()
            .and_then(|c| self.resolve_function(c, || path.key("callback"), "callback"));
        task.error_callback = t.error_callback.as_ref().and_then(|c| {
            self.resolve_function(c, || path.key("error_callback"), "error_callback")
        });
        task.inputs = self.unit_files(&t.inputs, path, "inputs");
        task.outputs = self.unit_files(&t.outputs, path, "outputs");
        let timeout = self.duration(t.timeout.as_deref(), || path.key("timeout"));
        let retries = t
            .retries
            .and_then(|r| self.count(r, &path.key("retries"), 0, "retries"));
        let Some(function) = function else {
            return task;
        };
        task.function = function;
        let f = &self.functions[function.0];
        let pool = &pools[task.pool.0.min(pools.len() - 1)];
        task.timeout = timeout.or(f.timeout).or(pool.timeout);
        task.retries = retries.or(f.retries).unwrap_or(pool.retries);
        task.env = f.env.clone();
        task.env.extend(t.env.clone().unwrap_or_default());
        task.cwd = t
            .cwd
            .as_ref()
            .map(|c| self.dir.join(c))
            .or_else(|| f.cwd.clone());
        // A map that did not check has been reported; its items' shape is
        // unknown, so the function's placeholders cannot be judged.
        if t.map.is_none() || task.map.is_some() {
            self.task_placeholders(&task, path);
        } else {
            self.callback_placeholders(&task);
        }
        task
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
    use super::super::testing::{at, errors, help};

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

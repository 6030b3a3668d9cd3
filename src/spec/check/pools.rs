//! `[pool]` and `[pools.NAME]`: counts, durations, the Slurm-only keys, and
//! the `initializer` call.

use std::path::PathBuf;

use super::super::diagnostic::Diagnostic;
use super::super::doc_path::DocPath;
use super::super::job::{Backend, Call, Pool, SlurmOptions};
use super::super::raw::{RawCall, RawJob, RawPool};
use super::checker::Checker;
use super::placeholders::Shape;

impl Checker<'_> {
    /// The pools; `[pool]` (or `[pools.default]`) is the first.
    pub(super) fn pools(&mut self, raw: &RawJob) -> Vec<Pool> {
        let default = raw.pool.clone().unwrap_or_default();
        let mut pools = vec![self.pool("default", &default, &DocPath::root().key("pool"))];
        for (name, p) in &raw.pools {
            let path = DocPath::root().key("pools").key(name);
            if name == "default" {
                if raw.pool.is_some() {
                    self.diags.push(
                        Diagnostic::at_key(
                            path,
                            "`[pools.default]` and `[pool]` both declare the pool named `default`",
                        )
                        .with_help("keep one of them"),
                    );
                } else {
                    pools[0] = self.pool(name, p, &path);
                }
                continue;
            }
            let pool = self.pool(name, p, &path);
            pools.push(pool);
        }
        pools
    }

    fn pool(&mut self, name: &str, p: &RawPool, path: &DocPath) -> Pool {
        let backend = p.backend.unwrap_or_default();
        if backend != Backend::Slurm {
            for (key, set) in [
                ("partition", p.partition.is_some()),
                ("nodes", p.nodes.is_some()),
                ("time", p.time.is_some()),
                ("worker_binary", p.worker_binary.is_some()),
            ] {
                if set {
                    self.diags.push(
                        Diagnostic::at_key(
                            path.key(key),
                            format!("`{key}` applies only to Slurm pools"),
                        )
                        .with_help("add `backend = \"slurm\"` to this pool, or remove the key"),
                    );
                }
            }
        }
        if let (Some(processes), Some(nodes)) = (p.processes, p.nodes) {
            if backend == Backend::Slurm && processes >= 1 && nodes > processes {
                self.diags.push(
                    Diagnostic::at(
                        path.key("nodes"),
                        format!(
                            "`nodes = {nodes}` is more than `processes = {processes}`: every node of the pool needs at least one worker"
                        ),
                    )
                    .with_help("lower `nodes`, or raise `processes` to at least `nodes`"),
                );
            }
        }
        let initializer = p
            .initializer
            .as_ref()
            .and_then(|call| self.call(call, &path.key("initializer")));
        Pool {
            name: name.to_string(),
            processes: p
                .processes
                .and_then(|n| self.count(n, &path.key("processes"), 1, "processes"))
                .map(|n| n as usize),
            max_tasks_per_child: p
                .max_tasks_per_child
                .and_then(|n| {
                    self.count(
                        n,
                        &path.key("max_tasks_per_child"),
                        1,
                        "max_tasks_per_child",
                    )
                })
                .map(u64::from),
            initializer,
            on_failure: p.on_failure.unwrap_or_default(),
            timeout: self.duration(p.timeout.as_deref(), || path.key("timeout")),
            retries: p
                .retries
                .and_then(|n| self.count(n, &path.key("retries"), 0, "retries"))
                .unwrap_or(0),
            backend,
            slurm: SlurmOptions {
                partition: p.partition.clone(),
                nodes: p
                    .nodes
                    .and_then(|n| self.count(n, &path.key("nodes"), 1, "nodes")),
                time: p.time.clone(),
                worker_binary: p.worker_binary.as_ref().map(PathBuf::from),
            },
        }
    }

    fn call(&mut self, call: &RawCall, path: &DocPath) -> Option<Call> {
        let function =
            self.resolve_function(&call.function, || path.key("function"), "initializer")?;
        let call = Call {
            function,
            args: call.args.clone(),
            kwargs: call.kwargs.clone(),
        };
        let shape = Shape::fixed(
            call.args.len(),
            call.kwargs.keys().cloned().collect(),
            false,
        );
        self.placeholders(function, &shape, "the initializer");
        Some(call)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, errors};

    #[test]
    fn counts_have_a_lower_bound() {
        assert_eq!(
            errors("version = 1\n[pool]\nprocesses = 0\nmax_tasks_per_child = 0\nretries = -1\n"),
            [
                at(
                    "`processes = 0`: expected a whole number of at least 1",
                    3,
                    13
                ),
                at(
                    "`max_tasks_per_child = 0`: expected a whole number of at least 1",
                    4,
                    23
                ),
                at(
                    "`retries = -1`: expected a whole number of at least 0",
                    5,
                    11
                ),
            ]
        );
    }

    #[test]
    fn counts_have_an_upper_bound() {
        assert_eq!(
            errors("version = 1\n[pool]\nprocesses = 4294967296\n"),
            [at(
                "`processes = 4294967296`: expected a whole number of at most 4294967295",
                3,
                13
            )]
        );
    }

    #[test]
    fn slurm_keys_need_a_slurm_pool() {
        assert_eq!(
            errors("version = 1\n[pools.gpu]\npartition = \"gpu\"\n"),
            [at("`partition` applies only to Slurm pools", 3, 1)]
        );
        assert_eq!(
            errors("version = 1\n[pool]\nbackend = \"slurm\"\nprocesses = 2\nnodes = 3\n"),
            [at(
                "`nodes = 3` is more than `processes = 2`: every node of the pool needs at least one worker",
                5,
                9
            )]
        );
    }

    #[test]
    fn the_default_pool_is_declared_once() {
        assert_eq!(
            errors("version = 1\n[pool]\nprocesses = 1\n[pools.default]\nprocesses = 2\n"),
            [at(
                "`[pools.default]` and `[pool]` both declare the pool named `default`",
                4,
                8
            )]
        );
    }

    #[test]
    fn an_initializer_is_a_call() {
        assert_eq!(
            errors("version = 1\n[pool]\ninitializer = { function = \"nope\" }\n"),
            [at("unknown function `nope` in `initializer`", 3, 28)]
        );
        assert_eq!(
            errors(
                "version = 1\n[functions.f]\ncommand = [\"echo\", \"{1}\"]\n\
                 [pool]\ninitializer = { function = \"f\", args = [1] }\n"
            ),
            [at(
                "placeholder `{1}` has no value in the initializer",
                3,
                20
            )]
        );
    }
}

//! Workers as Slurm job steps: one allocation per pool, one `srun` step per
//! worker, spoken to over the step's stdin and stdout.
//!
//! This module owns the Slurm command-line tools (`salloc`, `srun`,
//! `scancel`, `squeue`, `scontrol`, `sinfo`) and nothing else: it does not
//! read frames, poll the workers, or decide when a worker is lost. A Slurm
//! pool's launcher (`exec/engine/slurm_launcher.rs`, behind the engine's
//! launcher seam) wraps a [`Step`]'s `stdin` and `stdout` in the engine's
//! line-framed connection, reaps [`Step::child`] with `try_wait`, hands a
//! pending [`AllocationRequest`]'s descriptor to the engine's poll, and
//! tells the [`Allocation`] when a step ended so that the next one goes to
//! a node that is still there.
//!
//! How the pieces behave (measured on Slurm 22.05 with `ci/local-cluster.sh`,
//! three nodes in network namespaces, and `tests/slurm.rs`):
//!
//! - `salloc --no-shell` returns once the allocation is granted and prints
//!   `Granted job allocation J` on stderr; while it waits it prints
//!   `Pending job allocation J`, which lets a timeout cancel that job. A
//!   request for more nodes than the partition has stays pending for ever
//!   ("Requested partition configuration not available now"), so the node
//!   count is checked with `sinfo` first.
//! - `--no-kill`: without it, a node that goes DOWN ends the whole job (its
//!   steps on healthy nodes get SIGTERM, new steps fail with "job has
//!   expired"). With it the job shrinks to the nodes left and its other
//!   steps carry on. The srun of a step on the lost node exits (code 0,
//!   "Node failure" on stderr) only once Slurm has declared the node DOWN,
//!   which takes `SlurmdTimeout` and a few `MessageTimeout`s; until then a
//!   lost node's worker just looks slow. srun's own `--no-kill` (`-k`) and
//!   `--kill-on-bad-exit` (`-K`) are about the tasks of one step; a step
//!   here has one task, and the allocation's `--no-kill` is what keeps the
//!   other steps alive. Which nodes are left is read from `scontrol show
//!   job` (its `NodeList` shrinks) and `sinfo` (a `*` marks a node that does
//!   not answer); a replacement step is placed on one of them with `-w`
//!   rather than with `--exclude`, as the engine chooses the node anyway.
//! - `-N N --ntasks-per-node=K` (K = processes / N rounded up) gives every
//!   node the same number of CPUs. Steps are placed by the engine, `-w NODE`,
//!   on the node with the fewest of the pool's workers among those with a CPU
//!   of the allocation still free, else among all the nodes left (after a
//!   node was lost). They run with `--overlap`, so a replacement never waits
//!   for a CPU that a dead step still holds (a killed `--exact` step keeps its
//!   CPU about 2.3 s; on a lost node, until the node comes back).
//! - `srun` forwards a task's stdout only up to the last newline, so every
//!   frame must end with `\n` (the protocol does). srun's stdout carries only
//!   the task's stdout; srun's own messages and the task's stderr go to
//!   srun's stderr, which the step inherits so that it can never block.
//! - Closing a step's stdin ends the worker (EOF) and srun exits 0 about
//!   8 ms later. SIGTERM to srun ([`Step::terminate`]) and `scancel J.S`
//!   end the task within 25 ms. A single SIGINT to srun does nothing.
//! - An allocation outlives its owner if the owner is killed with SIGKILL
//!   (its steps do not: their stdin reaches EOF). A [`Sentinel`] process,
//!   in a session of its own, holds the read end of a pipe whose write end
//!   only the engine has, and cancels the job when it reads end of file.

mod allocation;
mod placement;
mod request;
mod sentinel;
mod tools;

pub use allocation::{Allocation, Step, StepMode, default_worker_binary};
pub use placement::{Placement, parse_cpu_layout};
pub use request::{ALLOCATION_TIMEOUT, AllocationRequest, SlurmRequest};
pub use sentinel::Sentinel;
pub use tools::{RELEASE_TIMEOUT, SlurmError};

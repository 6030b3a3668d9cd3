//! The pool: fork server, workers, supervisor loop.

mod builtins;
mod capture;
pub mod command;
mod fork_server;
mod groups;
mod output_capture;
mod process;
pub mod protocol;
mod readiness;
mod spawn;
mod worker;

pub use builtins::{Builtin, CallContext, Registry, builtin_names, install_registry, registry};
pub use fork_server::{ForkServer, thread_count, wait_single_threaded};
pub use worker::{install_worker_signals, serve as serve_worker};
mod engine;
mod invocation;
pub mod python;
mod signals;
pub mod slurm;

pub use engine::{Prepared, Resumed, RunEnd, RunOptions, RunReport, prepare, run};
pub use invocation::{Setting, describe, invocation};

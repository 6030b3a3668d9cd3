//! jobfile: a declarative job executor.
//!
//! A checked-in TOML job file declares functions, tasks, pools and where the
//! results go; the engine checks it ([`spec`]), turns it into a task graph
//! ([`plan`]), runs it on a pool of forked worker processes ([`exec`]) and
//! writes one record per task in a deterministic order ([`report`]).

pub mod cli;
pub mod exec;
pub mod job_file;
pub mod plan;
pub mod report;
pub mod results;
pub mod shared;
pub mod spec;
pub mod suggest;

//! The engine: runs a checked job on its pools and hands the records to the
//! report layer. See [`supervisor`] for the loop.

mod dispatch;
mod finish;
mod launcher;
mod outcomes;
mod prepare;
mod resume;
mod slurm_launcher;
mod state;
mod supervisor;
#[cfg(test)]
mod tests;
mod workers;

pub use prepare::{Prepared, prepare};
pub use supervisor::{Resumed, RunEnd, RunOptions, RunReport, run};

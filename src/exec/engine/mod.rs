//! The engine: runs a checked job on its pools and hands the records to the
//! report layer. See [`supervisor`] for the loop.

mod dispatch;
mod finish;
mod outcomes;
mod prepare;
mod resume;
mod state;
mod supervisor;
mod workers;

pub use prepare::{Prepared, prepare};
pub use supervisor::{Resumed, RunEnd, RunOptions, RunReport, run};

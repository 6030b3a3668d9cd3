//! Result records and their writers. This layer never touches a process:
//! it receives finished records from the engine and writes them out.

mod record;

pub use record::{Record, Status};

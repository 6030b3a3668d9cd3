//! Result records and their writers. This layer never touches a process:
//! it receives finished records from the engine, puts them in order and
//! writes them out.

mod record;
mod reorder;

pub use record::{Record, Status};
pub use reorder::{Ready, ReorderBuffer, ReorderError};

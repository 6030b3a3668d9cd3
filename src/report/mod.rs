//! Result records and their writers. This layer never touches a process:
//! it receives finished records from the engine, puts them in order and
//! writes them out.

mod record;
mod record_json;
mod reorder;
#[cfg(test)]
mod testing;

pub use record::{Record, Status};
pub use record_json::RecordJson;
pub use reorder::{Ready, ReorderBuffer, ReorderError};

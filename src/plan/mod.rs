//! The task graph of a checked job: dependencies, submission order, lazy
//! map items, and the `plan` command's renderings.

mod fingerprint;
mod graph;
mod items;
mod render;
mod unit_files;

pub use fingerprint::{Digest, NONE, task_prints, unit_state, with_shared_inputs};
pub use graph::{Cycle, Edge, EdgeKind, Plan, find_cycle};
pub use items::{ItemIter, ItemsError, item_call, items_of_value};
pub use render::{PlanFormat, render};
pub use unit_files::{UnitCall, unit_inputs, unit_outputs};

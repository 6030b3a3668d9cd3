//! The task graph of a checked job: dependencies, submission order, lazy
//! map items, and the `plan` command's renderings.

mod fingerprint;
mod graph;
mod items;
mod render;

pub use fingerprint::fingerprints;
pub use graph::{Edge, EdgeKind, Plan, find_cycle};
pub use items::{ItemIter, ItemsError, item_call, items_of_value};
pub use render::{PlanFormat, render};

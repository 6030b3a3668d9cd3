//! Validation: from a [`super::RawJob`] to a checked [`super::Job`], or
//! every error.
//!
//! Each problem becomes a [`super::Diagnostic`] that names its place by
//! path; the checker never stops at the first one, so the user fixes them
//! all at once. One concept per module, each rule written once.

mod args;
mod checker;
mod functions;
mod ids;
mod maps;
mod placeholders;
mod pools;
mod tasks;
#[cfg(test)]
mod testing;
mod unit_files;
mod values;
mod vars;

pub use checker::{CheckOptions, check};
pub(crate) use ids::default_task_id;
pub use ids::task_diagnostic;

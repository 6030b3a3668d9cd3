//! The pool: fork server, workers, supervisor loop.

mod builtins;
pub mod command;

pub use builtins::builtin_names;

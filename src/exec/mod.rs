//! The pool: fork server, workers, supervisor loop.

mod builtins;

pub use builtins::builtin_names;

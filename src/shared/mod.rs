//! Shared values (spec section 5): the `[shared]` table the engine holds
//! like a Python `Manager`, the operations on it, and the protocol that
//! lets tasks reach it over a Unix socket named in `JOBFILE_SHARED`.
//!
//! The engine owns a [`SharedStore`] and answers each request line with
//! [`handle_line`] from its single-threaded loop, so every operation is
//! atomic. Tasks send a [`SharedOp`] with [`request`].

mod client;
mod error;
mod op;
mod socket_dir;
mod store;
mod target;
mod wire;

pub use client::{ClientError, request, socket_from_env};
pub use error::SharedError;
pub use op::{SharedOp, parse_word};
pub use socket_dir::SocketDir;
pub use store::SharedStore;
pub use target::Target;
pub use wire::{ENV_VAR, Reply, handle_line, parse_request, request_line};

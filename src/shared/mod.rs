//! Shared values (spec section 5): the `[shared]` table the engine holds
//! like a Python `Manager`, and the operations on it.

mod error;
mod op;
mod store;
mod target;

pub use error::SharedError;
pub use op::{SharedOp, parse_word};
pub use store::SharedStore;
pub use target::Target;

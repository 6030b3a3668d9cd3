//! Result records and their writers. This layer never touches a process:
//! it receives finished records from the engine, puts them in order and
//! writes them out.

mod columns;
mod counts;
mod csv_writer;
mod destination;
mod failures;
mod item_name;
mod json_writer;
mod jsonl_writer;
mod junit_writer;
pub mod page;
mod previous;
mod print_file;
mod progress;
mod record;
pub(crate) mod record_json;
mod reorder;
pub mod screen;
mod sink;
mod tee_writer;
#[cfg(test)]
mod testing;
mod text_writer;
mod unit_print;
mod writer;

pub use crate::results::{Format, UnknownFormat};
pub use counts::{Counts, STATUSES};
pub use csv_writer::CsvWriter;
pub use destination::Destination;
pub use failures::Failures;
pub use item_name::{ItemNames, ItemShape, item_name};
pub use json_writer::JsonWriter;
pub use jsonl_writer::JsonlWriter;
pub use junit_writer::{JunitWriter, Spool};
pub use previous::{Earlier, Previous, PreviousError, record_from_json};
pub use print_file::{OK as PRINT_OK, PrintEntry, PrintingWriter, TalliedOutput, Tally};
pub use progress::Progress;
pub use record::{Record, RecordKind, Status};
pub use record_json::RecordJson;
pub use reorder::{Ready, ReorderBuffer, ReorderError};
pub use sink::Sink;
pub use tee_writer::TeeWriter;
pub use text_writer::TextWriter;
pub use unit_print::{Digest, UnitPrint, unit_key};
pub use writer::{RecordWriter, WriterOptions, open_writer, open_writer_with_prints};

//! The HTML report of a run (`jobfile report`, `run --report`): one
//! self-contained page with a summary, a timeline per worker, the slowest
//! records and the records that are not ok.

mod encode;
mod html;
mod lanes;
mod page_data;
mod page_writer;
mod results_file;
mod summary;

pub use encode::Caps;
pub use html::{PAGE_BUDGET, render, render_within};
pub use lanes::{Lane, Lanes};
pub use page_data::{PageData, RawRecord, Row, StringTable};
pub use page_writer::PageWriter;
pub use results_file::{ReadError, read_results};
pub use summary::{Summary, human_ms};

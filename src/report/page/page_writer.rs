//! `run --report`: a record writer that keeps what the page needs of each
//! record it is given and writes the page when the run's output is
//! finished, also after an interruption.

use std::io::{self, Write};
use std::path::PathBuf;

use super::html::render;
use super::page_data::PageData;
use crate::report::destination::create_file;
use crate::report::{Record, RecordWriter};

/// Writes the HTML report of the records it is given, at `finish`.
#[derive(Debug)]
pub struct PageWriter {
    path: PathBuf,
    file: Option<std::fs::File>,
    data: PageData,
}

impl PageWriter {
    /// Creates the page's file now (and its missing folders), so a bad path
    /// fails before anything runs; `title` heads the page.
    pub fn create(path: PathBuf, title: &str) -> io::Result<PageWriter> {
        let file = create_file(&path)?;
        Ok(PageWriter {
            path,
            file: Some(file),
            data: PageData::new(title),
        })
    }
}

impl RecordWriter for PageWriter {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.data.push_record(record);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        let page = render(&self.data);
        file.write_all(page.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| io::Error::new(e.kind(), format!("report {}: {e}", self.path.display())))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

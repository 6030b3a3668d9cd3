//! Two writers fed the same records: the results, and the HTML report of
//! `run --report`.

use std::io;

use super::record::Record;
use super::writer::RecordWriter;

/// Writes each record to `first`, then to `second`.
pub struct TeeWriter {
    first: Box<dyn RecordWriter>,
    second: Box<dyn RecordWriter>,
}

impl TeeWriter {
    /// Records go to both, `first` first.
    pub fn new(first: Box<dyn RecordWriter>, second: Box<dyn RecordWriter>) -> TeeWriter {
        TeeWriter { first, second }
    }
}

impl RecordWriter for TeeWriter {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        // The second sees every record the first was given, even one the
        // first failed to write: the report then still shows it.
        let a = self.first.write(record);
        let b = self.second.write(record);
        a.and(b)
    }

    fn finish(&mut self) -> io::Result<()> {
        let a = self.first.finish();
        let b = self.second.finish();
        a.and(b)
    }

    fn flush(&mut self) -> io::Result<()> {
        let a = self.first.flush();
        let b = self.second.flush();
        a.and(b)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::report::testing::assorted;

    /// Counts what it is given; fails every write when `broken`.
    struct Counting {
        seen: Arc<Mutex<(usize, usize)>>,
        broken: bool,
    }

    impl RecordWriter for Counting {
        fn write(&mut self, _: &Record) -> io::Result<()> {
            self.seen.lock().unwrap().0 += 1;
            if self.broken {
                return Err(io::Error::other("closed pipe"));
            }
            Ok(())
        }
        fn finish(&mut self) -> io::Result<()> {
            self.seen.lock().unwrap().1 += 1;
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_report_gets_what_the_results_could_not_take() {
        let results = Arc::new(Mutex::new((0, 0)));
        let page = Arc::new(Mutex::new((0, 0)));
        let mut tee = TeeWriter::new(
            Box::new(Counting {
                seen: results.clone(),
                broken: true,
            }),
            Box::new(Counting {
                seen: page.clone(),
                broken: false,
            }),
        );
        let r = &assorted()[0];
        assert_eq!(tee.write(r).unwrap_err().to_string(), "closed pipe");
        assert!(tee.finish().is_ok());
        assert_eq!(*results.lock().unwrap(), (1, 1));
        assert_eq!(*page.lock().unwrap(), (1, 1), "written and finished");
    }
}

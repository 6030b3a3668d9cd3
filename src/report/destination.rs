//! Where results go: standard output or a file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where a writer sends its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, created (with its missing parent folders) or truncated.
    File(PathBuf),
}

impl Destination {
    /// The file's path, if it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Destination::Stdout => None,
            Destination::File(path) => Some(path),
        }
    }

    /// Opens it for writing, making missing parent folders of a file.
    pub(crate) fn open(&self) -> io::Result<Box<dyn Write + Send>> {
        match self {
            // A terminal shares the screen with the progress bar.
            Destination::Stdout if super::screen::stdout_is_terminal() => Ok(Box::new(
                io::BufWriter::with_capacity(BUFFER, super::screen::Stdout),
            )),
            Destination::Stdout => Ok(Box::new(io::BufWriter::with_capacity(BUFFER, io::stdout()))),
            Destination::File(path) => Ok(Box::new(io::BufWriter::with_capacity(
                BUFFER,
                create_file(path)?,
            ))),
        }
    }
}

/// Bytes of records held before they are written out.
const BUFFER: usize = 256 * 1024;

/// Creates (or truncates) `path`, making its missing parent folders first.
pub(crate) fn create_file(path: &Path) -> io::Result<fs::File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    fs::File::create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_parent_folders_are_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/results.jsonl");
        let mut out = Destination::File(path.clone()).open().unwrap();
        out.write_all(b"x").unwrap();
        drop(out);
        assert_eq!(fs::read(&path).unwrap(), b"x");
    }
}

//! Files the job names: glob patterns (`map = { glob = ... }`, `inputs`,
//! `outputs`) and the file of `map = { lines = ... }`.
//!
//! One rule each, for the checker and for the run: what a valid glob is,
//! which files a glob map's items are (matched from the job's folder,
//! sorted, none being an error), and how a `lines` file is opened.

use std::fs::File;
use std::path::Path;

/// Why `pattern` is not a valid glob, when it is not one.
pub fn glob_error(pattern: &str) -> Option<&'static str> {
    glob::Pattern::new(pattern).err().map(|e| e.msg)
}

/// Why a glob map has no items.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("bad glob `{pattern}`: {message}")]
    Invalid { pattern: String, message: String },
    #[error("glob `{pattern}`: {message}")]
    Unreadable { pattern: String, message: String },
    /// No file matches: a map needs an item to run.
    #[error("glob `{pattern}` matches no file")]
    NoMatch { pattern: String },
}

/// The items of `map = { glob = PATTERN }`: the matching paths, relative
/// to `dir` (the job's folder) unless the pattern is absolute, sorted.
pub fn glob_matches(pattern: &str, dir: &Path) -> Result<Vec<String>, GlobError> {
    let absolute = Path::new(pattern).is_absolute();
    let full = if absolute {
        pattern.to_string()
    } else {
        format!(
            "{}/{pattern}",
            glob::Pattern::escape(&dir.to_string_lossy())
        )
    };
    let paths = glob::glob(&full).map_err(|e| GlobError::Invalid {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })?;
    let mut items = Vec::new();
    for p in paths {
        let p = p.map_err(|e| GlobError::Unreadable {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })?;
        let shown = if absolute {
            p.as_path()
        } else {
            p.strip_prefix(dir).unwrap_or(&p)
        };
        items.push(shown.to_string_lossy().into_owned());
    }
    if items.is_empty() {
        return Err(GlobError::NoMatch {
            pattern: pattern.to_string(),
        });
    }
    items.sort();
    Ok(items)
}

/// Opens the file of `map = { lines = ... }` (an absolute path, or one
/// relative to the caller's folder). An empty file is fine: zero items.
/// The error says why, as the system does, without its error number.
pub fn open_lines(path: &Path) -> Result<File, String> {
    File::open(path).map_err(|e| {
        let why = e.to_string();
        match why.find(" (os error ") {
            Some(i) => why[..i].to_string(),
            None => why,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_glob_matches_sorted_paths_relative_to_the_folder() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        for name in ["b.txt", "a.txt", "c.md"] {
            std::fs::write(dir.path().join(name), "").expect("a file");
        }
        assert_eq!(
            glob_matches("*.txt", dir.path()),
            Ok(vec!["a.txt".to_string(), "b.txt".to_string()])
        );
        assert_eq!(
            glob_matches("*.csv", dir.path()),
            Err(GlobError::NoMatch {
                pattern: "*.csv".into()
            })
        );
    }

    #[test]
    fn a_bad_glob_says_why() {
        assert_eq!(glob_error("a["), Some("invalid range pattern"));
        assert_eq!(glob_error("data/*.txt"), None);
    }

    #[test]
    fn an_empty_lines_file_opens_and_a_missing_one_does_not() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "").expect("a file");
        assert!(open_lines(&empty).is_ok());
        let missing = open_lines(&dir.path().join("missing.txt")).expect_err("no such file");
        assert_eq!(missing, "No such file or directory");
    }
}

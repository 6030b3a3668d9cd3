//! Reading a finished run's results file (`jsonl` or `json`, told apart by
//! their first character) into the page's data, one record at a time, so a
//! file of millions of records is never held whole.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use super::page_data::{PageData, RawRecord};

/// Why a results file cannot make a page.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It cannot be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// It is neither JSON lines nor a JSON array.
    #[error(
        "{} is not a results file: expected jsonl or json records (written by `jobfile run --format jsonl` or `json`), found {found}",
        path.display()
    )]
    NotResults { path: PathBuf, found: String },
    /// One line or element is not JSON, or not a record.
    #[error("{}:{at}: not a result record: {why}", path.display())]
    BadRecord {
        path: PathBuf,
        /// `line N`, or `record N` of a JSON array.
        at: String,
        why: String,
    },
}

/// Reads every record of `path` into a page titled after the file.
pub fn read_results(path: &Path) -> Result<PageData, ReadError> {
    let io_err = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    if file.metadata().map_err(io_err)?.is_dir() {
        return Err(io_err(io::Error::other("it is a folder")));
    }
    let mut input = BufReader::with_capacity(1 << 20, file);
    let title = path
        .file_stem()
        .map_or_else(|| "results".into(), |s| s.to_string_lossy().into_owned());
    let mut data = PageData::new(title);
    let first = loop {
        let buf = input.fill_buf().map_err(io_err)?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) => {
                let b = buf[at];
                break Some(b);
            }
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    };
    match first {
        None => Ok(data),
        Some(b'{') => read_lines(path, input, &mut data).map(|()| data),
        Some(b'[') => read_array(path, input, &mut data).map(|()| data),
        Some(_) => {
            let mut head = String::new();
            let _ = input.take(200).read_line(&mut head);
            let shown: String = head.trim().chars().take(40).collect();
            Err(ReadError::NotResults {
                path: path.to_path_buf(),
                found: format!("`{shown}`"),
            })
        }
    }
}

fn read_lines(path: &Path, input: impl BufRead, data: &mut PageData) -> Result<(), ReadError> {
    let bad = |n: usize, why: String| ReadError::BadRecord {
        path: path.to_path_buf(),
        at: format!("line {n}"),
        why,
    };
    for (i, line) in input.split(b'\n').enumerate() {
        let line = line.map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        match line.iter().find(|b| !b.is_ascii_whitespace()) {
            None => continue,
            Some(b'{') => {}
            // A derived struct would take an array field by field.
            Some(_) => return Err(bad(i + 1, "expected a JSON object".into())),
        }
        let raw: RawRecord =
            serde_json::from_slice(&line).map_err(|e| bad(i + 1, e.to_string()))?;
        // Only the `@shared` record's value is shown: parsed again, once.
        let value = || {
            serde_json::from_slice::<Value>(&line)
                .ok()
                .and_then(|v| v.get("value").cloned())
                .unwrap_or(Value::Null)
        };
        data.push_raw(raw, value).map_err(|why| bad(i + 1, why))?;
    }
    Ok(())
}

fn read_array(path: &Path, input: impl Read, data: &mut PageData) -> Result<(), ReadError> {
    /// Feeds each element of the array to the page as it is parsed.
    struct Records<'a>(&'a mut PageData);
    impl<'de> Visitor<'de> for Records<'_> {
        type Value = Option<(usize, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of result records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut n = 0;
            while let Some(v) = seq.next_element::<Value>()? {
                n += 1;
                if let Err(why) = self.0.push_json(&v) {
                    // Read on to the end, so the caller sees the first error.
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                    return Ok(Some((n, why)));
                }
            }
            Ok(None)
        }
    }
    let mut de = serde_json::Deserializer::from_reader(input);
    let parse_err = |e: serde_json::Error| ReadError::BadRecord {
        path: path.to_path_buf(),
        at: format!("{}:{}", e.line(), e.column()),
        why: e.to_string(),
    };
    let outcome = (&mut de)
        .deserialize_seq(Records(data))
        .map_err(parse_err)?;
    de.end().map_err(parse_err)?;
    match outcome {
        Some((n, why)) => Err(ReadError::BadRecord {
            path: path.to_path_buf(),
            at: format!("record {n}"),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::assorted;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn jsonl_and_json_read_alike() {
        let lines: Vec<String> = assorted().iter().map(|r| r.to_json_string(false)).collect();
        let (_d1, jsonl) = file(&format!("{}\n", lines.join("\n")));
        let (_d2, json) = file(&format!("[\n{}\n]\n", lines.join(",\n")));
        let a = read_results(&jsonl).unwrap();
        let b = read_results(&json).unwrap();
        assert_eq!(a.rows.len(), 8);
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.title, "results");
    }

    #[test]
    fn an_empty_file_has_no_records() {
        let (_d, path) = file("  \n\n");
        assert!(read_results(&path).unwrap().rows.is_empty());
    }

    #[test]
    fn bad_files_say_where() {
        let (_d, path) = file("task,index,function\n");
        let e = read_results(&path).unwrap_err().to_string();
        assert!(e.ends_with("is not a results file: expected jsonl or json records (written by `jobfile run --format jsonl` or `json`), found `task,index,function`"), "{e}");
        let (_d, path) = file("{\"task\":\"a\",\"status\":\"ok\"}\n{\"task\":\"b\"}\n");
        let e = read_results(&path).unwrap_err().to_string();
        assert!(
            e.ends_with("results.jsonl:line 2: not a result record: it has no `status`"),
            "{e}"
        );
        let (_d, path) = file("{\"task\":\"a\",\"status\":\"ok\"}\n{\"task\":\n");
        let e = read_results(&path).unwrap_err().to_string();
        assert!(
            e.contains("results.jsonl:line 2: not a result record: EOF"),
            "{e}"
        );
        let (_d, path) = file("[{\"task\":\"a\",\"status\":\"ok\"}, 3]");
        let e = read_results(&path).unwrap_err().to_string();
        assert!(
            e.ends_with(":record 2: not a result record: expected a JSON object"),
            "{e}"
        );
        let (_d, path) = file("[{\"task\":\"a\",\"status\":\"ok\"}");
        assert!(read_results(&path).is_err());
        let missing = read_results(Path::new("/nonexistent/r.jsonl")).unwrap_err();
        assert!(matches!(missing, ReadError::Io { .. }));
    }
}

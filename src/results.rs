//! How results are written: the record format and the record order.
//!
//! Named by the job file (`[results]`) and the command line (`--format`,
//! `--order`), used by the report's writers; so they live here, where
//! both `spec` and `report` can depend on them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
/// A result format (`--format`, `[results].format`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One readable line per record, for people.
    Text,
    /// One JSON object per line.
    Jsonl,
    /// One JSON array.
    Json,
    /// A header row, then one row per record.
    Csv,
    /// A JUnit XML report, one testcase per record.
    Junit,
}

impl Format {
    /// Every format, in the order the documentation lists them.
    pub const ALL: [Format; 5] = [
        Format::Text,
        Format::Jsonl,
        Format::Json,
        Format::Csv,
        Format::Junit,
    ];

    /// The name used on the command line and in the job file.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Jsonl => "jsonl",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Junit => "junit",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name given is not a format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}`, expected one of text, jsonl, json, csv, junit")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Format, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .ok_or_else(|| UnknownFormat(name.to_string()))
    }
}

/// Order of the records in the results.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Task order, then item order, whatever the scheduling.
    #[default]
    Submission,
    /// As tasks end.
    Completion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
        }
        assert!("xml".parse::<Format>().is_err());
    }
}

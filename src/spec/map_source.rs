//! The `map` key of a task, as written: an array, or a table naming one
//! source (`range`, `lines`, `glob`, `product`, `result`, `stream`).
//!
//! Deserialized by hand rather than with `serde(untagged)`, so that a bad
//! map gets a message that says which forms are allowed.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The map sources, as keys of the `map` table.
pub const MAP_SOURCES: &[&str] = &["range", "lines", "glob", "product", "result", "stream"];

/// A `map` as written in the file.
#[derive(Debug, Clone, PartialEq)]
pub enum RawMap {
    /// `map = [1, 2, 3]`.
    Items(Vec<Value>),
    /// `map = { range = [start, stop] }` or `[start, stop, step]`.
    Range(Vec<i64>),
    /// `map = { lines = "file" }`.
    Lines(String),
    /// `map = { glob = "pattern" }`.
    Glob(String),
    /// `map = { product = { a = [...], b = [...] } }`.
    Product(Map<String, Value>),
    /// `map = { result = "ID" }`.
    Result(String),
    /// `map = { stream = "ID" }`.
    Stream(String),
}

impl<'de> Deserialize<'de> for RawMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawMapVisitor)
    }
}

/// The sources, for a message: `` `range`, `lines`, ... ``.
fn sources() -> String {
    let quoted: Vec<String> = MAP_SOURCES.iter().map(|s| format!("`{s}`")).collect();
    quoted.join(", ")
}

struct RawMapVisitor;

impl<'de> Visitor<'de> for RawMapVisitor {
    type Value = RawMap;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of items, or a table with one of {}", sources())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawMap, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(RawMap::Items(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMap, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(format!(
                "an empty map table: expected one of {}",
                sources()
            )));
        };
        let source = match key.as_str() {
            "range" => RawMap::Range(map.next_value()?),
            "lines" => RawMap::Lines(map.next_value()?),
            "glob" => RawMap::Glob(map.next_value()?),
            "product" => RawMap::Product(map.next_value()?),
            "result" => RawMap::Result(map.next_value()?),
            "stream" => RawMap::Stream(map.next_value()?),
            other => return Err(de::Error::unknown_field(other, MAP_SOURCES)),
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a map takes exactly one source, found `{key}` and `{extra}`"
            )));
        }
        Ok(source)
    }
}

/// The forms of `map`, for the JSON Schema only.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
pub(crate) enum MapSchema {
    /// The items themselves.
    Items(Vec<Value>),
    /// `[start, stop]` or `[start, stop, step]`, like Python's `range`.
    Range {
        #[schemars(length(min = 2, max = 3))]
        range: Vec<i64>,
    },
    /// Each line of a file, relative to the job file's folder.
    Lines { lines: String },
    /// The files matching a glob, sorted.
    Glob { glob: String },
    /// Every combination of the arrays, as kwargs, in row-major order.
    Product {
        product: std::collections::BTreeMap<String, Vec<Value>>,
    },
    /// Task ID's value: an array, or text split in lines.
    Result { result: String },
    /// Each line task ID prints, while it still runs.
    Stream { stream: String },
}

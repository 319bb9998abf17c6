//! The counters of the stats events, added up over the inputs and flattened
//! to dotted names, so a counter a newer writer adds shows up in the report
//! without a code change.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The counters of the stats events, flattened: `decode_failures.truncated`,
/// `evictions`, … Integer counters only; `files` is read as a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTotals {
    pub counters: BTreeMap<String, u64>,
    pub files: Vec<FileEntry>,
}

/// One capture file named in a stats event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub format: String,
    pub packets: u64,
    pub bytes_read: u64,
    pub error: Option<String>,
}

impl StatsTotals {
    pub fn get(&self, key: &str) -> Option<u64> {
        self.counters.get(key).copied()
    }

    /// The counters under `prefix.`, without the prefix.
    pub fn group<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, u64)> + 'a {
        self.counters.iter().filter_map(move |(k, &v)| {
            k.strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('.'))
                .map(|rest| (rest, v))
        })
    }

    pub(super) fn add(&mut self, stats: &Map<String, Value>) {
        for (key, value) in stats {
            if key == "files" {
                if let Value::Array(files) = value {
                    self.files.extend(files.iter().map(FileEntry::from_value));
                }
            } else if let ("interfaces", Value::Array(list)) = (key.as_str(), value) {
                // Live captures: what the kernel and the interfaces dropped.
                for (i, n) in list
                    .iter()
                    .filter_map(Value::as_object)
                    .flat_map(|o| o.iter())
                {
                    if i.ends_with("_dropped") || i == "error" {
                        let n = if i == "error" {
                            1
                        } else {
                            n.as_u64().unwrap_or(0)
                        };
                        let key = format!("interfaces.{}", if i == "error" { "errors" } else { i });
                        let total = self.counters.entry(key).or_default();
                        *total = total.saturating_add(n);
                    }
                }
            } else {
                flatten(key, value, &mut self.counters);
            }
        }
    }
}

fn flatten(path: &str, value: &Value, out: &mut BTreeMap<String, u64>) {
    match value {
        Value::Number(n) => {
            if let Some(n) = n.as_u64() {
                let total = out.entry(path.to_string()).or_default();
                *total = total.saturating_add(n);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{path}.{k}"), v, out);
            }
        }
        _ => {}
    }
}

impl FileEntry {
    fn from_value(v: &Value) -> FileEntry {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let count = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        FileEntry {
            path: text("path").unwrap_or_default(),
            format: text("format").unwrap_or_default(),
            packets: count("packets"),
            bytes_read: count("bytes_read"),
            error: text("error"),
        }
    }
}

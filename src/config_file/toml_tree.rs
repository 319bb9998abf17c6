//! The steps both formats take over the spanned TOML tree: parse it, walk
//! its top-level keys (`schema = 1` first of all), take arrays of tables,
//! deserialize one table, each problem placed where it is.

use std::ops::{ControlFlow, Range};

use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::{FileKind, Problems, MAX_FILE_BYTES};

/// Files up to this size have all their TOML syntax errors found at once;
/// larger ones only their first: every syntax error at once needs them all in
/// memory at once (about 300 bytes each, and garbage holds one per byte: a
/// 128 KiB file of `=` lines took 46 MB this way).
const LIST_SYNTAX_ERRORS_UP_TO: usize = 64 << 10;

/// `text` as a spanned TOML tree; `None`, with the problems recorded, when it
/// is larger than [`MAX_FILE_BYTES`] or not TOML.
pub fn parse<'a>(
    kind: FileKind,
    text: &'a str,
    p: &mut Problems<'_>,
) -> Option<Spanned<DeTable<'a>>> {
    if text.len() > MAX_FILE_BYTES {
        p.push(
            0..0,
            None,
            None,
            super::too_large(kind, &format!("{} bytes", text.len())),
        );
        return None;
    }
    match DeTable::parse(text) {
        Ok(root) => Some(root),
        Err(first) => {
            let all = if text.len() <= LIST_SYNTAX_ERRORS_UP_TO {
                DeTable::parse_recoverable(text).1
            } else {
                vec![first]
            };
            for e in all {
                p.push(
                    e.span().unwrap_or(0..0),
                    None,
                    None,
                    format!("invalid TOML: {}", e.message()),
                );
            }
            None
        }
    }
}

/// What a `schema` other than 1 is told.
const UNSUPPORTED_SCHEMA: &str = "unsupported schema; this portmatrix reads `schema = 1`";

/// Walks the top-level keys of `root`: `schema` must be `1` and present, a
/// key neither `schema` nor one of `keys` is refused (naming the allowed
/// ones), and each of `keys` found is handed to `each` in file order. `each`
/// breaks the walk when a limit is reached; the walk then breaks too.
pub fn walk_top_level<'a, 'p>(
    root: Spanned<DeTable<'a>>,
    keys: &[&str],
    p: &mut Problems<'p>,
    mut each: impl FnMut(&str, Spanned<DeValue<'a>>, &mut Problems<'p>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let root_span = root.span();
    let mut seen_schema = false;
    for (key, value) in root.into_inner() {
        let name = key.get_ref().as_ref();
        if name == "schema" {
            seen_schema = true;
            if !is_schema_one(value.get_ref()) {
                p.push(
                    value.span(),
                    None,
                    Some("schema"),
                    UNSUPPORTED_SCHEMA.into(),
                );
            }
        } else if keys.contains(&name) {
            each(name, value, p)?;
        } else {
            p.push(
                key.span(),
                None,
                None,
                format!(
                    "unknown top-level key `{name}`; allowed: schema, {}",
                    keys.join(", ")
                ),
            );
        }
    }
    if !seen_schema {
        p.push(
            root_span.start..root_span.start,
            None,
            Some("schema"),
            "missing `schema = 1` at the top of the file".into(),
        );
    }
    ControlFlow::Continue(())
}

/// `schema = 1`, written as a decimal integer: the only version there is.
fn is_schema_one(value: &DeValue<'_>) -> bool {
    value.as_integer().map(|i| (i.as_str(), i.radix())) == Some(("1", 10))
}

/// The tables of `[[name]]`; none, with a problem, when `name` is something else.
pub fn array_of_tables<'a>(
    value: Spanned<DeValue<'a>>,
    name: &str,
    p: &mut Problems<'_>,
) -> Vec<Spanned<DeValue<'a>>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => items.into_iter().collect(),
        _ => {
            p.push(
                span,
                None,
                Some(name),
                format!("expected an array of tables: write each {name} as `[[{name}]]`"),
            );
            Vec::new()
        }
    }
}

/// One table as the format's type (`deny_unknown_fields` types name the
/// key that is not allowed); `None`, with the problem placed, when it is not.
pub fn deserialize<'de, T: Deserialize<'de>>(
    value: Spanned<DeValue<'de>>,
    item: Option<&str>,
    p: &mut Problems<'_>,
) -> Option<T> {
    let span: Range<usize> = value.span();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(t) => Some(t),
        Err(e) => {
            p.push(
                e.span().unwrap_or(span),
                item,
                None,
                e.message().to_string(),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::{Problem, MAX_ERRORS};

    /// The problems of walking `text` with the keys `a` and `b`.
    fn walk(text: &str) -> (Vec<String>, Vec<Problem>) {
        let mut p = Problems::new("t.toml", text);
        let mut seen = Vec::new();
        if let Some(root) = parse(FileKind::Rules, text, &mut p) {
            let _ = walk_top_level(root, &["a", "b"], &mut p, |name, _, _| {
                seen.push(name.to_string());
                ControlFlow::Continue(())
            });
        }
        (seen, p.into_list())
    }

    #[test]
    fn walks_the_keys_and_checks_the_schema() {
        let (seen, problems) = walk("schema = 1\na = 1\nb = 2\n");
        assert_eq!(seen, ["a", "b"]);
        assert!(problems.is_empty(), "{problems:?}");
        let (_, problems) = walk("a = 1\nc = 3\nschema = 0x1\n");
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            [
                "t.toml:2:1: unknown top-level key `c`; allowed: schema, a, b",
                "t.toml:3:10: field `schema`: unsupported schema; this portmatrix reads `schema = 1`",
            ]
        );
        let (_, problems) = walk("a = 1\n");
        assert_eq!(
            problems[0].to_string(),
            "t.toml:1:1: field `schema`: missing `schema = 1` at the top of the file"
        );
    }

    #[test]
    fn syntax_errors_are_listed_with_their_lines_and_capped() {
        let (_, problems) = walk("schema = 1\n[a\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
        assert!(
            problems[0].message.starts_with("invalid TOML"),
            "{problems:?}"
        );
        let garbage = format!("schema = 1\n{}", "=\n".repeat(1000));
        let (_, problems) = walk(&garbage);
        assert_eq!(problems.len(), MAX_ERRORS + 1);
        assert_eq!(problems[0].line, 2);
        // Larger files: the first syntax error only.
        let garbage = format!("schema = 1\n{}", "=\n".repeat(40_000));
        let (_, problems) = walk(&garbage);
        assert_eq!(problems.len(), 1);
    }
}

//! Reading a small configuration file (rules, site) as text, with the size
//! limit and the UTF-8 check both loaders need, and placing byte offsets.

use std::path::Path;

/// Why a file that could be read is not usable text, and on which line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextProblem {
    pub line: usize,
    pub message: String,
}

/// The file's text: `Err` when it cannot be read, `Ok(Err(..))` when it is
/// larger than `limit` bytes or not UTF-8. `kind` names the file in messages
/// ("rules", "site").
pub fn read_text_file(
    path: &Path,
    limit: usize,
    kind: &str,
) -> std::io::Result<Result<String, TextProblem>> {
    let len = std::fs::metadata(path)?.len();
    if len > limit as u64 {
        return Ok(Err(TextProblem {
            line: 1,
            message: format!("file is {len} bytes; {kind} files are limited to {limit} bytes"),
        }));
    }
    let bytes = std::fs::read(path)?;
    Ok(String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..offset];
        TextProblem {
            line: before.iter().filter(|&&b| b == b'\n').count() + 1,
            message: format!(
                "not UTF-8 text (bad byte at offset {offset}); save the file as UTF-8"
            ),
        }
    }))
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncdé\nx", 8), (3, 1));
        assert_eq!(line_col("ab\ncdé\nx", 5), (2, 3));
    }
}

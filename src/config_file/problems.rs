//! Collecting the problems of one file, each placed at its line and column.

use std::cell::OnceCell;
use std::ops::Range;

use super::{Problem, MAX_ERRORS};

/// The problems found in one file's text, in the order found. Beyond
/// [`MAX_ERRORS`] they are only counted: a file of garbage costs the same
/// few lookups as a file with one typo.
pub struct Problems<'a> {
    origin: &'a str,
    text: &'a str,
    /// Where each line starts, built at the first lookup: one pass over the
    /// text, then each lookup is a binary search (a scan from the start per
    /// problem made a garbage file take minutes).
    line_starts: OnceCell<Vec<u32>>,
    list: Vec<Problem>,
    /// Problems found beyond [`MAX_ERRORS`].
    unlisted: usize,
}

impl<'a> Problems<'a> {
    /// `origin` names the file in every problem.
    pub fn new(origin: &'a str, text: &'a str) -> Self {
        Problems {
            origin,
            text,
            line_starts: OnceCell::new(),
            list: Vec::new(),
            unlisted: 0,
        }
    }

    pub fn origin(&self) -> &'a str {
        self.origin
    }

    /// Problems found so far, listed or not.
    pub fn count(&self) -> usize {
        self.list.len() + self.unlisted
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn at(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let starts = self.line_starts.get_or_init(|| {
            // Texts here are at most a few MiB: a u32 per line is enough.
            std::iter::once(0)
                .chain(
                    self.text
                        .bytes()
                        .enumerate()
                        .filter(|&(_, b)| b == b'\n')
                        .map(|(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX)),
                )
                .collect()
        });
        let line = starts.partition_point(|&s| s as usize <= offset).max(1);
        let start = starts[line - 1] as usize;
        let column = self
            .text
            .get(start..offset)
            .map_or(offset.saturating_sub(start), |s| s.chars().count());
        (line, column + 1)
    }

    /// A problem at the start of `span`.
    pub fn push(
        &mut self,
        span: Range<usize>,
        item: Option<&str>,
        field: Option<&str>,
        message: String,
    ) {
        if self.list.len() >= MAX_ERRORS {
            self.unlisted += 1;
            return;
        }
        let at = self.at(span.start);
        self.push_at(at, item, field, message);
    }

    /// A problem at a place already looked up (see [`Problems::at`]).
    pub fn push_at(
        &mut self,
        (line, column): (usize, usize),
        item: Option<&str>,
        field: Option<&str>,
        message: String,
    ) {
        if self.list.len() >= MAX_ERRORS {
            self.unlisted += 1;
            return;
        }
        self.list.push(Problem {
            origin: self.origin.to_string(),
            line,
            column,
            item: item.map(str::to_string),
            field: field.map(str::to_string),
            message,
        });
    }

    /// The listed problems, and one more that counts the others.
    pub fn into_list(mut self) -> Vec<Problem> {
        if self.unlisted > 0 {
            // Placed at the last listed problem: the ones not listed come
            // later in the order the checks run, mostly later in the file.
            let line = self.list.last().map_or(1, |p| p.line);
            self.list.push(Problem {
                origin: self.origin.to_string(),
                line,
                column: 1,
                item: None,
                field: None,
                message: format!(
                    "{} more errors not listed; fix the ones above and check again",
                    self.unlisted
                ),
            });
        }
        self.list
    }

    /// `ok` when nothing was found, else every problem.
    pub fn into_result<T>(self, ok: T) -> Result<T, Vec<Problem>> {
        if self.is_empty() {
            Ok(ok)
        } else {
            Err(self.into_list())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_characters() {
        let p = Problems::new("t", "ab\ncdé\nx");
        assert_eq!(p.at(0), (1, 1));
        assert_eq!(p.at(2), (1, 3));
        assert_eq!(p.at(3), (2, 1));
        assert_eq!(p.at(5), (2, 3));
        assert_eq!(p.at(8), (3, 1));
        assert_eq!(p.at(9), (3, 2));
        // Past the end: the end.
        assert_eq!(p.at(99), (3, 2));
        let empty = Problems::new("t", "");
        assert_eq!(empty.at(0), (1, 1));
    }

    #[test]
    fn lists_the_first_problems_and_counts_the_rest() {
        let text = "x\n".repeat(500);
        let mut p = Problems::new("f.toml", &text);
        for i in 0..500 {
            p.push(2 * i..2 * i + 1, Some("item"), None, format!("problem {i}"));
        }
        assert_eq!(p.count(), 500);
        let list = p.into_list();
        assert_eq!(list.len(), MAX_ERRORS + 1);
        assert_eq!(list[MAX_ERRORS - 1].line, MAX_ERRORS);
        let last = &list[MAX_ERRORS];
        assert_eq!(
            last.to_string(),
            "f.toml:100:1: 400 more errors not listed; fix the ones above and check again"
        );
    }
}

//! Errors of the matrix layer: reading and validating rules files.

use std::path::PathBuf;

/// One problem in a rules file, located precisely enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The file's path, or `built-in:…` for the embedded matrix.
    pub origin: String,
    /// 1-based; 0 when the error is about rules together rather than one
    /// place in a file (an id used twice across files, too many rules).
    pub line: usize,
    pub column: usize,
    /// The rule's id, when the rule got far enough to have one.
    pub rule: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.origin)?;
        } else {
            write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        }
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("cannot read rules file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_invalid(.0))]
    Invalid(Vec<RuleError>),
}

fn render_invalid(errors: &[RuleError]) -> String {
    let mut out = format!(
        "{} error{} in rules:",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        out.push_str("\n  ");
        out.push_str(&e.to_string());
    }
    out.push_str("\n(the rules format is described in the README, section \"Rules\")");
    out
}

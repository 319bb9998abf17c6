//! Errors of the site layer: reading and validating a site file.

use std::path::PathBuf;

/// One problem in a site file, located precisely enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteProblem {
    /// The file's path.
    pub origin: String,
    pub line: usize,
    pub column: usize,
    /// The table the problem is in, e.g. `exception "chg-1234"` or `system "ccma"`.
    pub item: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for SiteProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        if let Some(item) = &self.item {
            write!(f, "{item}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("cannot read site file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_invalid(.0))]
    Invalid(Vec<SiteProblem>),
}

fn render_invalid(problems: &[SiteProblem]) -> String {
    let mut out = format!(
        "{} error{} in the site file:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(&p.to_string());
    }
    out.push_str(
        "\n(the site format is described in rules/site-example.toml and the README, section \"Site inventory\")",
    );
    out
}

//! The one error type of both kinds of file: a located [`Problem`], and
//! [`ConfigError`] for a file that could not be read or is not valid.

use std::path::PathBuf;

use crate::printable::Printable;

/// Which format a file is in: named in messages, with where it is described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `--rules FILE`: rules that add to or replace the vendor matrix.
    Rules,
    /// `--site FILE`: the site inventory.
    Site,
    /// `live --config FILE`: the options of `live`.
    Config,
}

impl FileKind {
    /// `rules` or `site`, as in "rules files are limited to …".
    pub fn noun(self) -> &'static str {
        match self {
            FileKind::Rules => "rules",
            FileKind::Site => "site",
            FileKind::Config => "configuration",
        }
    }

    /// A file refused as a whole (too large, say): one problem at its start.
    pub fn invalid_at_start(self, origin: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            kind: self,
            problems: vec![Problem {
                origin: origin.to_string(),
                line: 1,
                column: 1,
                item: None,
                field: None,
                message,
            }],
        }
    }
}

/// One problem in a file, located precisely enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file's path, or `built-in:…` for the embedded matrix.
    pub origin: String,
    /// 1-based; 0 when the problem is about rules together rather than one
    /// place in a file (an id used twice across files, too many rules).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// What the problem is in: `rule 2.2.2#19`, `exception "chg-1234"`,
    /// `system "ccma"`…
    pub item: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

/// Messages quote the file (an unknown key, a rule id), so what they show
/// is [`Printable`]: a file cannot send escape sequences to the terminal.
impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = Printable(&self.origin);
        if self.line == 0 {
            write!(f, "{origin}: ")?;
        } else {
            write!(f, "{origin}:{}:{}: ", self.line, self.column)?;
        }
        if let Some(item) = &self.item {
            write!(f, "{}: ", Printable(item))?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{}`: ", Printable(field))?;
        }
        write!(f, "{}", Printable(&self.message))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {} file {}: {source}", .kind.noun(), Printable(&.path.display().to_string()))]
    Io {
        kind: FileKind,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_invalid(*.kind, .problems))]
    Invalid {
        kind: FileKind,
        problems: Vec<Problem>,
    },
}

fn render_invalid(kind: FileKind, problems: &[Problem]) -> String {
    let (what, help) = match kind {
        FileKind::Rules => ("rules", "the rules format is described in docs/rules-and-site.md, section \"Rules\""),
        FileKind::Site => (
            "the site file",
            "the site format is described in rules/site-example.toml and docs/rules-and-site.md, section \"Site inventory\"",
        ),
        FileKind::Config => (
            "the configuration file",
            "its keys are the long options of `portmatrix live --help`; see docs/deployment.md, section \"The configuration file\"",
        ),
    };
    let mut out = format!(
        "{} error{} in {what}:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(&p.to_string());
    }
    out.push_str(&format!("\n({help})"));
    out
}

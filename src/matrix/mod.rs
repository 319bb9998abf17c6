//! The port matrix: rules files -> validated rules -> an interval index that
//! [`crate::classify`] compiles into its constant-time lookup table.
//!
//! The vendor's AACC 7.1.2 matrix is embedded in the binary, so portmatrix runs
//! with no rules file at all; site files add to it or replace it.

mod app_names;
mod index;
mod load;
pub(crate) use load::parse_severities;
mod rule;
mod system;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config_file::{self, ConfigError, FileKind, Problem};
use crate::transport::Transport;
use crate::verdict::Severities;
pub use index::{Segment, MAX_RULES_PER_PORT};
pub use load::{parse_rules, PortSpec, RulesFile, MAX_RANGES_PER_RULE, MAX_RULES};
pub use rule::{
    Cast, DefaultState, DocumentRow, Listener, PortRange, Product, Profile, Rule, WIDE_RANGE,
};
pub use system::{
    unknown_system_message, System, SystemInfo, SystemSet, ANY, ANY_SPELLINGS, SYSTEMS,
};

/// The embedded vendor matrix.
pub const BUILTIN_RULES: &str = include_str!("../../rules/avaya-aacc-7.1.2.toml");
/// How the embedded matrix is named in errors and on its rules.
pub const BUILTIN_ORIGIN: &str = "built-in:rules/avaya-aacc-7.1.2.toml";

/// Index of a rule in [`PortMatrix::rules`]; small, so decisions stay compact.
pub type RuleIdx = u16;

/// Which rules files make up the matrix.
#[derive(Debug, Clone)]
pub struct MatrixSources {
    /// Start from the embedded vendor matrix (`--no-default-rules` turns it off).
    pub builtin: bool,
    /// Site rules files, in the order given (`--rules FILE`, repeatable).
    pub files: Vec<PathBuf>,
}

impl Default for MatrixSources {
    fn default() -> Self {
        MatrixSources {
            builtin: true,
            files: Vec::new(),
        }
    }
}

/// The validated rules of every source, with the severities they set.
#[derive(Debug, Clone)]
pub struct PortMatrix {
    rules: Vec<Rule>,
    severities: Severities,
}

impl PortMatrix {
    /// The embedded vendor matrix alone.
    pub fn builtin() -> Result<PortMatrix, ConfigError> {
        PortMatrix::load(&MatrixSources::default())
    }

    /// Read, validate and merge every source; all errors of all files at once.
    pub fn load(sources: &MatrixSources) -> Result<PortMatrix, ConfigError> {
        let mut parsed = Vec::new();
        let mut errors = Vec::new();
        if sources.builtin {
            match parse_rules(BUILTIN_ORIGIN, BUILTIN_RULES) {
                Ok(f) => parsed.push(f),
                Err(e) => errors.extend(e),
            }
        }
        for path in &sources.files {
            match read_rules_file(path) {
                Ok(f) => parsed.push(f),
                Err(ConfigError::Invalid { problems, .. }) => errors.extend(problems),
                Err(io) => return Err(io),
            }
        }
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        PortMatrix::from_files(parsed)
    }

    /// Merge parsed files; ids must be unique across all of them.
    pub fn from_files(files: Vec<RulesFile>) -> Result<PortMatrix, ConfigError> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut origins: HashMap<String, String> = HashMap::new();
        let mut severities = Severities::default();
        let mut errors = Vec::new();
        for file in files {
            for (verdict, severity) in file.severities {
                severities.set(verdict, severity);
            }
            for rule in file.rules {
                if let Some(first) = origins.get(&rule.id) {
                    errors.push(Problem {
                        origin: rule.origin.clone(),
                        line: 0,
                        column: 0,
                        item: Some(format!("rule {}", rule.id)),
                        field: Some("id".into()),
                        message: format!(
                            "duplicate id: {first} already defines it; ids must be unique across all rules files"
                        ),
                    });
                    continue;
                }
                origins.insert(rule.id.clone(), rule.origin.clone());
                rules.push(rule);
            }
        }
        if rules.len() > MAX_RULES {
            errors.push(Problem {
                origin: "rules".into(),
                line: 0,
                column: 0,
                item: None,
                field: None,
                message: format!(
                    "{} rules in all; at most {MAX_RULES} are supported",
                    rules.len()
                ),
            });
        }
        if errors.is_empty() {
            errors.extend(index::check_depth(&rules));
        }
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        Ok(PortMatrix { rules, severities })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, idx: RuleIdx) -> &Rule {
        &self.rules[usize::from(idx)]
    }

    pub fn find(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn severities(&self) -> Severities {
        self.severities
    }

    /// The port space of one transport and kind of destination, cut into
    /// segments on which the same rules match: the interval index the classifier
    /// compiles. Covers 0..=65535 without gaps, in order.
    pub fn segments(&self, transport: Transport, multicast: bool) -> Vec<Segment> {
        index::segments(&self.rules, |r| r.decides(transport, multicast), |_| true)
    }

    /// The ports where a rule documents a listener on `transport` (for either
    /// kind of destination) with a range of at most [`WIDE_RANGE`] ports, cut
    /// like [`PortMatrix::segments`]: flows of the other transport to them are
    /// `wrong_transport`.
    pub fn narrow_segments(&self, transport: Transport) -> Vec<Segment> {
        index::segments(
            &self.rules,
            |r| r.decides(transport, false) || r.decides(transport, true),
            |range| !range.is_wide(),
        )
    }

    /// [`PortMatrix::segments`] over the rules `keep` selects (the classifier
    /// indexes the rules needing roles this way, apart from the others).
    pub fn segments_where(&self, keep: impl Fn(&Rule) -> bool) -> Vec<Segment> {
        index::segments(&self.rules, keep, |_| true)
    }
}

/// Problems of rules, as the error of the matrix.
fn invalid(problems: Vec<Problem>) -> ConfigError {
    ConfigError::Invalid {
        kind: FileKind::Rules,
        problems,
    }
}

/// Read and validate one rules file: [`ConfigError::Io`] when it cannot be
/// read, [`ConfigError::Invalid`] with every problem when it is not valid.
pub fn read_rules_file(path: &Path) -> Result<RulesFile, ConfigError> {
    let text = config_file::read(path, FileKind::Rules)?;
    parse_rules(&path.display().to_string(), &text).map_err(invalid)
}

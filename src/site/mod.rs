//! The site inventory: which addresses are which systems of the matrix, the
//! severities the site wants, and the deviations it accepts.
//!
//! A site file (`--site FILE`, see `rules/site-example.toml`) turns "the port
//! is documented" into "these two systems may talk like this": the classifier
//! looks both ends of a new flow up here (a binary search per family, no
//! allocation) and keeps only the rules whose client and listening systems
//! fit. Whether an exception accepts a flagged flow is decided with its
//! verdict, where the flow is classified (`Flow::judge`); the flow carries
//! the answer to its events and counts.

mod exception;
mod load;
mod lookup;

use std::net::IpAddr;

pub use exception::{parse_until, DeviationQuery, Exception, ExceptionMatch};
pub use load::{parse_site, read_site_file, MAX_ADDRESSES, MAX_EXCEPTIONS};
pub use lookup::{IpNet, RoleClass, RoleEntry, RoleTable};

use crate::config_file::{ConfigError, FileKind, Problem};
use crate::matrix::{PortMatrix, RuleIdx, System, SystemSet};
use crate::timestamp::Timestamp;
use crate::verdict::Severity;
use crate::verdict::Verdict;

/// A validated site file.
#[derive(Debug, Clone)]
pub struct Site {
    /// The file's path, for messages.
    pub origin: String,
    roles: RoleTable,
    /// Severity changes, applied after the rules files'.
    pub severities: Vec<(Verdict, Severity)>,
    pub exceptions: Vec<Exception>,
}

impl Site {
    /// The interned roles of `ip` on a flow tagged `vlan`.
    pub fn class_of(&self, ip: IpAddr, vlan: Option<u16>) -> RoleClass {
        self.roles.class_of(ip, vlan)
    }

    /// The systems of a role class; empty for hosts not in the inventory.
    pub fn roles(&self, class: RoleClass) -> SystemSet {
        self.roles.roles(class)
    }

    pub fn roles_of(&self, ip: IpAddr, vlan: Option<u16>) -> SystemSet {
        self.roles(self.class_of(ip, vlan))
    }

    /// The addresses that have the role `system`, as merged inclusive ranges
    /// (see [`RoleTable::ranges_of`]); empty when the site has none.
    pub fn ranges_of(&self, system: System) -> Vec<(IpAddr, IpAddr)> {
        self.roles.ranges_of(system)
    }

    /// Tie each exception's `rule` to the matrix in use; a rule id the matrix
    /// does not have is an error at the exception's `rule` line.
    pub fn resolve_rules(&mut self, matrix: &PortMatrix) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        for e in &mut self.exceptions {
            let Some(id) = &e.rule else {
                continue;
            };
            match matrix.rules().iter().position(|r| &r.id == id) {
                Some(i) => e.rule_idx = RuleIdx::try_from(i).ok(),
                None => problems.push(Problem {
                    origin: self.origin.clone(),
                    line: e.rule_at.0,
                    column: e.rule_at.1,
                    item: Some(format!("exception \"{}\"", e.id)),
                    field: Some("rule".into()),
                    message: format!(
                        "no rule `{id}` in the matrix in use; `portmatrix rules list` shows the ids"
                    ),
                }),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                kind: FileKind::Site,
                problems,
            })
        }
    }

    /// How the exceptions apply to a flagged flow.
    pub fn exception_for(&self, q: &DeviationQuery<'_>) -> ExceptionMatch {
        exception::exception_for(&self.exceptions, q)
    }

    /// The exceptions that have expired at `at` (the wall clock when a run
    /// starts): they suppress nothing after their `until`.
    pub fn expired_at(&self, at: Timestamp) -> impl Iterator<Item = &Exception> {
        self.exceptions.iter().filter(move |e| e.expired_at(at))
    }
}

//! The verdicts and severities every event carries. Their names are part of the
//! output contract: scripts match on them.

use serde::{Deserialize, Serialize};

/// What the matrix says about a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// An open, current rule of the active profile covers it.
    Documented,
    /// No rule covers this port on any transport.
    Undocumented,
    /// The port is documented only for the other transport.
    WrongTransport,
    /// Only INTERNAL ONLY rules cover it, and the two ends are different hosts.
    InternalOnly,
    /// Only rules whose default state is closed cover it.
    ClosedByDefault,
    /// Only rules that the document removed, changed or says to close cover it.
    Deprecated,
    /// Only rules of the other product cover it.
    OutOfProfile,
    /// Documented, but the payload is clearly another protocol than the
    /// rules name (HTTP on the SIP port, plain text where TLS is documented).
    ProtocolMismatch,
    /// The port and transport are documented, but not between the systems
    /// the site inventory says these two hosts are (only with a site file).
    RoleMismatch,
}

impl Verdict {
    pub const ALL: [Verdict; 9] = [
        Verdict::Documented,
        Verdict::Undocumented,
        Verdict::WrongTransport,
        Verdict::InternalOnly,
        Verdict::ClosedByDefault,
        Verdict::Deprecated,
        Verdict::OutOfProfile,
        Verdict::ProtocolMismatch,
        Verdict::RoleMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Documented => "documented",
            Verdict::Undocumented => "undocumented",
            Verdict::WrongTransport => "wrong_transport",
            Verdict::InternalOnly => "internal_only",
            Verdict::ClosedByDefault => "closed_by_default",
            Verdict::Deprecated => "deprecated",
            Verdict::OutOfProfile => "out_of_profile",
            Verdict::ProtocolMismatch => "protocol_mismatch",
            Verdict::RoleMismatch => "role_mismatch",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Only a site inventory can give this verdict: without one it is left
    /// out of the counters, so runs without a site read as before.
    pub fn needs_site(self) -> bool {
        self == Verdict::RoleMismatch
    }

    /// Dense index, for per-verdict counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Among rules that all match a flow but none documents it, the more
    /// severe reading wins: internal_only > deprecated > out_of_profile > closed_by_default.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            Verdict::InternalOnly => 4,
            Verdict::Deprecated => 3,
            Verdict::OutOfProfile => 2,
            Verdict::ClosedByDefault => 1,
            _ => 0,
        }
    }

    /// The severity a verdict has unless a rules file says otherwise.
    pub fn default_severity(self) -> Severity {
        match self {
            Verdict::Documented => Severity::Info,
            Verdict::ClosedByDefault => Severity::Low,
            Verdict::Deprecated | Verdict::OutOfProfile => Severity::Medium,
            Verdict::WrongTransport
            | Verdict::InternalOnly
            | Verdict::Undocumented
            | Verdict::RoleMismatch
            | Verdict::ProtocolMismatch => Severity::High,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a verdict matters, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity per verdict: the defaults, changed by `[severity]` tables in rules
/// files, then in the site file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Severities([Severity; Verdict::ALL.len()]);

impl Default for Severities {
    fn default() -> Self {
        Severities(Verdict::ALL.map(Verdict::default_severity))
    }
}

impl Severities {
    pub fn of(&self, v: Verdict) -> Severity {
        self.0[v.index()]
    }

    pub fn set(&mut self, v: Verdict, s: Severity) {
        self.0[v.index()] = s;
    }
}

//! One validated rule: a row of the vendor document (or of a site's own file),
//! with the document's words kept verbatim beside our reading of them.

use serde::{Deserialize, Serialize};

use super::system::SystemSet;
use crate::transport::Transport;

/// Ranges wider than this are dynamic port ranges, not listening ports.
pub const WIDE_RANGE: u32 = 1024;

/// An inclusive range of listening ports; a single port is `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        PortRange { lo: port, hi: port }
    }

    pub fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }

    /// A single port is more specific than any range (see `classify`).
    pub fn is_single(self) -> bool {
        self.lo == self.hi
    }

    /// More than [`WIDE_RANGE`] ports: a dynamic range, not listening ports.
    pub fn is_wide(self) -> bool {
        u32::from(self.hi - self.lo) + 1 > WIDE_RANGE
    }
}

impl Serialize for PortRange {
    /// `[lo, hi]`, the form `rules list --json` promises.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.lo, self.hi].serialize(s)
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// The port's state on a fresh installation, as the document gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultState {
    Open,
    Closed,
    /// "Open if HA": open only in High Availability deployments.
    OpenIfHa,
    /// The document leaves the cell blank; treated as open.
    Unspecified,
}

/// Which product a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Contact Center and Contact Center Select alike (the document's default).
    #[default]
    Both,
    /// Avaya Aura Contact Center only.
    Aacc,
    /// Avaya Contact Center Select only (rows labelled "ACCS:").
    Accs,
}

impl Profile {
    /// Whether a rule of this profile applies when the site runs `active`.
    pub fn applies_to(self, active: Product) -> bool {
        matches!(
            (self, active),
            (Profile::Both, _) | (Profile::Aacc, Product::Aacc) | (Profile::Accs, Product::Accs)
        )
    }
}

/// The product a site runs: what `--profile` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// Avaya Aura Contact Center.
    #[default]
    Aacc,
    /// Avaya Contact Center Select.
    Accs,
}

impl Product {
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Aacc => "aacc",
            Product::Accs => "accs",
        }
    }
}

impl std::str::FromStr for Product {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "aacc" => Ok(Product::Aacc),
            "accs" => Ok(Product::Accs),
            _ => Err(format!("unknown profile `{s}`: use `aacc` (Aura Contact Center) or `accs` (Contact Center Select)")),
        }
    }
}

/// Whether a rule speaks of unicast or multicast destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Cast {
    /// Matches only unicast destinations.
    #[default]
    Unicast,
    /// Matches only multicast destinations (224.0.0.0/4, ff00::/8).
    Multicast,
    /// The document is ambiguous; both match.
    Any,
}

impl Cast {
    pub fn admits(self, multicast_destination: bool) -> bool {
        match self {
            Cast::Unicast => !multicast_destination,
            Cast::Multicast => multicast_destination,
            Cast::Any => true,
        }
    }
}

/// Which column of the document row names the system that listens (the
/// flow's server). The listening ports themselves are always `listen_ports`,
/// wherever the document wrote them: several rows put the port in the source
/// column while the destination still listens (their notes say so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Listener {
    #[default]
    Destination,
    /// The row is written backwards: the source column's system listens.
    Source,
}

/// The document's other cells for a row, copied verbatim (typos included) so a
/// reader can find the row in the PDF. Empty strings are blank cells. The
/// component, systems and description are verbatim too, on [`Rule`] itself.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DocumentRow {
    pub source_port: String,
    pub destination_port: String,
    pub protocol: String,
    pub optional_cell: String,
    pub state_cell: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_port: Option<String>,
}

/// A validated rule. Built only by [`super::load`], so every invariant
/// (ports in range, at least one transport, unique id) holds.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// `"2.2.2#17"`: section and 1-based row; stable, and quoted in every event.
    pub id: String,
    /// Where the rule came from: `built-in` or the rules file's path.
    pub origin: String,
    pub component: String,
    pub source: String,
    pub destination: String,
    pub description: String,
    pub listen_ports: Vec<PortRange>,
    pub transports: Vec<Transport>,
    pub app_protocol: String,
    pub listener: Listener,
    /// The systems that may open the flow (`any`: not checked). With a site
    /// inventory, a flow matches only if its client has one of them.
    pub client_systems: SystemSet,
    /// The systems that listen on the port (`any`: not checked); whatever
    /// column of the document names them (see [`Listener`]).
    pub listener_systems: SystemSet,
    pub cast: Cast,
    pub multicast: bool,
    pub optional: Option<bool>,
    pub default_state: DefaultState,
    pub profile: Profile,
    pub internal_only: bool,
    pub ha_only: bool,
    pub windows_only: bool,
    pub deprecated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// The rule documents nothing by port alone: it needs to know the hosts' roles.
    pub needs_roles: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub document: DocumentRow,
}

impl Rule {
    pub fn has_transport(&self, t: Transport) -> bool {
        self.transports.contains(&t)
    }

    pub fn covers_port(&self, port: u16) -> bool {
        self.listen_ports.iter().any(|r| r.contains(port))
    }

    /// Whether the rule speaks, by port alone, for flows on this transport to
    /// this kind of destination. Rules that need site roles never do.
    pub fn decides(&self, t: Transport, multicast_destination: bool) -> bool {
        !self.needs_roles && self.has_transport(t) && self.cast.admits(multicast_destination)
    }

    /// Whether every range of the rule that holds `port` is wider than
    /// [`WIDE_RANGE`] ports: a dynamic range (media, ephemeral) rather than a
    /// documented listening port.
    pub fn is_wide_at(&self, port: u16) -> bool {
        self.listen_ports
            .iter()
            .filter(|r| r.contains(port))
            .all(|r| r.is_wide())
    }

    /// Whether a single-port entry (not a range) of the rule is `port`.
    pub fn is_single_port_match(&self, port: u16) -> bool {
        self.listen_ports
            .iter()
            .any(|r| r.is_single() && r.contains(port))
    }

    /// `80`, `1972, 8085`, `6000-32599`: the ports as a person writes them.
    pub fn ports_text(&self) -> String {
        let parts: Vec<String> = self.listen_ports.iter().map(|r| r.to_string()).collect();
        parts.join(", ")
    }

    /// `tcp`, `udp` or `tcp/udp`.
    pub fn transports_text(&self) -> String {
        let parts: Vec<&str> = self.transports.iter().map(|t| t.as_str()).collect();
        parts.join("/")
    }
}

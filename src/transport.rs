//! The two layer-4 transports the port matrix speaks about.

use serde::{Deserialize, Serialize};

/// A layer-4 transport: every rule and every flow is on exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    /// Both transports, in a fixed order (tables are indexed by it).
    pub const ALL: [Transport; 2] = [Transport::Tcp, Transport::Udp];

    /// IANA protocol number (6 or 17), as used by Community ID and IP headers.
    pub fn ip_proto(self) -> u8 {
        match self {
            Transport::Tcp => 6,
            Transport::Udp => 17,
        }
    }

    /// Dense index, for per-transport tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The other transport (for `wrong_transport`).
    pub fn other(self) -> Transport {
        match self {
            Transport::Tcp => Transport::Udp,
            Transport::Udp => Transport::Tcp,
        }
    }

    /// Lower-case name, as in rules files and `rules explain tcp/1972`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }

    /// Upper-case name, as in the EVE `proto` field.
    pub fn eve_name(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

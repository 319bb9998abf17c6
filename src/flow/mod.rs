//! Flows: direction-free keys, per-flow state, and the bounded per-worker table
//! that creates, classifies, times out and evicts them on packet time.

mod key;
mod table;

use serde::Serialize;

#[cfg(test)]
pub(crate) use key::ep;
pub use key::{packet_hash, Endpoint, FlowKey};
pub use table::{FlowEvent, FlowTable, TableStats, Timeouts};

use crate::capture::Timestamp;
use crate::classify::{DecisionId, Severity, Verdict};
use crate::decode::Encap;
use crate::transport::Transport;

/// How the client and server of a flow were told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The capture holds the SYN (or the SYN-ACK).
    Handshake,
    /// Exactly one side is on a port the matrix documents as listening.
    Matrix,
    /// Neither: the lower port (TCP) or the first sender (UDP) decided.
    Heuristic,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Handshake => "handshake",
            Direction::Matrix => "matrix",
            Direction::Heuristic => "heuristic",
        }
    }
}

/// Where a TCP connection got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpState {
    SynSent,
    SynRecv,
    Established,
    /// One side has sent FIN.
    Closing,
    /// Both sides sent FIN, or one sent RST.
    Closed,
}

impl TcpState {
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::Closing => "closing",
            TcpState::Closed => "closed",
        }
    }
}

/// Why a flow event was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Closed,
    Timeout,
    Evicted,
    EndOfInput,
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::Timeout => "timeout",
            EndReason::Evicted => "evicted",
            EndReason::EndOfInput => "end_of_input",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// One flow: who opened it, what the matrix says, and what was exchanged.
/// `Copy` and small, so events carry it by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Stable across runs and worker counts: derived from the key and start time.
    pub id: u64,
    pub transport: Transport,
    pub client: Endpoint,
    pub server: Endpoint,
    pub direction: Direction,
    /// The outer VLAN id of the first tagged packet.
    pub vlan: Option<u16>,
    /// The tunnels of the first encapsulated packet. Like the VLAN id it is
    /// not part of the [`FlowKey`]: the inner 5-tuple names the flow, so a
    /// connection whose two directions travel differently (one mirrored
    /// through ERSPAN, one not) is still one flow.
    pub encap: Encap,
    pub start: Timestamp,
    pub last: Timestamp,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub tcp_state: Option<TcpState>,
    pub verdict: Verdict,
    pub severity: Severity,
    pub decision: DecisionId,
    fin_from_client: bool,
    fin_from_server: bool,
}

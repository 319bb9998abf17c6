//! Flows: direction-free keys, per-flow state, and the bounded per-worker table
//! that creates, classifies, times out and evicts them on packet time.

mod evicted;
mod inspect;
mod key;
mod orient;
mod slab;
mod table;
mod tcp;
mod wheel;

use serde::Serialize;

#[cfg(test)]
pub(crate) use key::ep;
pub(crate) use key::mix;
pub use key::{endpoints, packet_hash, Endpoint, FlowKey};
pub use table::{FlowEvent, FlowTable, TableStats, Timeouts};

use crate::classify::{Classifier, DecisionId, FlowQuery};
use crate::decode::{AppGuess, Encap};
use crate::site::ExceptionMatch;
use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::Severity;
use crate::verdict::Verdict;
use inspect::Inspection;
pub use inspect::INSPECT_PACKETS;

/// How the client and server of a flow were told apart (see `orient` for
/// the order in which the evidence is weighed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The capture holds the SYN (or the SYN-ACK).
    Handshake,
    /// The destination is a multicast group or a broadcast address: it receives.
    Multicast,
    /// The payload was a request or a response (a DNS query, `HTTP/1.1 200`,
    /// a TLS ServerHello…).
    Payload,
    /// The matrix: one side is on a documented listening port and the other
    /// is not, or of two media-range ports one reading is documented.
    Matrix,
    /// Nothing better: a system port (< 1024) on one side, else the first
    /// sender (UDP) or the lower port (TCP).
    Heuristic,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Handshake => "handshake",
            Direction::Multicast => "multicast",
            Direction::Payload => "payload",
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

impl Flow {
    /// The TCP flags the server sent, OR-ed over its packets (`site suggest`
    /// looks for its SYN-ACK).
    pub fn flags_toclient(&self) -> u8 {
        self.flags_toclient
    }

    /// Only one direction of a TCP connection was seen although the packets
    /// seen acknowledge the other: the capture is asymmetric (a SPAN that
    /// mirrors one direction only, or a path that returns another way). An
    /// unanswered SYN is not one-sided, it is a connection that failed; UDP
    /// is often one-way by design (multicast, RTP on hold), so it never is.
    pub fn one_sided(&self) -> bool {
        use crate::decode::tcp_flags::ACK;
        self.transport == Transport::Tcp
            && ((self.pkts_toclient == 0 && self.flags_toserver & ACK != 0)
                || (self.pkts_toserver == 0 && self.flags_toclient & ACK != 0))
    }

    /// An alert was written for this conversation: it was flagged, or it
    /// came back after an eviction for which one had been. (A flow a site
    /// exception accepted counts too: when it comes back it stays quiet.)
    pub fn alerted(&self) -> bool {
        self.verdict != Verdict::Documented || self.quiet
    }

    /// Its alert is due now that it is flagged: no site exception accepts
    /// it, and it was not alerted before an eviction.
    pub fn alert_due(&self) -> bool {
        self.verdict != Verdict::Documented && !self.quiet && !self.exception.suppresses()
    }

    /// Give the flow its verdict and the decision behind it; the severity
    /// and the site exception follow from them. The one place a flow's
    /// verdict is set (when the flow starts, when it is turned round, when
    /// its payload contradicts its rules), so that the exception it carries
    /// is always the one of the verdict it has.
    pub(crate) fn judge(
        &mut self,
        verdict: Verdict,
        decision: DecisionId,
        classifier: &Classifier,
    ) {
        self.verdict = verdict;
        self.severity = classifier.severity(verdict);
        self.decision = decision;
        let q = FlowQuery {
            transport: self.transport,
            port: self.server.port,
            multicast: self.server.ip.is_multicast(),
            same_host: self.client.ip == self.server.ip,
            client: self.client.ip,
            server: self.server.ip,
            vlan: self.vlan,
        };
        self.exception = classifier.exception(&q, verdict, decision, self.start);
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
    /// How the site's exceptions apply to it, decided with its verdict
    /// (`Flow::judge`): events and counts read it, nobody decides it again.
    pub exception: ExceptionMatch,
    /// What the payload of its first packets looked like: the first named
    /// protocol, else `Unknown` if payload was seen but not recognised.
    pub app_seen: Option<AppGuess>,
    /// It came back after it was evicted (`--max-flows`): its ends are those
    /// it had then.
    pub resumed: bool,
    /// Its alert was written before it was evicted: not alerted again.
    quiet: bool,
    /// The state of the payload inspection of its first packets.
    inspection: Inspection,
    /// TCP flags seen towards the server and towards the client, OR-ed.
    flags_toserver: u8,
    flags_toclient: u8,
    fin_from_client: bool,
    fin_from_server: bool,
}

#[cfg(test)]
impl Flow {
    /// A flow as the table starts it, for tests of the later stages.
    pub(crate) fn for_tests(
        id: u64,
        transport: Transport,
        client: Endpoint,
        server: Endpoint,
        start: Timestamp,
        verdict: Verdict,
    ) -> Flow {
        Flow {
            id,
            transport,
            client,
            server,
            direction: Direction::Handshake,
            vlan: None,
            encap: Encap::default(),
            start,
            last: start,
            pkts_toserver: 1,
            pkts_toclient: 0,
            bytes_toserver: 60,
            bytes_toclient: 0,
            tcp_state: None,
            verdict,
            severity: verdict.default_severity(),
            decision: DecisionId::default(),
            exception: ExceptionMatch::None,
            app_seen: None,
            resumed: false,
            quiet: false,
            inspection: Inspection::DONE,
            flags_toserver: 0,
            flags_toclient: 0,
            fin_from_client: false,
            fin_from_server: false,
        }
    }
}

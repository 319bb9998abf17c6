//! The per-worker flow table: bounded, owned by one thread, driven by packet time.

use std::collections::HashMap;
use std::sync::Arc;

use super::key::{endpoints, mix, Endpoint, FlowKey};
use super::{Direction, EndReason, Flow, TcpState};
use crate::capture::Timestamp;
use crate::classify::{AppCheck, Classifier, FlowQuery, Verdict};
use crate::decode::{tcp_flags, AppGuess, PacketMeta};
use crate::transport::Transport;

const NANOS: i64 = 1_000_000_000;

/// Idle times after which a flow ends, on packet time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_secs: u32,
    pub tcp_closed_secs: u32,
    pub udp_secs: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_secs: 300,
            tcp_closed_secs: 30,
            udp_secs: 120,
        }
    }
}

impl Timeouts {
    fn of(&self, flow: &Flow) -> i64 {
        let secs = match (flow.transport, flow.tcp_state) {
            (Transport::Udp, _) => self.udp_secs,
            (Transport::Tcp, Some(TcpState::Closed)) => self.tcp_closed_secs,
            (Transport::Tcp, _) => self.tcp_secs,
        };
        i64::from(secs) * NANOS
    }
}

/// What the table reports as packets go by.
#[derive(Debug, Clone, Copy)]
pub enum FlowEvent {
    /// A new flow the matrix does not document: written at once.
    Alert(Flow),
    /// A flow ended (or input ended) with this reason.
    End(Flow, EndReason),
}

/// Counters of one table; summed over workers at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub flows: u64,
    pub flows_per_verdict: [u64; Verdict::ALL.len()],
    pub evicted: u64,
    pub timed_out: u64,
    /// Flows in the table when the counters were read.
    pub active: u64,
}

impl TableStats {
    pub fn add(&mut self, other: &TableStats) {
        self.flows += other.flows;
        for (a, b) in self
            .flows_per_verdict
            .iter_mut()
            .zip(other.flows_per_verdict)
        {
            *a += b;
        }
        self.evicted += other.evicted;
        self.timed_out += other.timed_out;
        self.active += other.active;
    }
}

/// How often (packet time) the table looks for idle flows.
const SWEEP_INTERVAL: i64 = 5 * NANOS;

pub struct FlowTable {
    flows: HashMap<FlowKey, Flow>,
    classifier: Arc<Classifier>,
    timeouts: Timeouts,
    capacity: usize,
    last_sweep: Option<Timestamp>,
    stats: TableStats,
    /// The VLAN id is part of the key (`--vlan-key`).
    vlan_key: bool,
}

impl FlowTable {
    /// `capacity`: the most flows this table holds; beyond it the oldest idle
    /// flows are evicted (and reported).
    pub fn new(classifier: Arc<Classifier>, timeouts: Timeouts, capacity: usize) -> FlowTable {
        FlowTable {
            flows: HashMap::new(),
            classifier,
            timeouts,
            capacity: capacity.max(1),
            last_sweep: None,
            stats: TableStats::default(),
            vlan_key: false,
        }
    }

    /// Keep flows of different VLANs apart (`--vlan-key`).
    pub fn keyed_by_vlan(mut self, on: bool) -> FlowTable {
        self.vlan_key = on;
        self
    }

    pub fn vlan_key(&self) -> bool {
        self.vlan_key
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            active: self.flows.len() as u64,
            ..self.stats
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The flow `key` names, while tracked: after [`FlowTable::update`], the
    /// flow that packet was counted on (evidence extraction asks).
    pub fn get(&self, key: &FlowKey) -> Option<&Flow> {
        self.flows.get(key)
    }

    /// Account one packet; may report a new flow's alert and ended flows.
    pub fn update(
        &mut self,
        ts: Timestamp,
        meta: &PacketMeta,
        wire_len: u32,
        out: &mut impl FnMut(FlowEvent),
    ) {
        let (sender, receiver) = endpoints(meta);
        let key = FlowKey::of(meta, self.vlan_key);
        if let Some(flow) = self.flows.get_mut(&key) {
            if ts.nanos_since(flow.last) <= self.timeouts.of(flow) {
                account(flow, ts, meta, sender, wire_len);
                if flow.app_budget > 0 && inspect(flow, meta, &self.classifier) {
                    self.stats.flows_per_verdict[Verdict::Documented.index()] -= 1;
                    self.stats.flows_per_verdict[flow.verdict.index()] += 1;
                    out(FlowEvent::Alert(*flow));
                }
                self.advance(ts, out);
                return;
            }
            // Idle past its timeout: that flow has ended, this packet starts a new one.
            let ended = *flow;
            self.flows.remove(&key);
            self.end(ended, out);
        }
        if self.flows.len() >= self.capacity {
            self.evict_oldest(out);
        }
        let mut flow = self.start_flow(&key, ts, meta, sender, receiver);
        account(&mut flow, ts, meta, sender, wire_len);
        inspect(&mut flow, meta, &self.classifier);
        self.stats.flows += 1;
        self.stats.flows_per_verdict[flow.verdict.index()] += 1;
        if flow.verdict != Verdict::Documented {
            out(FlowEvent::Alert(flow));
        }
        self.flows.insert(key, flow);
        self.advance(ts, out);
    }

    /// Move the table's clock: end flows idle past their timeout. Cheap when
    /// called often: it sweeps at most every few seconds of packet time.
    pub fn advance(&mut self, now: Timestamp, out: &mut impl FnMut(FlowEvent)) {
        match self.last_sweep {
            None => self.last_sweep = Some(now),
            Some(last) if now.nanos_since(last) >= SWEEP_INTERVAL => {
                self.last_sweep = Some(now);
                self.expire(now, out);
            }
            Some(_) => {}
        }
    }

    /// End every flow: those idle past their timeout at `now` as `timeout`
    /// (or `closed`), all others with `reason`.
    pub fn finish(&mut self, now: Timestamp, reason: EndReason, out: &mut impl FnMut(FlowEvent)) {
        self.expire(now, out);
        let mut rest: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        rest.sort_unstable_by_key(|f| (f.start, f.id));
        for flow in rest {
            out(FlowEvent::End(flow, end_reason(&flow, reason)));
        }
    }

    fn expire(&mut self, now: Timestamp, out: &mut impl FnMut(FlowEvent)) {
        let timeouts = self.timeouts;
        let stats = &mut self.stats;
        for (_, flow) in self
            .flows
            .extract_if(|_, f| now.nanos_since(f.last) > timeouts.of(f))
        {
            out(FlowEvent::End(flow, natural_end(&flow, stats)));
        }
    }

    fn end(&mut self, flow: Flow, out: &mut impl FnMut(FlowEvent)) {
        out(FlowEvent::End(flow, natural_end(&flow, &mut self.stats)));
    }

    /// Make room: evict about 1% of the table, least recently seen first, so
    /// that a flood costs amortized constant time per new flow.
    fn evict_oldest(&mut self, out: &mut impl FnMut(FlowEvent)) {
        let n = (self.capacity / 100).max(1);
        let mut by_age: Vec<(Timestamp, FlowKey)> =
            self.flows.iter().map(|(k, f)| (f.last, *k)).collect();
        let n = n.min(by_age.len());
        if n == 0 {
            return;
        }
        by_age.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
        by_age.truncate(n);
        by_age.sort_unstable_by_key(|(t, _)| *t);
        for (_, key) in by_age {
            if let Some(flow) = self.flows.remove(&key) {
                self.stats.evicted += 1;
                out(FlowEvent::End(flow, EndReason::Evicted));
            }
        }
    }

    fn start_flow(
        &self,
        key: &FlowKey,
        ts: Timestamp,
        meta: &PacketMeta,
        sender: Endpoint,
        receiver: Endpoint,
    ) -> Flow {
        let (client, server, direction) = self.orient(meta, sender, receiver);
        let c = self.classifier.classify(FlowQuery {
            transport: meta.transport,
            port: server.port,
            multicast: server.ip.is_multicast(),
            same_host: client.ip == server.ip,
            client: client.ip,
            server: server.ip,
            vlan: meta.vlan,
        });
        let tcp_state = match meta.transport {
            Transport::Udp => None,
            Transport::Tcp => Some(TcpState::Established),
        };
        Flow {
            // 53 bits, so JSON readers that use doubles keep it exact.
            id: mix(key.stable_hash(), ts.as_nanos() as u64) & ((1 << 53) - 1),
            transport: meta.transport,
            client,
            server,
            direction,
            vlan: meta.vlan,
            encap: meta.encap,
            start: ts,
            last: ts,
            pkts_toserver: 0,
            pkts_toclient: 0,
            bytes_toserver: 0,
            bytes_toclient: 0,
            tcp_state,
            verdict: c.verdict,
            severity: c.severity,
            decision: c.decision,
            app_seen: None,
            app_budget: INSPECT_PACKETS,
            app_doubts: 0,
            flags_toserver: 0,
            flags_toclient: 0,
            fin_from_client: false,
            fin_from_server: false,
        }
    }

    /// Tell client from server on a flow's first packet.
    fn orient(
        &self,
        meta: &PacketMeta,
        sender: Endpoint,
        receiver: Endpoint,
    ) -> (Endpoint, Endpoint, Direction) {
        let t = meta.transport;
        if t == Transport::Tcp {
            let syn = meta.tcp_flags & tcp_flags::SYN != 0;
            let ack = meta.tcp_flags & tcp_flags::ACK != 0;
            if syn && !ack {
                return (sender, receiver, Direction::Handshake);
            }
            if syn && ack {
                return (receiver, sender, Direction::Handshake);
            }
        }
        let listens = |e: Endpoint| {
            self.classifier
                .is_listening_port(t, e.port, e.ip.is_multicast())
        };
        match (listens(sender), listens(receiver)) {
            (false, true) => (sender, receiver, Direction::Matrix),
            (true, false) => (receiver, sender, Direction::Matrix),
            // UDP: the first sender is the client, even when both ports are documented.
            (true, true) if t == Transport::Udp => (sender, receiver, Direction::Matrix),
            _ if t == Transport::Udp => (sender, receiver, Direction::Heuristic),
            _ => {
                // TCP mid-stream: the lower port listens (ties: the lower address).
                if (receiver.port, receiver.ip) <= (sender.port, sender.ip) {
                    (sender, receiver, Direction::Heuristic)
                } else {
                    (receiver, sender, Direction::Heuristic)
                }
            }
        }
    }
}

/// A closed TCP flow ends as `closed` whatever ended it; others with `otherwise`.
fn end_reason(flow: &Flow, otherwise: EndReason) -> EndReason {
    if flow.tcp_state == Some(TcpState::Closed) {
        EndReason::Closed
    } else {
        otherwise
    }
}

/// A flow that ended on its own: closed if TCP saw it close, else timed out.
fn natural_end(flow: &Flow, stats: &mut TableStats) -> EndReason {
    let reason = end_reason(flow, EndReason::Timeout);
    if reason == EndReason::Timeout {
        stats.timed_out += 1;
    }
    reason
}

/// Count a packet on its flow and follow the TCP state.
/// Payload packets of a flow that are looked at: enough to get past a
/// handshake's empty segments and a banner, few enough to cost nothing.
const INSPECT_PACKETS: u8 = 4;

/// Look at one more packet's payload guess: record what the flow carries and,
/// when its rules name a protocol the payload clearly is not, turn a
/// documented flow into `protocol_mismatch`. Returns whether it did.
///
/// A named protocol (HTTP where SIP is documented) is clear at once;
/// unrecognised bytes or plain text against the rules (in the RTP ranges,
/// where TLS is documented) must come twice before any packet fits, so that
/// one keep-alive or probe ahead of the real stream is not enough.
fn inspect(flow: &mut Flow, meta: &PacketMeta, classifier: &Classifier) -> bool {
    let Some(guess) = meta.app else {
        return false;
    };
    flow.app_budget = flow.app_budget.saturating_sub(1);
    if flow.app_seen.is_none_or(|s| s == AppGuess::Unknown) {
        flow.app_seen = Some(guess);
    }
    let named = !matches!(guess, AppGuess::Unknown | AppGuess::Text);
    let contradicted = match classifier.app_expectation(flow.decision).check(guess) {
        AppCheck::Fits => {
            flow.app_budget = 0;
            false
        }
        AppCheck::Contradicts => {
            flow.app_doubts += 1;
            named || flow.app_doubts >= 2
        }
        AppCheck::Undecided => {
            if named {
                flow.app_budget = 0;
            }
            false
        }
    };
    if !contradicted {
        return false;
    }
    flow.app_budget = 0;
    if flow.verdict != Verdict::Documented {
        return false;
    }
    flow.verdict = Verdict::ProtocolMismatch;
    flow.severity = classifier.severity(Verdict::ProtocolMismatch);
    true
}

fn account(flow: &mut Flow, ts: Timestamp, meta: &PacketMeta, sender: Endpoint, wire_len: u32) {
    // A flow from a socket to itself counts every packet towards the server.
    let to_server = sender == flow.client;
    if ts > flow.last {
        flow.last = ts;
    }
    if flow.vlan.is_none() {
        flow.vlan = meta.vlan;
    }
    if flow.encap.is_empty() {
        flow.encap = meta.encap;
    }
    if to_server {
        flow.pkts_toserver += 1;
        flow.bytes_toserver += u64::from(wire_len);
        flow.flags_toserver |= meta.tcp_flags;
    } else {
        flow.pkts_toclient += 1;
        flow.bytes_toclient += u64::from(wire_len);
        flow.flags_toclient |= meta.tcp_flags;
    }
    let Some(state) = flow.tcp_state else {
        return;
    };
    let f = meta.tcp_flags;
    let (syn, ack, fin, rst) = (
        f & tcp_flags::SYN != 0,
        f & tcp_flags::ACK != 0,
        f & tcp_flags::FIN != 0,
        f & tcp_flags::RST != 0,
    );
    let first = flow.pkts_toserver + flow.pkts_toclient == 1;
    let mut next = state;
    if first && syn {
        next = if ack {
            TcpState::SynRecv
        } else {
            TcpState::SynSent
        };
    } else if syn && ack && state == TcpState::SynSent && !to_server {
        next = TcpState::SynRecv;
    } else if ack && state == TcpState::SynRecv && to_server {
        next = TcpState::Established;
    }
    if fin {
        if to_server {
            flow.fin_from_client = true;
        } else {
            flow.fin_from_server = true;
        }
        next = if flow.fin_from_client && flow.fin_from_server {
            TcpState::Closed
        } else {
            TcpState::Closing
        };
    }
    if rst {
        next = TcpState::Closed;
    }
    if state != TcpState::Closed {
        flow.tcp_state = Some(next);
    }
}

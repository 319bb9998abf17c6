//! The per-worker flow table: bounded, owned by one thread, driven by packet time.

use std::sync::Arc;

use super::evicted::Evicted;
use super::inspect::{inspect, Inspection, Outcome};
use super::key::{endpoints, mix, packet_hash, Endpoint, FlowKey};
use super::orient::{orient, Orientation};
use super::slab::Slab;
use super::tcp;
use super::wheel::{Wheel, NANOS};
use super::{EndReason, Flow, TcpState};
use crate::classify::{Classifier, FlowQuery};
use crate::decode::PacketMeta;
use crate::site::ExceptionMatch;
use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::Verdict;

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
    /// Flows that came back after they were evicted (see `evicted`).
    pub resumed: u64,
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
        self.resumed += other.resumed;
        self.timed_out += other.timed_out;
        self.active += other.active;
    }
}

/// The bounded flow table of one worker: the flows in a slab, found by an
/// index on the flow hash computed once per packet (`slab.rs`), and
/// their timeouts on a timer wheel (`wheel.rs`).
pub struct FlowTable {
    slab: Slab,
    wheel: Wheel,
    /// Flows evicted lately, for when they come back.
    evicted: Evicted,
    classifier: Arc<Classifier>,
    timeouts: Timeouts,
    capacity: usize,
    stats: TableStats,
    /// The VLAN id is part of the key (`--vlan-key`).
    vlan_key: bool,
}

impl FlowTable {
    /// `capacity`: the most flows this table holds; beyond it the oldest idle
    /// flows are evicted (and reported).
    pub fn new(classifier: Arc<Classifier>, timeouts: Timeouts, capacity: usize) -> FlowTable {
        FlowTable {
            slab: Slab::new(),
            wheel: Wheel::new(),
            evicted: Evicted::default(),
            classifier,
            timeouts,
            capacity: capacity.max(1),
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
            active: self.slab.len() as u64,
            ..self.stats
        }
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// The flow a packet belongs to, while tracked: after
    /// [`FlowTable::update_hashed`], the flow it was counted on (evidence
    /// extraction asks). `hash` as for `update_hashed`.
    pub fn flow_of(&self, meta: &PacketMeta, hash: u64) -> Option<&Flow> {
        let (sender, receiver) = endpoints(meta);
        let vlan = self.key_vlan(meta.vlan);
        let i = self.find(
            self.slab.rekey(hash),
            meta.transport,
            sender,
            receiver,
            vlan,
        )?;
        Some(&self.slab.slot(i).flow)
    }

    /// The VLAN id that is part of a flow's key: none without `--vlan-key`.
    fn key_vlan(&self, vlan: Option<u16>) -> Option<u16> {
        if self.vlan_key {
            vlan
        } else {
            None
        }
    }

    /// Account one packet; may report a new flow's alert and ended flows.
    pub fn update(
        &mut self,
        ts: Timestamp,
        meta: &PacketMeta,
        wire_len: u32,
        out: &mut impl FnMut(FlowEvent),
    ) {
        self.update_hashed(ts, meta, packet_hash(meta, self.vlan_key), wire_len, out);
    }

    /// [`FlowTable::update`] with the packet's flow hash already computed
    /// (where it was decoded, to shard on): `hash` must be
    /// [`packet_hash`]`(meta, self.vlan_key())`.
    pub fn update_hashed(
        &mut self,
        ts: Timestamp,
        meta: &PacketMeta,
        hash: u64,
        wire_len: u32,
        out: &mut impl FnMut(FlowEvent),
    ) {
        let (sender, receiver) = endpoints(meta);
        let hash = self.slab.rekey(hash);
        let vlan = self.key_vlan(meta.vlan);
        if let Some(i) = self.find(hash, meta.transport, sender, receiver, vlan) {
            // Fields borrowed apart: the flow, and the classifier that inspects it.
            let flow = &mut self.slab.slot_mut(i).flow;
            if ts.nanos_since(flow.last) <= self.timeouts.of(flow) {
                let was_closed = flow.tcp_state == Some(TcpState::Closed);
                account(flow, ts, meta, sender, wire_len);
                if let Some(seen) = meta.app.filter(|_| flow.inspection.wants_more()) {
                    let from_client = sender == flow.client;
                    if inspect(flow, seen, from_client, &self.classifier) == Outcome::Flagged {
                        self.stats.flows_per_verdict[Verdict::Documented.index()] -= 1;
                        self.stats.flows_per_verdict[flow.verdict.index()] += 1;
                        if flow.alert_due() {
                            out(FlowEvent::Alert(*flow));
                        }
                    }
                }
                if !was_closed && flow.tcp_state == Some(TcpState::Closed) {
                    // Closed flows time out sooner.
                    self.schedule(i);
                }
                self.advance(ts, out);
                return;
            }
            // Idle past its timeout: that flow has ended, this packet starts a new one.
            let ended = self.slab.remove(i);
            self.end(ended, out);
        }
        if self.slab.len() >= self.capacity {
            self.evict_oldest(out);
        }
        let mut flow = self.start_flow(ts, meta, sender, receiver, hash);
        account(&mut flow, ts, meta, sender, wire_len);
        if let Some(seen) = meta.app {
            let from_client = sender == flow.client;
            // A first packet's verdict is counted below, whatever inspection made of it.
            let _ = inspect(&mut flow, seen, from_client, &self.classifier);
        }
        self.stats.flows += 1;
        self.stats.resumed += u64::from(flow.resumed);
        self.stats.flows_per_verdict[flow.verdict.index()] += 1;
        if flow.alert_due() {
            out(FlowEvent::Alert(flow));
        }
        let i = self.slab.insert(hash, flow);
        self.schedule(i);
        self.advance(ts, out);
    }

    /// Move the table's clock: end flows idle past their timeout. Cheap when
    /// called often: it looks only at the wheel buckets of the seconds that
    /// went by since the last call.
    pub fn advance(&mut self, now: Timestamp, out: &mut impl FnMut(FlowEvent)) {
        if self.wheel.due_at(now) {
            self.turn(now, out);
        }
    }

    /// Looks at the buckets of the seconds that went by: each flow in them
    /// has either timed out, or is scheduled again.
    #[inline(never)]
    fn turn(&mut self, now: Timestamp, out: &mut impl FnMut(FlowEvent)) {
        let current = now.secs();
        for second in self.wheel.turn_to(now) {
            let mut due = self.wheel.take(second);
            for (i, ticket) in due.drain(..) {
                let slot = self.slab.slot(i);
                if !slot.live || slot.ticket != ticket {
                    continue; // rescheduled or gone since
                }
                if slot.due >= current {
                    // Scheduled a whole turn of the wheel later: not yet.
                    self.wheel.keep(second, (i, ticket));
                    continue;
                }
                let flow = slot.flow;
                if now.nanos_since(flow.last) > self.timeouts.of(&flow) {
                    let ended = self.slab.remove(i);
                    out(FlowEvent::End(ended, natural_end(&ended, &mut self.stats)));
                } else {
                    self.schedule(i);
                }
            }
            self.wheel.give_back(second, due);
        }
    }

    /// End every flow: those idle past their timeout at `now` as `timeout`
    /// (or `closed`), all others with `reason`.
    pub fn finish(&mut self, now: Timestamp, reason: EndReason, out: &mut impl FnMut(FlowEvent)) {
        // The rest in start order, sorted as 24-byte (start, id, position)
        // triples rather than as copies of the flows.
        let mut rest: Vec<(Timestamp, u64, u32)> = Vec::with_capacity(self.slab.len());
        for (i, slot) in self.slab.slots().filter(|(_, s)| s.live) {
            let flow = &slot.flow;
            if now.nanos_since(flow.last) > self.timeouts.of(flow) {
                out(FlowEvent::End(*flow, natural_end(flow, &mut self.stats)));
            } else {
                rest.push((flow.start, flow.id, i));
            }
        }
        rest.sort_unstable();
        for (_, _, i) in rest {
            let flow = self.slab.slot(i).flow;
            out(FlowEvent::End(flow, end_reason(&flow, reason)));
        }
        self.slab.clear();
        self.wheel.clear();
    }

    fn end(&mut self, flow: Flow, out: &mut impl FnMut(FlowEvent)) {
        out(FlowEvent::End(flow, natural_end(&flow, &mut self.stats)));
    }

    /// Make room: evict about 1% of the table, least recently seen first, so
    /// that a flood costs amortized constant time per new flow.
    fn evict_oldest(&mut self, out: &mut impl FnMut(FlowEvent)) {
        let n = (self.capacity / 100).max(1);
        let mut by_age: Vec<(Timestamp, u32)> = Vec::with_capacity(self.slab.len());
        for (i, slot) in self.slab.slots() {
            if slot.live {
                by_age.push((slot.flow.last, i));
            }
        }
        let n = n.min(by_age.len());
        if n == 0 {
            return;
        }
        by_age.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
        by_age.truncate(n);
        by_age.sort_unstable_by_key(|(t, _)| *t);
        for (_, i) in by_age {
            let hash = self.slab.slot(i).hash;
            let flow = self.slab.remove(i);
            self.evicted.remember(hash, &flow);
            self.stats.evicted += 1;
            out(FlowEvent::End(flow, EndReason::Evicted));
        }
    }

    /// The slab position of the flow between `a` and `b` (either way round).
    #[inline]
    fn find(
        &self,
        hash: u64,
        transport: Transport,
        a: Endpoint,
        b: Endpoint,
        vlan: Option<u16>,
    ) -> Option<u32> {
        self.slab.find(hash, transport, a, b, vlan, self.vlan_key)
    }

    /// (Re)schedules flow `i` for the second its timeout runs out.
    fn schedule(&mut self, i: u32) {
        let timeouts = self.timeouts;
        let slot = self.slab.slot_mut(i);
        let deadline = slot
            .flow
            .last
            .as_nanos()
            .saturating_add(timeouts.of(&slot.flow));
        let due = self.wheel.due(deadline);
        slot.due = due;
        slot.ticket = slot.ticket.wrapping_add(1);
        let ticket = slot.ticket;
        self.wheel.schedule(due, (i, ticket));
    }

    /// A new flow from its first packet: its ends (those it had before, if
    /// it comes back after an eviction) and its verdict.
    fn start_flow(
        &mut self,
        ts: Timestamp,
        meta: &PacketMeta,
        sender: Endpoint,
        receiver: Endpoint,
        hash: u64,
    ) -> Flow {
        let remembered = if self.evicted.is_empty() {
            None
        } else {
            let vlan = self.vlan_key.then_some(meta.vlan);
            self.evicted
                .recall(hash, meta.transport, (sender, receiver), vlan)
        };
        let Orientation {
            client,
            server,
            direction,
        } = match remembered {
            Some(r) => Orientation {
                client: r.client,
                server: r.server,
                direction: r.direction,
            },
            None => orient(&self.classifier, meta, sender, receiver),
        };
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
        let mut flow = Flow {
            // 53 bits, so JSON readers that use doubles keep it exact.
            id: mix(
                FlowKey::of(meta, self.vlan_key).stable_hash(),
                ts.as_nanos() as u64,
            ) & ((1 << 53) - 1),
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
            // Decided with the verdict, below.
            exception: ExceptionMatch::None,
            app_seen: None,
            resumed: remembered.is_some(),
            quiet: remembered.is_some_and(|r| r.alerted),
            inspection: Inspection::NEW,
            flags_toserver: 0,
            flags_toclient: 0,
            fin_from_client: false,
            fin_from_server: false,
        };
        flow.judge(c.verdict, c.decision, &self.classifier);
        flow
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
    tcp::follow(flow, meta.tcp_flags, to_server);
}

#[cfg(test)]
mod tests {
    use super::super::slab::Slot;
    use super::*;

    #[test]
    fn a_flow_costs_what_the_readme_says() {
        // docs/performance.md: 168 bytes of slab per flow (+ about 10 of index
        // and 8 of timer wheel).
        assert_eq!(std::mem::size_of::<Slot>(), 168);
        assert_eq!(std::mem::size_of::<Flow>(), 144);
    }
}

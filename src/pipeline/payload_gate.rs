//! Which packets' payload is worth identifying: the first few payload
//! packets of each flow, since a flow looks at no more than that (see
//! `flow::inspect`). Identifying the payload of every packet (a DNS header
//! here, an RTP header there) would cost more than decoding it.
//!
//! The thread that decodes a packet does not own its flow, so it keeps its
//! own count: a direct-mapped table of flow hashes, each with the payload
//! packets this thread has seen of it. Once a flow has had
//! [`INSPECT_PACKETS`] of them here, its later packets go unidentified:
//! the packets this thread saw all came earlier in capture order, so the
//! flow had already looked at as many. A collision only resets a count
//! (more work, never less); a flow starts afresh after a SYN, or after a
//! silence longer than the shortest flow timeout, since only such a
//! silence (or an eviction) lets the table start a new flow on the same
//! 5-tuple.

use crate::decode::{tcp_flags, PacketMeta, Payload};
use crate::flow::{Timeouts, INSPECT_PACKETS};
use crate::timestamp::Timestamp;

/// Flows counted at once per decoding thread (1.5 MiB).
const SLOTS: usize = 1 << 16;

#[derive(Clone, Copy, Default)]
struct Slot {
    hash: u64,
    last: Timestamp,
    seen: u8,
}

pub(super) struct PayloadGate {
    slots: Box<[Slot]>,
    /// A flow silent for longer may have been timed out and started anew.
    restart_nanos: i64,
}

impl PayloadGate {
    pub fn new(timeouts: Timeouts) -> PayloadGate {
        let shortest = timeouts
            .tcp_secs
            .min(timeouts.tcp_closed_secs)
            .min(timeouts.udp_secs);
        PayloadGate {
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
            restart_nanos: i64::from(shortest) * 1_000_000_000,
        }
    }

    /// Fill in what `meta`'s payload looks like, if it has payload and its
    /// flow may still look at it. `hash`: its flow hash.
    pub fn identify(&mut self, meta: &mut PacketMeta, payload: &Payload, hash: u64, ts: Timestamp) {
        if payload.bytes(meta).is_none() {
            return;
        }
        let syn = meta.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
        if self.admits(hash, ts, syn) {
            meta.app = payload.identify(meta);
        }
    }

    /// Whether to identify the payload of a packet of the flow with this
    /// hash (a packet that has payload), seen at `ts`; `syn`: it opens a
    /// TCP connection.
    pub fn admits(&mut self, hash: u64, ts: Timestamp, syn: bool) -> bool {
        // The flow hash is well mixed: its low bits pick the slot.
        let slot = &mut self.slots[hash as usize & (SLOTS - 1)];
        if slot.hash != hash || syn || ts.nanos_since(slot.last) >= self.restart_nanos {
            *slot = Slot {
                hash,
                last: ts,
                seen: 0,
            };
        }
        slot.last = slot.last.max(ts);
        if slot.seen >= INSPECT_PACKETS {
            return false;
        }
        slot.seen += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_is_identified_for_its_first_packets_and_again_after_a_silence() {
        let mut gate = PayloadGate::new(Timeouts::default());
        let at = |secs: i64| Timestamp::from_nanos(secs * 1_000_000_000);
        let admitted = (0..10).filter(|&i| gate.admits(42, at(i), false)).count();
        assert_eq!(admitted, usize::from(INSPECT_PACKETS));
        // Another flow in the same slot starts its own count, and so does
        // this one when it comes back.
        assert!(gate.admits(42 + SLOTS as u64, at(11), false));
        assert!(gate.admits(42, at(12), false));
        for i in 13..20 {
            gate.admits(42, at(i), false);
        }
        assert!(!gate.admits(42, at(20), false));
        // A SYN, or a silence as long as the shortest timeout (30 s).
        assert!(gate.admits(42, at(21), true));
        for i in 22..30 {
            gate.admits(42, at(i), false);
        }
        assert!(!gate.admits(42, at(30), false));
        assert!(gate.admits(42, at(60), false));
    }
}

//! Puts the packets of several fronts back in time order before they reach a
//! flow table.
//!
//! A TAP delivers each direction of a link on its own port, and each port has
//! its own capture thread, so a worker can get a server's reply before the
//! client's SYN that caused it — which would turn a handshake into a guess and
//! the first UDP sender (the client) into the wrong side. Each front promises,
//! with its ticks, that it will send nothing older than its clock (its
//! watermark); a record is released once every front's clock has passed it.
//! With one front the records already come in order and pass straight through.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::timestamp::Timestamp;

/// An item waiting for the other fronts, ordered by time, then arrival.
struct Pending<T> {
    ts: Timestamp,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Pending<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}

impl<T> Eq for Pending<T> {}

impl<T> PartialOrd for Pending<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Pending<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

/// Items (records, with whatever travels with them) in time order.
pub(super) struct Merge<T> {
    /// Each front's watermark; `None` until it ticked once.
    clocks: Vec<Option<Timestamp>>,
    pending: BinaryHeap<Reverse<Pending<T>>>,
    seq: u64,
}

impl<T> Merge<T> {
    pub fn new(fronts: usize) -> Merge<T> {
        Merge {
            clocks: vec![None; fronts.max(1)],
            pending: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Hand an item captured at `ts` over: straight to `apply` with one
    /// front, else once it is safe.
    pub fn push(&mut self, ts: Timestamp, item: T, apply: &mut impl FnMut(T)) {
        if self.clocks.len() == 1 {
            apply(item);
            return;
        }
        self.seq += 1;
        self.pending.push(Reverse(Pending {
            ts,
            seq: self.seq,
            item,
        }));
    }

    /// `front` will send nothing older than `ts`. Returns the time up to which
    /// every record has now been applied (the worker's clock), if any.
    pub fn tick(
        &mut self,
        front: usize,
        ts: Timestamp,
        apply: &mut impl FnMut(T),
    ) -> Option<Timestamp> {
        if let Some(clock) = self.clocks.get_mut(front) {
            *clock = Some(clock.map_or(ts, |c| c.max(ts)));
        }
        let horizon = self.clocks.iter().copied().min().flatten()?;
        self.release(Some(horizon), apply);
        Some(horizon)
    }

    /// Apply every pending record up to `horizon` (all of them if `None`), in time order.
    pub fn release(&mut self, horizon: Option<Timestamp>, apply: &mut impl FnMut(T)) {
        while let Some(Reverse(next)) = self.pending.peek() {
            if horizon.is_some_and(|h| next.ts > h) {
                break;
            }
            if let Some(Reverse(p)) = self.pending.pop() {
                apply(p.item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Encap, PacketMeta};
    use crate::pipeline::Record;
    use crate::transport::Transport;
    use std::net::{IpAddr, Ipv4Addr};

    fn rec(ns: i64) -> Record {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Record {
            ts: Timestamp::from_nanos(ns),
            meta: PacketMeta {
                src: ip,
                dst: ip,
                src_port: 1,
                dst_port: 2,
                transport: Transport::Udp,
                tcp_flags: 0,
                payload_len: 0,
                vlan: None,
                encap: Encap::default(),
                l2_group: false,
                app: None,
            },
            hash: 0,
            wire_len: 60,
        }
    }

    #[test]
    fn one_front_passes_straight_through() {
        let mut m = Merge::new(1);
        let mut seen = Vec::new();
        for r in [rec(5), rec(3)] {
            m.push(r.ts, r, &mut |r: Record| seen.push(r.ts.as_nanos()));
        }
        assert_eq!(seen, [5, 3]);
    }

    #[test]
    fn two_fronts_are_released_in_time_order_behind_the_slower_clock() {
        let mut m = Merge::new(2);
        let mut seen = Vec::new();
        let mut apply = |r: Record| seen.push(r.ts.as_nanos());
        // Front 1 (the replies) is ahead of front 0 (the requests).
        for r in [rec(20), rec(40)] {
            m.push(r.ts, r, &mut apply);
        }
        assert_eq!(m.tick(1, Timestamp::from_nanos(40), &mut apply), None);
        for r in [rec(10), rec(30)] {
            m.push(r.ts, r, &mut apply);
        }
        let horizon = m.tick(0, Timestamp::from_nanos(30), &mut apply);
        assert_eq!(horizon, Some(Timestamp::from_nanos(30)));
        m.release(None, &mut apply);
        assert_eq!(seen, [10, 20, 30, 40]);
    }

    #[test]
    fn equal_times_keep_their_arrival_order() {
        let mut m = Merge::new(2);
        let mut seen = Vec::new();
        let mut first = rec(7);
        first.wire_len = 1;
        let mut second = rec(7);
        second.wire_len = 2;
        for r in [first, second] {
            m.push(r.ts, r, &mut |r: Record| seen.push(r.wire_len));
        }
        m.release(None, &mut |r: Record| seen.push(r.wire_len));
        assert_eq!(seen, [1, 2]);
    }
}

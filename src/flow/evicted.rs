//! Conversations evicted from a full table, remembered so that when they
//! come back they keep their listener and are not alerted again.
//!
//! A flow evicted at `--max-flows` is often a long conversation that went
//! quiet for a moment under churn. Without memory its next packet starts a
//! new flow picked up mid-stream: the ends are told apart by ports alone
//! (often wrongly: its client may sit on a media-range port) and a flagged
//! conversation is alerted once per return. The memory is a ring of the
//! last [`REMEMBERED`] evictions, oldest first out, with an index by flow hash.

use hashbrown::HashTable;

use super::{Direction, Endpoint, Flow};
use crate::transport::Transport;

/// Evicted flows remembered per table.
pub(super) const REMEMBERED: usize = 65_536;

/// What a returning flow takes over from its evicted self.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Remembered {
    /// The table's hash of the flow (direction-free).
    hash: u64,
    transport: Transport,
    pub client: Endpoint,
    pub server: Endpoint,
    vlan: Option<u16>,
    pub direction: Direction,
    /// An alert was written for it (or it was flagged at all).
    pub alerted: bool,
    live: bool,
}

/// The ring of evicted flows and its index.
#[derive(Default)]
pub(super) struct Evicted {
    ring: Vec<Remembered>,
    /// Where the next one goes once the ring is full.
    next: usize,
    index: HashTable<u32>,
}

impl Evicted {
    pub(super) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Remember a flow evicted from the table, found there by `hash`.
    pub(super) fn remember(&mut self, hash: u64, flow: &Flow) {
        let entry = Remembered {
            hash,
            transport: flow.transport,
            client: flow.client,
            server: flow.server,
            vlan: flow.vlan,
            direction: flow.direction,
            alerted: flow.alerted(),
            live: true,
        };
        let at = if self.ring.len() < REMEMBERED {
            self.ring.push(entry);
            self.ring.len() - 1
        } else {
            let at = self.next;
            self.next = (self.next + 1) % REMEMBERED;
            self.forget(at);
            self.ring[at] = entry;
            at
        };
        let ring = &self.ring;
        // `at` < REMEMBERED, which fits.
        self.index
            .insert_unique(hash, at as u32, |&i| ring[i as usize].hash);
    }

    /// The remembered flow between `a` and `b`, taken out of the memory.
    /// `vlan` is compared only when it is part of the key (`--vlan-key`).
    pub(super) fn recall(
        &mut self,
        hash: u64,
        transport: Transport,
        (a, b): (Endpoint, Endpoint),
        vlan: Option<Option<u16>>,
    ) -> Option<Remembered> {
        let ring = &self.ring;
        let found = self.index.find_entry(hash, |&i| {
            let r = &ring[i as usize];
            r.live
                && r.transport == transport
                && vlan.is_none_or(|v| v == r.vlan)
                && ((r.client == a && r.server == b) || (r.client == b && r.server == a))
        });
        let (at, _) = found.ok()?.remove();
        let at = at as usize;
        self.ring[at].live = false;
        Some(self.ring[at])
    }

    /// Drop the entry at `at` from the index (its slot is about to be reused).
    fn forget(&mut self, at: usize) {
        let old = self.ring[at];
        if !old.live {
            return;
        }
        if let Ok(entry) = self.index.find_entry(old.hash, |&i| i as usize == at) {
            entry.remove();
        }
    }
}

//! Where a worker's flows live: a slab of flows in pages (it never moves
//! them, so growing costs no copy and no peak of twice the memory), and an
//! index of 4-byte slab positions (`hashbrown`'s `HashTable`) found by the
//! flow hash computed once per packet, re-keyed with a random seed per table
//! so that nobody can pick addresses and ports that all land in one bucket.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::key::{fold_mul, Endpoint};
use super::Flow;
use crate::transport::Transport;

/// Flows per page of the slab that holds them.
pub(super) const PAGE: usize = 1024;

/// One flow in the table, with what the table keeps about it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub flow: Flow,
    /// Where the index finds it: the flow hash re-keyed for this table.
    pub hash: u64,
    /// The packet-time second of the wheel bucket the flow waits in.
    pub due: i64,
    /// Bumped at every (re)scheduling and at removal: a wheel entry is
    /// current only while its ticket matches.
    pub ticket: u32,
    pub live: bool,
}

/// The slab and its index.
pub(super) struct Slab {
    index: HashTable<u32>,
    seed: u64,
    pages: Vec<Vec<Slot>>,
    /// Free slab positions, reused before the slab grows.
    free: Vec<u32>,
}

impl Slab {
    pub(super) fn new() -> Slab {
        Slab {
            index: HashTable::new(),
            seed: RandomState::new().hash_one(0x706d_u64),
            pages: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Flows held.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// The flow hash mixed with this table's random seed: where the index looks.
    #[inline]
    pub(super) fn rekey(&self, hash: u64) -> u64 {
        fold_mul(hash ^ self.seed, 0x9e37_79b9_7f4a_7c15)
    }

    #[inline]
    pub(super) fn slot(&self, i: u32) -> &Slot {
        let i = i as usize;
        &self.pages[i / PAGE][i % PAGE]
    }

    #[inline]
    pub(super) fn slot_mut(&mut self, i: u32) -> &mut Slot {
        let i = i as usize;
        &mut self.pages[i / PAGE][i % PAGE]
    }

    /// Every slot, live or free, with its slab position.
    pub(super) fn slots(&self) -> impl Iterator<Item = (u32, &Slot)> + '_ {
        self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.iter()
                .enumerate()
                .map(move |(k, slot)| ((p * PAGE + k) as u32, slot))
        })
    }

    /// The slab position of the flow between `a` and `b` (either way round);
    /// `vlan` is compared only when it is part of the key.
    #[inline]
    pub(super) fn find(
        &self,
        hash: u64,
        transport: Transport,
        a: Endpoint,
        b: Endpoint,
        vlan: Option<u16>,
        vlan_key: bool,
    ) -> Option<u32> {
        let pages = &self.pages;
        self.index
            .find(hash, |&i| {
                let i = i as usize;
                let f = &pages[i / PAGE][i % PAGE].flow;
                f.transport == transport
                    && (!vlan_key || f.vlan == vlan)
                    && ((f.client == a && f.server == b) || (f.client == b && f.server == a))
            })
            .copied()
    }

    /// Puts `flow` in a free slot (or a new one) and indexes it by `hash`.
    pub(super) fn insert(&mut self, hash: u64, flow: Flow) -> u32 {
        let slot = Slot {
            flow,
            hash,
            due: 0,
            ticket: 0,
            live: true,
        };
        let i = match self.free.pop() {
            Some(i) => {
                let old = self.slot_mut(i);
                *old = Slot {
                    ticket: old.ticket.wrapping_add(1),
                    ..slot
                };
                i
            }
            None => {
                if self.pages.last().is_none_or(|p| p.len() == PAGE) {
                    self.pages.push(Vec::with_capacity(PAGE));
                }
                let p = self.pages.len() - 1;
                let page = &mut self.pages[p];
                page.push(slot);
                (p * PAGE + page.len() - 1) as u32
            }
        };
        let pages = &self.pages;
        self.index.insert_unique(hash, i, |&j| {
            let j = j as usize;
            pages[j / PAGE][j % PAGE].hash
        });
        i
    }

    /// Takes flow `i` out of the index and the slab (its wheel entry goes stale).
    pub(super) fn remove(&mut self, i: u32) -> Flow {
        let hash = self.slot(i).hash;
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        let slot = self.slot_mut(i);
        slot.live = false;
        slot.ticket = slot.ticket.wrapping_add(1);
        let flow = slot.flow;
        self.free.push(i);
        flow
    }

    /// Forgets every flow.
    pub(super) fn clear(&mut self) {
        self.index.clear();
        self.pages.clear();
        self.free.clear();
    }
}

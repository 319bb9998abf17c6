//! Giving non-first fragments the ports of their first fragment.
//!
//! A fixed-size, set-associative table (allocated once, never grown) maps
//! (src, dst, id, protocol) to the transport and ports of the first fragment.
//! When a set is full the oldest entry in it is evicted, so a flood of
//! fragments costs a bounded amount of memory and only loses old entries.

use std::net::IpAddr;

use crate::transport::Transport;

use super::{DecodeError, Decoded, FragmentMeta, PacketMeta};

const WAYS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

impl Key {
    fn of(f: &FragmentMeta) -> Key {
        Key {
            src: f.src,
            dst: f.dst,
            id: f.id,
            proto: f.proto,
        }
    }

    /// FNV-1a over the key's bytes: cheap and deterministic.
    fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for addr in [self.src, self.dst] {
            match addr {
                IpAddr::V4(a) => feed(&a.octets()),
                IpAddr::V6(a) => feed(&a.octets()),
            }
        }
        feed(&self.id.to_be_bytes());
        feed(&[self.proto]);
        h
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Key,
    transport: Transport,
    src_port: u16,
    dst_port: u16,
    /// Insertion order, for evicting the oldest.
    seq: u64,
}

/// Bounded memory of first fragments; see the module documentation.
#[derive(Debug)]
pub struct Defragmenter {
    slots: Box<[Option<Entry>]>,
    set_mask: usize,
    seq: u64,
    evicted: u64,
}

impl Default for Defragmenter {
    fn default() -> Self {
        Defragmenter::new()
    }
}

impl Defragmenter {
    /// Entries kept by [`Defragmenter::new`].
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// A table of [`Defragmenter::DEFAULT_CAPACITY`] entries.
    pub fn new() -> Defragmenter {
        Defragmenter::with_capacity(Defragmenter::DEFAULT_CAPACITY)
    }

    /// A table of at least `capacity` entries (rounded up to a power of two, minimum 4).
    pub fn with_capacity(capacity: usize) -> Defragmenter {
        let sets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        Defragmenter {
            slots: vec![None; sets * WAYS].into_boxed_slice(),
            set_mask: sets - 1,
            seq: 0,
            evicted: 0,
        }
    }

    /// Entries the table can hold.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Entries currently held.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.is_none())
    }

    /// First fragments forgotten to make room for newer ones.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn set(&mut self, key: &Key) -> &mut [Option<Entry>] {
        let set = (key.hash() as usize) & self.set_mask;
        &mut self.slots[set * WAYS..(set + 1) * WAYS]
    }

    /// Turns a [`Decoded::Fragment`] into a [`Decoded::Packet`] when the ports
    /// are known: the first fragment records them and becomes a packet itself;
    /// later fragments get them (with `tcp_flags` 0 and their own payload
    /// length) or become `Malformed(FragmentWithoutFirst)`. Anything else is
    /// returned unchanged. Does not allocate.
    pub fn resolve(&mut self, d: Decoded) -> Decoded {
        let Decoded::Fragment(f) = d else {
            return d;
        };
        let key = Key::of(&f);
        let packet = |transport, src_port, dst_port, tcp_flags, payload_len, app| {
            Decoded::Packet(PacketMeta {
                src: f.src,
                dst: f.dst,
                src_port,
                dst_port,
                transport,
                tcp_flags,
                payload_len,
                vlan: f.vlan,
                encap: f.encap,
                l2_group: f.l2_group,
                app,
            })
        };
        if let Some(first) = f.first {
            self.seq += 1;
            let entry = Entry {
                key,
                transport: first.transport,
                src_port: first.src_port,
                dst_port: first.dst_port,
                seq: self.seq,
            };
            let set = self.set(&key);
            let slot = match set.iter().position(|s| s.is_some_and(|e| e.key == key)) {
                Some(i) => i,
                None => match set.iter().position(Option::is_none) {
                    Some(i) => i,
                    None => {
                        let oldest = set
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, s)| s.map_or(0, |e| e.seq))
                            .map_or(0, |(i, _)| i);
                        self.evicted += 1;
                        oldest
                    }
                },
            };
            // `slot < WAYS` by construction; re-borrow to satisfy the borrow of `evicted`.
            let set = self.set(&key);
            if let Some(s) = set.get_mut(slot) {
                *s = Some(entry);
            }
            return packet(
                first.transport,
                first.src_port,
                first.dst_port,
                first.tcp_flags,
                first.payload_len,
                first.app,
            );
        }
        let found = self
            .set(&key)
            .iter()
            .flatten()
            .find(|e| e.key == key)
            .copied();
        match found {
            Some(e) => packet(e.transport, e.src_port, e.dst_port, 0, f.payload_len, None),
            None => Decoded::Malformed(DecodeError::FragmentWithoutFirst),
        }
    }
}

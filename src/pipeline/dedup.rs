//! `--dedup`: drop the second copy of a packet that a SPAN mirrored twice.
//!
//! A SPAN session that mirrors both sides of a routed or switched path sees
//! each packet twice: once on the way in, once on the way out, with another
//! TTL (so another IP checksum), and often other MACs or a VLAN tag. As
//! Arkime does, a packet is identified by its IP header and what follows it,
//! leaving out the TTL / hop limit and the header checksum; a second packet
//! with the same identity within the window is a copy. The table is a fixed
//! array (no allocation per packet); an old entry is simply overwritten, so
//! memory is bounded whatever the traffic.

use crate::decode::network_offset;
use crate::flow::mix;
use crate::timestamp::Timestamp;

/// Slots in the table: a power of two. At 1 M packets/s and a 10 ms window
/// about 10,000 packets are live at once, far below this.
const SLOTS: usize = 1 << 16;
/// Bytes of the IP packet that identify it: headers (IP ID, TCP sequence and
/// acknowledgement numbers) and the start of the payload.
const IDENTITY_BYTES: usize = 128;

pub(super) struct Dedup {
    /// `(identity, time seen)`; identity 0 marks an empty slot.
    slots: Box<[(u64, i64)]>,
    window_nanos: i64,
}

impl Dedup {
    pub fn new(window_nanos: i64) -> Dedup {
        Dedup {
            slots: vec![(0, 0); SLOTS].into_boxed_slice(),
            window_nanos,
        }
    }

    /// Whether this frame repeats one seen within the window; remembers it if not.
    /// Frames without an IP header are never copies.
    pub fn is_copy(&mut self, ts: Timestamp, link_type: u16, frame: &[u8]) -> bool {
        let Some(ip) = network_offset(link_type, frame).and_then(|at| frame.get(at..)) else {
            return false;
        };
        let Some(id) = identity(ip) else {
            return false;
        };
        let slot = &mut self.slots[(id as usize) & (SLOTS - 1)];
        let now = ts.as_nanos();
        let copy = slot.0 == id && now.saturating_sub(slot.1) <= self.window_nanos;
        if !copy {
            *slot = (id, now);
        }
        copy
    }
}

/// A hash of the IP packet without the fields a router changes: TTL / hop
/// limit and (IPv4) the header checksum. Never 0.
fn identity(ip: &[u8]) -> Option<u64> {
    let version = ip.first()? >> 4;
    let bytes = &ip[..ip.len().min(IDENTITY_BYTES)];
    let (skip_lo, skip_hi) = match version {
        // TTL at 8, protocol at 9 (kept), checksum at 10..12.
        4 if bytes.len() >= 20 => (8, 12),
        // Hop limit at 7.
        6 if bytes.len() >= 40 => (7, 8),
        _ => return None,
    };
    let mut h: u64 = bytes.len() as u64;
    let mut word = [0u8; 8];
    for (i, chunk) in bytes.chunks(8).enumerate() {
        word.fill(0);
        word[..chunk.len()].copy_from_slice(chunk);
        for (j, b) in word.iter_mut().enumerate() {
            let at = i * 8 + j;
            if (skip_lo..skip_hi).contains(&at) && !(version == 4 && at == 9) {
                *b = 0;
            }
        }
        h = mix(h, u64::from_le_bytes(word));
    }
    Some(h.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + TCP, with the given TTL, checksum and MAC.
    fn frame(ttl: u8, checksum: u16, mac: u8, seq: u8) -> Vec<u8> {
        let mut f = vec![mac, 0, 0, 0, 0, 1, mac, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, ttl, 6]);
        f.extend_from_slice(&checksum.to_be_bytes());
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[
            0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, seq, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        f
    }

    fn at_ms(ms: i64) -> Timestamp {
        Timestamp::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn the_routed_copy_is_dropped_within_the_window_only() {
        let mut d = Dedup::new(10_000_000);
        assert!(!d.is_copy(at_ms(0), 1, &frame(64, 0x1111, 0xaa, 1)));
        // The other side of the router: TTL, checksum and MACs differ.
        assert!(d.is_copy(at_ms(1), 1, &frame(63, 0x2222, 0xbb, 1)));
        // Another segment is not a copy.
        assert!(!d.is_copy(at_ms(2), 1, &frame(64, 0x1111, 0xaa, 2)));
        // The same packet much later (a retransmission) is not dropped.
        assert!(!d.is_copy(at_ms(500), 1, &frame(64, 0x1111, 0xaa, 1)));
    }

    #[test]
    fn frames_without_ip_are_never_copies() {
        let mut d = Dedup::new(10_000_000);
        let arp = [0xffu8; 14];
        assert!(!d.is_copy(at_ms(0), 1, &arp));
        assert!(!d.is_copy(at_ms(0), 1, &arp));
        assert!(!d.is_copy(at_ms(0), 1, &[]));
        assert!(!d.is_copy(at_ms(0), 9999, &frame(64, 0, 0, 1)));
    }
}

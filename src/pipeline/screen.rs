//! What every packet goes through before its flow's worker takes it, live
//! or from files: [`Screen`] leaves out mirrored copies and what is outside
//! the focus's time window or BPF, in capture order; decoding makes a small
//! [`Record`](super::Record); [`IngestCounts`] counts what is not TCP/UDP.
//! The live front (`live::ingest`) then shards the records over the
//! workers' queues; files are decoded by the workers themselves
//! (`offline::chunked`).

use std::collections::BTreeMap;

use crate::decode::{Decoded, Encap, EncapKind, OtherProto, PacketMeta};
use crate::filter::{AddressFilter, Focus, PacketFilter};
use crate::output::Stats;
use crate::timestamp::Timestamp;

use super::dedup::Dedup;

/// What the front counted; summed over live capture threads (or over the
/// workers, for files).
#[derive(Debug, Clone, Default)]
pub(super) struct IngestCounts {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_udp_packets: u64,
    pub other: BTreeMap<OtherProto, u64>,
    pub failures: BTreeMap<&'static str, u64>,
    /// Frames found inside each kind of tunnel (once per kind per frame).
    pub encapsulated: BTreeMap<EncapKind, u64>,
    /// Packets dropped because a worker's queue was full.
    pub queue_dropped: u64,
    /// Packets outside the focus.
    pub filtered: u64,
    /// Mirrored copies dropped by `--dedup`.
    pub duplicates: u64,
    pub last_ts: Timestamp,
    /// The first packet read (relative `--since`/`--until` count from it).
    pub first_ts: Option<Timestamp>,
}

impl IngestCounts {
    pub fn add(&mut self, other: &IngestCounts) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.tcp_udp_packets += other.tcp_udp_packets;
        merge(&mut self.other, &other.other);
        merge(&mut self.failures, &other.failures);
        merge(&mut self.encapsulated, &other.encapsulated);
        self.queue_dropped += other.queue_dropped;
        self.filtered += other.filtered;
        self.duplicates += other.duplicates;
        self.last_ts = self.last_ts.max(other.last_ts);
        self.first_ts = match (self.first_ts, other.first_ts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Write the packet-level counters into `stats`; `filtered` only when
    /// a packet filter was active, `duplicates` only with `--dedup`.
    pub fn fill(&self, stats: &mut Stats, filtering: bool, dedup: bool) {
        stats.filtered = filtering.then_some(self.filtered);
        stats.duplicates = dedup.then_some(self.duplicates);
        stats.packets = self.packets;
        stats.bytes = self.bytes;
        stats.tcp_udp_packets = self.tcp_udp_packets;
        stats.other_protocols = self
            .other
            .iter()
            .map(|(p, n)| (other_key(*p), *n))
            .collect();
        stats.decode_failures = self.failures.clone();
        stats.encapsulated = self
            .encapsulated
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
    }

    /// A packet read, before anything leaves it out.
    #[inline]
    pub fn read(&mut self, ts: Timestamp, wire_len: u32) {
        self.packets += 1;
        self.bytes += u64::from(wire_len);
        self.last_ts = self.last_ts.max(ts);
        self.first_ts.get_or_insert(ts);
    }

    /// Counts what decoding (and defragmenting) made of a frame; the
    /// metadata of a TCP/UDP packet, for its flow.
    #[inline]
    pub fn decoded(&mut self, decoded: Decoded) -> Option<PacketMeta> {
        match decoded {
            Decoded::Packet(meta) => {
                self.tcp_udp_packets += 1;
                return Some(meta);
            }
            Decoded::Other(p) => *self.other.entry(p).or_default() += 1,
            Decoded::Malformed(reason) => *self.failures.entry(reason.as_str()).or_default() += 1,
            // Unresolved fragments are reported by the defragmenter as
            // Malformed; anything else left over is counted the same way.
            Decoded::Fragment(_) => *self.failures.entry("fragment_unresolved").or_default() += 1,
        }
        None
    }

    /// Whether a decoded packet is inside the focus's hosts and ports (all
    /// are without one); counts it as `filtered` if not.
    #[inline]
    pub fn in_focus(&mut self, addresses: Option<&AddressFilter>, decoded: &Decoded) -> bool {
        let inside = addresses.is_none_or(|f| f.decoded(decoded));
        if !inside {
            self.filtered += 1;
        }
        inside
    }

    /// Counts a frame once under each kind of tunnel it was found in.
    #[inline]
    pub fn count_encap(&mut self, encap: Encap) {
        if encap.is_empty() {
            return;
        }
        let layers = encap.layers();
        for (i, &kind) in layers.iter().enumerate() {
            if !layers[..i].contains(&kind) {
                *self.encapsulated.entry(kind).or_default() += 1;
            }
        }
    }
}

fn merge<K: Ord + Copy>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, n) in from {
        *into.entry(*k).or_default() += n;
    }
}

/// What is left out before decoding: mirrored copies (`--dedup`) and frames
/// outside the focus's time window or BPF expression. Both depend on order
/// (the dedup window; relative times count from the first packet), so one
/// screen sees the frames in capture order: in a live capture thread, or
/// under the file reader's lock.
pub(super) struct Screen {
    dedup: Option<Dedup>,
    filter: Option<PacketFilter>,
}

impl Screen {
    pub fn new(focus: &Focus, dedup_nanos: Option<i64>) -> Screen {
        Screen {
            dedup: dedup_nanos.map(Dedup::new),
            filter: PacketFilter::new(focus),
        }
    }

    /// Does it leave anything out?
    pub fn is_active(&self) -> bool {
        self.dedup.is_some() || self.filter.is_some()
    }

    /// Is a packet filter active (then `filtered` is reported)?
    pub fn filtering(&self) -> bool {
        self.filter.is_some()
    }

    /// The hosts and ports of the focus, tested once decoded (by any thread).
    pub fn addresses(&self) -> Option<AddressFilter> {
        self.filter.as_ref().map(|f| f.addresses().clone())
    }

    /// Whether a frame goes on to be decoded; counts the copies and the
    /// frames outside the focus.
    pub fn admits(
        &mut self,
        ts: Timestamp,
        link_type: u16,
        data: &[u8],
        counts: &mut IngestCounts,
    ) -> bool {
        if let Some(d) = &mut self.dedup {
            if d.is_copy(ts, link_type, data) {
                counts.duplicates += 1;
                return false;
            }
        }
        if let Some(f) = &mut self.filter {
            if !f.frame(ts, link_type, data) {
                counts.filtered += 1;
                return false;
            }
        }
        true
    }
}

/// `arp`, `gre`, or `ethertype_0x88b5` / `ip_proto_253` when it has no name.
fn other_key(p: OtherProto) -> String {
    match (p.name(), p) {
        (Some(name), _) => name.to_string(),
        (None, OtherProto::EtherType(e)) => format!("ethertype_0x{e:04x}"),
        (None, OtherProto::IpProto(n)) => format!("ip_proto_{n}"),
        (None, OtherProto::AddressFamily(n)) => format!("address_family_{n}"),
        (None, other) => other.family().to_string(),
    }
}

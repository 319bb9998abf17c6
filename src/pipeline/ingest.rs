//! The live front: decode each packet into a small [`Record`], count what is
//! not TCP/UDP, and shard the records by flow over the workers' queues in
//! batches. (Files are decoded by the workers themselves: see `chunked`.)

use std::collections::BTreeMap;

use crossbeam_channel::{Sender, TrySendError};

use crate::capture::{RawPacket, Timestamp};
use crate::decode::{self, Decoded, Defragmenter, Encap, EncapKind, OtherProto};
use crate::flow::packet_hash;
use crate::output::Stats;

use super::{shard, Record, WorkerMsg};

/// Packets per batch: large enough to amortize channel costs, small enough
/// that a batch never waits long.
const BATCH: usize = 256;

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
    pub last_ts: Timestamp,
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
        self.last_ts = self.last_ts.max(other.last_ts);
    }

    /// Write the packet-level counters into `stats`.
    pub fn fill(&self, stats: &mut Stats) {
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

    /// Counts a frame once under each kind of tunnel it was found in.
    pub fn count_encap(&mut self, encap: Encap) {
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

pub(super) struct Ingest {
    /// Which front this is (see [`super::merge`]).
    front: usize,
    senders: Vec<Sender<WorkerMsg>>,
    batches: Vec<Vec<Record>>,
    defrag: Defragmenter,
    /// Packet time between clock ticks (which also flush partial batches).
    tick_nanos: i64,
    last_tick: Option<Timestamp>,
    pub counts: IngestCounts,
}

impl Ingest {
    /// Ticks come often so that no record waits long in a partial batch
    /// (alert latency). When a worker's queue is full the batch is dropped
    /// and counted: a live capture must keep draining the kernel's ring, or
    /// the kernel drops instead, uncounted per flow.
    pub fn new(front: usize, senders: Vec<Sender<WorkerMsg>>, tick_nanos: i64) -> Ingest {
        let batches = senders.iter().map(|_| Vec::with_capacity(BATCH)).collect();
        Ingest {
            front,
            senders,
            batches,
            defrag: Defragmenter::new(),
            tick_nanos,
            last_tick: None,
            counts: IngestCounts::default(),
        }
    }

    /// Decode one packet and queue it for the worker that owns its flow.
    pub fn packet(&mut self, packet: &RawPacket<'_>) {
        let c = &mut self.counts;
        c.packets += 1;
        c.bytes += u64::from(packet.orig_len);
        let ts = packet.ts;
        c.last_ts = c.last_ts.max(ts);
        let (decoded, encap) = decode::decode_frame(packet.link_type, packet.data);
        c.count_encap(encap);
        match self.defrag.resolve(decoded) {
            Decoded::Packet(meta) => {
                c.tcp_udp_packets += 1;
                let hash = packet_hash(&meta);
                let w = shard(hash, self.senders.len());
                self.batches[w].push(Record {
                    ts,
                    meta,
                    hash,
                    wire_len: packet.orig_len,
                });
                if self.batches[w].len() >= BATCH {
                    self.send_batch(w);
                }
            }
            Decoded::Other(p) => *c.other.entry(p).or_default() += 1,
            Decoded::Malformed(reason) => *c.failures.entry(reason.as_str()).or_default() += 1,
            // Unresolved fragments are reported by the defragmenter as
            // Malformed; anything else left over is counted the same way.
            Decoded::Fragment(_) => *c.failures.entry("fragment_unresolved").or_default() += 1,
        }
        if self
            .last_tick
            .is_none_or(|t| ts.nanos_since(t) >= self.tick_nanos)
        {
            self.flush(Some(ts));
        }
    }

    /// Send every partial batch, and the clock if given.
    pub fn flush(&mut self, tick: Option<Timestamp>) {
        for w in 0..self.senders.len() {
            if !self.batches[w].is_empty() {
                self.send_batch(w);
            }
            if let Some(ts) = tick {
                let msg = WorkerMsg::Tick {
                    front: self.front,
                    ts,
                };
                // A lost tick is harmless: the next one carries a later clock.
                let _ = self.senders[w].try_send(msg);
            }
        }
        if let Some(ts) = tick {
            self.last_tick = Some(ts);
        }
    }

    fn send_batch(&mut self, w: usize) {
        let full = std::mem::replace(&mut self.batches[w], Vec::with_capacity(BATCH));
        let msg = WorkerMsg::Batch(full);
        if let Err(TrySendError::Full(WorkerMsg::Batch(lost))) = self.senders[w].try_send(msg) {
            self.counts.queue_dropped += lost.len() as u64;
        }
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

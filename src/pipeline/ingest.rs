//! The front of the pipeline, shared by files and live capture: leave out
//! what is outside the focus (counted), decode each packet into a small
//! [`Record`], count what is not TCP/UDP, and shard the records by flow over
//! the workers' queues in batches (with their bytes, for `--extract`).

use std::collections::BTreeMap;

use crossbeam_channel::{Sender, TrySendError};

use crate::capture::{RawPacket, Timestamp};
use crate::decode::{self, Decoded, Defragmenter, Encap, EncapKind, OtherProto};
use crate::filter::{Focus, PacketFilter};
use crate::output::Stats;

use super::dedup::Dedup;
use super::{Batch, Frames, Record, WorkerMsg};
use crate::flow::FlowKey;

/// Packets per batch: large enough to amortize channel costs, small enough
/// that a batch never waits long.
const BATCH: usize = 256;
/// A batch carrying frames (`--extract`) is also sent once its bytes reach
/// this, so that a capture of jumbo frames keeps batches small.
const BATCH_BYTES: usize = 4 << 20;

/// What to do when a worker's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    /// Wait: a file can be read more slowly, nothing is lost.
    Wait,
    /// Drop the batch and count it: a live capture must keep draining the
    /// kernel's ring, or the kernel drops instead, uncounted per flow.
    DropWhenFull,
}

/// What the front counted; summed over live capture threads.
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

    /// Counts a frame once under each kind of tunnel it was found in.
    fn count_encap(&mut self, encap: Encap) {
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
    /// Per worker, the frames of its batch (`--extract`); empty otherwise.
    frames: Vec<Frames>,
    /// `None` when nothing is filtered.
    filter: Option<PacketFilter>,
    defrag: Defragmenter,
    delivery: Delivery,
    /// Packet time between clock ticks (which also flush partial batches).
    tick_nanos: i64,
    last_tick: Option<Timestamp>,
    /// The VLAN id is part of the flow key (`--vlan-key`), so of the shard too.
    vlan_key: bool,
    /// `--dedup`: drops the second copy of a mirrored packet.
    dedup: Option<Dedup>,
    pub counts: IngestCounts,
}

impl Ingest {
    /// Offline, a tick per second of packet time is plenty; live, ticks come
    /// often so that no record waits in a partial batch (alert latency).
    /// `front`: which front this is, for the workers' time-order merge.
    /// `frames`: carry each record's captured bytes to the workers (`--extract`).
    pub fn new(
        front: usize,
        senders: Vec<Sender<WorkerMsg>>,
        delivery: Delivery,
        tick_nanos: i64,
        focus: &Focus,
        frames: bool,
    ) -> Ingest {
        let batches = senders.iter().map(|_| Vec::with_capacity(BATCH)).collect();
        let frames = if frames {
            senders.iter().map(|_| Frames::default()).collect()
        } else {
            Vec::new()
        };
        Ingest {
            front,
            senders,
            batches,
            frames,
            filter: PacketFilter::new(focus),
            defrag: Defragmenter::new(),
            delivery,
            tick_nanos,
            last_tick: None,
            vlan_key: false,
            dedup: None,
            counts: IngestCounts::default(),
        }
    }

    /// How packets are told apart: `vlan_key` as in [`FlowKey::of`], and
    /// duplicates within `dedup_nanos` dropped (`None`: kept).
    pub fn identity(mut self, vlan_key: bool, dedup_nanos: Option<i64>) -> Ingest {
        self.vlan_key = vlan_key;
        self.dedup = dedup_nanos.map(Dedup::new);
        self
    }

    /// Decode one packet and queue it for the worker that owns its flow.
    pub fn packet(&mut self, packet: &RawPacket<'_>) {
        let c = &mut self.counts;
        c.packets += 1;
        c.bytes += u64::from(packet.orig_len);
        let ts = packet.ts;
        c.last_ts = c.last_ts.max(ts);
        c.first_ts.get_or_insert(ts);
        self.route(packet);
        if self
            .last_tick
            .is_none_or(|t| ts.nanos_since(t) >= self.tick_nanos)
        {
            self.flush(Some(ts));
        }
    }

    /// Is a packet filter active (then `filtered` is reported)?
    pub fn filtering(&self) -> bool {
        self.filter.is_some()
    }

    /// Filter, decode, count, and queue a TCP/UDP packet for its worker.
    fn route(&mut self, packet: &RawPacket<'_>) {
        let c = &mut self.counts;
        if let Some(d) = &mut self.dedup {
            if d.is_copy(packet.ts, packet.link_type, packet.data) {
                c.duplicates += 1;
                return;
            }
        }
        if let Some(f) = &mut self.filter {
            if !f.frame(packet) {
                c.filtered += 1;
                return;
            }
        }
        let (decoded, encap) = decode::decode_frame(packet.link_type, packet.data);
        // Fragments resolve before the focus: later ones get their ports here.
        let decoded = self.defrag.resolve(decoded);
        if self.filter.as_ref().is_some_and(|f| !f.decoded(&decoded)) {
            c.filtered += 1;
            return;
        }
        c.count_encap(encap);
        match decoded {
            Decoded::Packet(meta) => {
                c.tcp_udp_packets += 1;
                let key = FlowKey::of(&meta, self.vlan_key);
                let w = (key.stable_hash() % self.senders.len() as u64) as usize;
                self.batches[w].push(Record {
                    ts: packet.ts,
                    meta,
                    wire_len: packet.orig_len,
                });
                let mut full = self.batches[w].len() >= BATCH;
                if let Some(frames) = self.frames.get_mut(w) {
                    frames.push(packet.link_type, packet.data);
                    full |= frames.bytes.len() >= BATCH_BYTES;
                }
                if full {
                    self.send_batch(w);
                }
            }
            Decoded::Other(p) => *c.other.entry(p).or_default() += 1,
            Decoded::Malformed(reason) => *c.failures.entry(reason.as_str()).or_default() += 1,
            // Unresolved fragments are reported by the defragmenter as
            // Malformed; anything else left over is counted the same way.
            Decoded::Fragment(_) => *c.failures.entry("fragment_unresolved").or_default() += 1,
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
                let _ = match self.delivery {
                    Delivery::Wait => self.senders[w].send(msg).ok(),
                    Delivery::DropWhenFull => self.senders[w].try_send(msg).ok(),
                };
            }
        }
        if let Some(ts) = tick {
            self.last_tick = Some(ts);
        }
    }

    fn send_batch(&mut self, w: usize) {
        let records = std::mem::replace(&mut self.batches[w], Vec::with_capacity(BATCH));
        let frames = self.frames.get_mut(w).map(|f| {
            // The next batch likely needs as much room as this one took.
            let room = f.bytes.len();
            std::mem::replace(
                f,
                Frames {
                    bytes: Vec::with_capacity(room),
                    spans: Vec::with_capacity(BATCH),
                },
            )
        });
        let msg = WorkerMsg::Batch(Batch { records, frames });
        match self.delivery {
            // The worker only hangs up when the output is closed: nothing to keep.
            Delivery::Wait => {
                let _ = self.senders[w].send(msg);
            }
            Delivery::DropWhenFull => {
                if let Err(TrySendError::Full(WorkerMsg::Batch(lost))) =
                    self.senders[w].try_send(msg)
                {
                    self.counts.queue_dropped += lost.records.len() as u64;
                }
            }
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

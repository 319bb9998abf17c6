//! What every packet goes through before its flow's worker takes it:
//! [`Screen`] leaves out mirrored copies and what is outside the focus's time
//! window or BPF, in capture order; decoding makes a small [`Record`];
//! [`IngestCounts`] counts what is not TCP/UDP. The live front ([`Ingest`])
//! then shards the records over the workers' queues in batches (with their
//! bytes, for `--extract`); files are decoded by the workers themselves
//! (see `chunked`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::capture::RawPacket;
use crate::decode::{self, Decoded, Defragmenter, Encap, EncapKind, OtherProto, PacketMeta};
use crate::filter::{AddressFilter, Focus, PacketFilter};
use crate::flow::{packet_hash, Timeouts};
use crate::output::Stats;
use crate::timestamp::Timestamp;

use super::dedup::Dedup;
use super::payload_gate::PayloadGate;
use super::{shard, Batch, Frames, Record, WorkerMsg};

/// The most records per batch. Each batch wakes its worker, so at a high
/// rate batches are large (at 1 M packets/s, 2,048 records fill in 4 ms on
/// each of two workers); at a low one the tick sends them sooner.
const BATCH: usize = 2048;
/// A batch carrying frames (`--extract`) is also sent once its bytes reach
/// this, so that a capture of jumbo frames keeps batches small.
const BATCH_BYTES: usize = 4 << 20;

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

/// The live front of one interface: screens, decodes and shards its packets.
pub(super) struct Ingest {
    /// Which front this is (see [`super::merge`]).
    front: usize,
    senders: Vec<Sender<WorkerMsg>>,
    /// Emptied batches handed back by the workers.
    spares: Receiver<Vec<Record>>,
    batches: Vec<Vec<Record>>,
    /// Per worker, the frames of its batch (`--extract`); empty otherwise.
    frames: Vec<Frames>,
    screen: Screen,
    /// The hosts and ports of the focus; `None` when there is none.
    addresses: Option<AddressFilter>,
    defrag: Defragmenter,
    /// Packet time between clock ticks (which also flush partial batches).
    tick_nanos: i64,
    last_tick: Option<Timestamp>,
    /// When batches and the clock were last sent (wall clock), and whether
    /// records went out since: then the next flush is due a tick later,
    /// else only after `idle_every`.
    flushed_at: Instant,
    owed: bool,
    /// How often an idle front tells the workers its clock.
    idle_every: Duration,
    /// The VLAN id is part of the flow key (`--vlan-key`), so of the shard too.
    vlan_key: bool,
    /// Whose payload this front identifies as it decodes.
    gate: PayloadGate,
    pub counts: IngestCounts,
}

impl Ingest {
    /// Ticks come often so that no record waits long in a partial batch
    /// (alert latency). When a worker's queue is full the batch is dropped
    /// and counted: a live capture must keep draining the kernel's ring, or
    /// the kernel drops instead, uncounted per flow. `front`: which front
    /// this is, for the workers' time-order merge. `frames`: carry each
    /// record's captured bytes to the workers (`--extract`).
    pub fn new(
        front: usize,
        (senders, spares): (Vec<Sender<WorkerMsg>>, Receiver<Vec<Record>>),
        tick_nanos: i64,
        screen: Screen,
        frames: bool,
        timeouts: Timeouts,
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
            spares,
            batches,
            frames,
            addresses: screen.addresses(),
            screen,
            defrag: Defragmenter::new(),
            tick_nanos,
            last_tick: None,
            flushed_at: Instant::now(),
            owed: false,
            idle_every: Duration::from_nanos(tick_nanos.unsigned_abs()),
            vlan_key: false,
            gate: PayloadGate::new(timeouts),
            counts: IngestCounts::default(),
        }
    }

    /// Keep flows of different VLANs apart (`--vlan-key`): shard on it too.
    pub fn keyed_by_vlan(mut self, vlan_key: bool) -> Ingest {
        self.vlan_key = vlan_key;
        self
    }

    /// An idle front ticks only this often (it ticks every `tick_nanos`
    /// while it sends records): its workers then sleep too.
    pub fn idle_every(mut self, every: Duration) -> Ingest {
        self.idle_every = every;
        self
    }

    /// How long the front may wait for packets (wall clock) before
    /// [`Ingest::idle`] has batches or a tick to send.
    pub fn wait(&self, now: Instant) -> Duration {
        self.due_every()
            .saturating_sub(now.saturating_duration_since(self.flushed_at))
    }

    /// No packet for now: send the partial batches and the clock `clock`
    /// if they are due. Not at every pause: a busy ring runs dry at every
    /// block, and waking each worker for a few records each time costs more
    /// than the records.
    pub fn idle(&mut self, now: Instant, clock: impl FnOnce() -> Timestamp) {
        if now.saturating_duration_since(self.flushed_at) >= self.due_every() {
            self.flush(Some(clock()));
        }
    }

    fn due_every(&self) -> Duration {
        if self.owed {
            Duration::from_nanos(self.tick_nanos.unsigned_abs())
        } else {
            self.idle_every
        }
    }

    /// Decode one packet and queue it for the worker that owns its flow.
    pub fn packet(&mut self, packet: &RawPacket<'_>) {
        let ts = packet.ts;
        self.counts.read(ts, packet.orig_len);
        self.route(packet);
        if self
            .last_tick
            .is_none_or(|t| ts.nanos_since(t) >= self.tick_nanos)
        {
            self.flush(Some(ts));
        }
    }

    /// Screen, decode, count, and queue a TCP/UDP packet for its worker.
    fn route(&mut self, packet: &RawPacket<'_>) {
        let c = &mut self.counts;
        if !self
            .screen
            .admits(packet.ts, packet.link_type, packet.data, c)
        {
            return;
        }
        let (decoded, encap, payload) = decode::decode_lazy(packet.link_type, packet.data);
        // Fragments resolve before the focus: later ones get their ports here.
        let decoded = self.defrag.resolve(decoded);
        if !c.in_focus(self.addresses.as_ref(), &decoded) {
            return;
        }
        c.count_encap(encap);
        let Some(mut meta) = c.decoded(decoded) else {
            return;
        };
        let hash = packet_hash(&meta, self.vlan_key);
        self.gate.identify(&mut meta, &payload, hash, packet.ts);
        let w = shard(hash, self.senders.len());
        self.batches[w].push(Record {
            ts: packet.ts,
            meta,
            hash,
            wire_len: packet.orig_len,
        });
        self.owed = true;
        let mut full = self.batches[w].len() >= BATCH;
        if let Some(frames) = self.frames.get_mut(w) {
            frames.push(packet.link_type, packet.data);
            full |= frames.bytes.len() >= BATCH_BYTES;
        }
        if full {
            self.send_batch(w);
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
            self.flushed_at = Instant::now();
            self.owed = false;
        }
    }

    fn send_batch(&mut self, w: usize) {
        let fresh = self
            .spares
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let records = std::mem::replace(&mut self.batches[w], fresh);
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
        if let Err(TrySendError::Full(WorkerMsg::Batch(lost))) = self.senders[w].try_send(msg) {
            self.counts.queue_dropped += lost.records.len() as u64;
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

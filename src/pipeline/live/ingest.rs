//! The live front of one interface: screens (see [`Screen`]), decodes and
//! shards its packets over the workers' queues in batches (with their
//! bytes, for `--extract`).

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::capture::RawPacket;
use crate::decode::{self, Defragmenter};
use crate::filter::AddressFilter;
use crate::flow::{packet_hash, Timeouts};
use crate::timestamp::Timestamp;

use super::workers::{Batch, WorkerMsg};
use crate::pipeline::payload_gate::PayloadGate;
use crate::pipeline::screen::{IngestCounts, Screen};
use crate::pipeline::{shard, Frames, Record};

/// The most records per batch. Each batch wakes its worker, so at a high
/// rate batches are large (at 1 M packets/s, 2,048 records fill in 4 ms on
/// each of two workers); at a low one the tick sends them sooner.
const BATCH: usize = 2048;
/// A batch carrying frames (`--extract`) is also sent once its bytes reach
/// this, so that a capture of jumbo frames keeps batches small.
const BATCH_BYTES: usize = 4 << 20;

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

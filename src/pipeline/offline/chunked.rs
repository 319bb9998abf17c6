//! The file path: the workers themselves read, decode and track, in chunks.
//!
//! ```text
//!            ┌─ worker 0: read chunk s (in turn, under a lock), decode it, split its
//!  files ────┤            records by flow into one part per worker, send them on;
//!            └─ worker 1…  apply the parts of chunks 0, 1, 2… in order ──▶ writer
//! ```
//! There is no reader thread: a worker that needs work reads the next chunk
//! of whole packets ([`CaptureFile::next_chunk`](crate::capture::CaptureFile::next_chunk):
//! about 1 MiB, one copy from the kernel, none after) while holding the
//! reader's lock, numbers it, and decodes it after letting go. Every worker
//! applies the parts meant for it in chunk order (a small reorder buffer),
//! so each flow sees its packets in capture order, exactly as with one
//! thread. All the per-packet work (read, decode, hash, flow update) is on
//! the workers, shared out as chunks come free: `--workers 1` is one thread
//! doing everything, N workers do 1/N each, and none of them waits for a
//! front that does the rest.
//!
//! Bounded without deadlock: no chunk is read more than [`AHEAD`] chunks
//! past the oldest one some worker has not applied yet, so a worker's inbox
//! never holds more than that many parts and sends never block; the worker
//! on the oldest chunk always has, or will get, what it needs.
//!
//! Fragments need the state of all fragments before them, so every worker
//! gets every fragment (rare), in order, and keeps its own defragmenter: all
//! of them decide alike, and only the flow's owner uses the packet.
//!
//! What depends on the order of all packets (`--dedup`'s window, relative
//! `--since`/`--until`, BPF) is screened by the source under the same lock,
//! before any worker decodes; hosts and ports are tested by each worker.
//! With `--extract` a part carries its records' frames, so the flow's owner
//! hands them to the evidence writer.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};

use crate::capture::Chunk;
use crate::classify::Classifier;
use crate::decode::{self, Decoded, Defragmenter};
use crate::filter::AddressFilter;
use crate::flow::{packet_hash, EndReason, FlowTable, TableStats};
use crate::output::EventWriter;
use crate::timestamp::Timestamp;

use super::part::{place, AbortPeers, Fragment, Msg, Part};
use crate::evidence as extract;
use crate::pipeline::payload_gate::PayloadGate;
use crate::pipeline::screen::IngestCounts;
use crate::pipeline::sink::{spawn_outputs, Outlet, Sink};
use crate::pipeline::{account, shard, spawn_named, FlowSettings, FrameRef, Frames, Record, Stop};

/// Chunks read ahead of the oldest one not yet applied by every worker.
const AHEAD: u64 = 8;
/// Emptied parts a worker keeps to decode into again (a worker that
/// decodes less than its share gets more than it needs).
const SPARE_PARTS: usize = 8;
/// Frame bytes (`--extract`) read ahead of the oldest chunk not yet applied:
/// beyond it, no further chunk is read until workers catch up.
const MAX_AHEAD_FRAME_BYTES: usize = 32 << 20;

/// Where the chunks come from (the capture files, in time order).
pub(super) trait ChunkSource {
    /// Fills `chunk` with the next packets; `false` when the input is over.
    fn next_chunk(&mut self, chunk: &mut Chunk) -> bool;
}

/// The source and the chunk numbering, behind the lock.
struct Reading<S> {
    source: S,
    /// Chunks handed out so far: the next one's number.
    next: u64,
    ended: bool,
}

/// What the workers share.
struct Shared<'a, S> {
    reading: Mutex<Reading<S>>,
    /// Per worker, the number of the next chunk it will apply.
    applied: Vec<AtomicU64>,
    /// Set when the output went away (`| head`, a full disk): stop reading.
    closed: &'a AtomicBool,
    /// Frame bytes (`--extract`) in parts decoded and not yet applied.
    frame_bytes: AtomicUsize,
    /// Asked to stop (a signal): read no further.
    stop: &'a Stop,
    /// Reading ended because of `stop`, before the input's end: flows still
    /// open close with `shutdown`.
    interrupted: AtomicBool,
}

/// What [`Shared::grab`] got.
enum Grab {
    /// Chunk number `seq` is in the chunk.
    Chunk(u64),
    /// Far enough ahead: apply what there is first.
    Wait,
    /// The input is over after this many chunks; `true` the first time.
    End(u64, bool),
}

impl<S: ChunkSource> Shared<'_, S> {
    fn grab(&self, chunk: &mut Chunk) -> Grab {
        let oldest = self
            .applied
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        let mut r = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        if r.ended {
            return Grab::End(r.next, false);
        }
        // Bytes too: AHEAD chunks of 64 MiB records would be half a gigabyte
        // of frames. Waiting only while some chunk is unapplied keeps the
        // guarantee above (the oldest chunk's worker has what it needs).
        let heavy = self.frame_bytes.load(Ordering::Acquire) > MAX_AHEAD_FRAME_BYTES;
        if r.next >= oldest + AHEAD || (heavy && r.next > oldest) {
            return Grab::Wait;
        }
        // Between chunks, never per packet: the packet path stays as it was.
        let stopped = self.stop.is_requested();
        if stopped || self.closed.load(Ordering::Relaxed) || !r.source.next_chunk(chunk) {
            // Set before any worker can learn of the end (under the lock, before `End` is sent).
            self.interrupted.store(stopped, Ordering::Release);
            r.ended = true;
            return Grab::End(r.next, true);
        }
        r.next += 1;
        Grab::Chunk(r.next - 1)
    }
}

/// What the workers counted and tracked, summed, and the source back.
pub(super) struct ChunkTotals<S> {
    pub source: S,
    pub counts: IngestCounts,
    pub tables: TableStats,
    /// The output went away before the end.
    pub closed: bool,
    /// Reading stopped early because a stop was asked (see [`Stop`]).
    pub interrupted: bool,
}

/// Run `settings.workers` workers over the chunks of `source`, the writer
/// and (with `--extract`) the extract thread, and wait for everything to
/// drain. Flows still open at the end are closed with `end`, or with
/// `shutdown` when `stop` cut the reading short. `addresses`: the hosts and
/// ports of the focus, tested once decoded (what depends on order was
/// screened by the source).
pub(super) fn run_chunked<W: Write + Send, S: ChunkSource + Send>(
    settings: FlowSettings,
    end: EndReason,
    classifier: &Arc<Classifier>,
    outlet: Outlet<'_, W>,
    stop: &Stop,
    addresses: Option<AddressFilter>,
    source: S,
) -> (ChunkTotals<S>, EventWriter<W>) {
    let n = settings.workers.get();
    let per_worker_flows = settings.per_worker_flows();
    let closed = AtomicBool::new(false);
    let shared = Shared {
        reading: Mutex::new(Reading {
            source,
            next: 0,
            ended: false,
        }),
        applied: (0..n).map(|_| AtomicU64::new(0)).collect(),
        closed: &closed,
        frame_bytes: AtomicUsize::new(0),
        stop,
        interrupted: AtomicBool::new(false),
    };
    let frames = outlet.extraction.is_some();
    let evidence = outlet.extraction.map(|x| Arc::clone(x.shared()));
    let mut inboxes = Vec::with_capacity(n);
    let mut senders = Vec::with_capacity(n);
    for _ in 0..n {
        // At most AHEAD parts, one End and one Abort: sends never wait.
        let (tx, rx) = bounded::<Msg>(AHEAD as usize + 3);
        senders.push(tx);
        inboxes.push(rx);
    }

    let (counts, tables, writer) = std::thread::scope(|scope| {
        let (writer_handle, outputs) = spawn_outputs(scope, outlet, classifier, &closed);
        let shared = &shared;
        let handles: Vec<_> = inboxes
            .into_iter()
            .enumerate()
            .map(|(me, inbox)| {
                let worker = Worker {
                    me,
                    n,
                    table: FlowTable::new(
                        Arc::clone(classifier),
                        settings.timeouts,
                        per_worker_flows,
                    )
                    .keyed_by_vlan(settings.vlan_key),
                    defrag: Defragmenter::new(),
                    addresses: addresses.clone(),
                    frames,
                    evidence: evidence.clone(),
                    counts: IngestCounts::default(),
                    gate: PayloadGate::new(settings.timeouts),
                    now: Timestamp::EPOCH,
                    inbox,
                    peers: senders
                        .iter()
                        .enumerate()
                        .map(|(k, tx)| (k != me).then(|| tx.clone()))
                        .collect(),
                    sink: outputs.sink(),
                };
                spawn_named(scope, format!("pm-worker-{me}"), move || {
                    worker.run(shared, end)
                })
            })
            .collect();
        // The workers hold the only senders now: the writer and the extract
        // thread end after them.
        drop((outputs, senders));
        let mut counts = IngestCounts::default();
        let mut tables = TableStats::default();
        for h in handles {
            match h.join() {
                Ok((t, c)) => {
                    tables.add(&t);
                    counts.add(&c);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        let writer = match writer_handle.join() {
            Ok(w) => w,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (counts, tables, writer)
    });
    let reading = shared
        .reading
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let totals = ChunkTotals {
        source: reading.source,
        counts,
        tables,
        closed: closed.load(Ordering::Relaxed),
        interrupted: shared.interrupted.into_inner(),
    };
    (totals, writer)
}

/// One worker: reads and decodes chunks as they come free, owns 1/N of the flows.
struct Worker {
    me: usize,
    n: usize,
    table: FlowTable,
    defrag: Defragmenter,
    /// The hosts and ports of the focus, if any.
    addresses: Option<AddressFilter>,
    /// Carry the frames to their flow's worker (`--extract`).
    frames: bool,
    /// The evidence budget, to leave out frames it cannot take (`--extract`).
    evidence: Option<Arc<extract::Shared>>,
    /// Packets of the chunks this worker decoded (and fragments it owns).
    counts: IngestCounts,
    /// Whose payload this worker identifies as it decodes.
    gate: PayloadGate,
    now: Timestamp,
    inbox: Receiver<Msg>,
    /// Indexed by worker; `None` for this one.
    peers: Vec<Option<Sender<Msg>>>,
    /// To the writer (a batch per chunk part) and the extract thread.
    sink: Sink,
}

impl Worker {
    fn run<S: ChunkSource>(
        mut self,
        shared: &Shared<'_, S>,
        end: EndReason,
    ) -> (TableStats, IngestCounts) {
        let _abort = AbortPeers(self.peers.iter().flatten().cloned().collect());
        let mut chunk = Chunk::new();
        // Parts of chunks `next`, `next + 1`, … as they arrive.
        let mut pending: VecDeque<Option<Part>> = VecDeque::new();
        let mut next = 0u64;
        let mut total: Option<u64> = None;
        // Emptied parts, to decode into again.
        let mut spare: Vec<Part> = Vec::new();
        loop {
            // Apply what is next in order.
            if let Some(Some(_)) = pending.front() {
                if let Some(Some(mut part)) = pending.pop_front() {
                    self.apply(&part);
                    shared
                        .frame_bytes
                        .fetch_sub(part.frame_bytes(), Ordering::AcqRel);
                    if spare.len() < SPARE_PARTS {
                        part.clear();
                        spare.push(part);
                    }
                }
                next += 1;
                shared.applied[self.me].store(next, Ordering::Release);
                continue;
            }
            if total == Some(next) {
                break;
            }
            // Take what arrived.
            let msg = match self.inbox.try_recv() {
                Ok(msg) => Some(msg),
                Err(TryRecvError::Empty) => None,
                // No peers (one worker): nothing ever arrives.
                Err(TryRecvError::Disconnected) => None,
            };
            if let Some(msg) = msg {
                if !self.receive(msg, next, &mut pending, &mut total) {
                    break;
                }
                continue;
            }
            // Read and decode the next chunk, unless too far ahead.
            if total.is_none() {
                match shared.grab(&mut chunk) {
                    Grab::Chunk(seq) => {
                        self.decode_and_send(shared, &chunk, seq, next, &mut pending, &mut spare);
                        continue;
                    }
                    Grab::End(chunks, first) => {
                        if first {
                            for tx in self.peers.iter().flatten() {
                                // A peer that already finished needs no telling.
                                let _ = tx.send(Msg::End(chunks));
                            }
                        }
                        total = Some(chunks);
                        continue;
                    }
                    Grab::Wait => {}
                }
            }
            // Wait for a peer's part (or the end).
            match self.inbox.recv() {
                Ok(msg) => {
                    if !self.receive(msg, next, &mut pending, &mut total) {
                        break;
                    }
                }
                // Every peer is gone: nothing more can come.
                Err(_) => break,
            }
        }
        // Peers blocked on this worker see it leave; then close the flows
        // (the sink sends them on a batch at a time: the table may hold a million).
        self.peers.clear();
        let end = if shared.interrupted.load(Ordering::Acquire) {
            EndReason::Shutdown
        } else {
            end
        };
        let sink = &mut self.sink;
        self.table.finish(self.now, end, &mut |e| sink.emit(e));
        self.sink.flush();
        (self.table.stats(), self.counts)
    }

    /// Takes a message in; `false` when a peer panicked and this worker must stop.
    fn receive(
        &mut self,
        msg: Msg,
        next: u64,
        pending: &mut VecDeque<Option<Part>>,
        total: &mut Option<u64>,
    ) -> bool {
        match msg {
            Msg::Part(seq, part) => place(pending, next, seq, part),
            Msg::End(chunks) => *total = Some(chunks),
            Msg::Abort => return false,
        }
        true
    }

    /// Decode chunk `seq` into one part per worker, keep this worker's,
    /// send the others on.
    fn decode_and_send<S: ChunkSource>(
        &mut self,
        shared: &Shared<'_, S>,
        chunk: &Chunk,
        seq: u64,
        next: u64,
        pending: &mut VecDeque<Option<Part>>,
        spare: &mut Vec<Part>,
    ) {
        let mut parts: Vec<Part> = (0..self.n)
            .map(|_| spare.pop().unwrap_or_default())
            .collect();
        self.decode(chunk, &mut parts);
        let bytes: usize = parts.iter().map(Part::frame_bytes).sum();
        shared.frame_bytes.fetch_add(bytes, Ordering::AcqRel);
        for (to, mut part) in parts.into_iter().enumerate() {
            match &self.peers[to] {
                Some(tx) => {
                    part.decoded_here = false;
                    // Never waits (see the module documentation); a peer is
                    // only gone when the output is closed.
                    let _ = tx.send(Msg::Part(seq, part));
                }
                None => {
                    part.decoded_here = true;
                    place(pending, next, seq, part);
                }
            }
        }
    }

    /// Decode a chunk into one part per worker, counting what is not TCP/UDP
    /// and what is outside the focus.
    fn decode(&mut self, chunk: &Chunk, parts: &mut [Part]) {
        if self.frames {
            for part in parts.iter_mut() {
                part.frames.get_or_insert_with(Frames::default);
                part.fragment_frames.get_or_insert_with(Frames::default);
            }
        }
        let vlan_key = self.table.vlan_key();
        let c = &mut self.counts;
        // Packets screened out still move the clock: flows time out on
        // capture time, whatever the focus.
        let mut clock = chunk.removed_until();
        for (p, data) in chunk.iter() {
            c.read(p.ts, p.orig_len);
            clock = clock.max(p.ts);
            let (decoded, encap, payload) = decode::decode_lazy(p.link_type, data);
            let keep = self
                .evidence
                .as_ref()
                .is_some_and(|x| x.may_keep(data.len()));
            if let Decoded::Fragment(meta) = decoded {
                // Every worker's defragmenter needs it; the focus is applied
                // once it resolves.
                c.count_encap(encap);
                for part in parts.iter_mut() {
                    part.fragments.push(Fragment {
                        at: part.records.len() as u32,
                        ts: p.ts,
                        meta,
                        wire_len: p.orig_len,
                    });
                    if let Some(frames) = &mut part.fragment_frames {
                        frames.push_if(keep, p.link_type, data);
                    }
                }
                continue;
            }
            if !c.in_focus(self.addresses.as_ref(), &decoded) {
                continue;
            }
            c.count_encap(encap);
            let Some(mut meta) = c.decoded(decoded) else {
                continue;
            };
            let hash = packet_hash(&meta, vlan_key);
            self.gate.identify(&mut meta, &payload, hash, p.ts);
            let part = &mut parts[shard(hash, self.n)];
            part.records.push(Record {
                ts: p.ts,
                meta,
                hash,
                wire_len: p.orig_len,
            });
            if let Some(frames) = &mut part.frames {
                frames.push_if(keep, p.link_type, data);
            }
        }
        for part in parts {
            part.clock = clock;
        }
    }

    /// Apply a chunk's part: its records to the table, its fragments through
    /// the defragmenter, then the chunk's clock; its events go to the writer.
    fn apply(&mut self, part: &Part) {
        let mut fragments = part.fragments.iter().enumerate().peekable();
        for (i, r) in part.records.iter().enumerate() {
            while let Some((j, f)) = fragments.next_if(|(_, f)| f.at as usize == i) {
                self.fragment(f, part.fragment_frame(j), part.decoded_here);
            }
            self.now = self.now.max(r.ts);
            let frame = part.frames.as_ref().and_then(|f| f.get(i));
            account(&mut self.table, &mut self.sink, r, frame);
        }
        for (j, f) in fragments {
            self.fragment(f, part.fragment_frame(j), part.decoded_here);
        }
        self.now = self.now.max(part.clock);
        let sink = &mut self.sink;
        self.table.advance(self.now, &mut |e| sink.emit(e));
        // Storm control orders alerts by the workers' clocks.
        self.sink.clock(self.me, self.now);
        self.sink.flush();
    }

    /// A fragment, through this worker's defragmenter: every worker sees
    /// all of them in order and decides alike; the flow's owner counts the
    /// packet, the worker that decoded it counts anything else.
    fn fragment(&mut self, f: &Fragment, frame: Option<FrameRef<'_>>, decoded_here: bool) {
        let resolved = self.defrag.resolve(Decoded::Fragment(f.meta));
        let hash = match &resolved {
            Decoded::Packet(meta) => Some(packet_hash(meta, self.table.vlan_key())),
            _ => None,
        };
        let counts_it = match hash {
            Some(hash) => shard(hash, self.n) == self.me,
            None => decoded_here,
        };
        let c = &mut self.counts;
        if !counts_it || !c.in_focus(self.addresses.as_ref(), &resolved) {
            return;
        }
        if let (Some(meta), Some(hash)) = (c.decoded(resolved), hash) {
            self.now = self.now.max(f.ts);
            let record = Record {
                ts: f.ts,
                meta,
                hash,
                wire_len: f.wire_len,
            };
            account(&mut self.table, &mut self.sink, &record, frame);
        }
    }
}

//! The threads: N workers, each owning the flow table of the flows whose
//! direction-free hash falls to it; one writer emits the events, and with
//! `--extract` one thread writes the evidence.
//!
//! ```text
//!  files ──chunks──▶ worker 0..N: read, decode, ──parts──▶ each other's FlowTable
//!  live  ──capture thread per interface: decode ──batches──▶ worker 0..N (FlowTable)
//!                          worker ──events──▶ writer ──▶ out
//!                                 └──evidence (--extract)──▶ extract ──▶ DIR/*.pcapng
//! ```
//! The set of events does not depend on the number of workers: each flow lives
//! in exactly one worker, time is packet time, and expiry depends only on a
//! flow's own packets and the front's clock. Live capture decodes in its
//! front ([`live`], through [`run_stages`]); files are framed by the reader
//! and decoded by the workers themselves ([`offline`], through `chunked`),
//! so that all the per-packet work is spread over the workers.

mod chunked;
mod dedup;
mod ingest;
pub mod live;
mod merge;
pub mod offline;
mod payload_gate;
mod sink;
mod stop;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::classify::Classifier;
use crate::decode::PacketMeta;
use crate::evidence::FrameRef;
use crate::filter::{Focus, VerdictSet};
use crate::flow::{EndReason, FlowTable, TableStats, Timeouts};
use crate::output::{ActiveFilters, EventWriter, Stats};
use crate::timestamp::Timestamp;
use crate::verdict::Verdict;

use sink::{spawn_outputs, Outlet, OutputMsg, Sink};

pub use crate::evidence::{ExtractConfig, ExtractError};
pub use live::{run_live, LiveConfig, LiveControl, LiveOutcome, RING_TIMEOUT_MS};
pub use offline::{run_offline, AnalyzeConfig, RunOutcome};
pub use stop::{Stop, WriteGate};

/// Batches in flight per worker (with [`ingest`]'s batches of up to 2,048
/// records: 32,768 records, the slack for a worker's pauses).
const QUEUE_BATCHES: usize = 16;

/// Start a thread of the pipeline under `name`, so that `top -H`, `perf`
/// and `/proc/PID/task/*/comm` tell the capture, the workers and the
/// writer apart (Linux keeps the first 15 bytes).
fn spawn_named<'scope, 'env, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    name: String,
    f: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    std::thread::Builder::new()
        .name(name)
        .spawn_scoped(scope, f)
        // As `scope.spawn` does: no thread, no run.
        .expect("failed to spawn a thread")
}

/// One decoded packet on its way to a worker.
#[derive(Debug, Clone, Copy)]
struct Record {
    ts: Timestamp,
    meta: PacketMeta,
    /// [`packet_hash`] of `meta`: computed once, to shard and to find the flow.
    hash: u64,
    wire_len: u32,
}

/// The frames of a batch's records, when evidence is extracted: record `i`'s
/// captured bytes are `bytes[spans[i]]`. One arena per batch, so copying
/// costs no allocation per packet.
#[derive(Debug, Default)]
struct Frames {
    bytes: Vec<u8>,
    spans: Vec<Span>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    at: usize,
    len: usize,
    link_type: u16,
    /// Not copied: it could not fit the `--extract-max-mb` budget anyway.
    omitted: bool,
}

impl Frames {
    fn push(&mut self, link_type: u16, data: &[u8]) {
        self.spans.push(Span {
            at: self.bytes.len(),
            len: data.len(),
            link_type,
            omitted: false,
        });
        self.bytes.extend_from_slice(data);
    }

    /// Copy `data` only if `keep`: a frame too large for what is left of
    /// the budget is not carried (64 MiB frames would fill memory for nothing).
    fn push_if(&mut self, keep: bool, link_type: u16, data: &[u8]) {
        if keep {
            return self.push(link_type, data);
        }
        self.spans.push(Span {
            at: self.bytes.len(),
            len: data.len(),
            link_type,
            omitted: true,
        });
    }

    /// Record `i`'s frame.
    fn get(&self, i: usize) -> Option<FrameRef<'_>> {
        let s = self.spans.get(i)?;
        let data = if s.omitted {
            &[]
        } else {
            self.bytes.get(s.at..s.at + s.len)?
        };
        Some(FrameRef {
            data,
            len: s.len,
            link_type: s.link_type,
        })
    }
}

struct Batch {
    records: Vec<Record>,
    frames: Option<Frames>,
}

/// The worker (of `workers`) that owns the flows with this [`packet_hash`]:
/// a multiply-shift of the low 32 bits, so the table inside the worker,
/// which indexes by the low bits and tags with the top ones, still sees
/// every bit vary.
fn shard(hash: u64, workers: usize) -> usize {
    ((u64::from(hash as u32) * workers as u64) >> 32) as usize
}

/// What a front sends a worker.
enum WorkerMsg {
    Batch(Batch),
    /// The front's clock: it will send nothing older (`front` tells the fronts
    /// apart for [`merge`]). Lets idle workers expire flows, and releases
    /// records held for time order.
    Tick {
        front: usize,
        ts: Timestamp,
    },
}

/// The flow-tracking settings shared by both fronts.
#[derive(Debug, Clone, Copy)]
pub struct FlowSettings {
    pub workers: usize,
    /// Across all workers.
    pub max_flows: usize,
    pub timeouts: Timeouts,
    /// Keep flows in different VLANs apart (`--vlan-key`).
    pub vlan_key: bool,
    /// Drop mirrored copies seen within this window (`--dedup`).
    pub dedup_nanos: Option<i64>,
}

impl Default for FlowSettings {
    /// One worker, a million flows, the default timeouts, nothing else.
    fn default() -> Self {
        FlowSettings {
            workers: 1,
            max_flows: 1_000_000,
            timeouts: Timeouts::default(),
            vlan_key: false,
            dedup_nanos: None,
        }
    }
}

/// What a front gets to talk to the rest of the pipeline.
struct Stages<'a> {
    /// One per worker, in shard order. Dropping them all ends the workers.
    senders: Vec<Sender<WorkerMsg>>,
    /// Emptied batches the workers hand back, so that a front does not
    /// allocate (and a worker free) one per batch.
    spares: Receiver<Vec<Record>>,
    events: Sender<Vec<OutputMsg>>,
    /// Set when the output went away (`| head`, a full disk): stop reading.
    closed: &'a AtomicBool,
    /// Each worker's counters as of its last tick (live stats events).
    tables: &'a [Mutex<TableStats>],
}

impl Stages<'_> {
    fn table_stats(&self) -> TableStats {
        let mut sum = TableStats::default();
        for t in self.tables {
            sum.add(&t.lock().unwrap_or_else(PoisonError::into_inner));
        }
        sum
    }
}

/// The `filters` object of the stats: what the user gave, relative times
/// resolved once the capture's first packet (`start`) is known.
fn active_filters(
    focus: &Focus,
    verdicts: VerdictSet,
    start: Option<Timestamp>,
) -> Option<ActiveFilters> {
    if !focus.is_active() && verdicts == VerdictSet::ALL {
        return None;
    }
    let bound = |b: Option<crate::filter::TimeBound>| {
        b.map(|b| match start {
            Some(s) => b.resolve(s).to_string(),
            None => b.to_string(),
        })
    };
    Some(ActiveFilters {
        since: bound(focus.since),
        until: bound(focus.until),
        host: focus.hosts.iter().map(ToString::to_string).collect(),
        port: focus.ports.clone(),
        bpf: focus.bpf.clone(),
        verdict: if verdicts == VerdictSet::ALL {
            Vec::new()
        } else {
            verdicts.iter().map(Verdict::as_str).collect()
        },
    })
}

/// Start the workers, the writer and (with `--extract`) the extract thread,
/// run `front` on this thread, and wait for everything to drain once the
/// front returns (dropping its senders). Flows still open at the end are
/// closed with `end`. `fronts` is the number of threads feeding the workers,
/// whose records are merged in time order.
fn run_stages<W: Write + Send, R>(
    settings: FlowSettings,
    fronts: usize,
    end: EndReason,
    classifier: &Arc<Classifier>,
    outlet: Outlet<'_, W>,
    front: impl FnOnce(Stages<'_>) -> R,
) -> (R, TableStats, EventWriter<W>, bool) {
    let workers = settings.workers.max(1);
    let per_worker_flows = (settings.max_flows / workers).max(1);
    let closed = AtomicBool::new(false);
    let tables: Vec<Mutex<TableStats>> = (0..workers).map(|_| Mutex::default()).collect();

    let mut senders = Vec::with_capacity(workers);
    let mut receivers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = bounded::<WorkerMsg>(QUEUE_BATCHES);
        senders.push(tx);
        receivers.push(rx);
    }
    let (spare_tx, spares) = bounded::<Vec<Record>>(workers * QUEUE_BATCHES);

    let (result, table_stats, writer) = std::thread::scope(|scope| {
        let (writer_handle, outputs) = spawn_outputs(scope, outlet, classifier, &closed);
        let mut worker_handles = Vec::with_capacity(workers);
        for (worker, (rx, slot)) in receivers.into_iter().zip(&tables).enumerate() {
            let table = FlowTable::new(Arc::clone(classifier), settings.timeouts, per_worker_flows)
                .keyed_by_vlan(settings.vlan_key);
            let sink = outputs.sink();
            let inbox = Inbox {
                rx,
                spares: spare_tx.clone(),
            };
            worker_handles.push(spawn_named(
                scope,
                format!("pm-worker-{worker}"),
                move || work(worker, table, fronts, inbox, sink, slot, end),
            ));
        }
        let events = outputs.events.clone();
        // The workers hold the only evidence senders now: the extract thread ends after them.
        drop(outputs);
        let result = front(Stages {
            senders,
            spares,
            events,
            closed: &closed,
            tables: &tables,
        });
        let mut table_stats = TableStats::default();
        for h in worker_handles {
            match h.join() {
                Ok(s) => table_stats.add(&s),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        let writer = match writer_handle.join() {
            Ok(w) => w,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (result, table_stats, writer)
    });
    (result, table_stats, writer, closed.load(Ordering::Relaxed))
}

/// Put the flow tables' counters into `stats`.
fn fill_table_stats(stats: &mut Stats, tables: &TableStats) {
    stats.flows = tables.flows;
    stats.evictions = tables.evicted;
    stats.resumed_flows = (tables.resumed > 0).then_some(tables.resumed);
    stats.timeouts = tables.timed_out;
    // Verdicts only a site gives are left out unless seen (the writer adds
    // them when a site is loaded), so runs without a site read as before.
    stats.flows_per_verdict = Verdict::ALL
        .iter()
        .map(|v| (v.as_str(), tables.flows_per_verdict[v.index()]))
        .filter(|&(name, n)| n > 0 || Verdict::parse(name).is_some_and(|v| !v.needs_site()))
        .collect();
}

/// A record on its way through the time-order merge, with its frame when
/// evidence is extracted (the batch's arena, shared by its records).
struct Item {
    record: Record,
    frame: Option<(Arc<Frames>, usize)>,
}

/// Count one packet on its flow, and hand its frame (`--extract`) to the
/// evidence writer if the flow is one to keep.
fn account(table: &mut FlowTable, sink: &mut Sink, r: &Record, frame: Option<FrameRef<'_>>) {
    table.update_hashed(r.ts, &r.meta, r.hash, r.wire_len, &mut |e| sink.emit(e));
    if let (Some(frame), Some(evidence)) = (frame, &mut sink.evidence) {
        // The flow this packet was just counted on.
        if let Some(flow) = table.flow_of(&r.meta, r.hash) {
            evidence.packet(flow, r.ts, frame, r.wire_len);
        }
    }
}

/// A record released by the time-order merge: count it, move the clock.
fn apply(table: &mut FlowTable, sink: &mut Sink, now: &mut Timestamp, item: Item) {
    *now = (*now).max(item.record.ts);
    let frame = item.frame.as_ref().and_then(|(f, i)| f.get(*i));
    account(table, sink, &item.record, frame);
}

/// Packet time between a live worker's clocks to the writer when it has no
/// event to send with them: live storm control only closes minute-long
/// windows by it, and a clock alone wakes the writer for nothing else.
const CLOCK_ALONE_NANOS: i64 = 1_000_000_000;

/// What a worker receives, and where it hands its emptied batches back.
struct Inbox {
    rx: Receiver<WorkerMsg>,
    spares: Sender<Vec<Record>>,
}

/// A worker: its own flow table, fed by batches, until the fronts hang up.
fn work(
    worker: usize,
    mut table: FlowTable,
    fronts: usize,
    inbox: Inbox,
    mut sink: Sink,
    published: &Mutex<TableStats>,
    end: EndReason,
) -> TableStats {
    let mut now = Timestamp::EPOCH;
    let mut clock_sent: Option<Timestamp> = None;
    let mut merge = merge::Merge::new(fronts);
    for msg in inbox.rx {
        match msg {
            WorkerMsg::Batch(batch) => {
                let frames = batch.frames.map(Arc::new);
                let mut records = batch.records;
                for (i, r) in records.iter().enumerate() {
                    let frame = frames.as_ref().map(|f| (Arc::clone(f), i));
                    merge.push(r.ts, Item { record: *r, frame }, &mut |item| {
                        apply(&mut table, &mut sink, &mut now, item);
                    });
                }
                records.clear();
                // Full of spares already: let this one go.
                let _ = inbox.spares.try_send(records);
                sink.flush();
            }
            WorkerMsg::Tick { front, ts } => {
                let horizon = merge.tick(front, ts, &mut |item| {
                    apply(&mut table, &mut sink, &mut now, item);
                });
                if let Some(horizon) = horizon {
                    now = now.max(horizon);
                    table.advance(now, &mut |e| sink.emit(e));
                    let due =
                        clock_sent.is_none_or(|t| horizon.nanos_since(t) >= CLOCK_ALONE_NANOS);
                    if due || sink.has_pending() {
                        sink.clock(worker, horizon);
                        clock_sent = Some(horizon);
                    }
                    sink.flush();
                    *published.lock().unwrap_or_else(PoisonError::into_inner) = table.stats();
                }
            }
        }
    }
    merge.release(None, &mut |item| {
        apply(&mut table, &mut sink, &mut now, item);
    });
    table.finish(now, end, &mut |e| sink.emit(e));
    sink.flush();
    table.stats()
}

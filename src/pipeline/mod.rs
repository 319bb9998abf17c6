//! The threads. A front (the file reader, or one thread per live interface)
//! decodes packets into small records and shards them by a direction-free flow
//! hash over bounded channels to N workers, each owning its flow table; one
//! writer emits the events.
//!
//! ```text
//!  reader / capture ──batches──▶ worker 0..N (FlowTable) ──events──▶ writer ──▶ out
//!                                      └──evidence (--extract)──▶ extract ──▶ DIR/*.pcapng
//! ```
//! The set of events does not depend on the number of workers: each flow lives
//! in exactly one worker, time is packet time, and expiry depends only on a
//! flow's own packets and the front's clock. Files and live capture differ only
//! in their front ([`offline`], [`live`]); both go through [`run_stages`].

mod dedup;
pub mod extract;
mod ingest;
pub mod live;
mod merge;
pub mod offline;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::capture::Timestamp;
use crate::classify::{Classifier, Verdict};
use crate::decode::PacketMeta;
use crate::filter::{Focus, VerdictSet};
use crate::flow::{EndReason, Flow, FlowEvent, FlowKey, FlowTable, TableStats, Timeouts};
use crate::output::{ActiveFilters, EventWriter, Stats};

use extract::{Admission, EvidenceBatch, EvidenceFiles, Extraction, EXTRACT_QUEUE};

pub use extract::{ExtractConfig, ExtractError};
pub use live::{run_live, LiveConfig, LiveControl, LiveOutcome, RING_TIMEOUT_MS};
pub use offline::{run_offline, AnalyzeConfig, RunOutcome};

/// Batches in flight per worker.
const QUEUE_BATCHES: usize = 64;
/// Events in flight to the writer.
const OUTPUT_QUEUE: usize = 4096;

/// One decoded packet on its way to a worker.
#[derive(Debug, Clone, Copy)]
struct Record {
    ts: Timestamp,
    meta: PacketMeta,
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
}

impl Frames {
    fn push(&mut self, link_type: u16, data: &[u8]) {
        self.spans.push(Span {
            at: self.bytes.len(),
            len: data.len(),
            link_type,
        });
        self.bytes.extend_from_slice(data);
    }

    /// Record `i`'s frame and link type.
    fn get(&self, i: usize) -> Option<(&[u8], u16)> {
        let s = self.spans.get(i)?;
        Some((self.bytes.get(s.at..s.at + s.len)?, s.link_type))
    }
}

struct Batch {
    records: Vec<Record>,
    frames: Option<Frames>,
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

enum OutputMsg {
    Alert(Flow),
    /// With the `evidence` path, when the flow's packets were extracted.
    End(Flow, EndReason, Option<String>),
    /// Worker `worker` has sent every event of packets before `ts`: the
    /// writer's storm control orders alerts by it.
    Clock {
        worker: usize,
        ts: Timestamp,
    },
    /// A periodic stats event (live mode).
    Stats(Timestamp, Box<Stats>),
    /// Nothing to write: wakes the writer so it flushes (and, for a file,
    /// reopens it after SIGHUP).
    Flush,
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

/// What a front gets to talk to the rest of the pipeline.
struct Stages<'a> {
    /// One per worker, in shard order. Dropping them all ends the workers.
    senders: Vec<Sender<WorkerMsg>>,
    events: Sender<OutputMsg>,
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
    writer: EventWriter<W>,
    extraction: Option<&Extraction>,
    front: impl FnOnce(Stages<'_>) -> R,
) -> (R, TableStats, EventWriter<W>, bool) {
    let workers = settings.workers.max(1);
    let per_worker_flows = (settings.max_flows / workers).max(1);
    let closed = AtomicBool::new(false);
    let tables: Vec<Mutex<TableStats>> = (0..workers).map(|_| Mutex::default()).collect();

    let (out_tx, out_rx) = bounded::<OutputMsg>(OUTPUT_QUEUE);
    let mut senders = Vec::with_capacity(workers);
    let mut receivers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = bounded::<WorkerMsg>(QUEUE_BATCHES);
        senders.push(tx);
        receivers.push(rx);
    }

    let (result, table_stats, writer) = std::thread::scope(|scope| {
        let writer_handle = scope.spawn(|| write_events(writer, out_rx, &closed));
        let evidence_tx = extraction.map(|x| {
            let (tx, rx) = bounded::<EvidenceBatch>(EXTRACT_QUEUE);
            let files = EvidenceFiles::new(Arc::clone(x.shared()), Arc::clone(classifier));
            scope.spawn(move || files.run(rx));
            (tx, x)
        });
        let mut worker_handles = Vec::with_capacity(workers);
        for (worker, (rx, slot)) in receivers.into_iter().zip(&tables).enumerate() {
            let table = FlowTable::new(Arc::clone(classifier), settings.timeouts, per_worker_flows)
                .keyed_by_vlan(settings.vlan_key);
            let sink = Sink {
                events: out_tx.clone(),
                evidence: evidence_tx
                    .as_ref()
                    .map(|(tx, x)| Admission::new(Arc::clone(x.shared()), tx.clone())),
            };
            worker_handles
                .push(scope.spawn(move || work(worker, table, fronts, rx, sink, slot, end)));
        }
        // The workers hold the only senders now: the extract thread ends after them.
        drop(evidence_tx);
        let result = front(Stages {
            senders,
            events: out_tx,
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

/// Count one packet on its flow, and hand its frame to the evidence writer
/// if the flow is one to keep.
fn account(table: &mut FlowTable, sink: &mut Sink, item: &Item) {
    let r = &item.record;
    table.update(r.ts, &r.meta, r.wire_len, &mut |e| sink.emit(e));
    if let (Some((frames, i)), Some(evidence)) = (&item.frame, &mut sink.evidence) {
        // The flow this packet was just counted on.
        let flow = table.get(&FlowKey::of(&r.meta, table.vlan_key()));
        if let (Some(flow), Some((frame, link_type))) = (flow, frames.get(*i)) {
            evidence.packet(flow, r.ts, link_type, frame, r.wire_len);
        }
    }
}

/// Where a worker's results go: events to the writer, evidence (with
/// `--extract`) to the extract thread.
struct Sink {
    events: Sender<OutputMsg>,
    evidence: Option<Admission>,
}

impl Sink {
    fn emit(&mut self, e: FlowEvent) {
        let msg = match e {
            FlowEvent::Alert(f) => OutputMsg::Alert(f),
            FlowEvent::End(f, r) => {
                let evidence = self.evidence.as_mut().and_then(|x| x.ended(&f));
                OutputMsg::End(f, r, evidence)
            }
        };
        // The writer only goes away when output is closed; then drop quietly.
        let _ = self.events.send(msg);
    }

    fn flush_evidence(&mut self) {
        if let Some(x) = &mut self.evidence {
            x.flush();
        }
    }
}

/// A worker: its own flow table, fed by batches, until the fronts hang up.
fn work(
    worker: usize,
    mut table: FlowTable,
    fronts: usize,
    rx: Receiver<WorkerMsg>,
    mut sink: Sink,
    published: &Mutex<TableStats>,
    end: EndReason,
) -> TableStats {
    let mut now = Timestamp::EPOCH;
    let mut merge = merge::Merge::new(fronts);
    for msg in rx {
        let mut apply = |item: Item| {
            now = now.max(item.record.ts);
            account(&mut table, &mut sink, &item);
        };
        match msg {
            WorkerMsg::Batch(batch) => {
                let frames = batch.frames.map(Arc::new);
                for (i, r) in batch.records.iter().enumerate() {
                    let frame = frames.as_ref().map(|f| (Arc::clone(f), i));
                    merge.push(r.ts, Item { record: *r, frame }, &mut apply);
                }
                sink.flush_evidence();
            }
            WorkerMsg::Tick { front, ts } => {
                if let Some(horizon) = merge.tick(front, ts, &mut apply) {
                    now = now.max(horizon);
                    table.advance(now, &mut |e| sink.emit(e));
                    sink.flush_evidence();
                    let _ = sink.events.send(OutputMsg::Clock {
                        worker,
                        ts: horizon,
                    });
                    *published.lock().unwrap_or_else(PoisonError::into_inner) = table.stats();
                }
            }
        }
    }
    merge.release(None, &mut |item: Item| {
        now = now.max(item.record.ts);
        account(&mut table, &mut sink, &item);
    });
    table.finish(now, end, &mut |e| sink.emit(e));
    sink.flush_evidence();
    table.stats()
}

/// The writer: writes as events come, flushing whenever it has caught up so
/// alerts appear at once. On the first failure it records the error in the
/// writer, tells the fronts to stop, and keeps draining so nobody blocks.
fn write_events<W: Write>(
    mut writer: EventWriter<W>,
    rx: Receiver<OutputMsg>,
    closed: &AtomicBool,
) -> EventWriter<W> {
    let mut failed = false;
    let fail = |writer: &mut EventWriter<W>, e: std::io::Error| {
        writer.record_error(e);
        closed.store(true, Ordering::Relaxed);
    };
    loop {
        let msg = match rx.try_recv() {
            Ok(m) => m,
            Err(_) => {
                if !failed {
                    if let Err(e) = writer.flush() {
                        fail(&mut writer, e);
                        failed = true;
                    }
                }
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
        };
        if failed {
            continue;
        }
        let result = match msg {
            OutputMsg::Alert(f) => writer.alert(&f),
            OutputMsg::End(f, r, evidence) => writer.flow_ended(&f, r, evidence),
            OutputMsg::Clock { worker, ts } => writer.clock(worker, ts),
            OutputMsg::Stats(ts, stats) => writer.stats(ts, &stats),
            OutputMsg::Flush => writer.flush(),
        };
        if let Err(e) = result {
            fail(&mut writer, e);
            failed = true;
        }
    }
    if !failed {
        if let Err(e) = writer.finish().and_then(|()| writer.flush()) {
            fail(&mut writer, e);
        }
    }
    writer
}

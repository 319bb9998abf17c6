//! The threads. A front (the file reader, or one thread per live interface)
//! decodes packets into small records and shards them by a direction-free flow
//! hash over bounded channels to N workers, each owning its flow table; one
//! writer emits the events.
//!
//! ```text
//!  reader / capture ──batches──▶ worker 0..N (FlowTable) ──events──▶ writer ──▶ out
//! ```
//! The set of events does not depend on the number of workers: each flow lives
//! in exactly one worker, time is packet time, and expiry depends only on a
//! flow's own packets and the front's clock. Live capture decodes in its
//! front ([`live`], through [`run_stages`]); files are framed by the reader
//! and decoded by the workers themselves ([`offline`], through `chunked`),
//! so that all the per-packet work is spread over the workers.

mod chunked;
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
use crate::flow::{EndReason, Flow, FlowEvent, FlowTable, TableStats, Timeouts};
use crate::output::{EventWriter, Stats};

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
    /// [`packet_hash`] of `meta`: computed once, to shard and to find the flow.
    hash: u64,
    wire_len: u32,
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
    Batch(Vec<Record>),
    /// The front's clock: it will send nothing older (`front` tells the fronts
    /// apart for [`merge`]). Lets idle workers
    /// expire flows, and releases records held for time order.
    Tick {
        front: usize,
        ts: Timestamp,
    },
}

enum OutputMsg {
    Alert(Flow),
    End(Flow, EndReason),
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

/// Start the workers and the writer, run `front` on this thread, and wait for
/// everything to drain once the front returns (dropping its senders). Flows
/// still open at the end are closed with `end`. `fronts` is the number of
/// threads feeding the workers, whose records are merged in time order.
fn run_stages<W: Write + Send, R>(
    settings: FlowSettings,
    fronts: usize,
    end: EndReason,
    classifier: &Arc<Classifier>,
    writer: EventWriter<W>,
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
        let mut worker_handles = Vec::with_capacity(workers);
        for (rx, slot) in receivers.into_iter().zip(&tables) {
            let table = FlowTable::new(Arc::clone(classifier), settings.timeouts, per_worker_flows);
            let tx = out_tx.clone();
            worker_handles.push(scope.spawn(move || work(table, fronts, rx, tx, slot, end)));
        }
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
    stats.flows_per_verdict = Verdict::ALL
        .iter()
        .map(|v| (v.as_str(), tables.flows_per_verdict[v.index()]))
        .collect();
}

/// A worker: its own flow table, fed by batches, until the fronts hang up.
fn work(
    mut table: FlowTable,
    fronts: usize,
    rx: Receiver<WorkerMsg>,
    tx: Sender<OutputMsg>,
    published: &Mutex<TableStats>,
    end: EndReason,
) -> TableStats {
    let mut now = Timestamp::EPOCH;
    let mut emit = |e: FlowEvent| {
        let msg = match e {
            FlowEvent::Alert(f) => OutputMsg::Alert(f),
            FlowEvent::End(f, r) => OutputMsg::End(f, r),
        };
        // The writer only goes away when output is closed; then drop quietly.
        let _ = tx.send(msg);
    };
    let mut merge = merge::Merge::new(fronts);
    for msg in rx {
        let mut apply = |r: &Record| {
            now = now.max(r.ts);
            table.update_hashed(r.ts, &r.meta, r.hash, r.wire_len, &mut emit);
        };
        match msg {
            WorkerMsg::Batch(records) => {
                for r in &records {
                    merge.push(*r, &mut apply);
                }
            }
            WorkerMsg::Tick { front, ts } => {
                if let Some(horizon) = merge.tick(front, ts, &mut apply) {
                    now = now.max(horizon);
                    table.advance(now, &mut emit);
                    *published.lock().unwrap_or_else(PoisonError::into_inner) = table.stats();
                }
            }
        }
    }
    merge.release(None, &mut |r: &Record| {
        now = now.max(r.ts);
        table.update_hashed(r.ts, &r.meta, r.hash, r.wire_len, &mut emit);
    });
    table.finish(now, end, &mut emit);
    table.stats()
}

/// The writer: writes as events come, flushing whenever it has caught up so
/// alerts appear at once; on a closed output it keeps draining so nobody blocks.
fn write_events<W: Write>(
    mut writer: EventWriter<W>,
    rx: Receiver<OutputMsg>,
    closed: &AtomicBool,
) -> EventWriter<W> {
    let mut failed = false;
    loop {
        let msg = match rx.try_recv() {
            Ok(m) => m,
            Err(_) => {
                if !failed && writer.flush().is_err() {
                    failed = true;
                    closed.store(true, Ordering::Relaxed);
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
            OutputMsg::End(f, r) => writer.flow_ended(&f, r),
            OutputMsg::Stats(ts, stats) => writer.stats(ts, &stats),
            OutputMsg::Flush => writer.flush(),
        };
        if result.is_err() {
            failed = true;
            closed.store(true, Ordering::Relaxed);
        }
    }
    if !failed && writer.flush().is_err() {
        closed.store(true, Ordering::Relaxed);
    }
    writer
}

//! The live workers: each owns its flow table and takes batches from the
//! capture threads (one per interface), merged back into time order
//! ([`merge`](super::merge)), until the fronts hang up. Files need none of
//! this: their workers read and decode chunks themselves (`offline::chunked`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::classify::Classifier;
use crate::flow::{EndReason, FlowTable, TableStats};
use crate::output::EventWriter;
use crate::pipeline::sink::{spawn_outputs, Outlet, OutputMsg, Sink};
use crate::pipeline::{account, spawn_named, FlowSettings, Frames, Record};
use crate::timestamp::Timestamp;

use super::merge;

/// Batches in flight per worker (with [`ingest`]'s batches of up to 2,048
/// records: 32,768 records, the slack for a worker's pauses).
const QUEUE_BATCHES: usize = 16;

/// Records for one worker, and their frames with `--extract`.
pub(super) struct Batch {
    pub records: Vec<Record>,
    pub frames: Option<Frames>,
}

/// What a front sends a worker.
pub(super) enum WorkerMsg {
    Batch(Batch),
    /// The front's clock: it will send nothing older (`front` tells the fronts
    /// apart for [`merge`]). Lets idle workers expire flows, and releases
    /// records held for time order.
    Tick {
        front: usize,
        ts: Timestamp,
    },
}

/// What a front gets to talk to the rest of the pipeline.
pub(super) struct Stages<'a> {
    /// One per worker, in shard order. Dropping them all ends the workers.
    pub senders: Vec<Sender<WorkerMsg>>,
    /// Emptied batches the workers hand back, so that a front does not
    /// allocate (and a worker free) one per batch.
    pub spares: Receiver<Vec<Record>>,
    pub events: Sender<Vec<OutputMsg>>,
    /// Set when the output went away (`| head`, a full disk): stop reading.
    pub closed: &'a AtomicBool,
    /// Each worker's counters as of its last tick (live stats events).
    pub tables: &'a [Mutex<TableStats>],
}

impl Stages<'_> {
    pub fn table_stats(&self) -> TableStats {
        let mut sum = TableStats::default();
        for t in self.tables {
            sum.add(&t.lock().unwrap_or_else(PoisonError::into_inner));
        }
        sum
    }
}

/// Start the workers, the writer and (with `--extract`) the extract thread,
/// run `front` on this thread, and wait for everything to drain once the
/// front returns (dropping its senders). Flows still open at the end are
/// closed with `end`. `fronts` is the number of threads feeding the workers,
/// whose records are merged in time order.
pub(super) fn run_stages<W: Write + Send, R>(
    settings: FlowSettings,
    fronts: usize,
    end: EndReason,
    classifier: &Arc<Classifier>,
    outlet: Outlet<'_, W>,
    front: impl FnOnce(Stages<'_>) -> R,
) -> (R, TableStats, EventWriter<W>, bool) {
    let workers = settings.workers.get();
    let per_worker_flows = settings.per_worker_flows();
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

/// A record on its way through the time-order merge, with its frame when
/// evidence is extracted (the batch's arena, shared by its records).
struct Item {
    record: Record,
    frame: Option<(Arc<Frames>, usize)>,
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

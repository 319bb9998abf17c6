//! Where the workers' results go: [`Sink`] gathers a worker's events into
//! batches for the one writer thread (and hands evidence frames to the
//! extract thread); the writer writes them in order, flushing whenever it has
//! caught up, and on the first output failure stops the fronts.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::classify::Classifier;
use crate::flow::{EndReason, Flow, FlowEvent};
use crate::output::{EventWriter, Stats};
use crate::timestamp::Timestamp;

use super::stop::WriteGate;
use crate::evidence::{
    self as extract, Admission, EvidenceBatch, EvidenceFiles, Extraction, EXTRACT_QUEUE,
};

/// Batches of events in flight to the writer.
const OUTPUT_QUEUE: usize = 64;

/// What the writer is sent.
pub(super) enum OutputMsg {
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
    /// The counters for the metrics (live mode, `--metrics`): nothing is written.
    Metrics(Box<Stats>),
    /// Nothing to write: wakes the writer so it flushes (and, for a file,
    /// reopens it after SIGHUP).
    Flush,
}

/// The ends of the stages after the workers, from which each worker gets its [`Sink`].
pub(super) struct Outputs {
    pub events: Sender<Vec<OutputMsg>>,
    evidence: Option<(Sender<EvidenceBatch>, Arc<extract::Shared>)>,
}

impl Outputs {
    pub fn sink(&self) -> Sink {
        let evidence = self
            .evidence
            .as_ref()
            .map(|(tx, shared)| Admission::new(Arc::clone(shared), tx.clone()));
        Sink::new(self.events.clone(), evidence)
    }
}

/// Where a run's results go.
pub(super) struct Outlet<'a, W: Write> {
    /// The events.
    pub writer: EventWriter<W>,
    /// The evidence files (`--extract`).
    pub extraction: Option<&'a Extraction>,
    /// Shut before a forced exit (see [`WriteGate`]).
    pub gate: &'a WriteGate,
}

/// Start the writer and, with `--extract`, the extract thread. Each ends once
/// every sender of [`Outputs`] (and of the sinks made from it) is dropped.
pub(super) fn spawn_outputs<'scope, 'env, W: Write + Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    outlet: Outlet<'env, W>,
    classifier: &Arc<Classifier>,
    closed: &'env AtomicBool,
) -> (
    std::thread::ScopedJoinHandle<'scope, EventWriter<W>>,
    Outputs,
) {
    let Outlet {
        writer,
        extraction,
        gate,
    } = outlet;
    let (events, out_rx) = bounded::<Vec<OutputMsg>>(OUTPUT_QUEUE);
    let shared = extraction.map(|x| Arc::clone(x.shared()));
    let writer_handle = super::spawn_named(scope, "pm-writer".into(), move || {
        write_events(writer, out_rx, closed, gate, shared)
    });
    let evidence = extraction.map(|x| {
        let (tx, rx) = bounded::<EvidenceBatch>(EXTRACT_QUEUE);
        let files = EvidenceFiles::new(Arc::clone(x.shared()), Arc::clone(classifier));
        super::spawn_named(scope, "pm-extract".into(), move || files.run(rx));
        (tx, Arc::clone(x.shared()))
    });
    (writer_handle, Outputs { events, evidence })
}

/// Events a worker gathers before it hands them to the writer at once.
const SINK_BATCH: usize = 512;

/// Where a worker's results go: events to the writer, a batch at a time
/// (one message per batch of packets, not one per event), and evidence
/// (with `--extract`) to the extract thread.
pub(super) struct Sink {
    events: Sender<Vec<OutputMsg>>,
    pending: Vec<OutputMsg>,
    pub evidence: Option<Admission>,
}

impl Sink {
    fn new(events: Sender<Vec<OutputMsg>>, evidence: Option<Admission>) -> Sink {
        Sink {
            events,
            pending: Vec::new(),
            evidence,
        }
    }

    pub fn emit(&mut self, e: FlowEvent) {
        let msg = match e {
            FlowEvent::Alert(f) => OutputMsg::Alert(f),
            FlowEvent::End(f, r) => {
                let evidence = self.evidence.as_mut().and_then(|x| x.ended(&f));
                OutputMsg::End(f, r, evidence)
            }
        };
        self.pending.push(msg);
        if self.pending.len() >= SINK_BATCH {
            self.send();
        }
    }

    /// Events are waiting to be handed over.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Worker `worker` has sent every event of packets before `ts`.
    pub fn clock(&mut self, worker: usize, ts: Timestamp) {
        self.pending.push(OutputMsg::Clock { worker, ts });
    }

    /// Hand over what is pending, after each batch of packets, so that no
    /// alert waits for more traffic.
    pub fn flush(&mut self) {
        self.send();
    }

    fn send(&mut self) {
        // The extract thread must have every flow end before the writer
        // waits on it for that flow's outcome.
        if let Some(x) = &mut self.evidence {
            x.flush();
        }
        if !self.pending.is_empty() {
            // The writer only goes away when output is closed; then drop quietly.
            let _ = self.events.send(std::mem::take(&mut self.pending));
        }
    }
}

/// The writer: writes as events come, flushing whenever it has caught up so
/// alerts appear at once. On the first failure it records the error in the
/// writer, tells the fronts to stop, and keeps draining so nobody blocks.
/// Once `gate` is shut (a forced exit is coming) it flushes what it wrote,
/// whole events only, and writes nothing more.
fn write_events<W: Write>(
    mut writer: EventWriter<W>,
    rx: Receiver<Vec<OutputMsg>>,
    closed: &AtomicBool,
    gate: &WriteGate,
    evidence: Option<Arc<extract::Shared>>,
) -> EventWriter<W> {
    // Failed, or shut by the gate: nothing more is written.
    let mut done = false;
    loop {
        let batch = match rx.try_recv() {
            Ok(b) => b,
            Err(_) => {
                if !done {
                    done = !settle(&mut writer, closed, gate);
                }
                match rx.recv() {
                    Ok(b) => b,
                    Err(_) => break,
                }
            }
        };
        let mut batch = batch;
        if let Some(x) = &evidence {
            // A flow event names its evidence file only once it is written;
            // the outcome is taken even when nothing more is written.
            for msg in &mut batch {
                if let OutputMsg::End(f, _, path) = msg {
                    *path = path.take().and_then(|p| x.evidence_written(f.id, p));
                }
            }
        }
        if done {
            continue;
        }
        if !gate.enter() {
            settle(&mut writer, closed, gate);
            done = true;
            continue;
        }
        for msg in batch {
            let result = match msg {
                OutputMsg::Alert(f) => writer.alert(&f),
                OutputMsg::End(f, r, evidence) => writer.flow_ended(&f, r, evidence),
                OutputMsg::Clock { worker, ts } => writer.clock(worker, ts),
                OutputMsg::Stats(ts, stats) => writer.stats(ts, &stats),
                OutputMsg::Metrics(stats) => {
                    writer.publish_metrics(&stats);
                    Ok(())
                }
                OutputMsg::Flush => writer.flush(),
            };
            if let Err(e) = result {
                fail(&mut writer, e, closed, gate);
                done = true;
                break;
            }
        }
    }
    if !done {
        if !gate.enter() {
            settle(&mut writer, closed, gate);
        } else if let Err(e) = writer.finish() {
            fail(&mut writer, e, closed, gate);
        } else {
            settle(&mut writer, closed, gate);
        }
    }
    writer
}

/// Flush, and tell the gate nothing written waits in a buffer; `false` if
/// the output failed.
fn settle<W: Write>(writer: &mut EventWriter<W>, closed: &AtomicBool, gate: &WriteGate) -> bool {
    match writer.flush() {
        Ok(()) => {
            gate.flushed();
            true
        }
        Err(e) => {
            fail(writer, e, closed, gate);
            false
        }
    }
}

/// The output failed: keep the error for the exit code, tell the fronts to
/// stop; nothing more will be written, so a forced exit need not wait.
fn fail<W: Write>(
    writer: &mut EventWriter<W>,
    e: std::io::Error,
    closed: &AtomicBool,
    gate: &WriteGate,
) {
    writer.record_error(e);
    closed.store(true, Ordering::Relaxed);
    gate.flushed();
}

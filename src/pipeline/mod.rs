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
//! front ([`live`]); files are framed by the reader and decoded by the
//! workers themselves ([`offline`]), so that all the per-packet work is
//! spread over the workers.
//!
//! What only one front uses lives in its folder; here, and in the modules
//! beside this one, is only what both use: the record a packet becomes and
//! its frame (`Record`, `Frames`), the shard a flow falls to, the screen
//! before decoding (`screen`, `dedup`), the payload gate, the sink and
//! writer after the workers (`sink`), the stop, and the stats both fill.

mod dedup;
pub mod live;
pub mod offline;
mod payload_gate;
mod screen;
mod sink;
mod stop;

use std::num::NonZeroUsize;

use crate::decode::PacketMeta;
use crate::evidence::FrameRef;
use crate::filter::{Focus, VerdictSet};
use crate::flow::{FlowTable, TableStats, Timeouts};
use crate::output::{ActiveFilters, Stats};
use crate::timestamp::Timestamp;
use crate::verdict::Verdict;

use sink::Sink;

pub use crate::evidence::{ExtractConfig, ExtractError};
pub use live::{run_live, LiveConfig, LiveControl, LiveOutcome, RING_TIMEOUT_MS};
pub use offline::{run_offline, AnalyzeConfig, ProgressLink, RunOutcome, ThroughProgress};
pub use stop::{Stop, WriteGate};

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

/// The worker (of `workers`) that owns the flows with this [`packet_hash`]:
/// a multiply-shift of the low 32 bits, so the table inside the worker,
/// which indexes by the low bits and tags with the top ones, still sees
/// every bit vary.
fn shard(hash: u64, workers: usize) -> usize {
    ((u64::from(hash as u32) * workers as u64) >> 32) as usize
}

/// The flow-tracking settings shared by both fronts.
#[derive(Debug, Clone, Copy)]
pub struct FlowSettings {
    /// Threads that track flows, each owning the flows that shard to it:
    /// never none, so no stage has to guard against zero.
    pub workers: NonZeroUsize,
    /// Across all workers.
    pub max_flows: usize,
    pub timeouts: Timeouts,
    /// Keep flows in different VLANs apart (`--vlan-key`).
    pub vlan_key: bool,
    /// Drop mirrored copies seen within this window (`--dedup`).
    pub dedup_nanos: Option<i64>,
}

impl FlowSettings {
    /// Each worker's share of `max_flows`: at least one, should a user ask
    /// for fewer flows than workers.
    fn per_worker_flows(&self) -> usize {
        (self.max_flows / self.workers.get()).max(1)
    }
}

impl Default for FlowSettings {
    /// One worker, a million flows, the default timeouts, nothing else.
    fn default() -> Self {
        FlowSettings {
            workers: NonZeroUsize::MIN,
            max_flows: 1_000_000,
            timeouts: Timeouts::default(),
            vlan_key: false,
            dedup_nanos: None,
        }
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

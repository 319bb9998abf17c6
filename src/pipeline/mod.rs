//! The threads: one reader decodes packets into small records and shards them
//! by a direction-free flow hash over bounded channels to N workers, each owning
//! its flow table; one writer emits the events.
//!
//! ```text
//!  reader ──batches──▶ worker 0..N (FlowTable) ──events──▶ writer ──▶ stdout
//! ```
//! The set of events does not depend on the number of workers: each flow lives
//! in exactly one worker, time is packet time, and expiry depends only on a
//! flow's own packets and the reader's clock.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::capture::{list_inputs, CaptureError, CaptureFile, CaptureFormat, Timestamp};
use crate::classify::{Classifier, Verdict};
use crate::decode::{self, Decoded, Defragmenter, Encap, EncapKind, OtherProto, PacketMeta};
use crate::flow::{EndReason, Endpoint, Flow, FlowEvent, FlowKey, FlowTable, TableStats, Timeouts};
use crate::output::{EventWriter, FileStats, Format, Stats};

/// Packets per batch: large enough to amortize channel costs, small enough
/// that a batch never waits long.
const BATCH: usize = 256;
/// Batches in flight per worker.
const QUEUE_BATCHES: usize = 64;
/// Reader clock ticks to the workers every second of packet time.
const TICK_NANOS: i64 = 1_000_000_000;

/// What `analyze` needs to run.
#[derive(Debug, Clone)]
pub struct AnalyzeConfig {
    pub inputs: Vec<PathBuf>,
    pub workers: usize,
    pub max_flows: usize,
    pub timeouts: Timeouts,
    pub format: Format,
    pub flows: bool,
    pub progress: bool,
}

/// How a run went.
#[derive(Debug)]
pub struct RunOutcome {
    pub stats: Stats,
    /// The newest packet time seen: the stats event is stamped with it.
    pub last_ts: Timestamp,
    /// Some input could not be read to its end (the error was reported).
    pub input_errors: usize,
    /// stdout was closed early (`| head`): not an error.
    pub output_closed: bool,
    pub elapsed: std::time::Duration,
}

/// One decoded packet on its way to a worker.
#[derive(Debug, Clone, Copy)]
struct Record {
    ts: Timestamp,
    meta: PacketMeta,
    wire_len: u32,
}

enum WorkerMsg {
    Batch(Vec<Record>),
    /// The reader's clock: lets idle workers expire flows.
    Tick(Timestamp),
}

enum OutputMsg {
    Alert(Flow),
    End(Flow, EndReason),
}

/// Run the offline analysis. `out` receives the events; errors about inputs
/// are reported on stderr as they happen and counted in the outcome.
pub fn run_offline<W: Write + Send>(
    config: &AnalyzeConfig,
    classifier: Arc<Classifier>,
    out: W,
) -> Result<(RunOutcome, EventWriter<W>), CaptureError> {
    let started = Instant::now();
    let files = list_inputs(&config.inputs)?;
    let workers = config.workers.max(1);
    let per_worker_flows = (config.max_flows / workers).max(1);
    let closed = AtomicBool::new(false);

    let (out_tx, out_rx) = bounded::<OutputMsg>(4096);
    let mut senders = Vec::with_capacity(workers);
    let mut receivers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = bounded::<WorkerMsg>(QUEUE_BATCHES);
        senders.push(tx);
        receivers.push(rx);
    }

    let writer = EventWriter::new(out, config.format, config.flows, Arc::clone(&classifier));
    let (reader_result, table_stats, writer) = std::thread::scope(|scope| {
        let writer_handle = scope.spawn(|| write_events(writer, out_rx, &closed));
        let mut worker_handles = Vec::with_capacity(workers);
        for rx in receivers {
            let table = FlowTable::new(Arc::clone(&classifier), config.timeouts, per_worker_flows);
            let tx = out_tx.clone();
            worker_handles.push(scope.spawn(move || work(table, rx, tx)));
        }
        drop(out_tx);
        let reader_result = read_all(&files, &senders, config, &closed);
        // Closing the channels tells the workers the input has ended.
        let final_ts = reader_result.last_ts;
        for tx in &senders {
            let _ = tx.send(WorkerMsg::Tick(final_ts));
        }
        drop(senders);
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
        (reader_result, table_stats, writer)
    });

    let mut stats = reader_result.stats;
    stats.flows = table_stats.flows;
    stats.evictions = table_stats.evicted;
    stats.timeouts = table_stats.timed_out;
    stats.flows_per_verdict = Verdict::ALL
        .iter()
        .map(|v| (v.as_str(), table_stats.flows_per_verdict[v.index()]))
        .collect();
    let outcome = RunOutcome {
        stats,
        last_ts: reader_result.last_ts,
        input_errors: reader_result.errors,
        output_closed: closed.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    };
    Ok((outcome, writer))
}

/// A worker: its own flow table, fed by batches, until the reader hangs up.
fn work(mut table: FlowTable, rx: Receiver<WorkerMsg>, tx: Sender<OutputMsg>) -> TableStats {
    let mut now = Timestamp::EPOCH;
    let mut emit = |e: FlowEvent| {
        let msg = match e {
            FlowEvent::Alert(f) => OutputMsg::Alert(f),
            FlowEvent::End(f, r) => OutputMsg::End(f, r),
        };
        // The writer only goes away when output is closed; then drop quietly.
        let _ = tx.send(msg);
    };
    for msg in rx {
        match msg {
            WorkerMsg::Batch(batch) => {
                for r in &batch {
                    now = now.max(r.ts);
                    table.update(r.ts, &r.meta, r.wire_len, &mut emit);
                }
            }
            WorkerMsg::Tick(ts) => {
                now = now.max(ts);
                table.advance(now, &mut emit);
            }
        }
    }
    table.finish(now, EndReason::EndOfInput, &mut emit);
    table.stats()
}

/// The writer: writes as events come, flushing whenever it has caught up so
/// alerts appear at once; on a closed stdout it keeps draining so nobody blocks.
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

struct ReaderResult {
    stats: Stats,
    last_ts: Timestamp,
    errors: usize,
}

/// The reader: every file in time order, decoded and sharded.
fn read_all(
    files: &[PathBuf],
    senders: &[Sender<WorkerMsg>],
    config: &AnalyzeConfig,
    closed: &AtomicBool,
) -> ReaderResult {
    let mut stats = Stats::default();
    let mut tallies = Tallies::default();
    let mut batches: Vec<Vec<Record>> = (0..senders.len())
        .map(|_| Vec::with_capacity(BATCH))
        .collect();
    let mut defrag = Defragmenter::new();
    let mut last_ts = Timestamp::EPOCH;
    let mut last_tick: Option<Timestamp> = None;
    let mut errors = 0;
    let progress = Progress::new(config.progress, files);

    'files: for path in files {
        let mut file_stats = FileStats {
            path: path.display().to_string(),
            ..FileStats::default()
        };
        let mut capture = match CaptureFile::open(path) {
            Ok(c) => c,
            Err(e) => {
                progress.println(&format!("portmatrix: error: {e}"));
                file_stats.error = Some(e.to_string());
                stats.files.push(file_stats);
                errors += 1;
                continue;
            }
        };
        file_stats.format = match capture.format() {
            CaptureFormat::Pcap => "pcap",
            CaptureFormat::PcapNg => "pcapng",
        };
        let base_bytes = progress.position();
        loop {
            if closed.load(Ordering::Relaxed) {
                stats.files.push(file_stats);
                break 'files;
            }
            let packet = match capture.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    progress.println(&format!(
                        "portmatrix: error: {e} ({} packets read)",
                        file_stats.packets
                    ));
                    file_stats.error = Some(e.to_string());
                    errors += 1;
                    break;
                }
            };
            file_stats.packets += 1;
            stats.packets += 1;
            stats.bytes += u64::from(packet.orig_len);
            let ts = packet.ts;
            if ts > last_ts {
                last_ts = ts;
            }
            let (decoded, encap) = decode::decode_frame(packet.link_type, packet.data);
            tallies.encapsulated(encap);
            match defrag.resolve(decoded) {
                Decoded::Packet(meta) => {
                    stats.tcp_udp_packets += 1;
                    let key = FlowKey::new(
                        meta.transport,
                        Endpoint {
                            ip: meta.src,
                            port: meta.src_port,
                        },
                        Endpoint {
                            ip: meta.dst,
                            port: meta.dst_port,
                        },
                    );
                    let w = (key.stable_hash() % senders.len() as u64) as usize;
                    batches[w].push(Record {
                        ts,
                        meta,
                        wire_len: packet.orig_len,
                    });
                    if batches[w].len() >= BATCH {
                        let full = std::mem::replace(&mut batches[w], Vec::with_capacity(BATCH));
                        let _ = senders[w].send(WorkerMsg::Batch(full));
                    }
                }
                Decoded::Other(p) => tallies.other.add(p),
                Decoded::Malformed(reason) => tallies.failures.add(reason.as_str()),
                // Unresolved fragments are reported by the defragmenter as
                // Malformed; anything else left over is counted the same way.
                Decoded::Fragment(_) => tallies.failures.add("fragment_unresolved"),
            }
            if last_tick.is_none_or(|t| ts.nanos_since(t) >= TICK_NANOS) {
                last_tick = Some(ts);
                flush_batches(&mut batches, senders, Some(ts));
            }
            if file_stats.packets.is_multiple_of(4096) {
                progress.set(base_bytes + capture.bytes_read());
            }
        }
        file_stats.bytes_read = capture.bytes_read();
        progress.set(base_bytes + capture.total_bytes());
        stats.files.push(file_stats);
    }
    flush_batches(&mut batches, senders, None);
    progress.finish();
    stats.other_protocols = tallies.other.named(other_key);
    stats.decode_failures = tallies.failures.named(|reason| reason);
    stats.encapsulated = tallies.encap.named(EncapKind::as_str);
    ReaderResult {
        stats,
        last_ts,
        errors,
    }
}

/// Packets counted by kind. A map learns each key once, so counting does not
/// allocate after a kind's first packet.
struct Tally<K>(BTreeMap<K, u64>);

impl<K: Ord> Default for Tally<K> {
    fn default() -> Self {
        Tally(BTreeMap::new())
    }
}

impl<K: Ord> Tally<K> {
    fn add(&mut self, key: K) {
        *self.0.entry(key).or_default() += 1;
    }

    /// The counts under the names the stats event uses.
    fn named<N: Ord>(self, name: impl Fn(K) -> N) -> BTreeMap<N, u64> {
        self.0.into_iter().map(|(k, n)| (name(k), n)).collect()
    }
}

/// What the reader counts besides TCP/UDP packets.
#[derive(Default)]
struct Tallies {
    other: Tally<OtherProto>,
    failures: Tally<&'static str>,
    encap: Tally<EncapKind>,
}

impl Tallies {
    /// Counts a frame once under each kind of tunnel it was found in.
    fn encapsulated(&mut self, encap: Encap) {
        let layers = encap.layers();
        for (i, &kind) in layers.iter().enumerate() {
            if !layers[..i].contains(&kind) {
                self.encap.add(kind);
            }
        }
    }
}

/// Send every partial batch, and the clock if given.
fn flush_batches(
    batches: &mut [Vec<Record>],
    senders: &[Sender<WorkerMsg>],
    tick: Option<Timestamp>,
) {
    for (batch, tx) in batches.iter_mut().zip(senders) {
        if !batch.is_empty() {
            let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
            let _ = tx.send(WorkerMsg::Batch(full));
        }
        if let Some(ts) = tick {
            let _ = tx.send(WorkerMsg::Tick(ts));
        }
    }
}

/// A progress bar on stderr (bytes read of the total), only for a terminal.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(enabled: bool, files: &[PathBuf]) -> Progress {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let total: u64 = files
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        // Appear only if the work takes more than a moment.
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
        Progress(Some(bar))
    }

    fn position(&self) -> u64 {
        self.0.as_ref().map_or(0, |b| b.position())
    }

    fn set(&self, pos: u64) {
        if let Some(b) = &self.0 {
            b.set_position(pos);
        }
    }

    fn println(&self, msg: &str) {
        match &self.0 {
            Some(b) => b.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
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

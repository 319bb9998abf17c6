//! The live front: one capture thread per interface feeding the shared
//! workers, and this thread as the supervisor: signals, periodic stats, drop
//! warnings.
//!
//! Live and offline share everything after the front, so the same traffic
//! gets the same flows and verdicts. Two things differ on purpose: a full
//! worker queue drops the batch (counted) instead of waiting, because waiting
//! would make the kernel drop instead; and the clock ticks on the wall
//! clock too, so no packet waits in a partial batch (10 ms at most) and idle
//! flows expire when traffic stops.
//!
//! CPU per packet is what decides how many ports one sensor takes, so the
//! capture thread blocks in `poll` (a wakeup per ring block, none per
//! packet), reads packets in place (`pcap_dispatch`), and wakes a worker
//! only with a full batch or once a tick is due, not each time the ring
//! runs dry; an idle interface ticks once a second (see [`IDLE_TICK`]).

use std::collections::BTreeMap;
use std::io::{PipeReader, PipeWriter, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::capture::{KernelStats, LiveCapture, LiveOptions};
use crate::classify::Classifier;
use crate::filter::{Focus, VerdictSet};
use crate::flow::EndReason;
use crate::output::{EventWriter, Format, InterfaceStats, Stats};
use crate::timestamp::Timestamp;

use crate::evidence::Extraction;
use crate::pipeline::screen::{IngestCounts, Screen};
use crate::pipeline::sink::{Outlet, OutputMsg};
use crate::pipeline::{active_filters, fill_table_stats, FlowSettings, Stop};

use ingest::Ingest;
use workers::{run_stages, Stages};

mod ingest;
mod merge;
mod workers;

/// Packet time between clock ticks and batch flushes: well under the 100 ms
/// an alert may take from capture to output.
const TICK_NANOS: i64 = 10_000_000;
/// The longest libpcap holds packets in a ring block before handing them over.
pub const RING_TIMEOUT_MS: u16 = 10;
/// How often an idle interface tells the workers its clock, when it is the
/// only one: flows time out in whole seconds, so the workers (and the
/// writer after them) may sleep that long. With several interfaces an idle
/// one ticks every [`TICK_NANOS`], or the others' records would wait for it
/// in the time-order merge.
const IDLE_TICK: Duration = Duration::from_secs(1);
/// How long a capture thread reads on after a stop at least: packets
/// captured before it may still sit in a ring block that the kernel hands
/// over only once the block's timeout ([`RING_TIMEOUT_MS`]) has passed. After
/// that it reads on until the ring is empty, for at most [`DRAIN_AT_MOST`]:
/// a machine that fell behind still has what was captured before the stop.
const DRAIN: Duration = Duration::from_millis(2 * RING_TIMEOUT_MS as u64);
/// How often a capture thread publishes its counters for the stats events.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// How often the supervisor looks at signals and the stats clock.
const SUPERVISE_EVERY: Duration = Duration::from_millis(50);
/// Between attempts to reopen an interface that went away (`--retry`), and
/// between checks that an idle interface is still up.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What `live` needs to run, besides the opened captures.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub flow: FlowSettings,
    /// Text mode adds a status line on stderr at every stats interval.
    pub format: Format,
    pub stats_interval: Duration,
    /// Which packets to look at, besides the kernel's `--bpf` (hosts and ports).
    pub focus: Focus,
    /// Which flows are reported (the writer selects; the stats name it).
    pub verdicts: VerdictSet,
    /// Wait for a failed interface to come back instead of stopping.
    pub retry: bool,
    /// How to reopen an interface (`--retry`).
    pub options: LiveOptions,
    /// Storm control, as offline; live alerts are decided as they arrive.
    pub alert_burst: usize,
    /// `--metrics`, `--metrics-file`: hand the writer the counters every
    /// [`crate::output::metrics::REFRESH`].
    pub metrics: bool,
}

/// Flags set by signal handlers.
#[derive(Debug, Clone, Default)]
pub struct LiveControl {
    /// SIGINT / SIGTERM: stop capturing, close every flow, write the final
    /// stats; and the output's side of a forced exit.
    pub stop: Stop,
    /// SIGHUP: reopen the output file.
    pub hangup: Arc<AtomicBool>,
    /// Passed on to the output file when a SIGHUP is seen.
    pub reopen: Arc<AtomicBool>,
}

/// How a live run went.
#[derive(Debug)]
pub struct LiveOutcome {
    pub stats: Stats,
    /// When capture stopped (wall clock): the final stats event's time.
    pub stopped_at: Timestamp,
    /// Interfaces whose capture failed and was not resumed.
    pub failed: usize,
    /// The output failed and capture stopped; the writer holds the error.
    pub output_closed: bool,
    pub elapsed: Duration,
}

/// Tells the capture threads to stop, and wakes them at once from the
/// `poll` in which an idle thread waits (up to [`IDLE_TICK`]).
struct Halt {
    raised: AtomicBool,
    /// Written once when raised; the capture threads poll the read end.
    /// `None` if no pipe could be made: the threads then wake often instead.
    wake: Option<(PipeReader, PipeWriter)>,
}

impl Halt {
    fn new() -> Halt {
        Halt {
            raised: AtomicBool::new(false),
            wake: std::io::pipe().ok(),
        }
    }

    fn raise(&self) {
        if !self.raised.swap(true, Ordering::Relaxed) {
            if let Some((_, writer)) = &self.wake {
                // Readable for every poller from now on (never read).
                let mut writer: &PipeWriter = writer;
                let _ = writer.write(&[1]);
            }
        }
    }

    fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Relaxed)
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.wake.as_ref().map(|(r, _)| r.as_fd())
    }

    /// The longest a capture thread may wait in `poll` without missing a halt.
    fn longest_wait(&self) -> Duration {
        if self.wake.is_some() {
            Duration::MAX
        } else {
            SUPERVISE_EVERY
        }
    }
}

/// One capture thread's counters, as last published.
#[derive(Debug, Default, Clone)]
struct Published {
    counts: IngestCounts,
    kernel: KernelStats,
    error: Option<String>,
}

/// Capture on every interface until a stop is requested (`control.stop`) or a capture fails
/// (unless `--retry`). Flows still open at the end close with `shutdown`.
pub fn run_live<W: Write + Send>(
    config: &LiveConfig,
    captures: Vec<LiveCapture>,
    classifier: Arc<Classifier>,
    writer: EventWriter<W>,
    extraction: Option<Extraction>,
    control: &LiveControl,
) -> (LiveOutcome, EventWriter<W>) {
    let started = Instant::now();
    let names: Vec<String> = captures.iter().map(|c| c.name().to_string()).collect();
    let slots: Vec<Mutex<Published>> = captures.iter().map(|_| Mutex::default()).collect();
    let halt = Halt::new();
    let mut writer = writer;
    writer.measure_latency();
    writer.storm_control(config.alert_burst, config.flow.workers, false);
    let fronts = captures.len();
    let extraction = extraction.as_ref();
    let outlet = Outlet {
        writer,
        extraction,
        gate: control.stop.gate(),
    };
    let (failed, tables, writer, closed) = run_stages(
        config.flow,
        fronts,
        EndReason::Shutdown,
        &classifier,
        outlet,
        |stages| {
            std::thread::scope(|scope| {
                let handles: Vec<_> = captures
                    .into_iter()
                    .zip(&slots)
                    .enumerate()
                    .map(|(front, (capture, slot))| {
                        let ingest = Ingest::new(
                            front,
                            (stages.senders.clone(), stages.spares.clone()),
                            TICK_NANOS,
                            Screen::new(&config.focus, config.flow.dedup_nanos),
                            extraction.is_some(),
                            config.flow.timeouts,
                        )
                        .keyed_by_vlan(config.flow.vlan_key)
                        .idle_every(if fronts == 1 {
                            IDLE_TICK
                        } else {
                            Duration::from_nanos(TICK_NANOS.unsigned_abs())
                        });
                        let (halt, closed) = (&halt, stages.closed);
                        crate::pipeline::spawn_named(
                            scope,
                            format!("pm-capture-{front}"),
                            move || capture_loop(capture, ingest, slot, halt, closed, config),
                        )
                    })
                    .collect();
                supervise(&stages, &names, &slots, &halt, control, config, extraction);
                halt.raise();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(true))
                    .filter(|&failed| failed)
                    .count()
            })
            // Returning drops the last senders: the workers close every flow.
        },
    );
    let mut stats = gather(&names, &slots, config, extraction);
    fill_table_stats(&mut stats, &tables);
    stats.active_flows = Some(tables.active);
    let outcome = LiveOutcome {
        stats,
        stopped_at: Timestamp::now(),
        failed,
        output_closed: closed,
        elapsed: started.elapsed(),
    };
    (outcome, writer)
}

/// Read one interface until halted; returns whether it failed for good.
fn capture_loop(
    mut capture: LiveCapture,
    mut ingest: Ingest,
    slot: &Mutex<Published>,
    halt: &Halt,
    closed: &AtomicBool,
    config: &LiveConfig,
) -> bool {
    // Counters of earlier openings of this interface (`--retry`).
    let mut kernel_before = KernelStats::default();
    let mut error = None;
    let mut last_publish = Instant::now();
    let mut last_link_check = Instant::now();
    let publish = |ingest: &Ingest, kernel: KernelStats, error: &Option<String>| {
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Published {
            counts: ingest.counts.clone(),
            kernel,
            error: error.clone(),
        };
    };
    // Once halted: read on until then, and while the ring still holds
    // packets, up to the hard limit (see [`DRAIN`]).
    let mut drain_until: Option<Instant> = None;
    let mut give_up = None;
    while !closed.load(Ordering::Relaxed) {
        if halt.is_raised() {
            let now = Instant::now();
            let until = *drain_until.get_or_insert(now + DRAIN);
            let give_up = *give_up.get_or_insert(now + DRAIN_AT_MOST);
            if (now >= until && capture.drained()) || now >= give_up {
                break;
            }
        }
        let (wait, wake) = match drain_until {
            // The wake pipe stays readable: wait on the ring alone.
            Some(until) => (until.saturating_duration_since(Instant::now()), None),
            None if capture.drained() => {
                let longest = RETRY_EVERY.min(halt.longest_wait());
                (ingest.wait(Instant::now()).min(longest), halt.fd())
            }
            None => (Duration::ZERO, halt.fd()),
        };
        let idle = match capture.dispatch(wait, wake, |packet| ingest.packet(packet)) {
            Ok(0) if last_link_check.elapsed() >= RETRY_EVERY => {
                last_link_check = Instant::now();
                capture.check_link()
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        ingest.idle(Instant::now(), idle_clock);
        if let Err(e) = idle {
            crate::diag!("portmatrix: error: {e}");
            error = Some(e.to_string());
            kernel_before = add_kernel(kernel_before, capture.stats());
            publish(&ingest, kernel_before, &error);
            if !config.retry {
                // One failed interface stops the run: report, flush, exit non-zero.
                halt.raise();
                return true;
            }
            match reopen(capture.name(), config, halt, &mut ingest) {
                Some(again) => {
                    capture = again;
                    // Recovered: later stats must not say it is still failing.
                    error = None;
                    publish(&ingest, kernel_before, &error);
                }
                // Stopped while waiting: the error is in the stats.
                None => return false,
            }
        }
        if last_publish.elapsed() >= PUBLISH_EVERY {
            last_publish = Instant::now();
            publish(&ingest, add_kernel(kernel_before, capture.stats()), &error);
        }
    }
    ingest.flush(Some(idle_clock()));
    publish(&ingest, add_kernel(kernel_before, capture.stats()), &error);
    false
}

/// The longest a stop reads on while the ring still holds packets (a
/// machine that fell behind, or a flood that goes on), so that a stop ends.
const DRAIN_AT_MOST: Duration = Duration::from_secs(2);

/// The clock of an idle front: packets captured up to a ring timeout ago
/// may still sit in a ring block the kernel has not handed over, so the
/// front cannot promise anything newer (see [`merge`]).
fn idle_clock() -> Timestamp {
    let lag = 2 * i64::from(RING_TIMEOUT_MS) * 1_000_000;
    Timestamp::from_nanos(Timestamp::now().as_nanos().saturating_sub(lag))
}

/// Wait for `name` to come back; `None` if halted first.
fn reopen(
    name: &str,
    config: &LiveConfig,
    halt: &Halt,
    ingest: &mut Ingest,
) -> Option<LiveCapture> {
    crate::diag!("portmatrix: waiting for `{name}` to come back (--retry)");
    let mut last_try = Instant::now();
    while !halt.is_raised() {
        std::thread::sleep(SUPERVISE_EVERY);
        // Keep the clock going: the other interfaces' packets must not wait for this one.
        ingest.flush(Some(idle_clock()));
        if last_try.elapsed() < RETRY_EVERY {
            continue;
        }
        last_try = Instant::now();
        let reopened = LiveCapture::open(name, &config.options);
        if let Ok(capture) = reopened.and_then(|c| c.check_link().map(|()| c)) {
            crate::diag!("portmatrix: capturing on `{name}` again");
            return Some(capture);
        }
    }
    None
}

fn add_kernel(a: KernelStats, b: KernelStats) -> KernelStats {
    KernelStats {
        received: a.received + b.received,
        dropped: a.dropped + b.dropped,
        interface_dropped: a.interface_dropped + b.interface_dropped,
    }
}

/// This thread's job while the captures run: act on signals, write a stats
/// event every interval, and say so on stderr whenever packets were dropped.
fn supervise(
    stages: &Stages<'_>,
    names: &[String],
    slots: &[Mutex<Published>],
    halt: &Halt,
    control: &LiveControl,
    config: &LiveConfig,
    extraction: Option<&Extraction>,
) {
    let mut next_stats = Instant::now() + config.stats_interval;
    let mut next_metrics = Instant::now();
    let mut dropped_before = (0, 0);
    while !halt.is_raised() && !stages.closed.load(Ordering::Relaxed) {
        if control.stop.is_requested() {
            return;
        }
        if control.hangup.swap(false, Ordering::Relaxed) {
            control.reopen.store(true, Ordering::Relaxed);
            let _ = stages.events.send(vec![OutputMsg::Flush]);
        }
        if config.metrics && Instant::now() >= next_metrics {
            next_metrics = Instant::now() + crate::output::metrics::REFRESH;
            // Never waits for a writer that is behind: the next refresh comes in a second.
            let _ = stages
                .events
                .try_send(vec![OutputMsg::Metrics(Box::new(current(
                    stages, names, slots, config, extraction,
                )))]);
        }
        if Instant::now() >= next_stats {
            next_stats += config.stats_interval;
            let stats = current(stages, names, slots, config, extraction);
            dropped_before = warn_drops(&stats, dropped_before, config.stats_interval);
            if config.format == Format::Text {
                crate::diag!("portmatrix: {}", status_line(&stats));
            }
            let _ = stages
                .events
                .send(vec![OutputMsg::Stats(Timestamp::now(), Box::new(stats))]);
        }
        std::thread::sleep(SUPERVISE_EVERY);
    }
}

/// The counters now: the capture threads' and the workers'.
fn current(
    stages: &Stages<'_>,
    names: &[String],
    slots: &[Mutex<Published>],
    config: &LiveConfig,
    extraction: Option<&Extraction>,
) -> Stats {
    let mut stats = gather(names, slots, config, extraction);
    let tables = stages.table_stats();
    fill_table_stats(&mut stats, &tables);
    stats.active_flows = Some(tables.active);
    stats
}

/// Sum what the capture threads published into one stats record, with the
/// filters and what extraction wrote so far.
fn gather(
    names: &[String],
    slots: &[Mutex<Published>],
    config: &LiveConfig,
    extraction: Option<&Extraction>,
) -> Stats {
    let mut counts = IngestCounts::default();
    let mut interfaces = Vec::with_capacity(slots.len());
    for (name, slot) in names.iter().zip(slots) {
        let p = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
        counts.add(&p.counts);
        interfaces.push(InterfaceStats {
            name: name.clone(),
            packets: p.counts.packets,
            kernel_received: p.kernel.received,
            kernel_dropped: p.kernel.dropped,
            interface_dropped: p.kernel.interface_dropped,
            bytes: p.counts.bytes,
            queue_dropped: p.counts.queue_dropped,
            error: p.error,
        });
    }
    let mut stats = Stats::default();
    counts.fill(
        &mut stats,
        config.focus.is_active(),
        config.flow.dedup_nanos.is_some(),
    );
    stats.filters = active_filters(&config.focus, config.verdicts, counts.first_ts);
    // The kernel applies --bpf: what it keeps out is never seen, so not
    // counted in `filtered`, but the filter is named with the others.
    if let Some(expression) = &config.options.filter {
        stats.filters.get_or_insert_with(Default::default).bpf = Some(expression.clone());
    }
    stats.extract = extraction.map(Extraction::stats);
    stats.queue_drops = Some(BTreeMap::from([(
        "worker_queue_full",
        counts.queue_dropped,
    )]));
    stats.interfaces = interfaces;
    stats
}

/// Drops are never silent: one line per interval in which any happened.
/// Returns the totals to compare the next interval with.
fn warn_drops(stats: &Stats, before: (u64, u64), interval: Duration) -> (u64, u64) {
    let kernel: u64 = stats
        .interfaces
        .iter()
        .map(|i| i.kernel_dropped + i.interface_dropped)
        .sum();
    let queue: u64 = stats.queue_drops.iter().flat_map(|q| q.values()).sum();
    if kernel > before.0 || queue > before.1 {
        crate::diag!(
            "portmatrix: warning: {} packets dropped by the kernel or interface and {} by full \
worker queues in the last {} s ({kernel} and {queue} in all); raise --buffer-mb, narrow \
--bpf or add --workers",
            kernel - before.0,
            queue - before.1,
            interval.as_secs()
        );
    }
    (kernel, queue)
}

/// The one-line status for people (text mode).
fn status_line(stats: &Stats) -> String {
    let kernel: u64 = stats.interfaces.iter().map(|i| i.kernel_dropped).sum();
    let queue: u64 = stats.queue_drops.iter().flat_map(|q| q.values()).sum();
    format!(
        "{} packets, {} flows ({} active), {} evicted; dropped: kernel {kernel}, queues {queue}",
        stats.packets,
        stats.flows,
        stats.active_flows.unwrap_or(0),
        stats.evictions
    )
}

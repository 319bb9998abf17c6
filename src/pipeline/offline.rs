//! The file front: every input in time order, read on the calling thread.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::capture::{list_inputs, CaptureError, CaptureFile, CaptureFormat, Timestamp};
use crate::classify::Classifier;
use crate::filter::{Focus, VerdictSet};
use crate::flow::EndReason;
use crate::output::{EventWriter, FileStats, Stats};

use super::extract::Extraction;
use super::ingest::{Delivery, Ingest};
use super::{active_filters, fill_table_stats, run_stages, FlowSettings, Stages};

/// Workers get the clock every second of packet time, so idle ones expire flows.
const TICK_NANOS: i64 = 1_000_000_000;

/// What `analyze` needs to run.
#[derive(Debug, Clone)]
pub struct AnalyzeConfig {
    pub inputs: Vec<PathBuf>,
    pub flow: FlowSettings,
    pub progress: bool,
    /// Which packets to look at.
    pub focus: Focus,
    /// Which flows are reported (the writer selects; the stats name it).
    pub verdicts: VerdictSet,
    /// Storm control: alerts a source may produce per minute before the
    /// rest are folded into `alert_summary` events (0: off).
    pub alert_burst: usize,
}

/// How a run went.
#[derive(Debug)]
pub struct RunOutcome {
    pub stats: Stats,
    /// The newest packet time seen: the stats event is stamped with it.
    pub last_ts: Timestamp,
    /// Some input could not be read to its end (the error was reported).
    pub input_errors: usize,
    /// The output failed and the run stopped early: closed (`| head`, not
    /// an error) or not writable (a full disk); the writer holds the error
    /// (`EventWriter::take_error`).
    pub output_closed: bool,
    pub elapsed: std::time::Duration,
}

/// Run the offline analysis. `writer` receives the events, `extraction`
/// the evidence; errors about inputs are reported on stderr as they happen
/// and counted in the outcome.
pub fn run_offline<W: Write + Send>(
    config: &AnalyzeConfig,
    classifier: Arc<Classifier>,
    writer: EventWriter<W>,
    extraction: Option<Extraction>,
) -> Result<(RunOutcome, EventWriter<W>), CaptureError> {
    let started = Instant::now();
    let files = list_inputs(&config.inputs)?;
    let mut writer = writer;
    // Offline, alerts are folded in packet-time order: the same whatever --workers.
    writer.storm_control(config.alert_burst, config.flow.workers.max(1), true);
    let (read, tables, writer, closed) = run_stages(
        config.flow,
        1,
        EndReason::EndOfInput,
        &classifier,
        writer,
        extraction.as_ref(),
        |stages| read_all(&files, stages, config, extraction.is_some()),
    );
    let mut stats = read.stats;
    fill_table_stats(&mut stats, &tables);
    stats.filters = active_filters(&config.focus, config.verdicts, read.first_ts);
    stats.extract = extraction.as_ref().map(Extraction::stats);
    let outcome = RunOutcome {
        stats,
        last_ts: read.last_ts,
        input_errors: read.errors,
        output_closed: closed,
        elapsed: started.elapsed(),
    };
    Ok((outcome, writer))
}

struct ReadResult {
    stats: Stats,
    first_ts: Option<Timestamp>,
    last_ts: Timestamp,
    errors: usize,
}

/// Every file in time order, decoded and sharded (with their bytes when
/// `frames`, for the evidence).
fn read_all(
    files: &[PathBuf],
    stages: Stages<'_>,
    config: &AnalyzeConfig,
    frames: bool,
) -> ReadResult {
    let mut ingest = Ingest::new(
        0,
        stages.senders,
        Delivery::Wait,
        TICK_NANOS,
        &config.focus,
        frames,
    )
    .identity(config.flow.vlan_key, config.flow.dedup_nanos);
    let mut file_stats_all = Vec::with_capacity(files.len());
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
                file_stats_all.push(file_stats);
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
            if stages.closed.load(Ordering::Relaxed) {
                file_stats_all.push(file_stats);
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
            ingest.packet(&packet);
            if file_stats.packets.is_multiple_of(4096) {
                progress.set(base_bytes + capture.bytes_read());
            }
        }
        file_stats.bytes_read = capture.bytes_read();
        progress.set(base_bytes + capture.total_bytes());
        file_stats_all.push(file_stats);
    }
    // The last clock lets the workers expire what timed out before the end.
    let last_ts = ingest.counts.last_ts;
    ingest.flush(Some(last_ts));
    progress.finish();
    let mut stats = Stats::default();
    ingest.counts.fill(
        &mut stats,
        ingest.filtering(),
        config.flow.dedup_nanos.is_some(),
    );
    stats.files = file_stats_all;
    // Returning drops the senders (in `ingest`): the workers see the input ended.
    ReadResult {
        stats,
        first_ts: ingest.counts.first_ts,
        last_ts,
        errors,
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

    /// A line on stderr; if stderr cannot be written the line is lost (the
    /// file's error is also in the stats event), rather than panicking.
    fn println(&self, msg: &str) {
        let print = || {
            let _ = writeln!(std::io::stderr(), "{msg}");
        };
        match &self.0 {
            Some(b) => b.suspend(print),
            None => print(),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

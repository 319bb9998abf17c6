//! The file input: every capture in time order, read in chunks by the
//! workers themselves (see `chunked`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::capture::{list_inputs, CaptureError, CaptureFile, CaptureFormat, Chunk, STDIN};
use crate::classify::Classifier;
use crate::filter::{Focus, VerdictSet};
use crate::flow::EndReason;
use crate::output::{EventWriter, FileStats, Stats};
use crate::timestamp::Timestamp;

use crate::evidence::Extraction;
use crate::pipeline::screen::{IngestCounts, Screen};
use crate::pipeline::sink::Outlet;
use crate::pipeline::{active_filters, fill_table_stats, FlowSettings, Stop};

use chunked::{run_chunked, ChunkSource};
use progress::Progress;
pub use progress::{ProgressLink, ThroughProgress};

mod chunked;
mod folders;
mod part;
mod progress;

/// What `analyze` needs to run.
#[derive(Debug, Clone)]
pub struct AnalyzeConfig {
    pub inputs: Vec<PathBuf>,
    pub flow: FlowSettings,
    pub progress: bool,
    /// Where the bar is shared with a writer of events to the same terminal.
    pub progress_link: ProgressLink,
    /// Which packets to look at.
    pub focus: Focus,
    /// Which flows are reported (the writer selects; the stats name it).
    pub verdicts: VerdictSet,
    /// Storm control: alerts a source may produce per minute before the
    /// rest are folded into `alert_summary` events (0: off).
    pub alert_burst: usize,
    /// Asked from outside (a signal) to stop reading and report what was read.
    pub stop: Stop,
}

impl AnalyzeConfig {
    /// Every packet of `inputs`, every flow reported, no progress bar and no
    /// storm control: what a program embedding the library starts from.
    pub fn new(inputs: Vec<PathBuf>, flow: FlowSettings) -> AnalyzeConfig {
        AnalyzeConfig {
            inputs,
            flow,
            progress: false,
            progress_link: ProgressLink::default(),
            focus: Focus::default(),
            verdicts: VerdictSet::ALL,
            alert_burst: 0,
            stop: Stop::default(),
        }
    }
}

/// How a run went.
#[derive(Debug)]
pub struct RunOutcome {
    pub stats: Stats,
    /// The oldest packet time read, filtered out or not (`None`: no packet).
    pub first_ts: Option<Timestamp>,
    /// The newest packet time seen: the stats event is stamped with it.
    pub last_ts: Timestamp,
    /// Some input could not be read to its end (the error was reported).
    pub input_errors: usize,
    /// The output failed and the run stopped early: closed (`| head`, not
    /// an error) or not writable (a full disk); the writer holds the error
    /// (`EventWriter::take_error`).
    pub output_closed: bool,
    /// A stop was asked (`config.stop`) and reading ended before the input
    /// did; flows still open were closed with `shutdown`.
    pub interrupted: bool,
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
    let inputs = list_inputs(&config.inputs)?;
    let progress = Progress::new(config.progress, &inputs.files, &config.progress_link);
    let (folder_stats, folder_errors) = folders::report(&inputs, config.progress, &progress);
    let files = inputs.files;
    let mut writer = writer;
    // Offline, alerts are folded in packet-time order: the same whatever --workers.
    writer.storm_control(config.alert_burst, config.flow.workers, true);
    let screen = Screen::new(&config.focus, config.flow.dedup_nanos);
    let addresses = screen.addresses();
    let source = Files {
        paths: &files,
        next_path: 0,
        open: None,
        stats: folder_stats,
        errors: folder_errors,
        progress,
        screen,
        screened: IngestCounts::default(),
    };
    let outlet = Outlet {
        writer,
        extraction: extraction.as_ref(),
        gate: config.stop.gate(),
    };
    let (totals, writer) = run_chunked(
        config.flow,
        EndReason::EndOfInput,
        &classifier,
        outlet,
        &config.stop,
        addresses,
        source,
    );
    let mut counts = totals.counts;
    let source = totals.source;
    counts.add(&source.screened);
    let filtering = source.screen.filtering();
    let (files, errors) = source.finish();
    let mut stats = Stats::default();
    counts.fill(&mut stats, filtering, config.flow.dedup_nanos.is_some());
    stats.files = files;
    fill_table_stats(&mut stats, &totals.tables);
    stats.filters = active_filters(&config.focus, config.verdicts, counts.first_ts);
    stats.extract = extraction.as_ref().map(Extraction::stats);
    if totals.interrupted {
        stats.interrupted = config.stop.requested();
    }
    let outcome = RunOutcome {
        stats,
        first_ts: counts.first_ts,
        last_ts: counts.last_ts,
        input_errors: errors,
        output_closed: totals.closed,
        interrupted: totals.interrupted,
        elapsed: started.elapsed(),
    };
    Ok((outcome, writer))
}

/// How standard input (`-`) is named in messages and stats.
const STDIN_NAME: &str = "standard input";

/// Every file in time order, chunk by chunk, for the workers (which call it
/// in turn, under a lock).
struct Files<'a> {
    paths: &'a [PathBuf],
    next_path: usize,
    /// The file being read, what was read of it, and the progress before it.
    open: Option<(CaptureFile, FileStats, u64)>,
    stats: Vec<FileStats>,
    errors: usize,
    progress: Progress,
    /// Mirrored copies and frames outside the focus, left out in read order
    /// (the workers never see them), and what it left out.
    screen: Screen,
    screened: IngestCounts,
}

impl ChunkSource for Files<'_> {
    fn next_chunk(&mut self, chunk: &mut Chunk) -> bool {
        loop {
            let Some((capture, file_stats, base_bytes)) = &mut self.open else {
                let Some(path) = self.paths.get(self.next_path) else {
                    return false;
                };
                self.next_path += 1;
                let stdin = path.as_os_str() == STDIN;
                let mut file_stats = FileStats {
                    path: match stdin {
                        true => STDIN_NAME.to_string(),
                        false => path.display().to_string(),
                    },
                    ..FileStats::default()
                };
                let opened = if stdin {
                    CaptureFile::from_reader(STDIN_NAME, Box::new(std::io::stdin()))
                } else {
                    CaptureFile::open(path)
                };
                match opened {
                    Ok(capture) => {
                        file_stats.format = match capture.format() {
                            CaptureFormat::Pcap => "pcap",
                            CaptureFormat::PcapNg => "pcapng",
                        };
                        self.open = Some((capture, file_stats, self.progress.position()));
                    }
                    Err(e) => {
                        self.progress.println(&format!("portmatrix: error: {e}"));
                        file_stats.error = Some(e.to_string());
                        self.stats.push(file_stats);
                        self.errors += 1;
                    }
                }
                continue;
            };
            match capture.next_chunk(chunk) {
                Ok(true) => {
                    file_stats.packets += chunk.len() as u64;
                    self.progress.set(*base_bytes + capture.source_bytes_read());
                    if self.screen.is_active() {
                        let (screen, screened) = (&mut self.screen, &mut self.screened);
                        chunk.retain(|p, data| {
                            let admitted = screen.admits(p.ts, p.link_type, data, screened);
                            if !admitted {
                                screened.read(p.ts, p.orig_len);
                            }
                            admitted
                        });
                    }
                    return true;
                }
                Ok(false) => {}
                Err(e) => {
                    self.progress.println(&format!(
                        "portmatrix: error: {e} ({} packets read)",
                        file_stats.packets
                    ));
                    file_stats.error = Some(e.to_string());
                    self.errors += 1;
                }
            }
            file_stats.bytes_read = capture.bytes_read();
            self.progress.set(*base_bytes + capture.total_bytes());
            if let Some((_, file_stats, _)) = self.open.take() {
                self.stats.push(file_stats);
            }
        }
    }
}

impl Files<'_> {
    /// What was read of each file, and how many could not be read to the
    /// end. A file still open was cut short (by the output closing, or a stop).
    fn finish(mut self) -> (Vec<FileStats>, usize) {
        if let Some((capture, mut file_stats, _)) = self.open.take() {
            file_stats.bytes_read = capture.bytes_read();
            self.stats.push(file_stats);
        }
        self.progress.finish();
        (self.stats, self.errors)
    }
}

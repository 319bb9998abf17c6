//! `live --syslog`, `--metrics`, `--metrics-file`: started before the
//! privileges go (a port below 1024, a root-only socket), finished after
//! the final stats so that those reach them too.

use std::sync::Arc;
use std::time::Duration;

use portmatrix::output::metrics::file::MetricsFile;
use portmatrix::output::metrics::http::MetricsServer;
use portmatrix::output::metrics::Board;
use portmatrix::output::syslog::Syslog;
use portmatrix::output::{EventWriter, Stats};
use portmatrix::printable::Printable;

use super::Exit;
use crate::cli::SensorArgs;

/// The longest the end of a run waits for syslog to take what is queued.
const SYSLOG_DRAIN: Duration = Duration::from_secs(2);

/// The running sensor outputs.
#[derive(Default)]
pub struct Sensor {
    syslog: Option<Syslog>,
    board: Option<Arc<Board>>,
    server: Option<MetricsServer>,
    file: Option<MetricsFile>,
}

impl Sensor {
    /// Start what `args` asks for; `Err` with the exit code after saying why.
    pub fn start(args: &SensorArgs) -> Result<Sensor, Exit> {
        let mut sensor = Sensor::default();
        if args.metrics.is_some() || args.metrics_file.is_some() {
            sensor.board = Some(Arc::new(Board::default()));
        }
        if let (Some(addr), Some(board)) = (args.metrics, &sensor.board) {
            match MetricsServer::start(addr, Arc::clone(board)) {
                Ok(s) => sensor.server = Some(s),
                Err(e) => {
                    portmatrix::diag!(
                        "portmatrix: error: --metrics: cannot listen on {addr}: {e}; choose another port"
                    );
                    return Err(Exit::Usage);
                }
            }
        }
        if let (Some(path), Some(board)) = (&args.metrics_file, &sensor.board) {
            match MetricsFile::start(path.clone(), args.metrics_interval, Arc::clone(board)) {
                Ok(f) => sensor.file = Some(f),
                Err(e) => {
                    portmatrix::diag!(
                        "portmatrix: error: --metrics-file: cannot write {}: {e}; give a file in a \
folder this user may write (node_exporter's textfile folder)",
                        Printable(&path.display().to_string())
                    );
                    return Err(Exit::Usage);
                }
            }
        }
        Ok(sensor)
    }

    /// Plug syslog and the metrics into the run's writer.
    pub fn wire<W: std::io::Write + Send + 'static>(
        &mut self,
        args: &SensorArgs,
        writer: EventWriter<W>,
    ) -> Result<EventWriter<W>, Exit> {
        let mut writer = writer;
        if let Some(target) = &args.syslog {
            match Syslog::start(target) {
                Ok((syslog, lines)) => {
                    writer = writer.syslog(lines, syslog.counters());
                    self.syslog = Some(syslog);
                }
                Err(e) => {
                    portmatrix::diag!("portmatrix: error: --syslog: cannot start its thread: {e}");
                    return Err(Exit::Incomplete);
                }
            }
        }
        if let Some(board) = &self.board {
            writer.metrics(Arc::clone(board));
        }
        Ok(writer)
    }

    /// Whether the pipeline should hand over counters for the metrics.
    pub fn wants_counters(&self) -> bool {
        self.board.is_some()
    }

    /// After the final stats: the metrics get the final counters (and the
    /// file its last version), syslog what it still holds.
    pub fn finish<W>(self, writer: &mut EventWriter<W>, stats: &Stats, quiet: bool) {
        writer.publish_metrics(stats);
        writer.close_syslog();
        if let Some(syslog) = self.syslog {
            let s = syslog.finish(SYSLOG_DRAIN);
            if s.dropped > 0 || !quiet {
                portmatrix::diag!(
                    "portmatrix: syslog: {} messages sent, {} dropped, {} reconnections",
                    s.sent,
                    s.dropped,
                    s.reconnects
                );
            }
        }
        if let Some(file) = self.file {
            file.stop();
        }
        if let Some(server) = self.server {
            server.stop();
        }
    }
}

//! `live --syslog`, `--metrics`, `--metrics-file`: what needs privileges (a
//! port below 1024, a folder only root writes) is done before they go, the
//! threads are started after (`--user` refuses to drop privileges while
//! other threads hold them); finished after the final stats so that those
//! reach them too.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use portmatrix::output::metrics::file::{self, MetricsFile};
use portmatrix::output::metrics::http::MetricsServer;
use portmatrix::output::metrics::Board;
use portmatrix::output::syslog::Syslog;
use portmatrix::output::{EventWriter, Stats};
use portmatrix::printable::Printable;

use super::Exit;
use crate::cli::SensorArgs;

/// The longest the end of a run waits for syslog to take what is queued.
const SYSLOG_DRAIN: Duration = Duration::from_secs(2);

/// The sensor outputs: prepared, then running.
#[derive(Default)]
pub struct SensorOutputs {
    board: Option<Arc<Board>>,
    /// `--metrics`, bound and not served yet.
    listener: Option<TcpListener>,
    syslog: Option<Syslog>,
    server: Option<MetricsServer>,
    file: Option<MetricsFile>,
}

impl SensorOutputs {
    /// Bind the metrics port and write the metrics file once, with the
    /// privileges the process starts with; `Err` with the exit code after
    /// saying why: 1, as for an interface that is missing, since a port
    /// taken or a folder not there yet may be fine at the next start (the
    /// unit restarts after 1, not after wrong usage).
    pub fn prepare(args: &SensorArgs) -> Result<SensorOutputs, Exit> {
        let mut sensor = SensorOutputs::default();
        if args.metrics.is_none() && args.metrics_file.is_none() {
            return Ok(sensor);
        }
        let board = Arc::new(Board::default());
        if let Some(addr) = args.metrics {
            match TcpListener::bind(addr) {
                Ok(l) => sensor.listener = Some(l),
                Err(e) => {
                    portmatrix::diag!(
                        "portmatrix: error: --metrics: cannot listen on {addr}: {e}; stop what listens there or choose another port"
                    );
                    return Err(Exit::Incomplete);
                }
            }
        }
        if let Some(path) = &args.metrics_file {
            if let Err(e) = file::write(path, &board) {
                portmatrix::diag!(
                    "portmatrix: error: --metrics-file: cannot write {}: {e}; give a file in a \
folder this user may write (node_exporter's textfile folder)",
                    Printable(&path.display().to_string())
                );
                return Err(Exit::Incomplete);
            }
        }
        sensor.board = Some(board);
        Ok(sensor)
    }

    /// Start the threads and plug syslog and the metrics into the run's writer.
    pub fn start<W: std::io::Write + Send + 'static>(
        &mut self,
        args: &SensorArgs,
        writer: EventWriter<W>,
    ) -> Result<EventWriter<W>, Exit> {
        let mut writer = writer;
        let started = self.start_threads(args, &mut writer);
        if let Err(e) = started {
            portmatrix::diag!("portmatrix: error: cannot start the syslog or metrics thread: {e}");
            return Err(Exit::Incomplete);
        }
        Ok(writer)
    }

    fn start_threads<W: std::io::Write + Send + 'static>(
        &mut self,
        args: &SensorArgs,
        writer: &mut EventWriter<W>,
    ) -> std::io::Result<()> {
        if let Some(target) = &args.syslog {
            let (syslog, lines) = Syslog::start(target)?;
            writer.syslog(lines, syslog.counters());
            self.syslog = Some(syslog);
        }
        let Some(board) = &self.board else {
            return Ok(());
        };
        writer.metrics(Arc::clone(board));
        if let Some(listener) = self.listener.take() {
            self.server = Some(MetricsServer::start(listener, Arc::clone(board))?);
        }
        if let Some(path) = &args.metrics_file {
            let every = args.metrics_interval;
            self.file = Some(MetricsFile::start(path.clone(), every, Arc::clone(board))?);
        }
        Ok(())
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

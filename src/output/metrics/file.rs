//! `--metrics-file PATH`: the metrics for node_exporter's textfile
//! collector, rewritten every `--metrics-interval` and once more at the end
//! of the run. Each version is written under a hidden name beside PATH and
//! renamed over it ([`crate::output::create::AtomicFile`]), so the collector
//! never reads half a file (it reads `*.prom` only, never the hidden one).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Board;
use crate::output::create::AtomicFile;
use crate::printable::Printable;

/// The thread that rewrites the file.
pub struct MetricsFile {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

/// Write the metrics of `board` to `path` once.
pub fn write(path: &Path, board: &Board) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(board.render().as_bytes())?;
    file.commit()
}

impl MetricsFile {
    /// Rewrite `path` every `every` on a thread of its own (the caller
    /// wrote it once already with [`write`], so that a path that cannot be
    /// written is an error at the start).
    pub fn start(path: PathBuf, every: Duration, board: Arc<Board>) -> io::Result<MetricsFile> {
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name("pm-metrics-file".into())
            .spawn(move || {
                let mut warned = false;
                loop {
                    let last = matches!(
                        stopped.recv_timeout(every),
                        Ok(()) | Err(RecvTimeoutError::Disconnected)
                    );
                    match write(&path, &board) {
                        Ok(()) => warned = false,
                        Err(e) if !warned => {
                            crate::diag!(
                                "portmatrix: warning: cannot write the metrics to {}: {e}; \
trying again in {} s",
                                Printable(&path.display().to_string()),
                                every.as_secs()
                            );
                            warned = true;
                        }
                        Err(_) => {}
                    }
                    if last {
                        return;
                    }
                }
            })?;
        Ok(MetricsFile {
            stop,
            thread: Some(thread),
        })
    }

    /// Write the file a last time (the final counters) and stop.
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

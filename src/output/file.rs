//! An events file that can be reopened under the same name, so logrotate can
//! move it away and signal portmatrix (SIGHUP) to start a new one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A buffered, appending file. When `reopen` is set, the next flush finishes
/// the old file and opens `path` afresh.
pub struct EventFile {
    path: PathBuf,
    file: BufWriter<File>,
    reopen: Arc<AtomicBool>,
}

impl EventFile {
    pub fn create(path: &Path, reopen: Arc<AtomicBool>) -> io::Result<EventFile> {
        Ok(EventFile {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 16, open_append(path)?),
            reopen,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Write for EventFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.reopen.swap(false, Ordering::Relaxed) {
            match open_append(&self.path) {
                Ok(f) => self.file = BufWriter::with_capacity(1 << 16, f),
                // Keep writing to the old file rather than lose events.
                Err(e) => eprintln!(
                    "portmatrix: error: cannot reopen {}: {e}; still writing to the file opened before",
                    self.path.display()
                ),
            }
        }
        Ok(())
    }
}

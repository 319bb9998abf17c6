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
    /// Written at the top of every file this starts (a CSV header): a file
    /// that already holds something is continued as it is.
    header: Option<&'static str>,
}

impl EventFile {
    pub fn create(path: &Path, reopen: Arc<AtomicBool>) -> io::Result<EventFile> {
        Ok(EventFile {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 16, open_append(path)?),
            reopen,
            header: None,
        })
    }

    /// Start every new, empty file with `header`, this one included.
    pub fn with_header(mut self, header: &'static str) -> io::Result<EventFile> {
        self.header = Some(header);
        self.write_header_if_empty()?;
        Ok(self)
    }

    fn write_header_if_empty(&mut self) -> io::Result<()> {
        if let Some(h) = self.header {
            if self.file.get_ref().metadata()?.len() == 0 {
                self.file.write_all(h.as_bytes())?;
            }
        }
        Ok(())
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
                Ok(f) => {
                    self.file = BufWriter::with_capacity(1 << 16, f);
                    self.write_header_if_empty()?;
                }
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

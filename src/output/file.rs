//! An events file that can be reopened under the same name, so logrotate can
//! move it away and signal portmatrix (SIGHUP) to start a new one.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::print::{Format, CSV_HEADER};

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

    /// The events file of a run writing `format`: as [`EventFile::create`],
    /// and every new, empty file starts with the format's header (CSV's),
    /// so that each file a rotation starts can be read alone.
    pub fn for_format(
        path: &Path,
        reopen: Arc<AtomicBool>,
        format: Format,
    ) -> io::Result<EventFile> {
        let file = EventFile::create(path, reopen)?;
        match format {
            Format::Csv => file.with_header(CSV_HEADER),
            _ => Ok(file),
        }
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

/// Open `path` to append (never through a link: see [`super::create`]). A
/// file whose last line was cut (a run killed mid-write) is first ended with
/// a line break, so every line written from now on reads as a whole.
fn open_append(path: &Path) -> io::Result<File> {
    let mut file = super::create::open_append(path)?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8];
        if file.read_at(&mut last, len - 1).is_ok_and(|n| n == 1) && last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok(file)
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
                Err(e) => crate::diag!(
                    "portmatrix: error: cannot reopen {}: {e}; still writing to the file opened before",
                    self.path.display()
                ),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_starts_every_new_file_and_never_continues_one() {
        let dir = std::env::temp_dir().join(format!("portmatrix-eventfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("events.csv");
        let _ = std::fs::remove_file(&path);
        let reopen = Arc::new(AtomicBool::new(false));
        let mut f = EventFile::create(&path, Arc::clone(&reopen))
            .and_then(|f| f.with_header("h\r\n"))
            .expect("create");
        f.write_all(b"row1\r\n")
            .and_then(|()| f.flush())
            .expect("write");
        // Rotated away: the new file gets the header again.
        std::fs::rename(&path, dir.join("events.csv.1")).expect("rotate");
        reopen.store(true, Ordering::Relaxed);
        f.flush().expect("reopen");
        f.write_all(b"row2\r\n")
            .and_then(|()| f.flush())
            .expect("write");
        drop(f);
        // Appending to a file that has rows adds none.
        let mut again = EventFile::create(&path, reopen)
            .and_then(|f| f.with_header("h\r\n"))
            .expect("append");
        again
            .write_all(b"row3\r\n")
            .and_then(|()| again.flush())
            .expect("write");
        let read = |p: &Path| std::fs::read_to_string(p).expect("read");
        assert_eq!(read(&dir.join("events.csv.1")), "h\r\nrow1\r\n");
        assert_eq!(read(&path), "h\r\nrow2\r\nrow3\r\n");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_file_whose_last_line_was_cut_is_continued_on_a_new_line() {
        let dir = std::env::temp_dir().join(format!("portmatrix-torn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("events.json");
        // A run killed in the middle of its second line.
        std::fs::write(&path, "{\"a\":1}\n{\"event_ty").expect("torn");
        let reopen = Arc::new(AtomicBool::new(false));
        let mut f = EventFile::create(&path, Arc::clone(&reopen)).expect("open");
        f.write_all(b"{\"b\":2}\n")
            .and_then(|()| f.flush())
            .expect("write");
        // A whole last line is continued as it is, after a reopen too.
        reopen.store(true, Ordering::Relaxed);
        f.flush().expect("reopen");
        f.write_all(b"{\"c\":3}\n")
            .and_then(|()| f.flush())
            .expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "{\"a\":1}\n{\"event_ty\n{\"b\":2}\n{\"c\":3}\n");
        let _ = std::fs::remove_dir_all(dir);
    }
}

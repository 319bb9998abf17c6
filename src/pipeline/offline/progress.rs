//! The progress bar of `analyze` on a terminal, and the way events printed
//! to the same terminal get past it.
//!
//! The bar redraws its line on stderr a few times a second; alerts written to
//! stdout meanwhile would land in the middle of it and leave bits of bars
//! between them. So the events' writer goes through a [`ProgressLink`]: each
//! batch of whole lines is written with the bar cleared, and the bar is drawn
//! again below them.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The bar of a run, once it has one: cloned into the events' writer before
/// the run starts, filled in when the run draws a bar.
#[derive(Debug, Clone, Default)]
pub struct ProgressLink(Arc<OnceLock<indicatif::ProgressBar>>);

impl ProgressLink {
    /// Runs `f` with the bar (if any) cleared from the screen, then draws it again.
    fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match self.0.get() {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

/// A writer to the terminal the bar is on: writes whole lines with the bar
/// suspended, and keeps a line's start until its end comes (a bar drawn
/// after half a line would be erased with it). What is kept is at most one
/// line; `flush` writes it all.
pub struct ThroughProgress<W: Write> {
    inner: W,
    link: ProgressLink,
    partial: Vec<u8>,
}

impl<W: Write> ThroughProgress<W> {
    pub fn new(inner: W, link: ProgressLink) -> ThroughProgress<W> {
        ThroughProgress {
            inner,
            link,
            partial: Vec::new(),
        }
    }
}

impl<W: Write> Write for ThroughProgress<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            self.partial.extend_from_slice(buf);
            return Ok(buf.len());
        };
        let (lines, rest) = buf.split_at(end + 1);
        let (inner, partial) = (&mut self.inner, &mut self.partial);
        self.link.suspend(|| {
            inner.write_all(partial)?;
            inner.write_all(lines)?;
            inner.flush()
        })?;
        partial.clear();
        partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let (inner, partial) = (&mut self.inner, &mut self.partial);
        self.link.suspend(|| {
            inner.write_all(partial)?;
            inner.flush()
        })?;
        partial.clear();
        Ok(())
    }
}

/// A progress bar on stderr (bytes read of the total), only for a terminal.
pub(super) struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub fn new(enabled: bool, files: &[PathBuf], link: &ProgressLink) -> Progress {
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
        // A link serves one run; a second bar (a second run) draws on its own.
        let _ = link.0.set(bar.clone());
        Progress(Some(bar))
    }

    pub fn position(&self) -> u64 {
        self.0.as_ref().map_or(0, |b| b.position())
    }

    pub fn set(&self, pos: u64) {
        if let Some(b) = &self.0 {
            b.set_position(pos);
        }
    }

    /// A line on stderr; if stderr cannot be written the line is lost (the
    /// file's error is also in the stats event), rather than panicking.
    pub fn println(&self, msg: &str) {
        let print = || crate::diag!("{msg}");
        match &self.0 {
            Some(b) => b.suspend(print),
            None => print(),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole lines pass at once, a line's start waits for its end, and
    /// `flush` writes what is left; without a bar nothing is suspended.
    #[test]
    fn writes_whole_lines_and_keeps_a_lines_start() {
        let mut w = ThroughProgress::new(Vec::new(), ProgressLink::default());
        w.write_all(b"one\ntw").expect("write");
        assert_eq!(w.inner, b"one\n");
        w.write_all(b"o\nthree").expect("write");
        assert_eq!(w.inner, b"one\ntwo\n");
        w.flush().expect("flush");
        assert_eq!(w.inner, b"one\ntwo\nthree");
    }

    /// With a bar (drawn nowhere), lines still pass through its suspend.
    #[test]
    fn writes_through_a_bar() {
        let link = ProgressLink::default();
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(10),
            indicatif::ProgressDrawTarget::hidden(),
        );
        link.0.set(bar.clone()).expect("first bar");
        let mut w = ThroughProgress::new(Vec::new(), link);
        bar.set_position(5);
        w.write_all(b"alert\n").expect("write");
        assert_eq!(w.inner, b"alert\n");
    }
}

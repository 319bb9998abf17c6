//! The progress bar of `analyze` on a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;

/// A progress bar on stderr (bytes read of the total), only for a terminal.
pub(super) struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub fn new(enabled: bool, files: &[PathBuf]) -> Progress {
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

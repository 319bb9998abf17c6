//! What the folders named held that is not read: each entry named on stderr
//! with why, and a folder without any capture reported as a failed input,
//! so that a scheduled audit of an empty or wrong folder does not pass on
//! no data.

use crate::capture::Inputs;
use crate::output::FileStats;

use super::progress::Progress;

/// Skipped entries named one a line up to this many, then counted.
const NAMED_SKIPS: usize = 10;

/// Prints the skipped entries (all of them when `notes`, else only those
/// of folders without a capture, which explain an error) and an error per
/// folder without a capture; returns those folders' stats and their count.
pub(super) fn report(inputs: &Inputs, notes: bool, progress: &Progress) -> (Vec<FileStats>, usize) {
    let explains_error = |path: &std::path::Path| {
        path.parent()
            .is_some_and(|dir| inputs.without_capture.iter().any(|d| d == dir))
    };
    let shown: Vec<_> = inputs
        .skipped
        .iter()
        .filter(|s| notes || explains_error(&s.path))
        .collect();
    for s in shown.iter().take(NAMED_SKIPS) {
        progress.println(&format!(
            "portmatrix: skipped {}: {}",
            s.path.display(),
            s.reason
        ));
    }
    if shown.len() > NAMED_SKIPS {
        progress.println(&format!(
            "portmatrix: … and {} more entries skipped",
            shown.len() - NAMED_SKIPS
        ));
    }
    let mut stats = Vec::new();
    for dir in &inputs.without_capture {
        let skipped = inputs
            .skipped
            .iter()
            .filter(|s| s.path.parent() == Some(dir.as_path()))
            .count();
        let why = match skipped {
            0 => "it is empty".to_string(),
            1 => "its only entry was skipped (see above)".to_string(),
            n => format!("its {n} entries were skipped (see above)"),
        };
        let message = format!(
            "no capture in folder {}: {why}; name capture files (pcap or pcapng, plain or \
compressed with gzip or zstd), or the folder that holds them",
            dir.display()
        );
        progress.println(&format!("portmatrix: error: {message}"));
        stats.push(FileStats {
            path: dir.display().to_string(),
            error: Some(message),
            ..FileStats::default()
        });
    }
    let errors = stats.len();
    (stats, errors)
}

//! Replays every input the fuzz targets once failed on (`tests/regressions/
//! <target>/`, one file per input), through the very checks the targets run
//! (`fuzz/src/lib.rs`, included here), so a fixed bug stays fixed without
//! cargo-fuzz or a nightly compiler. `scripts/fuzz` finds new ones.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

/// Runs `check` on every file of `tests/regressions/<target>/`; returns how
/// many there were. Fails naming every input that panicked.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return 0;
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let failed: Vec<String> = paths
        .iter()
        .filter(|p| {
            let data = fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            panic::catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "inputs that fail again:\n{}",
        failed.join("\n")
    );
    paths.len()
}

#[test]
fn decode_inputs() {
    eprintln!(
        "{} decode inputs replayed",
        replay("decode", checks::decode_frames)
    );
}

#[test]
fn capture_inputs() {
    eprintln!(
        "{} capture inputs replayed",
        replay("capture", checks::read_capture)
    );
}

#[test]
fn rules_inputs() {
    eprintln!(
        "{} rules inputs replayed",
        replay("rules", checks::load_rules)
    );
}

#[test]
fn events_inputs() {
    eprintln!(
        "{} events inputs replayed",
        replay("events", checks::report_events)
    );
}

#[test]
fn site_inputs() {
    eprintln!("{} site inputs replayed", replay("site", checks::load_site));
    // The target's own checks hold on the shipped example (every exception
    // covers what it names) and on garbage (problems placed and capped).
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/site-example.toml");
    checks::load_site(&fs::read(example).expect("the example site file"));
    checks::load_site("=\n".repeat(20_000).as_bytes());
}

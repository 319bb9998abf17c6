//! Suricata's EVE schema check of JSON Lines files (tests/eve.rs,
//! tests/kafka.rs): Python's `jsonschema` (scripts/setup --test installs it)
//! runs tests/common/validate_eve.py against
//! `../shared/schemas/suricata-eve.schema.json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::shared;

/// The Python with `jsonschema`: scripts/setup's venv, else python3.
fn python() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")));
    let venv = cache.map(|c| c.join("portmatrix/venv/bin/python3"));
    venv.into_iter()
        .chain([PathBuf::from("python3")])
        .find(|py| {
            Command::new(py)
                .args(["-c", "import jsonschema"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Validates the JSON Lines `files` against Suricata's schema: the
/// validator's report, or `None` (SKIPPED said) when it cannot run here.
pub fn validate(files: &[&Path]) -> Option<String> {
    let schema = shared("schemas/suricata-eve.schema.json");
    if !schema.is_file() {
        eprintln!("SKIPPED: {} is absent", schema.display());
        return None;
    }
    let Some(python) = python() else {
        assert!(
            std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
            "python3 with jsonschema is needed (scripts/setup --test installs it)"
        );
        eprintln!("SKIPPED: python3 with jsonschema is needed (scripts/setup --test)");
        return None;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/validate_eve.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&schema)
        .args(files)
        .output()
        .expect("the validator runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "events not valid EVE:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(report)
}

//! A folder under the system's temp dir for one test, removed when dropped
//! (scripts/gen-traffic refuses to write into its repository, so these are
//! not under target/).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `portmatrix-{prefix}-{test}-{pid}`, created empty.
    pub fn new(prefix: &str, test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("portmatrix-{prefix}-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// Write `text` as `name` in the folder; its path as text.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("path").to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// scripts/gen-traffic is Python: a test that needs it says SKIPPED without.
pub fn python3_missing() -> bool {
    !Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

//! Large captures made by scripts/gen-traffic (python3) for a test, and
//! where a running process has got to in one (tests/analyze_signals.rs,
//! tests/kafka.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A capture from scripts/gen-traffic in the temporary folder, removed on drop.
pub struct Generated(pub PathBuf);

impl Generated {
    pub fn new(tag: &str, packets: u64) -> Generated {
        Generated::with_args(tag, packets, &[])
    }

    /// With more of scripts/gen-traffic's options (`--flows N`…).
    pub fn with_args(tag: &str, packets: u64, args: &[&str]) -> Generated {
        let path = std::env::temp_dir().join(format!(
            "portmatrix-generated-{tag}-{}.pcap",
            std::process::id()
        ));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-traffic");
        let made = Command::new("python3")
            .arg(script)
            .arg("-o")
            .arg(&path)
            .args(["--packets", &packets.to_string()])
            .args(args)
            .output()
            .expect("run scripts/gen-traffic (needs python3)");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        Generated(path)
    }

    pub fn size(&self) -> u64 {
        std::fs::metadata(&self.0).expect("capture").len()
    }
}

impl Drop for Generated {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Where the process has got to in `file` (its read offset), while it has it open.
pub fn read_offset(pid: u32, file: &Path) -> Option<u64> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for fd in fds.flatten() {
        if std::fs::read_link(fd.path()).ok().as_deref() != Some(file) {
            continue;
        }
        let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
        let info = std::fs::read_to_string(info).ok()?;
        return info
            .lines()
            .find_map(|l| l.strip_prefix("pos:"))
            .and_then(|v| v.trim().parse().ok());
    }
    None
}

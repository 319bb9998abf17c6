//! What the benches share: the capture they run on, and the built-in matrix.
//!
//! The capture is `PORTMATRIX_BENCH_CAPTURE` when set (any pcap or pcapng,
//! e.g. the 2,000,000-packet one of `scripts/bench-peers`), otherwise
//! 100,000 packets from `scripts/gen-traffic`, generated once into the
//! system temp dir and reused (the generator is deterministic).

#![allow(dead_code)] // each bench uses a part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use portmatrix::capture::CaptureFile;
use portmatrix::classify::Classifier;
use portmatrix::matrix::{parse_rules, PortMatrix, Product, BUILTIN_ORIGIN, BUILTIN_RULES};
use portmatrix::timestamp::Timestamp;

/// Packets generated when no capture is given.
const GENERATED_PACKETS: u64 = 100_000;

/// The capture to run on (see the module documentation).
pub fn capture() -> PathBuf {
    if let Some(path) = std::env::var_os("PORTMATRIX_BENCH_CAPTURE") {
        return PathBuf::from(path);
    }
    let dir = std::env::temp_dir().join("portmatrix-bench");
    let path = dir.join(format!("cc-{GENERATED_PACKETS}.pcap"));
    if !path.exists() {
        std::fs::create_dir_all(&dir).expect("temp dir for the bench capture");
        // Written beside, then renamed: benches run in parallel never see half a file.
        let part = dir.join(format!(
            "cc-{GENERATED_PACKETS}.pcap.{}",
            std::process::id()
        ));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-traffic");
        let out = Command::new("python3")
            .arg(script)
            .arg("-o")
            .arg(&part)
            .args(["--packets", &GENERATED_PACKETS.to_string()])
            .output()
            .expect("python3 runs scripts/gen-traffic (or set PORTMATRIX_BENCH_CAPTURE)");
        assert!(
            out.status.success(),
            "gen-traffic failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&part, &path).expect("rename the generated capture");
    }
    path
}

/// The built-in matrix, compiled for AACC.
pub fn classifier() -> Arc<Classifier> {
    let builtin = parse_rules(BUILTIN_ORIGIN, BUILTIN_RULES).expect("built-in matrix");
    let matrix = Arc::new(PortMatrix::from_files(vec![builtin]).expect("matrix"));
    Arc::new(Classifier::new(matrix, Product::Aacc))
}

/// Every packet of a capture, held in memory: one arena, one span per packet.
pub struct Packets {
    pub bytes: Vec<u8>,
    /// (timestamp, link type, start, end, length on the wire)
    pub spans: Vec<(Timestamp, u16, usize, usize, u32)>,
}

impl Packets {
    pub fn load(path: &Path) -> Packets {
        let mut cap = CaptureFile::open(path).expect("open the bench capture");
        let mut bytes = Vec::new();
        let mut spans = Vec::new();
        while let Some(p) = cap.next_packet().expect("read the bench capture") {
            let at = bytes.len();
            bytes.extend_from_slice(p.data);
            spans.push((p.ts, p.link_type, at, bytes.len(), p.orig_len));
        }
        Packets { bytes, spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// (timestamp, link type, frame, length on the wire) of each packet.
    pub fn iter(&self) -> impl Iterator<Item = (Timestamp, u16, &[u8], u32)> {
        self.spans
            .iter()
            .map(|&(ts, lt, a, b, wire)| (ts, lt, &self.bytes[a..b], wire))
    }
}

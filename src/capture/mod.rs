//! Capture files: pcap and pcapng read front to back into borrowed
//! [`RawPacket`]s, with the byte offset of every record for error messages.
//!
//! - [`CaptureFile`]: one open file; the format comes from the magic bytes.
//! - [`Timestamp`]: nanoseconds since the epoch, printed as RFC 3339 UTC.
//! - [`list_inputs`]: the files the user named (directories expanded), in the
//!   order of their first packet.
//! - [`CaptureError`]: why a file could not be read.
//! - [`LiveCapture`]: one network interface through libpcap, with [`LiveError`].

mod chunk;
mod endian;
mod error;
mod file;
mod frame;
pub mod live;
mod pcap;
pub mod pcapng;

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};

use crate::timestamp::Timestamp;

pub use chunk::{Chunk, ChunkPacket, CHUNK_BYTES};
pub use error::CaptureError;
pub use file::{CaptureFile, CaptureFormat, RawPacket};
pub use frame::MAX_BLOCK;
pub use live::{KernelStats, LiveCapture, LiveError, LiveOptions};

/// Expands directories (not recursively: their regular, non-hidden files, sorted
/// by name) and orders all files by the timestamp of their first packet.
///
/// Files that cannot be read, or hold no packet, keep their relative order at
/// the end, so the pipeline opens them last and reports their error there.
/// Only a directory that cannot be listed is an error here.
pub fn list_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CaptureError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let io_err = |source| CaptureError::Io {
                path: path.clone(),
                source,
            };
            let mut inside = Vec::new();
            for entry in fs::read_dir(path).map_err(io_err)? {
                let entry = entry.map_err(io_err)?;
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                // `metadata` follows symbolic links, so a link to a file counts.
                let is_file = fs::metadata(entry.path()).is_ok_and(|m| m.is_file());
                // In a directory only captures count: notes and outputs beside
                // them are skipped (a file named on the command line is not).
                if is_file && !hidden && has_capture_magic(&entry.path()) {
                    inside.push(entry.path());
                }
            }
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    let mut keyed: Vec<(Option<Timestamp>, PathBuf)> = files
        .into_iter()
        .map(|p| (first_timestamp(&p), p))
        .collect();
    // Stable: equal keys (and all unreadable files) keep the order given.
    keyed.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
    Ok(keyed.into_iter().map(|(_, p)| p).collect())
}

/// Timestamp of the first packet, or `None` if there is none or it cannot be read.
/// pcap (both byte orders, micro- and nanosecond) or pcapng magic bytes.
fn has_capture_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let read = fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    read.is_ok()
        && matches!(
            magic,
            [0xa1, 0xb2, 0xc3, 0xd4]
                | [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0x0a, 0x0d, 0x0d, 0x0a]
        )
}

fn first_timestamp(path: &Path) -> Option<Timestamp> {
    let mut cap = CaptureFile::open(path).ok()?;
    let ts = cap.next_packet().ok()??.ts;
    Some(ts)
}

#[cfg(test)]
mod tests;

//! The inputs the user named, as files to read: folders expanded (one
//! level), every file ordered by its first packet, and what a folder held
//! that is not read, with why, so that a folder without a capture is an
//! error the user sees instead of a run over no data.

use std::cmp::Ordering;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::CaptureError;
use super::file::CaptureFile;
use super::source::{first_bytes, Compression};
use crate::timestamp::Timestamp;

/// The name that stands for standard input on the command line.
pub const STDIN: &str = "-";

/// What [`list_inputs`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// The files to read, in the order of their first packet.
    pub files: Vec<PathBuf>,
    /// Entries of the folders named that are not read, with why.
    pub skipped: Vec<Skipped>,
    /// Folders named that hold no capture at all (their entries are in `skipped`).
    pub without_capture: Vec<PathBuf>,
}

/// An entry of a folder that is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: SkipReason,
}

/// Why an entry of a folder is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Folders are not searched recursively.
    Folder,
    /// A hidden file (its name starts with a dot).
    Hidden,
    /// Its first bytes (decompressed, if compressed) are no capture magic.
    NotACapture([u8; 4]),
    /// Empty, or shorter than a magic number.
    Empty,
    /// It could not be opened or read.
    Unreadable,
    /// Neither a file nor a folder (a socket, a device, a dangling link).
    NotAFile,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Folder => write!(
                f,
                "a folder (folders inside are not searched; name it to read its captures)"
            ),
            SkipReason::Hidden => write!(f, "a hidden file"),
            SkipReason::NotACapture([a, b, c, d]) => write!(
                f,
                "not a capture (first bytes {a:02x} {b:02x} {c:02x} {d:02x}; pcap or pcapng, plain or compressed with gzip or zstd, is read)"
            ),
            SkipReason::Empty => write!(f, "empty"),
            SkipReason::Unreadable => write!(f, "cannot be read (name it to see why)"),
            SkipReason::NotAFile => write!(f, "not a regular file"),
        }
    }
}

/// Expands folders (not recursively: their regular, non-hidden files whose
/// first bytes are a capture's, sorted by name) and orders all files by the
/// timestamp of their first packet. [`STDIN`] (`-`) stays as it is.
///
/// Files that cannot be read, or hold no packet, keep their relative order at
/// the end, so the pipeline opens them last and reports their error there
/// (a file named on the command line is kept whatever it is). Only a folder
/// that cannot be listed is an error here.
pub fn list_inputs(paths: &[PathBuf]) -> Result<Inputs, CaptureError> {
    let mut inputs = Inputs::default();
    let mut files = Vec::new();
    for path in paths {
        if path.as_os_str() != STDIN && path.is_dir() {
            let found = expand(path, &mut inputs.skipped)?;
            if found.is_empty() {
                inputs.without_capture.push(path.clone());
            }
            files.extend(found);
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
    inputs.files = keyed.into_iter().map(|(_, p)| p).collect();
    Ok(inputs)
}

/// The captures in folder `dir`, sorted by name; what else it holds goes to `skipped`.
fn expand(dir: &Path, skipped: &mut Vec<Skipped>) -> Result<Vec<PathBuf>, CaptureError> {
    let io_err = |source| CaptureError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        entries.push(entry.map_err(io_err)?.path());
    }
    entries.sort();
    let mut found = Vec::new();
    for path in entries {
        match classify(&path) {
            None => found.push(path),
            Some(reason) => skipped.push(Skipped { path, reason }),
        }
    }
    Ok(found)
}

/// `None` for a capture, else why the entry is skipped.
fn classify(path: &Path) -> Option<SkipReason> {
    let hidden = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    if hidden {
        return Some(SkipReason::Hidden);
    }
    // `metadata` follows symbolic links, so a link to a file counts.
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => return Some(SkipReason::Folder),
        Ok(m) if !m.is_file() => return Some(SkipReason::NotAFile),
        Ok(_) => {}
        Err(_) => return Some(SkipReason::NotAFile),
    }
    match first_bytes(path) {
        Err(_) => Some(SkipReason::Unreadable),
        Ok((_, have)) if have < 4 => Some(SkipReason::Empty),
        Ok((magic, _)) if is_capture_magic(magic) => None,
        // A compressed file whose first bytes could not be decompressed
        // is a damaged capture to report, more likely than a stray file.
        Ok((magic, _)) if Compression::sniff(&magic).is_some() => None,
        Ok((magic, _)) => Some(SkipReason::NotACapture(magic)),
    }
}

/// Whether the file at `path` starts as a capture does (pcap or pcapng,
/// plain or compressed): for commands that read something else (events)
/// and can then say which command reads captures.
pub fn is_capture(path: &Path) -> bool {
    matches!(first_bytes(path), Ok((magic, 4)) if is_capture_magic(magic))
}

/// pcap (both byte orders, micro- and nanosecond) or pcapng magic bytes.
fn is_capture_magic(magic: [u8; 4]) -> bool {
    matches!(
        magic,
        [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0x0a, 0x0d, 0x0d, 0x0a]
    )
}

/// Timestamp of the first packet, or `None` if there is none or it cannot
/// be read (standard input is read once, by the pipeline).
fn first_timestamp(path: &Path) -> Option<Timestamp> {
    if path.as_os_str() == STDIN {
        return None;
    }
    let mut cap = CaptureFile::open(path).ok()?;
    let ts = cap.next_packet().ok()??.ts;
    Some(ts)
}

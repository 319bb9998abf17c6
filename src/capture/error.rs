//! The one error type of the capture layer.
//!
//! Every message names the file and, where one exists, the byte offset of the
//! record or block that failed, and says what the user can do about it. A
//! [`CaptureError`] ends the reading of one file; the packets read before it
//! stay valid (the reader returns `Ok(None)` from then on).

use std::io;
use std::path::PathBuf;

/// Why a capture file could not be read (further).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The operating system refused to open, stat or read the file.
    #[error("cannot read {}: {source}; check that the file exists and is readable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The compressed stream of a `.gz` or `.zst` capture is damaged or cut
    /// short; `offset` is in the decompressed bytes.
    #[error(
        "{} is damaged in its {compression} stream, at byte offset {offset} of the decompressed capture: {source}; everything before was analysed, check the file with `{compression} -t`",
        path.display()
    )]
    Decompress {
        path: PathBuf,
        offset: u64,
        compression: &'static str,
        #[source]
        source: io::Error,
    },

    /// Not a byte to read.
    #[error(
        "{} is empty (it ends at byte offset 0): there is no capture to read; check that the capture was written to its end (a copy that failed, a capture still starting)",
        path.display()
    )]
    Empty { path: PathBuf },

    /// The first bytes are neither a pcap nor a pcapng magic number.
    #[error(
        "{} is not a pcap or pcapng file (magic bytes {} at offset 0); give a capture (pcap or pcapng, plain or compressed with gzip or zstd) written by tcpdump, dumpcap or wireshark, or convert it with `editcap -F pcap`",
        path.display(),
        magic_hex(magic)
    )]
    NotACapture { path: PathBuf, magic: [u8; 4] },

    /// A pcap or pcapng file whose version or variant this reader does not handle.
    #[error(
        "{} uses an unsupported capture format at byte offset {offset}: {detail}; convert it with `editcap -F pcapng`",
        path.display()
    )]
    Unsupported {
        path: PathBuf,
        offset: u64,
        detail: String,
    },

    /// The file ends in the middle of a record or block.
    #[error(
        "{} ends in the middle of {detail} at byte offset {offset}: the capture was cut short; everything before offset {offset} was analysed",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        detail: String,
    },

    /// A record or block that cannot be right: a bogus length, a packet for an
    /// interface that was never described, and so on.
    #[error(
        "{} is corrupt at byte offset {offset}: {detail}; everything before offset {offset} was analysed, repair the file (e.g. with pcapfix) or capture again",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
}

impl CaptureError {
    /// The file this error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            CaptureError::Io { path, .. }
            | CaptureError::Decompress { path, .. }
            | CaptureError::Empty { path }
            | CaptureError::NotACapture { path, .. }
            | CaptureError::Unsupported { path, .. }
            | CaptureError::Truncated { path, .. }
            | CaptureError::Corrupt { path, .. } => path,
        }
    }

    /// The byte offset the error is about, if it has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            CaptureError::Io { .. } => None,
            CaptureError::NotACapture { .. } | CaptureError::Empty { .. } => Some(0),
            CaptureError::Unsupported { offset, .. }
            | CaptureError::Decompress { offset, .. }
            | CaptureError::Truncated { offset, .. }
            | CaptureError::Corrupt { offset, .. } => Some(*offset),
        }
    }

    /// A stable snake_case name of the variant, for counters and exit reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            CaptureError::Io { .. } => "io",
            CaptureError::Decompress { .. } => "decompress",
            CaptureError::Empty { .. } => "empty",
            CaptureError::NotACapture { .. } => "not_a_capture",
            CaptureError::Unsupported { .. } => "unsupported",
            CaptureError::Truncated { .. } => "truncated",
            CaptureError::Corrupt { .. } => "corrupt",
        }
    }
}

/// `[0x7f, 0x45, ..]` as `7f 45 4c 46`, without a heap allocation.
fn magic_hex(magic: &[u8; 4]) -> MagicHex {
    MagicHex(*magic)
}

struct MagicHex([u8; 4]);

impl std::fmt::Display for MagicHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:02x} {b:02x} {c:02x} {d:02x}")
    }
}

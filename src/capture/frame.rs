//! What the pcap and pcapng framers tell the reader. A framer looks at the
//! unconsumed bytes ([`View`]) and says what they are ([`Step`]) or what is
//! wrong with them ([`Problem`]); it never reads: when the bytes it needs
//! are not there yet it asks for them ([`Step::Need`]), and the reader
//! reads (or stops a chunk there) and asks again. So the framing of every
//! record can be tested, and fuzzed, on a byte slice alone.

use std::path::Path;

use super::error::CaptureError;
use crate::timestamp::Timestamp;

/// Largest record or block accepted; anything longer is reported as corrupt.
pub const MAX_BLOCK: usize = 64 << 20;

/// The reader's unconsumed bytes, and where they are in the file.
#[derive(Clone, Copy, Debug)]
pub(super) struct View<'a> {
    pub bytes: &'a [u8],
    /// File offset of `bytes[0]`.
    pub offset: u64,
    /// Bytes the file had from `offset` on when it was opened: no record
    /// may claim more.
    pub remaining: u64,
    /// The reader met the end of the file: no byte will follow `bytes`.
    pub complete: bool,
}

/// Whether a view holds some number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Have {
    All,
    /// Not yet: the reader can read more.
    Later,
    /// Not ever: the file ends first.
    Never,
}

impl View<'_> {
    pub(super) fn have(&self, n: usize) -> Have {
        if self.bytes.len() >= n {
            Have::All
        } else if self.complete {
            Have::Never
        } else {
            Have::Later
        }
    }
}

/// What the bytes at the reader's position are.
#[derive(Debug)]
pub(super) enum Step {
    /// A packet; its bytes are in the view.
    Packet(Found),
    /// The first `n` bytes are a block with no packet (a section header, an
    /// interface description, a block of another type), taken into account.
    Skip(usize),
    /// Nothing can be told before the view holds `n` bytes.
    Need(usize),
    /// A pcapng Simple Packet Block met before any timed packet: it has no
    /// time of its own, and finding one means reading ahead, which only the
    /// reader can (it then sets [`super::pcapng::NgState::untimed`]).
    Untimed,
    /// The file ends cleanly here.
    End,
}

/// Where the next packet lies in the view, and what it is.
#[derive(Debug)]
pub(super) struct Found {
    pub ts: Timestamp,
    pub link_type: u16,
    /// The captured bytes are `bytes[data_at..data_at + data_len]` of the
    /// view (the reader turns it into a place in its buffer).
    pub data_at: usize,
    pub data_len: usize,
    pub orig_len: u32,
    pub interface: u32,
    pub offset: u64,
    /// Bytes of the record or block, consumed once the packet is taken.
    pub record_len: usize,
}

/// Why the bytes at an offset cannot be framed; the reader names the file.
#[derive(Debug)]
pub(super) struct Problem {
    kind: Kind,
    offset: u64,
    detail: String,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Truncated,
    Corrupt,
    Unsupported,
}

impl Problem {
    pub(super) fn truncated(offset: u64, detail: String) -> Problem {
        Problem {
            kind: Kind::Truncated,
            offset,
            detail,
        }
    }

    pub(super) fn corrupt(offset: u64, detail: String) -> Problem {
        Problem {
            kind: Kind::Corrupt,
            offset,
            detail,
        }
    }

    pub(super) fn unsupported(offset: u64, detail: String) -> Problem {
        Problem {
            kind: Kind::Unsupported,
            offset,
            detail,
        }
    }

    /// The error of the file at `path`.
    pub(super) fn in_file(self, path: &Path) -> CaptureError {
        let (path, offset, detail) = (path.to_path_buf(), self.offset, self.detail);
        match self.kind {
            Kind::Truncated => CaptureError::Truncated {
                path,
                offset,
                detail,
            },
            Kind::Corrupt => CaptureError::Corrupt {
                path,
                offset,
                detail,
            },
            Kind::Unsupported => CaptureError::Unsupported {
                path,
                offset,
                detail,
            },
        }
    }
}

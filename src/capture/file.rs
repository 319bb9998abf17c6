//! Reading pcap and pcapng files, one packet at a time (here) or a chunk of
//! packets at a time ([`super::chunk`]), without a heap allocation per packet.
//!
//! The reader keeps one reusable buffer (grown only for a block larger than
//! any before it, up to [`super::MAX_BLOCK`]) and the file offset of its first
//! unconsumed byte, so that every error names the offset of its record. It
//! does the reading; the framers ([`super::pcap`], [`super::pcapng`]) tell
//! it what the bytes are, or ask for more of them.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::error::CaptureError;
use super::frame::{Found, Step, View};
use super::pcap::PcapState;
use super::pcapng::{NgState, SHB};
use super::source::{file_input, stream_input, Compression, Input};
use crate::timestamp::Timestamp;

/// Most bytes read ahead, once per file, for the time of a Simple Packet
/// Block met before any timed packet.
const LOOKAHEAD_BYTES: u64 = 16 << 20;

/// Initial size of the read buffer.
const INITIAL_BUFFER: usize = 256 << 10;

/// The container format, detected from the magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaptureFormat {
    /// Classic libpcap format (either byte order, micro- or nanosecond).
    Pcap,
    /// pcapng.
    PcapNg,
}

impl CaptureFormat {
    /// Lower-case name for logs and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureFormat::Pcap => "pcap",
            CaptureFormat::PcapNg => "pcapng",
        }
    }
}

/// One captured packet, borrowed from the reader until the next call to
/// [`CaptureFile::next_packet`].
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// When the packet was captured.
    pub ts: Timestamp,
    /// `LINKTYPE_*` value of the interface (the FCS bits of a pcap header are dropped).
    pub link_type: u16,
    /// The captured bytes (possibly fewer than `orig_len`: snaplen).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// Interface number within the file: 0 for pcap; for pcapng the position of
    /// its Interface Description Block counting through all sections.
    pub interface: u32,
    /// Byte offset of the record or block holding this packet.
    pub offset: u64,
}

/// An open pcap or pcapng file, read front to back.
#[derive(Debug)]
pub struct CaptureFile {
    path: PathBuf,
    file: Input,
    pub(super) buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    pub(super) start: usize,
    pub(super) end: usize,
    /// File offset of `buf[start]`.
    pos: u64,
    pub(super) eof: bool,
    /// Bytes the reader may meet (the file's size; unbounded for a stream).
    total: u64,
    /// Size of the file on disk (compressed, for a compressed file).
    size: u64,
    pub(super) format: CaptureFormat,
    /// Used when `format` is `Pcap`.
    pub(super) pcap: PcapState,
    /// Used when `format` is `PcapNg`.
    ng: NgState,
    /// Bytes of the record last returned, consumed on the next call.
    pub(super) pending: usize,
    /// The file's modification time (`None` for bytes in memory).
    mtime: Option<Timestamp>,
    /// Set after the end of file or an error: `next_packet` returns `Ok(None)`.
    pub(super) done: bool,
    /// While a chunk holds packets framed in `buf`, `fill` must neither move
    /// nor replace bytes: it sets `held` and reports the bytes missing instead.
    pub(super) hold: bool,
    pub(super) held: bool,
    /// An error met after some packets of a chunk, returned by the next call.
    pub(super) deferred: Option<CaptureError>,
    /// A read that failed after some bytes were read: those are framed
    /// first, then this is the error (see `next_chunk`).
    pub(super) read_error: Option<CaptureError>,
}

impl CaptureFile {
    /// Opens `path` and reads its file header (pcap) or first section header (pcapng).
    pub fn open(path: &Path) -> Result<CaptureFile, CaptureError> {
        let io_err = |source: io::Error| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if meta.is_dir() {
            return Err(io_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a directory",
            )));
        }
        let input = file_input(file).map_err(io_err)?;
        let total = match input {
            Input::File(_) => meta.len(),
            _ => u64::MAX,
        };
        let mut cap = CaptureFile::start(path.to_path_buf(), input, total)?;
        cap.size = meta.len();
        cap.mtime = meta.modified().ok().and_then(|t| {
            let since = t.duration_since(std::time::UNIX_EPOCH).ok()?;
            let secs = i64::try_from(since.as_secs()).ok()?;
            Some(Timestamp::from_secs_nanos(
                secs,
                u64::from(since.subsec_nanos()),
            ))
        });
        Ok(cap)
    }

    /// Reads a capture held in memory, exactly as [`CaptureFile::open`] reads a
    /// file; `name` stands for the path in errors. For fuzzing and tests, which
    /// would otherwise write every input to a file first.
    pub fn from_bytes(
        name: impl Into<PathBuf>,
        bytes: Vec<u8>,
    ) -> Result<CaptureFile, CaptureError> {
        let total = bytes.len() as u64;
        CaptureFile::start(name.into(), Input::Memory(io::Cursor::new(bytes)), total)
    }

    /// Reads a capture (pcap or pcapng, compressed with gzip or zstd or not)
    /// from a stream that can be read only once, such as standard input;
    /// `name` stands for the path in errors.
    pub fn from_reader(
        name: impl Into<PathBuf>,
        reader: Box<dyn Read + Send>,
    ) -> Result<CaptureFile, CaptureError> {
        let path = name.into();
        let input = stream_input(reader).map_err(|source| CaptureError::Io {
            path: path.clone(),
            source,
        })?;
        CaptureFile::start(path, input, u64::MAX)
    }

    /// Reads the file header (pcap) or first section header (pcapng) of `input`,
    /// which holds `total` bytes.
    fn start(path: PathBuf, input: Input, total: u64) -> Result<CaptureFile, CaptureError> {
        let mut cap = CaptureFile {
            path,
            file: input,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            pos: 0,
            eof: false,
            total,
            size: if total == u64::MAX { 0 } else { total },
            format: CaptureFormat::Pcap,
            pcap: PcapState::default(),
            ng: NgState::default(),
            mtime: None,
            pending: 0,
            done: false,
            hold: false,
            held: false,
            deferred: None,
            read_error: None,
        };
        cap.read_file_header()?;
        Ok(cap)
    }

    /// The path given to [`CaptureFile::open`] (or the name given to
    /// [`CaptureFile::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes consumed so far (the offset just past the last packet returned,
    /// or of the end of file once it was reached).
    pub fn bytes_read(&self) -> u64 {
        self.pos + self.pending as u64
    }

    /// Size of the file when it was opened (compressed, for a compressed
    /// file; 0 for a stream).
    pub fn total_bytes(&self) -> u64 {
        self.size
    }

    /// Bytes of the file (compressed, for a compressed file) read so far:
    /// what a progress bar over file sizes counts.
    pub fn source_bytes_read(&self) -> u64 {
        self.file.raw_read().unwrap_or_else(|| self.bytes_read())
    }

    /// How the file is compressed, if it is.
    pub fn compression(&self) -> Option<Compression> {
        self.file.compression()
    }

    /// pcap or pcapng, as detected from the magic bytes.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The next packet, `Ok(None)` at a clean end of file. After an error,
    /// and after the end, every further call returns `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        self.consume(self.pending);
        self.pending = 0;
        match self.next_found() {
            Ok(Some(f)) => {
                self.pending = f.record_len;
                let data = self
                    .buf
                    .get(f.data_at..f.data_at + f.data_len)
                    .unwrap_or_default();
                Ok(Some(RawPacket {
                    ts: f.ts,
                    link_type: f.link_type,
                    data,
                    orig_len: f.orig_len,
                    interface: f.interface,
                    offset: f.offset,
                }))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// The next packet (`data_at` a place in `buf`), `Ok(None)` at the end
    /// of the file, or when a chunk's hold stops the reading (`held` set).
    /// The framer looks at the unconsumed bytes; this reads more while it
    /// asks for them, takes the blocks it skips, and looks up the time of
    /// an untimed packet.
    pub(super) fn next_found(&mut self) -> Result<Option<Found>, CaptureError> {
        loop {
            let view = View {
                bytes: &self.buf[self.start..self.end],
                offset: self.pos,
                remaining: self.total.saturating_sub(self.pos),
                complete: self.eof,
            };
            let step = match self.format {
                CaptureFormat::Pcap => self.pcap.next(view),
                CaptureFormat::PcapNg => self.ng.next(view),
            };
            match step.map_err(|p| p.in_file(&self.path))? {
                Step::Packet(mut found) => {
                    found.data_at += self.start;
                    return Ok(Some(found));
                }
                Step::Skip(n) => self.consume(n),
                Step::Need(n) => {
                    if !self.fill(n)? && self.held {
                        return Ok(None);
                    }
                }
                Step::Untimed => self.ng.untimed = Some(self.untimed()),
                Step::End => return Ok(None),
            }
        }
    }

    // ----- buffer -----------------------------------------------------------

    /// One `read` into the free end of the buffer.
    pub(super) fn read_more(&mut self) -> Result<(), CaptureError> {
        match self.file.read(&mut self.buf[self.end..]) {
            Ok(0) => self.eof = true,
            Ok(k) => self.end += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(match self.file.compression() {
                    Some(compression) => CaptureError::Decompress {
                        path: self.path.clone(),
                        offset: self.pos + self.available() as u64,
                        compression: compression.name(),
                        source,
                    },
                    None => CaptureError::Io {
                        path: self.path.clone(),
                        source,
                    },
                })
            }
        }
        Ok(())
    }

    pub(super) fn available(&self) -> usize {
        self.end - self.start
    }

    pub(super) fn consume(&mut self, n: usize) {
        let n = n.min(self.available());
        self.start += n;
        self.pos += n as u64;
    }

    /// Makes at least `n` bytes available; `Ok(false)` if the file ends first.
    /// `n` must have been checked against [`super::MAX_BLOCK`].
    fn fill(&mut self, n: usize) -> Result<bool, CaptureError> {
        if self.available() >= n {
            return Ok(true);
        }
        if self.hold {
            // A chunk's packets lie in the buffer: stop here (see `next_chunk`).
            self.held = true;
            return Ok(false);
        }
        if self.buf.len() - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < n {
                self.buf.resize(n.next_power_of_two(), 0);
            }
        }
        while self.available() < n {
            if self.eof {
                return Ok(false);
            }
            self.read_more()?;
        }
        Ok(true)
    }

    /// Bytes left in the file after the current position, as the file was at open.
    pub(super) fn remaining(&self) -> u64 {
        self.total.saturating_sub(self.pos)
    }

    // ----- file header ------------------------------------------------------

    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        if !self.fill(4)? {
            let have = self.available();
            if have == 0 {
                return Err(CaptureError::Empty {
                    path: self.path.clone(),
                });
            }
            let mut magic = [0u8; 4];
            magic[..have].copy_from_slice(&self.buf[self.start..self.end]);
            return Err(CaptureError::NotACapture {
                path: self.path.clone(),
                magic,
            });
        }
        let w = &self.buf[self.start..self.end];
        let magic = [w[0], w[1], w[2], w[3]];
        if u32::from_le_bytes(magic) == SHB {
            self.format = CaptureFormat::PcapNg;
            // The section header framer, until it takes the block.
            loop {
                let view = View {
                    bytes: &self.buf[self.start..self.end],
                    offset: self.pos,
                    remaining: self.total.saturating_sub(self.pos),
                    complete: self.eof,
                };
                match self.ng.section_header(view) {
                    Ok(Step::Need(n)) => {
                        self.fill(n)?;
                    }
                    Ok(Step::Skip(n)) => {
                        self.consume(n);
                        return Ok(());
                    }
                    Ok(_) => return Ok(()),
                    Err(p) => return Err(p.in_file(&self.path)),
                }
            }
        }
        let Some(pcap) = PcapState::from_magic(u32::from_le_bytes(magic)) else {
            return Err(CaptureError::NotACapture {
                path: self.path.clone(),
                magic,
            });
        };
        loop {
            match pcap.file_header(self.view()) {
                Ok(Some(header)) => {
                    self.pcap = header;
                    self.consume(24);
                    return Ok(());
                }
                Ok(None) => {
                    self.fill(24)?;
                }
                Err(p) => return Err(p.in_file(&self.path)),
            }
        }
    }

    /// The unconsumed bytes, for a framer.
    fn view(&self) -> View<'_> {
        View {
            bytes: &self.buf[self.start..self.end],
            offset: self.pos,
            remaining: self.remaining(),
            complete: self.eof,
        }
    }

    // ----- untimed packets --------------------------------------------------

    /// The time of a Simple Packet Block met before any timed packet (it has
    /// none of its own): that of the first timed packet further on (within
    /// [`LOOKAHEAD_BYTES`] of the start), else the file's modification time (a
    /// file of Simple Packet Blocks only: when the capture was last written),
    /// else the epoch. Looked up once per file.
    fn untimed(&self) -> Timestamp {
        self.first_timed_ahead()
            .or(self.mtime)
            .unwrap_or(Timestamp::EPOCH)
    }

    /// Reads the file again from the start with a second reader, which leaves
    /// this one where it is, up to its first timed packet.
    fn first_timed_ahead(&self) -> Option<Timestamp> {
        let (input, total) = match &self.file {
            Input::File(_) => (Input::File(File::open(&self.path).ok()?), self.total),
            Input::Stream {
                from_file: true, ..
            } => (file_input(File::open(&self.path).ok()?).ok()?, u64::MAX),
            // Standard input cannot be read twice.
            Input::Stream { .. } => return None,
            Input::Memory(c) => {
                let bytes = c.get_ref();
                let n = bytes.len().min(LOOKAHEAD_BYTES as usize);
                let ahead = bytes.get(..n).unwrap_or_default().to_vec();
                (Input::Memory(io::Cursor::new(ahead)), n as u64)
            }
        };
        let mut ahead = CaptureFile::start(self.path.clone(), input, total).ok()?;
        // Its own untimed blocks must not look ahead again.
        ahead.ng.untimed = Some(Timestamp::EPOCH);
        while ahead.bytes_read() < LOOKAHEAD_BYTES {
            ahead.next_packet().ok()??;
            if ahead.ng.last_ts.is_some() {
                return ahead.ng.last_ts;
            }
        }
        None
    }
}

//! Reading pcap and pcapng files, one packet at a time or a chunk of packets
//! at a time, without a heap allocation per packet.
//!
//! The reader frames records and blocks itself over one reusable buffer
//! (grown only for a block larger than any before it, up to [`MAX_BLOCK`]), so
//! it knows the byte offset of every record for its error messages.
//! [`CaptureFile::next_chunk`] reads about [`CHUNK_BYTES`] at once and hands
//! the buffer itself over, with where each packet lies in it: the packets are
//! framed in place and never copied, so that other threads can decode them. It takes
//! the block-type constants from `pcap-parser`; it does not use that crate's block parsers on the per-packet path because
//! they collect the options of every Enhanced Packet Block into a `Vec`
//! (an allocation per packet) and do not know the obsolete Packet Block.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use pcap_parser::{BOM_MAGIC, EPB_MAGIC, IDB_MAGIC, SHB_MAGIC, SPB_MAGIC};

use super::error::CaptureError;
use crate::timestamp::Timestamp;

/// The obsolete pcapng Packet Block (type 2), still written by old tools.
const PB_MAGIC: u32 = 0x0000_0002;

/// Largest record or block accepted; anything longer is reported as corrupt.
pub const MAX_BLOCK: usize = 64 << 20;

/// libpcap's default maximum snapshot length: a pcap record may claim up to
/// `max(snaplen, MAX_SNAPLEN)` captured bytes before it is called corrupt.
const MAX_SNAPLEN: u32 = 262_144;

/// Most interfaces one pcapng section may describe.
const MAX_INTERFACES: usize = 65_536;

/// Most bytes read ahead, once per file, for the time of a Simple Packet
/// Block met before any timed packet.
const LOOKAHEAD_BYTES: u64 = 16 << 20;

/// Initial size of the read buffer.
const INITIAL_BUFFER: usize = 256 << 10;

/// Bytes read at once for a [`Chunk`]: large reads, few system calls, and
/// a few thousand packets per chunk to share the cost of passing it on.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Timestamp units per second for an `if_tsresol` value: `10^v`, or `2^(v & 0x7f)`
/// when the high bit is set. (`pcap_parser::build_ts_resolution` refuses every
/// power of two, as it compares the value with the flag bit still set.)
fn ts_units_per_sec(tsresol: u8) -> Option<u64> {
    let exp = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exp)
    } else {
        1u64.checked_shl(exp).filter(|_| exp < 64)
    }
}

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

/// Where one packet of a [`Chunk`] lies, and what it is. 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPacket {
    /// When the packet was captured.
    pub ts: Timestamp,
    /// The captured bytes are `bytes[at..at + len]` of the chunk.
    at: u32,
    len: u32,
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// `LINKTYPE_*` value of the interface.
    pub link_type: u16,
}

/// Whole packets read from a file in one go: the bytes as they were read
/// (record headers and all) and where each packet lies in them. Reuse one
/// (and its buffers) across calls to [`CaptureFile::next_chunk`].
#[derive(Debug, Default)]
pub struct Chunk {
    bytes: Vec<u8>,
    packets: Vec<ChunkPacket>,
    /// The newest time of the packets [`Chunk::retain`] took out.
    removed_until: Timestamp,
}

impl Chunk {
    /// An empty chunk; its buffers grow on first use.
    pub fn new() -> Chunk {
        Chunk::default()
    }

    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Each packet, with its captured bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&ChunkPacket, &[u8])> + '_ {
        self.packets.iter().map(|p| {
            let at = p.at as usize;
            (
                p,
                self.bytes.get(at..at + p.len as usize).unwrap_or_default(),
            )
        })
    }

    /// Keeps only the packets `keep` accepts, in order; their bytes stay put.
    pub fn retain(&mut self, mut keep: impl FnMut(&ChunkPacket, &[u8]) -> bool) {
        let bytes = &self.bytes;
        let removed_until = &mut self.removed_until;
        self.packets.retain(|p| {
            let at = p.at as usize;
            let kept = keep(p, bytes.get(at..at + p.len as usize).unwrap_or_default());
            if !kept {
                *removed_until = (*removed_until).max(p.ts);
            }
            kept
        });
    }

    /// The newest time of the packets taken out by [`Chunk::retain`]: time
    /// went by in the capture even where no packet is left to show it.
    pub fn removed_until(&self) -> Timestamp {
        self.removed_until
    }

    /// The newest timestamp in the chunk.
    pub fn last_ts(&self) -> Option<Timestamp> {
        self.packets.iter().map(|p| p.ts).max()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let bytes: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(bytes),
            Endian::Big => u16::from_be_bytes(bytes),
        })
    }

    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        })
    }

    fn i64(self, b: &[u8], at: usize) -> Option<i64> {
        let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => i64::from_le_bytes(bytes),
            Endian::Big => i64::from_be_bytes(bytes),
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct PcapState {
    endian: Endian,
    nanos: bool,
    /// Kuznetzov's patched format: 24-byte record headers.
    modified: bool,
    link_type: u16,
    snaplen: u32,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: u16,
    snaplen: u32,
    units_per_sec: u64,
    offset_secs: i64,
    /// Time of this interface's last timed packet: Simple Packet Blocks of
    /// interface 0 carry none and take it.
    last_ts: Option<Timestamp>,
}

#[derive(Debug)]
struct NgState {
    endian: Endian,
    interfaces: Vec<Interface>,
    /// File-wide number of this section's interface 0.
    base: u32,
    /// Time of the last timed packet of any interface, for a Simple Packet
    /// Block met before interface 0 had one.
    last_ts: Option<Timestamp>,
    /// For a Simple Packet Block met before any timed packet: looked up once
    /// (see [`CaptureFile::untimed`]).
    untimed: Option<Timestamp>,
}

/// Where the next packet lies in the buffer, and what it is.
struct Found {
    ts: Timestamp,
    link_type: u16,
    data_at: usize,
    data_len: usize,
    orig_len: u32,
    interface: u32,
    offset: u64,
    record_len: usize,
}

/// Where a capture's bytes come from.
#[derive(Debug)]
enum Input {
    File(File),
    /// Bytes already in memory ([`CaptureFile::from_bytes`]).
    Memory(io::Cursor<Vec<u8>>),
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::File(f) => f.read(buf),
            Input::Memory(c) => c.read(buf),
        }
    }
}

/// An open pcap or pcapng file, read front to back.
#[derive(Debug)]
pub struct CaptureFile {
    path: PathBuf,
    file: Input,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    pos: u64,
    eof: bool,
    total: u64,
    format: CaptureFormat,
    /// Used when `format` is `Pcap`.
    pcap: PcapState,
    /// Used when `format` is `PcapNg`.
    ng: NgState,
    /// Bytes of the record last returned, consumed on the next call.
    pending: usize,
    /// The file's modification time (`None` for bytes in memory).
    mtime: Option<Timestamp>,
    /// Set after the end of file or an error: `next_packet` returns `Ok(None)`.
    done: bool,
    /// While a chunk holds packets framed in `buf`, `fill` must neither move
    /// nor replace bytes: it sets `held` and reports the bytes missing instead.
    hold: bool,
    held: bool,
    /// An error met after some packets of a chunk, returned by the next call.
    deferred: Option<CaptureError>,
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
        let mut cap = CaptureFile::start(path.to_path_buf(), Input::File(file), meta.len())?;
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
            format: CaptureFormat::Pcap,
            pcap: PcapState {
                endian: Endian::Little,
                nanos: false,
                modified: false,
                link_type: 0,
                snaplen: 0,
            },
            ng: NgState {
                endian: Endian::Little,
                interfaces: Vec::new(),
                base: 0,
                last_ts: None,
                untimed: None,
            },
            mtime: None,
            pending: 0,
            done: false,
            hold: false,
            held: false,
            deferred: None,
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

    /// Size of the file when it was opened.
    pub fn total_bytes(&self) -> u64 {
        self.total
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
        let found = match self.format {
            CaptureFormat::Pcap => self.next_pcap(self.pcap),
            CaptureFormat::PcapNg => self.next_ng(),
        };
        match found {
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

    /// Reads the next run of whole packets into `chunk` (replacing what it
    /// held): `Ok(false)` at the end of the file, when the chunk is empty.
    /// After an error the packets read before it come first; the error is
    /// returned by the next call, then `Ok(false)` for ever. Reads of
    /// [`CHUNK_BYTES`] (more for a larger record) straight into the chunk's
    /// buffer, one copy from the kernel; only the start of a record cut by
    /// the end of a read is copied again, to the front of the next one.
    pub fn next_chunk(&mut self, chunk: &mut Chunk) -> Result<bool, CaptureError> {
        chunk.packets.clear();
        chunk.removed_until = Timestamp::EPOCH;
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        if self.done {
            return Ok(false);
        }
        self.consume(self.pending);
        self.pending = 0;
        // Read into the chunk's own buffer, behind what is left of the last
        // read: a buffer stays with its chunk, in the cache of the thread
        // that fills and decodes it.
        std::mem::swap(&mut self.buf, &mut chunk.bytes);
        self.carry(&chunk.bytes);
        self.top_up()?;
        loop {
            if self.format == CaptureFormat::Pcap {
                self.pcap_run(chunk);
            }
            self.hold = !chunk.packets.is_empty();
            self.held = false;
            let found = match self.format {
                CaptureFormat::Pcap => self.next_pcap(self.pcap),
                CaptureFormat::PcapNg => self.next_ng(),
            };
            if self.held {
                // The next record is not all in the buffer: it starts the next chunk.
                break;
            }
            match found {
                Ok(Some(f)) => {
                    chunk.packets.push(ChunkPacket {
                        ts: f.ts,
                        at: f.data_at as u32,
                        len: f.data_len as u32,
                        orig_len: f.orig_len,
                        link_type: f.link_type,
                    });
                    self.consume(f.record_len);
                }
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    self.done = true;
                    if chunk.packets.is_empty() {
                        return Err(e);
                    }
                    self.deferred = Some(e);
                    break;
                }
            }
        }
        self.hold = false;
        // The chunk gets its buffer back, with its packets; the reader keeps
        // what follows them (the start of the next record).
        std::mem::swap(&mut self.buf, &mut chunk.bytes);
        self.carry(&chunk.bytes);
        Ok(!chunk.packets.is_empty())
    }

    /// Copies the unconsumed bytes of `from` (the buffer `start` and `end`
    /// point into) to the front of `buf`.
    fn carry(&mut self, from: &[u8]) {
        let left = self.available();
        if self.buf.len() < left {
            self.buf.resize(left.next_power_of_two(), 0);
        }
        self.buf[..left].copy_from_slice(&from[self.start..self.end]);
        self.start = 0;
        self.end = left;
    }

    /// Frames, in one tight loop, the pcap records that lie whole in the
    /// buffer and are plainly valid. The first one that is not (cut by the
    /// buffer's end or the file's, or claiming too many bytes) is left to
    /// `next_pcap`, which reports it or stops the chunk there.
    fn pcap_run(&mut self, chunk: &mut Chunk) {
        let st = self.pcap;
        let hdr = if st.modified { 24 } else { 16 };
        let limit = st.snaplen.max(MAX_SNAPLEN).min(MAX_BLOCK as u32) as usize;
        // Bytes the file had from here when it was opened: no record may go past them.
        let left = usize::try_from(self.remaining()).unwrap_or(usize::MAX);
        let start = self.start;
        let buf = self
            .buf
            .get(..self.end.min(start.saturating_add(left)))
            .unwrap_or_default();
        let word = |h: &[u8; 16], i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            match st.endian {
                Endian::Little => u32::from_le_bytes(b),
                Endian::Big => u32::from_be_bytes(b),
            }
        };
        let mut at = start;
        while let Some(h) = buf.get(at..at + 16) {
            let Ok(h): Result<&[u8; 16], _> = h.try_into() else {
                break;
            };
            let caplen = word(h, 8) as usize;
            let end = at + hdr + caplen;
            if caplen > limit || end > buf.len() {
                break;
            }
            let (secs, frac) = (i64::from(word(h, 0)), u64::from(word(h, 4)));
            chunk.packets.push(ChunkPacket {
                ts: if st.nanos {
                    Timestamp::from_secs_nanos(secs, frac)
                } else {
                    Timestamp::from_secs_micros(secs, frac)
                },
                at: (at + hdr) as u32,
                len: caplen as u32,
                orig_len: word(h, 12),
                link_type: st.link_type,
            });
            at = end;
        }
        self.consume(at - start);
    }

    // ----- buffer -----------------------------------------------------------

    /// Moves the unconsumed bytes to the front of a buffer of at least
    /// [`CHUNK_BYTES`] and reads until it is full or the file ends.
    fn top_up(&mut self) -> Result<(), CaptureError> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.buf.len() < CHUNK_BYTES {
            self.buf.resize(CHUNK_BYTES, 0);
        }
        while self.end < self.buf.len() && !self.eof {
            self.read_more()?;
        }
        Ok(())
    }

    /// One `read` into the free end of the buffer.
    fn read_more(&mut self) -> Result<(), CaptureError> {
        match self.file.read(&mut self.buf[self.end..]) {
            Ok(0) => self.eof = true,
            Ok(k) => self.end += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(CaptureError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        }
        Ok(())
    }

    fn available(&self) -> usize {
        self.end - self.start
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.available());
        self.start += n;
        self.pos += n as u64;
    }

    /// The unconsumed bytes (at least what the last successful `fill` asked for).
    fn window(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Makes at least `n` bytes available; `Ok(false)` if the file ends first.
    /// `n` must have been checked against [`MAX_BLOCK`].
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
    fn remaining(&self) -> u64 {
        self.total.saturating_sub(self.pos)
    }

    fn truncated(&self, offset: u64, detail: String) -> CaptureError {
        CaptureError::Truncated {
            path: self.path.clone(),
            offset,
            detail,
        }
    }

    fn corrupt(&self, offset: u64, detail: String) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset,
            detail,
        }
    }

    fn unsupported(&self, offset: u64, detail: String) -> CaptureError {
        CaptureError::Unsupported {
            path: self.path.clone(),
            offset,
            detail,
        }
    }

    // ----- file header ------------------------------------------------------

    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        if !self.fill(4)? {
            let have = self.available();
            if have == 0 {
                return Err(self.truncated(0, "the file header (the file is empty)".into()));
            }
            let mut magic = [0u8; 4];
            magic[..have].copy_from_slice(self.window());
            return Err(CaptureError::NotACapture {
                path: self.path.clone(),
                magic,
            });
        }
        let w = self.window();
        let magic = [w[0], w[1], w[2], w[3]];
        let (endian, nanos, modified) = match u32::from_le_bytes(magic) {
            SHB_MAGIC => {
                self.format = CaptureFormat::PcapNg;
                return self.section_header(0);
            }
            0xa1b2_c3d4 => (Endian::Little, false, false),
            0xa1b2_3c4d => (Endian::Little, true, false),
            0xa1b2_cd34 => (Endian::Little, false, true),
            0xd4c3_b2a1 => (Endian::Big, false, false),
            0x4d3c_b2a1 => (Endian::Big, true, false),
            0x34cd_b2a1 => (Endian::Big, false, true),
            _ => {
                return Err(CaptureError::NotACapture {
                    path: self.path.clone(),
                    magic,
                })
            }
        };
        if !self.fill(24)? {
            return Err(self.truncated(
                0,
                format!(
                    "the 24-byte pcap file header (the file has {} bytes)",
                    self.available()
                ),
            ));
        }
        let w = self.window();
        let major = endian.u16(w, 4).unwrap_or(0);
        let minor = endian.u16(w, 6).unwrap_or(0);
        let snaplen = endian.u32(w, 16).unwrap_or(0);
        let network = endian.u32(w, 20).unwrap_or(0);
        if major != 2 {
            return Err(self.unsupported(
                4,
                format!("pcap version {major}.{minor} (only 2.x is defined)"),
            ));
        }
        self.pcap = PcapState {
            endian,
            nanos,
            modified,
            // The upper bits carry the FCS length; the link type is the low 16.
            link_type: (network & 0xffff) as u16,
            snaplen,
        };
        self.consume(24);
        Ok(())
    }

    // ----- pcap -------------------------------------------------------------

    fn next_pcap(&mut self, st: PcapState) -> Result<Option<Found>, CaptureError> {
        let off = self.pos;
        let hdr = if st.modified { 24 } else { 16 };
        if !self.fill(hdr)? {
            if self.available() == 0 {
                return Ok(None);
            }
            return Err(self.truncated(
                off,
                format!(
                    "a packet record header ({} of {hdr} bytes present)",
                    self.available()
                ),
            ));
        }
        let w = self.window();
        let e = st.endian;
        let (Some(secs), Some(frac), Some(caplen), Some(orig_len)) =
            (e.u32(w, 0), e.u32(w, 4), e.u32(w, 8), e.u32(w, 12))
        else {
            return Err(self.truncated(off, "a packet record header".into()));
        };
        let limit = st.snaplen.max(MAX_SNAPLEN).min(MAX_BLOCK as u32);
        if caplen > limit {
            return Err(self.corrupt(
                off,
                format!(
                    "a packet record claims {caplen} captured bytes, more than the {limit} allowed \
(the file's snaplen {}, or {MAX_SNAPLEN}, whichever is larger, and never more than {MAX_BLOCK})",
                    st.snaplen
                ),
            ));
        }
        let record_len = hdr + caplen as usize;
        if (record_len as u64) > self.remaining() || !self.fill(record_len)? {
            return Err(self.truncated(
                off,
                format!(
                    "a packet record (it claims {caplen} captured bytes, the file has {} after its header)",
                    self.remaining().saturating_sub(hdr as u64)
                ),
            ));
        }
        let ts = if st.nanos {
            Timestamp::from_secs_nanos(i64::from(secs), u64::from(frac))
        } else {
            Timestamp::from_secs_micros(i64::from(secs), u64::from(frac))
        };
        Ok(Some(Found {
            ts,
            link_type: st.link_type,
            data_at: self.start + hdr,
            data_len: caplen as usize,
            orig_len,
            interface: 0,
            offset: off,
            record_len,
        }))
    }

    // ----- pcapng -----------------------------------------------------------

    /// Reads the Section Header Block at the current position (offset `off`).
    fn section_header(&mut self, off: u64) -> Result<(), CaptureError> {
        if !self.fill(12)? {
            return Err(self.truncated(off, "a pcapng section header block".into()));
        }
        let w = self.window();
        let endian = match u32::from_le_bytes([w[8], w[9], w[10], w[11]]) {
            BOM_MAGIC => Endian::Little,
            m if m == BOM_MAGIC.swap_bytes() => Endian::Big,
            m => {
                return Err(self.corrupt(
                    off + 8,
                    format!("section header byte-order magic is {m:#010x}, not 0x1a2b3c4d"),
                ))
            }
        };
        let blen = endian.u32(w, 4).unwrap_or(0);
        if blen < 28 || blen % 4 != 0 || blen as usize > MAX_BLOCK {
            return Err(self.corrupt(
                off + 4,
                format!("section header block length {blen} is impossible"),
            ));
        }
        if u64::from(blen) > self.remaining() || !self.fill(blen as usize)? {
            return Err(self.truncated(off, format!("a {blen}-byte section header block")));
        }
        let w = self.window();
        let major = endian.u16(w, 12).unwrap_or(0);
        let minor = endian.u16(w, 14).unwrap_or(0);
        let trailer = endian.u32(w, blen as usize - 4).unwrap_or(0);
        if trailer != blen {
            return Err(self.corrupt(
                off,
                format!("section header block length {blen} at its start but {trailer} at its end"),
            ));
        }
        if major != 1 || (minor != 0 && minor != 2) {
            return Err(self.unsupported(
                off + 12,
                format!("pcapng section version {major}.{minor} (only 1.0 is defined)"),
            ));
        }
        let ng = &mut self.ng;
        ng.endian = endian;
        ng.base = ng
            .base
            .saturating_add(u32::try_from(ng.interfaces.len()).unwrap_or(u32::MAX));
        ng.interfaces.clear();
        self.consume(blen as usize);
        Ok(())
    }

    fn next_ng(&mut self) -> Result<Option<Found>, CaptureError> {
        loop {
            let off = self.pos;
            if !self.fill(8)? {
                if self.available() == 0 {
                    return Ok(None);
                }
                return Err(self.truncated(
                    off,
                    format!(
                        "a pcapng block header ({} of 8 bytes present)",
                        self.available()
                    ),
                ));
            }
            let endian = self.ng.endian;
            let w = self.window();
            let (Some(btype), Some(blen)) = (endian.u32(w, 0), endian.u32(w, 4)) else {
                return Err(self.truncated(off, "a pcapng block header".into()));
            };
            if btype == SHB_MAGIC {
                self.section_header(off)?;
                continue;
            }
            if blen < 12 || blen % 4 != 0 || blen as usize > MAX_BLOCK {
                return Err(self.corrupt(
                    off + 4,
                    format!("block of type {btype:#010x} has length {blen}, not a multiple of 4 between 12 and {MAX_BLOCK}"),
                ));
            }
            let blen = blen as usize;
            if blen as u64 > self.remaining() || !self.fill(blen)? {
                return Err(self.truncated(
                    off,
                    format!(
                        "a {blen}-byte block of type {btype:#010x} (only {} bytes left)",
                        self.remaining()
                    ),
                ));
            }
            let w = self.window();
            let trailer = endian.u32(w, blen - 4).unwrap_or(0);
            if trailer as usize != blen {
                return Err(self.corrupt(
                    off,
                    format!("block of type {btype:#010x} has length {blen} at its start but {trailer} at its end"),
                ));
            }
            match btype {
                IDB_MAGIC => {
                    self.interface_description(off, blen)?;
                    self.consume(blen);
                }
                EPB_MAGIC | PB_MAGIC => return self.timed_packet(off, btype, blen).map(Some),
                SPB_MAGIC => return self.simple_packet(off, blen).map(Some),
                _ => self.consume(blen),
            }
        }
    }

    fn interface_description(&mut self, off: u64, blen: usize) -> Result<(), CaptureError> {
        let endian = self.ng.endian;
        let body = &self.window()[8..blen - 4];
        let (Some(link_type), Some(snaplen)) = (endian.u16(body, 0), endian.u32(body, 4)) else {
            return Err(self.corrupt(
                off,
                format!("interface description block of {blen} bytes is too short"),
            ));
        };
        let mut tsresol = 6u8;
        let mut offset_secs = 0i64;
        // Options: code, length, value padded to 4 bytes. A damaged option list
        // ends the list; it does not affect packet framing.
        let mut at = 8usize;
        while let (Some(code), Some(len)) = (endian.u16(body, at), endian.u16(body, at + 2)) {
            let len = usize::from(len);
            let Some(value) = body.get(at + 4..at + 4 + len) else {
                break;
            };
            match code {
                0 => break,
                9 if len >= 1 => tsresol = value[0],
                14 if len == 8 => offset_secs = endian.i64(value, 0).unwrap_or(0),
                _ => {}
            }
            at += 4 + len.div_ceil(4) * 4;
        }
        let Some(units_per_sec) = ts_units_per_sec(tsresol) else {
            return Err(self.corrupt(
                off,
                format!("interface description has an impossible timestamp resolution (if_tsresol {tsresol:#04x})"),
            ));
        };
        let ng = &mut self.ng;
        if ng.interfaces.len() >= MAX_INTERFACES {
            return Err(self.corrupt(
                off,
                format!("more than {MAX_INTERFACES} interfaces in one section"),
            ));
        }
        ng.interfaces.push(Interface {
            link_type,
            snaplen,
            units_per_sec,
            offset_secs,
            last_ts: None,
        });
        Ok(())
    }

    /// Enhanced Packet Block, or the obsolete Packet Block (16-bit interface id).
    fn timed_packet(&mut self, off: u64, btype: u32, blen: usize) -> Result<Found, CaptureError> {
        let endian = self.ng.endian;
        let body = &self.window()[8..blen - 4];
        let if_id = if btype == PB_MAGIC {
            endian.u16(body, 0).map(u32::from)
        } else {
            endian.u32(body, 0)
        };
        let (Some(if_id), Some(ts_high), Some(ts_low), Some(caplen), Some(orig_len)) = (
            if_id,
            endian.u32(body, 4),
            endian.u32(body, 8),
            endian.u32(body, 12),
            endian.u32(body, 16),
        ) else {
            return Err(self.corrupt(
                off,
                format!("packet block of {blen} bytes is too short for its header"),
            ));
        };
        let room = body.len() - 20;
        if caplen as usize > room {
            return Err(self.corrupt(
                off,
                format!("packet block claims {caplen} captured bytes but holds only {room}"),
            ));
        }
        let ng = &mut self.ng;
        let Some(iface) = ng.interfaces.get_mut(if_id as usize) else {
            let n = ng.interfaces.len();
            return Err(self.corrupt(
                off,
                format!("packet for interface {if_id}, but the section describes only {n} interface(s) before it"),
            ));
        };
        let units = (u64::from(ts_high) << 32) | u64::from(ts_low);
        let res = iface.units_per_sec;
        let secs = i64::try_from(units / res).unwrap_or(i64::MAX);
        let nanos = (u128::from(units % res) * 1_000_000_000 / u128::from(res)) as u64;
        let ts = Timestamp::from_secs_nanos(secs.saturating_add(iface.offset_secs), nanos);
        iface.last_ts = Some(ts);
        let link_type = iface.link_type;
        ng.last_ts = Some(ts);
        let interface = ng.base.saturating_add(if_id);
        Ok(Found {
            ts,
            link_type,
            data_at: self.start + 28,
            data_len: caplen as usize,
            orig_len,
            interface,
            offset: off,
            record_len: blen,
        })
    }

    fn simple_packet(&mut self, off: u64, blen: usize) -> Result<Found, CaptureError> {
        let endian = self.ng.endian;
        let body = &self.window()[8..blen - 4];
        let Some(orig_len) = endian.u32(body, 0) else {
            return Err(self.corrupt(
                off,
                format!("simple packet block of {blen} bytes is too short"),
            ));
        };
        let ng = &mut self.ng;
        let Some(iface) = ng.interfaces.first().copied() else {
            return Err(self.corrupt(
                off,
                "simple packet block, but the section describes no interface before it".into(),
            ));
        };
        let known = iface.last_ts.or(ng.last_ts);
        let interface = ng.base;
        let mut caplen = (orig_len as usize).min(blen - 16);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        let ts = known.unwrap_or_else(|| self.untimed());
        Ok(Found {
            ts,
            link_type: iface.link_type,
            data_at: self.start + 12,
            data_len: caplen,
            orig_len,
            interface,
            offset: off,
            record_len: blen,
        })
    }

    /// The time of a Simple Packet Block met before any timed packet (it has
    /// none of its own): that of the first timed packet further on (within
    /// [`LOOKAHEAD_BYTES`] of the start), else the file's modification time (a
    /// file of Simple Packet Blocks only: when the capture was last written),
    /// else the epoch. Looked up once per file.
    fn untimed(&mut self) -> Timestamp {
        if let Some(ts) = self.ng.untimed {
            return ts;
        }
        let ts = self
            .first_timed_ahead()
            .or(self.mtime)
            .unwrap_or(Timestamp::EPOCH);
        self.ng.untimed = Some(ts);
        ts
    }

    /// Reads the file again from the start with a second reader, which leaves
    /// this one where it is, up to its first timed packet.
    fn first_timed_ahead(&self) -> Option<Timestamp> {
        let (input, total) = match &self.file {
            Input::File(_) => (Input::File(File::open(&self.path).ok()?), self.total),
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

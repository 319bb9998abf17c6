//! Reading a capture a chunk at a time: about [`CHUNK_BYTES`] read at once
//! into the chunk's own buffer, and the packets framed in place, never
//! copied, so that other threads can decode them.

use super::error::CaptureError;
use super::file::{CaptureFile, CaptureFormat};
use crate::timestamp::Timestamp;

/// Bytes read at once for a [`Chunk`]: large reads, few system calls, and
/// a few thousand packets per chunk to share the cost of passing it on.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Where one packet of a [`Chunk`] lies, and what it is. 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPacket {
    /// When the packet was captured.
    pub ts: Timestamp,
    /// The captured bytes are `bytes[at..at + len]` of the chunk.
    pub(super) at: u32,
    pub(super) len: u32,
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

impl CaptureFile {
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
            let found = self.next_found();
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
                    if let Some(e) = self.read_error.take() {
                        if chunk.packets.is_empty() {
                            return Err(e);
                        }
                        self.deferred = Some(e);
                    }
                    break;
                }
                Err(e) => {
                    self.done = true;
                    // The cut the framer met is the read error's doing: say that.
                    let e = self.read_error.take().unwrap_or(e);
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

    /// Frames the pcap records that lie whole in the buffer and are plainly
    /// valid, in the framer's tight loop (see [`super::pcap::PcapState::run`]).
    fn pcap_run(&mut self, chunk: &mut Chunk) {
        // Bytes the file had from here when it was opened: no record may go past them.
        let left = usize::try_from(self.remaining()).unwrap_or(usize::MAX);
        let start = self.start;
        let buf = self
            .buf
            .get(..self.end.min(start.saturating_add(left)))
            .unwrap_or_default();
        let at = self.pcap.run(buf, start, &mut chunk.packets);
        self.consume(at - start);
    }

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
            if let Err(e) = self.read_more() {
                if self.available() == 0 {
                    return Err(e);
                }
                // The packets before the damage are analysed first (a
                // compressed stream cut short still holds them).
                self.read_error = Some(e);
                self.eof = true;
            }
        }
        Ok(())
    }
}

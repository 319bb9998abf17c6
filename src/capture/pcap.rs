//! The classic libpcap format, framed on a byte slice: the 24-byte file
//! header, then records of a 16-byte header (24 in Kuznetzov's patched
//! format) and the captured bytes.

use super::chunk::ChunkPacket;
use super::endian::Endian;
use super::frame::{Found, Have, Problem, Step, View, MAX_BLOCK};
use crate::timestamp::Timestamp;

/// libpcap's default maximum snapshot length: a pcap record may claim up to
/// `max(snaplen, MAX_SNAPLEN)` captured bytes before it is called corrupt.
const MAX_SNAPLEN: u32 = 262_144;

/// What a pcap file's header says.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PcapState {
    pub endian: Endian,
    pub nanos: bool,
    /// Kuznetzov's patched format: 24-byte record headers.
    pub modified: bool,
    pub link_type: u16,
    pub snaplen: u32,
}

impl PcapState {
    /// What a pcap file's magic number says (its first four bytes, read
    /// little-endian), or `None` if it is not one of pcap's.
    pub(super) fn from_magic(magic: u32) -> Option<PcapState> {
        let (endian, nanos, modified) = match magic {
            0xa1b2_c3d4 => (Endian::Little, false, false),
            0xa1b2_3c4d => (Endian::Little, true, false),
            0xa1b2_cd34 => (Endian::Little, false, true),
            0xd4c3_b2a1 => (Endian::Big, false, false),
            0x4d3c_b2a1 => (Endian::Big, true, false),
            0x34cd_b2a1 => (Endian::Big, false, true),
            _ => return None,
        };
        Some(PcapState {
            endian,
            nanos,
            modified,
            link_type: 0,
            snaplen: 0,
        })
    }

    /// Reads the 24-byte file header at the start of `v` (its magic number
    /// gave `self`): `Ok(None)` asks for the 24 bytes.
    pub(super) fn file_header(self, v: View) -> Result<Option<PcapState>, Problem> {
        match v.have(24) {
            Have::All => {}
            Have::Later => return Ok(None),
            Have::Never => {
                return Err(Problem::truncated(
                    0,
                    format!(
                        "the 24-byte pcap file header (the file has {} bytes)",
                        v.bytes.len()
                    ),
                ))
            }
        }
        let (w, endian) = (v.bytes, self.endian);
        let major = endian.u16(w, 4).unwrap_or(0);
        let minor = endian.u16(w, 6).unwrap_or(0);
        let snaplen = endian.u32(w, 16).unwrap_or(0);
        let network = endian.u32(w, 20).unwrap_or(0);
        if major != 2 {
            return Err(Problem::unsupported(
                4,
                format!("pcap version {major}.{minor} (only 2.x is defined)"),
            ));
        }
        Ok(Some(PcapState {
            // The upper bits carry the FCS length; the link type is the low 16.
            link_type: (network & 0xffff) as u16,
            snaplen,
            ..self
        }))
    }

    fn header_len(self) -> usize {
        if self.modified {
            24
        } else {
            16
        }
    }

    /// The most captured bytes a record may claim.
    fn caplen_limit(self) -> u32 {
        self.snaplen.max(MAX_SNAPLEN).min(MAX_BLOCK as u32)
    }

    fn time(self, secs: u32, frac: u32) -> Timestamp {
        if self.nanos {
            Timestamp::from_secs_nanos(i64::from(secs), u64::from(frac))
        } else {
            Timestamp::from_secs_micros(i64::from(secs), u64::from(frac))
        }
    }

    /// The record at the start of `v`.
    pub(super) fn next(self, v: View) -> Result<Step, Problem> {
        let off = v.offset;
        let hdr = self.header_len();
        match v.have(hdr) {
            Have::All => {}
            Have::Later => return Ok(Step::Need(hdr)),
            Have::Never if v.bytes.is_empty() => return Ok(Step::End),
            Have::Never => {
                return Err(Problem::truncated(
                    off,
                    format!(
                        "a packet record header ({} of {hdr} bytes present)",
                        v.bytes.len()
                    ),
                ))
            }
        }
        let (w, e) = (v.bytes, self.endian);
        let (Some(secs), Some(frac), Some(caplen), Some(orig_len)) =
            (e.u32(w, 0), e.u32(w, 4), e.u32(w, 8), e.u32(w, 12))
        else {
            return Err(Problem::truncated(off, "a packet record header".into()));
        };
        let limit = self.caplen_limit();
        if caplen > limit {
            return Err(Problem::corrupt(
                off,
                format!(
                    "a packet record claims {caplen} captured bytes, more than the {limit} allowed \
(the file's snaplen {}, or {MAX_SNAPLEN}, whichever is larger, and never more than {MAX_BLOCK})",
                    self.snaplen
                ),
            ));
        }
        let record_len = hdr + caplen as usize;
        let have = if (record_len as u64) > v.remaining {
            Have::Never
        } else {
            v.have(record_len)
        };
        match have {
            Have::All => {}
            Have::Later => return Ok(Step::Need(record_len)),
            Have::Never => {
                return Err(Problem::truncated(
                    off,
                    format!(
                        "a packet record (it claims {caplen} captured bytes, the file has {} after its header)",
                        v.remaining.saturating_sub(hdr as u64)
                    ),
                ))
            }
        }
        Ok(Step::Packet(Found {
            ts: self.time(secs, frac),
            link_type: self.link_type,
            data_at: hdr,
            data_len: caplen as usize,
            orig_len,
            interface: 0,
            offset: off,
            record_len,
        }))
    }

    /// Frames, in one tight loop, the records that lie whole in `buf` from
    /// `start` on (`buf` ends where the file did when it was opened) and are
    /// plainly valid, into `out`. The first one that is not (cut by the end
    /// of `buf`, or claiming too many bytes) is left to [`PcapState::next`],
    /// which reports it or stops the chunk there. Returns where it stopped.
    pub(super) fn run(self, buf: &[u8], start: usize, out: &mut Vec<ChunkPacket>) -> usize {
        let hdr = self.header_len();
        let limit = self.caplen_limit() as usize;
        let word = |h: &[u8; 16], i: usize| self.endian.word([h[i], h[i + 1], h[i + 2], h[i + 3]]);
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
            out.push(ChunkPacket {
                ts: self.time(word(h, 0), word(h, 4)),
                at: (at + hdr) as u32,
                len: caplen as u32,
                orig_len: word(h, 12),
                link_type: self.link_type,
            });
            at = end;
        }
        at
    }
}

//! pcapng (draft-ietf-opsawg-pcapng), framed on a byte slice: sections,
//! their interfaces, and the packets of Enhanced, Simple and the obsolete
//! Packet Blocks. The block and option numbers are defined here once, for
//! this reader and for the evidence files' writer (`crate::evidence`).
//!
//! Framed by hand rather than with `pcap-parser`, whose block parsers
//! collect the options of every Enhanced Packet Block into a `Vec` (an
//! allocation per packet) and do not know the obsolete Packet Block; its
//! block-type constants were all this reader took from it.

use super::endian::Endian;
use super::frame::{Found, Have, Problem, Step, View, MAX_BLOCK};
use crate::timestamp::Timestamp;

/// Section Header Block: starts a section (and the file). The same bytes
/// in either byte order.
pub const SHB: u32 = 0x0A0D_0D0A;
/// Interface Description Block: one per interface of a section.
pub const IDB: u32 = 0x0000_0001;
/// The obsolete Packet Block, still written by old tools.
pub const PB: u32 = 0x0000_0002;
/// Simple Packet Block: a packet of interface 0, with no time.
pub const SPB: u32 = 0x0000_0003;
/// Enhanced Packet Block.
pub const EPB: u32 = 0x0000_0006;
/// A section header's byte-order magic, as its writer wrote it.
pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Option codes: the end of the options, a comment (any block).
pub const OPT_END: u16 = 0;
pub const OPT_COMMENT: u16 = 1;
/// The application that wrote a section (Section Header Block).
pub const SHB_USERAPPL: u16 = 4;
/// The timestamp resolution of an interface (Interface Description Block).
pub const IF_TSRESOL: u16 = 9;
/// Seconds added to an interface's timestamps (Interface Description Block).
pub const IF_TSOFFSET: u16 = 14;

/// Most interfaces one pcapng section may describe.
const MAX_INTERFACES: usize = 65_536;

/// Timestamp units per second for an `if_tsresol` value: `10^v`, or `2^(v & 0x7f)`
/// when the high bit is set. (`pcap-parser`'s `build_ts_resolution` refuses every
/// power of two, as it compares the value with the flag bit still set.)
pub(super) fn ts_units_per_sec(tsresol: u8) -> Option<u64> {
    let exp = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exp)
    } else {
        1u64.checked_shl(exp).filter(|_| exp < 64)
    }
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

/// What the blocks read so far say about those to come.
#[derive(Debug)]
pub(super) struct NgState {
    endian: Endian,
    interfaces: Vec<Interface>,
    /// File-wide number of this section's interface 0.
    base: u32,
    /// Time of the last timed packet of any interface, for a Simple Packet
    /// Block met before interface 0 had one.
    pub last_ts: Option<Timestamp>,
    /// For a Simple Packet Block met before any timed packet: looked up once
    /// by the reader (see [`Step::Untimed`]).
    pub untimed: Option<Timestamp>,
}

impl Default for NgState {
    fn default() -> NgState {
        NgState {
            endian: Endian::Little,
            interfaces: Vec::new(),
            base: 0,
            last_ts: None,
            untimed: None,
        }
    }
}

impl NgState {
    /// The Section Header Block at the start of `v`: `Step::Skip` its length
    /// once it is read.
    pub(super) fn section_header(&mut self, v: View) -> Result<Step, Problem> {
        let off = v.offset;
        match v.have(12) {
            Have::All => {}
            Have::Later => return Ok(Step::Need(12)),
            Have::Never => {
                return Err(Problem::truncated(
                    off,
                    "a pcapng section header block".into(),
                ))
            }
        }
        let w = v.bytes;
        let endian = match u32::from_le_bytes([w[8], w[9], w[10], w[11]]) {
            BYTE_ORDER_MAGIC => Endian::Little,
            m if m == BYTE_ORDER_MAGIC.swap_bytes() => Endian::Big,
            m => {
                return Err(Problem::corrupt(
                    off + 8,
                    format!("section header byte-order magic is {m:#010x}, not 0x1a2b3c4d"),
                ))
            }
        };
        let blen = endian.u32(w, 4).unwrap_or(0);
        if blen < 28 || blen % 4 != 0 || blen as usize > MAX_BLOCK {
            return Err(Problem::corrupt(
                off + 4,
                format!("section header block length {blen} is impossible"),
            ));
        }
        let have = if u64::from(blen) > v.remaining {
            Have::Never
        } else {
            v.have(blen as usize)
        };
        match have {
            Have::All => {}
            Have::Later => return Ok(Step::Need(blen as usize)),
            Have::Never => {
                return Err(Problem::truncated(
                    off,
                    format!("a {blen}-byte section header block"),
                ))
            }
        }
        let major = endian.u16(w, 12).unwrap_or(0);
        let minor = endian.u16(w, 14).unwrap_or(0);
        let trailer = endian.u32(w, blen as usize - 4).unwrap_or(0);
        if trailer != blen {
            return Err(Problem::corrupt(
                off,
                format!("section header block length {blen} at its start but {trailer} at its end"),
            ));
        }
        if major != 1 || (minor != 0 && minor != 2) {
            return Err(Problem::unsupported(
                off + 12,
                format!("pcapng section version {major}.{minor} (only 1.0 is defined)"),
            ));
        }
        self.endian = endian;
        self.base = self
            .base
            .saturating_add(u32::try_from(self.interfaces.len()).unwrap_or(u32::MAX));
        self.interfaces.clear();
        Ok(Step::Skip(blen as usize))
    }

    /// The block at the start of `v`.
    pub(super) fn next(&mut self, v: View) -> Result<Step, Problem> {
        let off = v.offset;
        match v.have(8) {
            Have::All => {}
            Have::Later => return Ok(Step::Need(8)),
            Have::Never if v.bytes.is_empty() => return Ok(Step::End),
            Have::Never => {
                return Err(Problem::truncated(
                    off,
                    format!(
                        "a pcapng block header ({} of 8 bytes present)",
                        v.bytes.len()
                    ),
                ))
            }
        }
        let endian = self.endian;
        let w = v.bytes;
        let (Some(btype), Some(blen)) = (endian.u32(w, 0), endian.u32(w, 4)) else {
            return Err(Problem::truncated(off, "a pcapng block header".into()));
        };
        if btype == SHB {
            return self.section_header(v);
        }
        if blen < 12 || blen % 4 != 0 || blen as usize > MAX_BLOCK {
            return Err(Problem::corrupt(
                off + 4,
                format!("block of type {btype:#010x} has length {blen}, not a multiple of 4 between 12 and {MAX_BLOCK}"),
            ));
        }
        let blen = blen as usize;
        let have = if blen as u64 > v.remaining {
            Have::Never
        } else {
            v.have(blen)
        };
        match have {
            Have::All => {}
            Have::Later => return Ok(Step::Need(blen)),
            Have::Never => {
                return Err(Problem::truncated(
                    off,
                    format!(
                        "a {blen}-byte block of type {btype:#010x} (only {} bytes left)",
                        v.remaining
                    ),
                ))
            }
        }
        let trailer = endian.u32(w, blen - 4).unwrap_or(0);
        if trailer as usize != blen {
            return Err(Problem::corrupt(
                off,
                format!("block of type {btype:#010x} has length {blen} at its start but {trailer} at its end"),
            ));
        }
        let body = &w[8..blen - 4];
        match btype {
            IDB => {
                self.interface_description(off, blen, body)?;
                Ok(Step::Skip(blen))
            }
            EPB | PB => self.timed_packet(off, btype, blen, body).map(Step::Packet),
            SPB => Ok(self.simple_packet(off, blen, body)?),
            _ => Ok(Step::Skip(blen)),
        }
    }

    fn interface_description(&mut self, off: u64, blen: usize, body: &[u8]) -> Result<(), Problem> {
        let endian = self.endian;
        let (Some(link_type), Some(snaplen)) = (endian.u16(body, 0), endian.u32(body, 4)) else {
            return Err(Problem::corrupt(
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
                OPT_END => break,
                IF_TSRESOL if len >= 1 => tsresol = value[0],
                IF_TSOFFSET if len == 8 => offset_secs = endian.i64(value, 0).unwrap_or(0),
                _ => {}
            }
            at += 4 + len.div_ceil(4) * 4;
        }
        let Some(units_per_sec) = ts_units_per_sec(tsresol) else {
            return Err(Problem::corrupt(
                off,
                format!("interface description has an impossible timestamp resolution (if_tsresol {tsresol:#04x})"),
            ));
        };
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(Problem::corrupt(
                off,
                format!("more than {MAX_INTERFACES} interfaces in one section"),
            ));
        }
        self.interfaces.push(Interface {
            link_type,
            snaplen,
            units_per_sec,
            offset_secs,
            last_ts: None,
        });
        Ok(())
    }

    /// Enhanced Packet Block, or the obsolete Packet Block (16-bit interface id).
    fn timed_packet(
        &mut self,
        off: u64,
        btype: u32,
        blen: usize,
        body: &[u8],
    ) -> Result<Found, Problem> {
        let endian = self.endian;
        let if_id = if btype == PB {
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
            return Err(Problem::corrupt(
                off,
                format!("packet block of {blen} bytes is too short for its header"),
            ));
        };
        let room = body.len() - 20;
        if caplen as usize > room {
            return Err(Problem::corrupt(
                off,
                format!("packet block claims {caplen} captured bytes but holds only {room}"),
            ));
        }
        let Some(iface) = self.interfaces.get_mut(if_id as usize) else {
            let n = self.interfaces.len();
            return Err(Problem::corrupt(
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
        self.last_ts = Some(ts);
        Ok(Found {
            ts,
            link_type,
            data_at: 28,
            data_len: caplen as usize,
            orig_len,
            interface: self.base.saturating_add(if_id),
            offset: off,
            record_len: blen,
        })
    }

    fn simple_packet(&mut self, off: u64, blen: usize, body: &[u8]) -> Result<Step, Problem> {
        let Some(orig_len) = self.endian.u32(body, 0) else {
            return Err(Problem::corrupt(
                off,
                format!("simple packet block of {blen} bytes is too short"),
            ));
        };
        let Some(iface) = self.interfaces.first().copied() else {
            return Err(Problem::corrupt(
                off,
                "simple packet block, but the section describes no interface before it".into(),
            ));
        };
        let mut caplen = (orig_len as usize).min(blen - 16);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        let Some(ts) = iface.last_ts.or(self.last_ts).or(self.untimed) else {
            return Ok(Step::Untimed);
        };
        Ok(Step::Packet(Found {
            ts,
            link_type: iface.link_type,
            data_at: 12,
            data_len: caplen,
            orig_len,
            interface: self.base,
            offset: off,
            record_len: blen,
        }))
    }
}

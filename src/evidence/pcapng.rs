//! The few pcapng blocks an evidence file needs (draft-ietf-opsawg-pcapng):
//! a Section Header Block with a comment, an Interface Description Block
//! per link type, and Enhanced Packet Blocks with nanosecond timestamps.
//!
//! Written by hand rather than with a crate: it is a few dozen lines, the
//! per-packet path then writes straight into the caller's buffered file
//! without building a block value (no allocation per packet), and the reader
//! of this crate, tshark and Wireshark check the result in the tests.
//! Always little-endian, so the same input gives the same bytes on any host.

use std::io::{self, Write};

use crate::capture::pcapng::{
    BYTE_ORDER_MAGIC, EPB, IDB, IF_TSRESOL, OPT_COMMENT, OPT_END, SHB, SHB_USERAPPL,
};
use crate::timestamp::Timestamp;

/// Timestamps are in nanoseconds (`if_tsresol` = 10^-9), the unit of
/// [`Timestamp`]: nothing is rounded.
const TSRESOL_NANOS: u8 = 9;

/// An option value is at most this long (its length field is 16 bits);
/// longer comments are cut at a character boundary.
const MAX_OPTION: usize = 0xfff0;

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// The bytes `option` takes, header and padding included.
fn option_len(value: &[u8]) -> usize {
    4 + value.len() + pad4(value.len())
}

fn write_option(out: &mut impl Write, code: u16, value: &[u8]) -> io::Result<()> {
    // `value` was clipped to MAX_OPTION, which fits in 16 bits.
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.write_all(&code.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(value)?;
    out.write_all(&[0; 3][..pad4(value.len())])
}

fn write_end_of_options(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&OPT_END.to_le_bytes())?;
    out.write_all(&0u16.to_le_bytes())
}

/// `text` cut to what an option holds, at a character boundary.
fn clip(text: &str) -> &[u8] {
    if text.len() <= MAX_OPTION {
        return text.as_bytes();
    }
    let mut end = MAX_OPTION;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text.as_bytes()[..end]
}

fn block_len(body: usize) -> io::Result<u32> {
    u32::try_from(12 + body).map_err(|_| io::Error::other("pcapng block larger than 4 GiB"))
}

/// A Section Header Block: starts a file. `comment` is what Wireshark shows
/// in the capture file's properties; `application` names the writer.
/// Returns the bytes written.
pub fn write_section_header(
    out: &mut impl Write,
    comment: &str,
    application: &str,
) -> io::Result<u64> {
    let (comment, application) = (clip(comment), clip(application));
    let body = 16 + option_len(comment) + option_len(application) + 4;
    let total = block_len(body)?;
    out.write_all(&SHB.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(&BYTE_ORDER_MAGIC.to_le_bytes())?;
    out.write_all(&1u16.to_le_bytes())?; // major version
    out.write_all(&0u16.to_le_bytes())?; // minor version
    out.write_all(&(-1i64).to_le_bytes())?; // section length: not given
    write_option(out, OPT_COMMENT, comment)?;
    write_option(out, SHB_USERAPPL, application)?;
    write_end_of_options(out)?;
    out.write_all(&total.to_le_bytes())?;
    Ok(u64::from(total))
}

/// An Interface Description Block for `link_type` (a `LINKTYPE_*` value);
/// `snaplen` 0 means "no limit". Interfaces are numbered from 0 in the order
/// of their blocks. Returns the bytes written.
pub fn write_interface(out: &mut impl Write, link_type: u16, snaplen: u32) -> io::Result<u64> {
    let body = 8 + option_len(&[TSRESOL_NANOS]) + 4;
    let total = block_len(body)?;
    out.write_all(&IDB.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(&link_type.to_le_bytes())?;
    out.write_all(&0u16.to_le_bytes())?; // reserved
    out.write_all(&snaplen.to_le_bytes())?;
    write_option(out, IF_TSRESOL, &[TSRESOL_NANOS])?;
    write_end_of_options(out)?;
    out.write_all(&total.to_le_bytes())?;
    Ok(u64::from(total))
}

/// One packet as an Enhanced Packet Block on `interface`, with an optional
/// comment (Wireshark shows it in the packet list and the expert info).
/// `orig_len` is the length on the wire (`data` may be shorter). Times before
/// 1970 cannot be written and become 0. Returns the bytes written.
pub fn write_packet(
    out: &mut impl Write,
    interface: u32,
    ts: Timestamp,
    data: &[u8],
    orig_len: u32,
    comment: Option<&str>,
) -> io::Result<u64> {
    let comment = comment.map(clip);
    let options = comment.map_or(0, |c| option_len(c) + 4);
    let body = 20 + data.len() + pad4(data.len()) + options;
    let total = block_len(body)?;
    let captured = u32::try_from(data.len()).map_err(|_| io::Error::other("packet too large"))?;
    let units = u64::try_from(ts.as_nanos()).unwrap_or(0);
    let mut header = [0u8; 28];
    header[0..4].copy_from_slice(&EPB.to_le_bytes());
    header[4..8].copy_from_slice(&total.to_le_bytes());
    header[8..12].copy_from_slice(&interface.to_le_bytes());
    header[12..16].copy_from_slice(&((units >> 32) as u32).to_le_bytes());
    header[16..20].copy_from_slice(&(units as u32).to_le_bytes());
    header[20..24].copy_from_slice(&captured.to_le_bytes());
    header[24..28].copy_from_slice(&orig_len.max(captured).to_le_bytes());
    out.write_all(&header)?;
    out.write_all(data)?;
    out.write_all(&[0; 3][..pad4(data.len())])?;
    if let Some(c) = comment {
        write_option(out, OPT_COMMENT, c)?;
        write_end_of_options(out)?;
    }
    out.write_all(&total.to_le_bytes())?;
    Ok(u64::from(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureFile;

    #[test]
    fn an_interface_block_byte_for_byte() {
        let mut out = Vec::new();
        let n = write_interface(&mut out, 1, 256).expect("write");
        assert_eq!(n, 32);
        #[rustfmt::skip]
        let want: [u8; 32] = [
            1, 0, 0, 0,   32, 0, 0, 0,     // type, length
            1, 0,  0, 0,  0, 1, 0, 0,      // Ethernet, reserved, snaplen 256
            9, 0, 1, 0,   9, 0, 0, 0,      // if_tsresol = 9, padded
            0, 0, 0, 0,                    // end of options
            32, 0, 0, 0,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn a_packet_block_byte_for_byte() {
        let mut out = Vec::new();
        let ts = Timestamp::from_nanos(0x1_0000_0002);
        let n = write_packet(&mut out, 1, ts, &[0xaa, 0xbb, 0xcc], 60, Some("hi")).expect("write");
        #[rustfmt::skip]
        let want: [u8; 48] = [
            6, 0, 0, 0,   48, 0, 0, 0,     // type, length
            1, 0, 0, 0,                    // interface 1
            1, 0, 0, 0,   2, 0, 0, 0,      // timestamp high, low
            3, 0, 0, 0,   60, 0, 0, 0,     // captured, original
            0xaa, 0xbb, 0xcc, 0,           // data, padded
            1, 0, 2, 0,   b'h', b'i', 0, 0, // opt_comment "hi", padded
            0, 0, 0, 0,                    // end of options
            48, 0, 0, 0,
        ];
        assert_eq!(n, 48);
        assert_eq!(out, want);
    }

    #[test]
    fn long_comments_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_OPTION);
        let cut = clip(&long);
        assert!(cut.len() <= MAX_OPTION && std::str::from_utf8(cut).is_ok());
    }

    /// What these blocks make is read back by the crate's own reader:
    /// link types per interface, nanosecond times, lengths and bytes.
    #[test]
    fn the_reader_reads_back_what_was_written() {
        let mut out = Vec::new();
        write_section_header(&mut out, "why: a test", "portmatrix test").expect("shb");
        write_interface(&mut out, 1, 0).expect("idb");
        write_interface(&mut out, 101, 65535).expect("idb");
        let t0 = Timestamp::from_nanos(1_627_894_800_123_456_789);
        write_packet(&mut out, 0, t0, &[1, 2, 3, 4, 5], 5, Some("first")).expect("epb");
        write_packet(&mut out, 1, t0, &[0x45; 21], 1500, None).expect("epb");
        let path =
            std::env::temp_dir().join(format!("portmatrix-pcapng-{}.pcapng", std::process::id()));
        std::fs::write(&path, &out).expect("write file");
        let mut cap = CaptureFile::open(&path).expect("open");
        let p = cap.next_packet().expect("read").expect("first packet");
        assert_eq!(
            (p.link_type, p.data, p.orig_len, p.ts),
            (1, &[1u8, 2, 3, 4, 5][..], 5, t0)
        );
        let p = cap.next_packet().expect("read").expect("second packet");
        assert_eq!((p.link_type, p.data.len(), p.orig_len), (101, 21, 1500));
        assert!(cap.next_packet().expect("read").is_none());
        let _ = std::fs::remove_file(path);
    }
}

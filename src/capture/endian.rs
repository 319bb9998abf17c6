//! Reading the integers of a capture's headers in the byte order its magic
//! number gave: a pcap file or a pcapng section may be either.

/// The byte order of a pcap file or of one pcapng section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Endian {
    #[default]
    Little,
    Big,
}

impl Endian {
    /// The `u16` at `b[at..]`, `None` if `b` is too short (never a panic:
    /// the offsets come from the file).
    pub(super) fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let bytes: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(bytes),
            Endian::Big => u16::from_be_bytes(bytes),
        })
    }

    pub(super) fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(self.word(bytes))
    }

    pub(super) fn i64(self, b: &[u8], at: usize) -> Option<i64> {
        let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => i64::from_le_bytes(bytes),
            Endian::Big => i64::from_be_bytes(bytes),
        })
    }

    /// Four bytes already in hand, for the pcap framer's tight loop, which
    /// has checked the record header's length once.
    #[inline]
    pub(super) fn word(self, bytes: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        }
    }
}

//! Link layers: find where the IP header starts, and the outer VLAN id.
//! MPLS label stacks, PPPoE sessions, 802.1ah PBB (MAC-in-MAC) and 802.1BR
//! E-tags are walked here too: they sit between an EtherType and IP, and are
//! recorded as encapsulation layers.

use super::{DecodeError, Decoded, EncapKind, OtherProto, Outside};

/// Most VLAN tags followed before the frame is called malformed.
pub const MAX_VLAN_DEPTH: u8 = 8;

pub(super) const LINKTYPE_NULL: u16 = 0;
pub(super) const LINKTYPE_ETHERNET: u16 = 1;
pub(super) const LINKTYPE_PPP: u16 = 9;
pub(super) const LINKTYPE_PPP_HDLC: u16 = 50;
pub(super) const LINKTYPE_NFLOG: u16 = 239;
pub(super) const DLT_RAW_12: u16 = 12;
pub(super) const DLT_RAW_14: u16 = 14;
pub(super) const LINKTYPE_RAW: u16 = 101;
pub(super) const LINKTYPE_LOOP: u16 = 108;
pub(super) const LINKTYPE_LINUX_SLL: u16 = 113;
pub(super) const LINKTYPE_IPV4: u16 = 228;
pub(super) const LINKTYPE_IPV6: u16 = 229;
pub(super) const LINKTYPE_LINUX_SLL2: u16 = 276;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
/// 802.1ah Provider Backbone Bridging: an I-TAG, then the customer's frame.
const ETHERTYPE_PBB: u16 = 0x88e7;
/// 802.1BR Bridge Port Extension: an E-TAG, then the frame's own EtherType.
const ETHERTYPE_ETAG: u16 = 0x893f;

const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const PPP_MPLS: u16 = 0x0281;
const PPP_MPLS_MULTICAST: u16 = 0x0283;

/// Which IP version the link layer announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Net {
    V4,
    V6,
    /// Raw IP link types: the version nibble decides.
    ByVersion,
}

/// Where the network layer starts.
#[derive(Clone, Copy, Debug)]
pub(super) struct L3 {
    pub net: Net,
    pub at: usize,
}

/// Whether [`super::decode`] understands `link_type`.
pub fn link_type_supported(link_type: u16) -> bool {
    matches!(
        link_type,
        LINKTYPE_NULL
            | LINKTYPE_ETHERNET
            | LINKTYPE_PPP
            | LINKTYPE_PPP_HDLC
            | LINKTYPE_NFLOG
            | DLT_RAW_12
            | DLT_RAW_14
            | LINKTYPE_RAW
            | LINKTYPE_LOOP
            | LINKTYPE_LINUX_SLL
            | LINKTYPE_IPV4
            | LINKTYPE_IPV6
            | LINKTYPE_LINUX_SLL2
    )
}

/// A short stable name for a `LINKTYPE_*` value (tcpdump's names, lower case),
/// `"unknown"` for values not listed.
pub fn link_type_name(link_type: u16) -> &'static str {
    match link_type {
        LINKTYPE_NULL => "null",
        LINKTYPE_ETHERNET => "ethernet",
        LINKTYPE_PPP => "ppp",
        10 => "fddi",
        DLT_RAW_12 | DLT_RAW_14 | LINKTYPE_RAW => "raw",
        LINKTYPE_PPP_HDLC => "ppp_hdlc",
        51 => "pppoe",
        104 => "c_hdlc",
        105 => "ieee802_11",
        LINKTYPE_LOOP => "loop",
        LINKTYPE_LINUX_SLL => "linux_sll",
        119 => "prism_header",
        127 => "ieee802_11_radiotap",
        147..=162 => "user",
        192 => "ppi",
        195 => "ieee802_15_4",
        201 => "netlink",
        LINKTYPE_IPV4 => "ipv4",
        LINKTYPE_IPV6 => "ipv6",
        LINKTYPE_NFLOG => "nflog",
        249 => "usbpcap",
        252 => "wireshark_upper_pdu",
        271 => "vsock",
        LINKTYPE_LINUX_SLL2 => "linux_sll2",
        281 => "ethernet_brcm_tag",
        _ => "unknown",
    }
}

pub(super) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn malformed(e: DecodeError) -> Decoded {
    Decoded::Malformed(e)
}

/// Strips the link layer of `data`, noting VLAN tags and layers entered in `outside`.
#[inline]
pub(super) fn network(link_type: u16, data: &[u8], outside: &mut Outside) -> Result<L3, Decoded> {
    let raw = |at| {
        Ok(L3 {
            net: Net::ByVersion,
            at,
        })
    };
    match link_type {
        LINKTYPE_ETHERNET => ethernet(data, 0, outside),
        LINKTYPE_LINUX_SLL => {
            // packet type, ARPHRD, address length, 8-byte address, protocol
            if data.len() < 16 {
                return Err(malformed(DecodeError::TruncatedLink));
            }
            let et = be16(data, 14).ok_or(malformed(DecodeError::TruncatedLink))?;
            outside.l2_group = sll_group(be16(data, 0).unwrap_or(0));
            ethertype(data, 16, et, outside)
        }
        LINKTYPE_LINUX_SLL2 => {
            // protocol, reserved, ifindex, ARPHRD, packet type, address length, 8-byte address
            if data.len() < 20 {
                return Err(malformed(DecodeError::TruncatedLink));
            }
            let et = be16(data, 0).ok_or(malformed(DecodeError::TruncatedLink))?;
            outside.l2_group = sll_group(data.get(10).copied().map_or(0, u16::from));
            ethertype(data, 20, et, outside)
        }
        // tshark decides by the version nibble for 228/229 too, so a
        // mislabelled packet is still counted.
        DLT_RAW_12 | DLT_RAW_14 | LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 => raw(0),
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            let b: [u8; 4] = data
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(malformed(DecodeError::TruncatedLink))?;
            let be = u32::from_be_bytes(b);
            // NULL: host byte order of the writer, so either; LOOP: network order.
            let af = if link_type == LINKTYPE_LOOP || be < 0x1_0000 {
                be
            } else {
                u32::from_le_bytes(b)
            };
            match af {
                2 => Ok(L3 {
                    net: Net::V4,
                    at: 4,
                }),
                // AF_INET6 is 24 on the BSDs, 28 on FreeBSD, 30 on macOS.
                24 | 28 | 30 => Ok(L3 {
                    net: Net::V6,
                    at: 4,
                }),
                other => Err(Decoded::Other(OtherProto::AddressFamily(other))),
            }
        }
        LINKTYPE_PPP | LINKTYPE_PPP_HDLC => {
            // Address and control bytes (ff 03) are optional.
            let at = if data.starts_with(&[0xff, 0x03]) {
                2
            } else {
                0
            };
            ppp(data, at, outside)
        }
        LINKTYPE_NFLOG => nflog(data),
        _ => Err(malformed(DecodeError::UnsupportedLinkType)),
    }
}

/// Whether a Linux cooked capture's packet type says the packet was sent to
/// a group address: PACKET_BROADCAST (1) or PACKET_MULTICAST (2).
fn sll_group(packet_type: u16) -> bool {
    matches!(packet_type, 1 | 2)
}

/// Whether the Ethernet destination MAC at `at` is a group address
/// (broadcast or multicast): the I/G bit, the low bit of its first octet.
#[inline]
fn group_mac(data: &[u8], at: usize) -> bool {
    data.get(at).is_some_and(|b| b & 1 == 1)
}

/// A PPP protocol field at `at` (one byte if its low bit is set, else two),
/// then IPv4, IPv6 or an MPLS label stack.
pub(super) fn ppp(data: &[u8], at: usize, outside: &mut Outside) -> Result<L3, Decoded> {
    let first = *data.get(at).ok_or(malformed(DecodeError::TruncatedLink))?;
    let (proto, at) = if first & 1 == 1 {
        (u16::from(first), at + 1)
    } else {
        (
            be16(data, at).ok_or(malformed(DecodeError::TruncatedLink))?,
            at + 2,
        )
    };
    match proto {
        PPP_IPV4 => Ok(L3 { net: Net::V4, at }),
        PPP_IPV6 => Ok(L3 { net: Net::V6, at }),
        // The label stack is walked as after its EtherType.
        PPP_MPLS | PPP_MPLS_MULTICAST => ethertype(data, at, ETHERTYPE_MPLS, outside),
        other => Err(Decoded::Other(OtherProto::PppProto(other))),
    }
}

/// Linux NFLOG: a 4-byte header, then TLVs whose length and type are in the
/// writer's byte order (little-endian on every common host; big-endian is
/// tried when that does not fit). The packet is the NFULA_PAYLOAD (9) TLV.
fn nflog(data: &[u8]) -> Result<L3, Decoded> {
    let family = *data.first().ok_or(malformed(DecodeError::TruncatedLink))?;
    let net = match family {
        2 => Net::V4,
        10 => Net::V6,
        _ => Net::ByVersion,
    };
    let mut at = 4usize;
    let mut little: Option<bool> = None;
    loop {
        let Some(&[a, b, c, d]) = data.get(at..at + 4) else {
            return Err(malformed(DecodeError::TruncatedLink));
        };
        let le = (u16::from_le_bytes([a, b]), u16::from_le_bytes([c, d]));
        let be = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        let fits = |len: u16| len >= 4 && at + usize::from(len) <= data.len();
        let use_le = *little.get_or_insert(fits(le.0) || !fits(be.0));
        let (len, kind) = if use_le { le } else { be };
        if len < 4 || at + usize::from(len) > data.len() {
            return Err(malformed(DecodeError::TruncatedLink));
        }
        if kind & 0x7fff == 9 {
            return Ok(L3 { net, at: at + 4 });
        }
        at += usize::from(len).div_ceil(4) * 4;
    }
}

/// An Ethernet II header at `at` (destination, source, EtherType), then what
/// its EtherType says.
#[inline]
pub(super) fn ethernet(data: &[u8], at: usize, outside: &mut Outside) -> Result<L3, Decoded> {
    let et = be16(data, at + 12).ok_or(malformed(DecodeError::TruncatedLink))?;
    outside.l2_group = group_mac(data, at);
    ethertype(data, at + 14, et, outside)
}

/// Follows an EtherType (and VLAN tags, an LLC/SNAP header, MPLS labels, a
/// PPPoE session, PBB, E-tags) to the network layer. Every round moves `at`
/// forward, so the walk ends.
#[inline]
pub(super) fn ethertype(
    data: &[u8],
    mut at: usize,
    mut et: u16,
    outside: &mut Outside,
) -> Result<L3, Decoded> {
    let mut depth = 0u8;
    loop {
        match et {
            ETHERTYPE_IPV4 => return Ok(L3 { net: Net::V4, at }),
            ETHERTYPE_IPV6 => return Ok(L3 { net: Net::V6, at }),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                depth += 1;
                if depth > MAX_VLAN_DEPTH {
                    return Err(malformed(DecodeError::TooManyVlanTags));
                }
                let (Some(tci), Some(inner)) = (be16(data, at), be16(data, at + 2)) else {
                    return Err(malformed(DecodeError::TruncatedLink));
                };
                // The outermost tag names the VLAN the frame was seen on.
                outside.vlan.get_or_insert(tci & 0x0fff);
                et = inner;
                at += 4;
            }
            ETHERTYPE_ARP => return Err(Decoded::Other(OtherProto::Arp)),
            // PPPoE session: version/type, code, session id, length, then PPP.
            ETHERTYPE_PPPOE_SESSION => {
                outside.enter(EncapKind::Pppoe)?;
                if data.len() < at + 8 {
                    return Err(malformed(DecodeError::PppoeTruncated));
                }
                return ppp(data, at + 6, outside);
            }
            // I-TAG (priority, flags, 24-bit service id), then the customer's
            // destination and source MACs and EtherType.
            ETHERTYPE_PBB => {
                outside.enter(EncapKind::Pbb)?;
                et = be16(data, at + 4 + 12).ok_or(malformed(DecodeError::TruncatedLink))?;
                outside.l2_group = group_mac(data, at + 4);
                at += 4 + 14;
            }
            // E-TAG: priority, ingress and destination E-CIDs (6 bytes), then
            // the EtherType of the frame itself.
            ETHERTYPE_ETAG => {
                outside.enter(EncapKind::Etag)?;
                et = be16(data, at + 6).ok_or(malformed(DecodeError::TruncatedLink))?;
                at += 8;
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => {
                outside.enter(EncapKind::Mpls)?;
                at = mpls_payload(data, at)?;
                // No EtherType after the stack: the first nibble tells.
                match data.get(at).map(|b| b >> 4) {
                    Some(4) => return Ok(L3 { net: Net::V4, at }),
                    Some(6) => return Ok(L3 { net: Net::V6, at }),
                    // A pseudowire control word (RFC 4385), then an Ethernet frame.
                    Some(0) => {
                        et =
                            be16(data, at + 4 + 12).ok_or(malformed(DecodeError::MplsTruncated))?;
                        outside.l2_group = group_mac(data, at + 4);
                        at += 4 + 14;
                    }
                    Some(_) => return Err(Decoded::Other(OtherProto::EtherType(et))),
                    None => return Err(malformed(DecodeError::MplsTruncated)),
                }
            }
            // An 802.3 length: an LLC header follows; SNAP carries an EtherType.
            0..=0x05ff => {
                let llc = data.get(at..at + 3);
                if llc == Some(&[0xaa, 0xaa, 0x03][..]) {
                    et = be16(data, at + 6).ok_or(malformed(DecodeError::TruncatedLink))?;
                    at += 8;
                } else {
                    return Err(Decoded::Other(OtherProto::Llc));
                }
            }
            other => return Err(Decoded::Other(OtherProto::EtherType(other))),
        }
    }
}

/// Skips the MPLS label stack at `at` (4 bytes a label, until the one with
/// the bottom-of-stack bit) and returns where its payload starts.
fn mpls_payload(data: &[u8], mut at: usize) -> Result<usize, Decoded> {
    loop {
        let Some(&[_, _, tc_s, _]) = data.get(at..at + 4) else {
            return Err(malformed(DecodeError::MplsTruncated));
        };
        at += 4;
        if tc_s & 0x01 != 0 {
            return Ok(at);
        }
    }
}

//! Tunnels entered from an IP packet: GRE version 0 (carrying IP, MPLS, PPP,
//! an Ethernet frame, ERSPAN type I/II/III or a WCCP redirect), GRE version 1
//! (PPTP, carrying PPP), GRE in UDP (port 4754), VXLAN (UDP 4789), Geneve (UDP
//! 6081) and IP-in-IP (IP protocols 4 and 41). MPLS, PPPoE, PBB and E-tags
//! start from an EtherType and are walked in `link.rs`, as is PPP.
//!
//! What is entered, and why:
//! - VXLAN, Geneve and GRE in UDP are recognised by the destination port only
//!   when the header agrees (VXLAN's I flag, RFC 7348; Geneve version 0, RFC
//!   8926; GRE version 0 with no bit set that RFC 2784 / 2890 keep zero), as
//!   Zeek does. Another datagram to 4789, 6081 or 4754 stays a UDP flow, which
//!   the matrix then judges like any other; a header that agrees but is cut
//!   short is malformed (`vxlan_truncated`), rather than an outer flow nobody
//!   sent.
//! - The outer datagram of a VXLAN, Geneve or GRE-in-UDP packet is not a flow
//!   of its own: like GRE's outer IP header it is the tunnel (often the
//!   mirroring itself), and the flows the matrix speaks about are inside.
//! - PPTP's GRE is entered only for a PPP frame (an acknowledgment alone
//!   stays `gre`); its PPP is often compressed or encrypted (MPPE), and is
//!   then counted as `ppp_compressed` among the other protocols.
//! - RFC 1701 routing fields (deprecated by RFC 2784) are not entered: such
//!   packets stay `gre` among the other protocols, as do GRE versions above 1.
//! - Only unfragmented outer packets are entered (see `ip.rs`): a fragment's
//!   tunnel header may be incomplete, and later fragments have none.

use super::ip::IpOut;
use super::link::{self, be16, Net, L3};
use super::{DecodeError, Decoded, EncapKind, OtherProto, Outside};

const PROTO_IPIP: u8 = 4;
const PROTO_UDP: u8 = 17;
const PROTO_IPV6: u8 = 41;
const PROTO_GRE: u8 = 47;

const VXLAN_PORT: u16 = 4789;
const GENEVE_PORT: u16 = 6081;
const GRE_IN_UDP_PORT: u16 = 4754;

const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
const GRE_VERSION: u16 = 0x0007;
/// PPTP's acknowledgment number is present (GRE version 1).
const GRE_ACK: u16 = 0x0080;
/// What RFC 2784 and 2890 keep zero in version 0: routing, strict source
/// route, recursion, flags, version.
const GRE_V0_ZERO: u16 = 0x4fff;

/// Transparent Ethernet bridging: an Ethernet frame follows.
const TYPE_TEB: u16 = 0x6558;
/// ERSPAN type II, and type I when GRE has no sequence number.
const TYPE_ERSPAN_2: u16 = 0x88be;
const TYPE_ERSPAN_3: u16 = 0x22eb;
const TYPE_WCCP: u16 = 0x883e;
const TYPE_PPP: u16 = 0x880b;

/// The packet inside a tunnel: where its IP header starts.
pub(super) struct Inner<'a> {
    pub net: Net,
    pub bytes: &'a [u8],
}

/// `Ok(None)`: not a tunnel, the IP packet is the answer. `Err`: the tunnel
/// held something that ends decoding here (not IP, or malformed).
type Entered<'a> = Result<Option<Inner<'a>>, Decoded>;

/// Enters the tunnel that the IP packet `ip` is, if it is one, recording the
/// layers in `outside`.
#[inline]
pub(super) fn inner<'a>(ip: &IpOut<'a>, outside: &mut Outside) -> Entered<'a> {
    let Some((proto, b)) = ip.payload else {
        return Ok(None);
    };
    match (proto, ip.decoded) {
        (PROTO_GRE, _) => gre(b, EncapKind::Gre, outside).map(Some),
        (PROTO_IPIP, _) => ip_in_ip(Net::V4, b, outside),
        (PROTO_IPV6, _) => ip_in_ip(Net::V6, b, outside),
        (PROTO_UDP, Decoded::Packet(udp)) => {
            let data = b.get(8..).unwrap_or_default();
            match udp.dst_port {
                VXLAN_PORT => vxlan(data, outside),
                GENEVE_PORT => geneve(data, outside),
                GRE_IN_UDP_PORT if be16(data, 0).is_some_and(|f| f & GRE_V0_ZERO == 0) => {
                    gre(data, EncapKind::GreInUdp, outside).map(Some)
                }
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

fn ip_in_ip<'a>(net: Net, b: &'a [u8], outside: &mut Outside) -> Entered<'a> {
    outside.enter(EncapKind::IpInIp)?;
    Ok(Some(Inner { net, bytes: b }))
}

fn malformed(e: DecodeError) -> Decoded {
    Decoded::Malformed(e)
}

fn at_l3(b: &[u8], l3: L3) -> Inner<'_> {
    Inner {
        net: l3.net,
        bytes: b.get(l3.at..).unwrap_or_default(),
    }
}

/// An Ethernet frame at `at`, carried by layer `kind`: a frame cut before the
/// end of its Ethernet header is that layer's fault (`kind.truncated()`).
fn frame<'a>(
    b: &'a [u8],
    at: usize,
    kind: EncapKind,
    outside: &mut Outside,
) -> Result<Inner<'a>, Decoded> {
    if b.len() < at + 14 {
        return Err(malformed(kind.truncated()));
    }
    Ok(at_l3(b, link::ethernet(b, at, outside)?))
}

/// A payload named by an EtherType (GRE's and Geneve's protocol type): an
/// Ethernet frame for transparent Ethernet bridging, else whatever the
/// EtherType walk finds (IP, MPLS, VLAN tags, ARP …).
fn protocol_type<'a>(
    b: &'a [u8],
    at: usize,
    proto: u16,
    kind: EncapKind,
    outside: &mut Outside,
) -> Result<Inner<'a>, Decoded> {
    if proto == TYPE_TEB {
        return frame(b, at, kind, outside);
    }
    Ok(at_l3(b, link::ethertype(b, at, proto, outside)?))
}

/// A PPP frame at `at` inside GRE: address and control bytes (ff 03) unless
/// they were negotiated away, then the protocol field.
fn ppp_frame<'a>(b: &'a [u8], at: usize, outside: &mut Outside) -> Result<Inner<'a>, Decoded> {
    if b.len() <= at {
        return Err(malformed(DecodeError::GreTruncated));
    }
    let at = if b.get(at..at + 2) == Some(&[0xff, 0x03][..]) {
        at + 2
    } else {
        at
    };
    Ok(at_l3(b, link::ppp(b, at, outside)?))
}

/// GRE (RFC 2784 / 2890), entered as layer `kind`: flags and version,
/// protocol type, then a 4-byte word each for the checksum (C), key (K) and
/// sequence number (S) when flagged. Version 1 is PPTP's, see [`pptp`].
fn gre<'a>(b: &'a [u8], kind: EncapKind, outside: &mut Outside) -> Result<Inner<'a>, Decoded> {
    let (Some(flags), Some(proto)) = (be16(b, 0), be16(b, 2)) else {
        return Err(malformed(DecodeError::GreTruncated));
    };
    if flags & GRE_ROUTING == 0 && flags & GRE_VERSION == 1 {
        return pptp(b, flags, proto, outside);
    }
    if flags & (GRE_VERSION | GRE_ROUTING) != 0 {
        return Err(Decoded::Other(OtherProto::IpProto(PROTO_GRE)));
    }
    outside.enter(kind)?;
    let words = [GRE_CHECKSUM, GRE_KEY, GRE_SEQUENCE]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count();
    let at = 4 + 4 * words;
    if b.len() < at {
        return Err(malformed(DecodeError::GreTruncated));
    }
    match proto {
        // Type I has no ERSPAN header; Wireshark tells it by the missing sequence number.
        TYPE_ERSPAN_2 if flags & GRE_SEQUENCE == 0 => {
            outside.enter(EncapKind::Erspan1)?;
            frame(b, at, EncapKind::Erspan1, outside)
        }
        TYPE_ERSPAN_2 => erspan2(b, at, outside),
        TYPE_ERSPAN_3 => erspan3(b, at, outside),
        // A 4-byte redirect header comes before the IPv4 packet, unless the
        // packet starts at once (how Wireshark tells the two apart).
        TYPE_WCCP => {
            let at = if b.get(at).is_some_and(|v| v >> 4 == 4) {
                at
            } else {
                at + 4
            };
            Ok(Inner {
                net: Net::V4,
                bytes: b.get(at..).unwrap_or_default(),
            })
        }
        TYPE_PPP => ppp_frame(b, at, outside),
        _ => protocol_type(b, at, proto, kind, outside),
    }
}

/// PPTP's enhanced GRE (RFC 2637), version 1: no checksum, the key bit set
/// (a 2-byte payload length and a 2-byte call id), a sequence number (S) and
/// an acknowledgment number (A) when flagged, then `payload length` bytes of
/// PPP. A packet without payload is an acknowledgment alone: not entered.
fn pptp<'a>(
    b: &'a [u8],
    flags: u16,
    proto: u16,
    outside: &mut Outside,
) -> Result<Inner<'a>, Decoded> {
    let payload = be16(b, 4);
    if proto != TYPE_PPP || flags & (GRE_CHECKSUM | GRE_KEY) != GRE_KEY || payload == Some(0) {
        return Err(Decoded::Other(OtherProto::IpProto(PROTO_GRE)));
    }
    outside.enter(EncapKind::Pptp)?;
    let words = [GRE_SEQUENCE, GRE_ACK]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count();
    let at = 8 + 4 * words;
    if payload.is_none() || b.len() < at {
        return Err(malformed(DecodeError::GreTruncated));
    }
    ppp_frame(b, at, outside)
}

/// ERSPAN type II: version 1, VLAN, CoS/encap/truncated/session id, index: 8 bytes.
fn erspan2<'a>(b: &'a [u8], at: usize, outside: &mut Outside) -> Result<Inner<'a>, Decoded> {
    outside.enter(EncapKind::Erspan2)?;
    let Some(&version) = b.get(at).filter(|_| b.len() >= at + 8) else {
        return Err(malformed(DecodeError::ErspanTruncated));
    };
    if version >> 4 != 1 {
        return Err(Decoded::Other(OtherProto::EtherType(TYPE_ERSPAN_2)));
    }
    frame(b, at + 8, EncapKind::Erspan2, outside)
}

/// ERSPAN type III: version 2, VLAN, CoS/BSO/T/session id, timestamp, SGT, then
/// P/FT/hardware id/D/Gra/O: 12 bytes, and an 8-byte platform-specific
/// subheader when O is set. FT 0 is an Ethernet frame, FT 2 an IP packet.
fn erspan3<'a>(b: &'a [u8], at: usize, outside: &mut Outside) -> Result<Inner<'a>, Decoded> {
    outside.enter(EncapKind::Erspan3)?;
    let Some(h) = b.get(at..at + 12) else {
        return Err(malformed(DecodeError::ErspanTruncated));
    };
    if h[0] >> 4 != 2 {
        return Err(Decoded::Other(OtherProto::EtherType(TYPE_ERSPAN_3)));
    }
    let frame_type = (h[10] >> 2) & 0x1f;
    let optional = if h[11] & 0x01 != 0 { 8 } else { 0 };
    let at = at + 12 + optional;
    match frame_type {
        0 => frame(b, at, EncapKind::Erspan3, outside),
        2 => match b.get(at..) {
            Some(ip) if !ip.is_empty() => Ok(Inner {
                net: Net::ByVersion,
                bytes: ip,
            }),
            _ => Err(malformed(DecodeError::ErspanTruncated)),
        },
        _ => Err(Decoded::Other(OtherProto::EtherType(TYPE_ERSPAN_3))),
    }
}

/// VXLAN (RFC 7348) in a UDP payload: flags (I = 0x08), 3 reserved bytes,
/// 24-bit VNI, 1 reserved byte, then an Ethernet frame. Reserved bits are not
/// checked: some senders set them (a Suricata test capture does).
fn vxlan<'a>(b: &'a [u8], outside: &mut Outside) -> Entered<'a> {
    if b.first().is_none_or(|flags| flags & 0x08 == 0) {
        return Ok(None);
    }
    outside.enter(EncapKind::Vxlan)?;
    let Some(&[_, _, _, _, v0, v1, v2, _]) = b.get(..8) else {
        return Err(malformed(DecodeError::VxlanTruncated));
    };
    outside.encap.set_vni(u32::from_be_bytes([0, v0, v1, v2]));
    frame(b, 8, EncapKind::Vxlan, outside).map(Some)
}

/// Geneve (RFC 8926) in a UDP payload: version (2 bits) and options length
/// (6 bits, in 4-byte words), flags, protocol type, 24-bit VNI, reserved,
/// then the options and the payload the protocol type names.
fn geneve<'a>(b: &'a [u8], outside: &mut Outside) -> Entered<'a> {
    let Some(&first) = b.first().filter(|&&f| f >> 6 == 0) else {
        return Ok(None);
    };
    outside.enter(EncapKind::Geneve)?;
    let Some(&[_, _, p0, p1, v0, v1, v2, _]) = b.get(..8) else {
        return Err(malformed(DecodeError::GeneveTruncated));
    };
    let at = 8 + usize::from(first & 0x3f) * 4;
    if b.len() < at {
        return Err(malformed(DecodeError::GeneveTruncated));
    }
    outside.encap.set_vni(u32::from_be_bytes([0, v0, v1, v2]));
    let proto = u16::from_be_bytes([p0, p1]);
    protocol_type(b, at, proto, EncapKind::Geneve, outside).map(Some)
}

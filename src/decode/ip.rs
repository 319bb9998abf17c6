//! IPv4, IPv6 (with extension headers), TCP and UDP, parsed by hand from the
//! captured bytes. Lengths come from the headers, not from what was captured,
//! so a packet cut by the snaplen still reports its real sizes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::transport::Transport;

use super::app::{identify, AppSeen};
use super::{DecodeError, Decoded, FirstFragment, FragmentMeta, OtherProto, Outside, PacketMeta};

/// Most IPv6 extension headers followed before the packet is called malformed.
pub const MAX_IPV6_EXT_HEADERS: usize = 16;

const PROTO_HOPOPTS: u8 = 0;
const PROTO_ICMP: u8 = 1;
const PROTO_IGMP: u8 = 2;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ROUTING: u8 = 43;
const PROTO_FRAGMENT: u8 = 44;
const PROTO_AH: u8 = 51;
const PROTO_ICMPV6: u8 = 58;
const PROTO_DSTOPTS: u8 = 60;
const PROTO_MOBILITY: u8 = 135;
const PROTO_HIP: u8 = 139;
const PROTO_SHIM6: u8 = 140;

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => u32::from_be_bytes([a, c, d, e]),
        _ => 0,
    }
}

fn transport_of(proto: u8) -> Option<Transport> {
    match proto {
        PROTO_TCP => Some(Transport::Tcp),
        PROTO_UDP => Some(Transport::Udp),
        _ => None,
    }
}

/// What a non-TCP/UDP protocol number is counted as.
fn other_ip(proto: u8) -> OtherProto {
    match proto {
        PROTO_ICMP => OtherProto::Icmp,
        PROTO_IGMP => OtherProto::Igmp,
        PROTO_ICMPV6 => OtherProto::Icmpv6,
        p => OtherProto::IpProto(p),
    }
}

/// The layer-4 header: ports, flags, payload length.
struct L4 {
    src_port: u16,
    dst_port: u16,
    tcp_flags: u8,
    payload_len: u32,
}

/// Parses the TCP or UDP header at the start of `l4` (captured bytes), of
/// which the IP header says `claimed` bytes exist.
#[inline]
fn layer4(t: Transport, l4: &[u8], claimed: usize) -> Result<L4, DecodeError> {
    match t {
        Transport::Tcp => {
            // Ports, sequence and ack numbers, data offset and flags: enough to
            // classify even when the snaplen cut the options.
            if claimed < 20 {
                return Err(DecodeError::BadTcpHeaderLen);
            }
            if l4.len() < 14 {
                return Err(DecodeError::TruncatedTcp);
            }
            let hdr = usize::from(l4[12] >> 4) * 4;
            if hdr < 20 || hdr > claimed {
                return Err(DecodeError::BadTcpHeaderLen);
            }
            Ok(L4 {
                src_port: be16(l4, 0),
                dst_port: be16(l4, 2),
                tcp_flags: l4[13],
                payload_len: (claimed - hdr) as u32,
            })
        }
        Transport::Udp => {
            if claimed < 8 {
                return Err(DecodeError::BadUdpLength);
            }
            if l4.len() < 8 {
                return Err(DecodeError::TruncatedUdp);
            }
            Ok(L4 {
                src_port: be16(l4, 0),
                dst_port: be16(l4, 2),
                tcp_flags: 0,
                payload_len: (claimed - 8) as u32,
            })
        }
    }
}

/// The guess for the payload between the header (`hdr` bytes) and the end
/// the IP header claims (Ethernet padding is not payload). Fewer than
/// [`MIN_GUESS_BYTES`] bytes (a keep-alive, a NAT probe) tell nothing.
pub(super) fn guess(t: Transport, l4: &[u8], hdr: usize, claimed: usize) -> Option<AppSeen> {
    let payload = payload_bytes(l4, hdr, claimed)?;
    Some(identify(t, payload, claimed - hdr))
}

/// The captured payload after a layer-4 header of `hdr` bytes, cut at the
/// `claimed` end; `None` when it is too short to tell anything.
pub(super) fn payload_bytes(l4: &[u8], hdr: usize, claimed: usize) -> Option<&[u8]> {
    let payload = l4.get(hdr..claimed.min(l4.len()))?;
    (payload.len() >= MIN_GUESS_BYTES).then_some(payload)
}

/// Shorter payloads get no protocol guess.
const MIN_GUESS_BYTES: usize = 8;

/// The ports of a first fragment. Unlike [`layer4`] this accepts a layer-4
/// header split across fragments (a "tiny fragment"): the ports need only 4
/// bytes; flags are 0 when the fragment ends before them. A TCP data offset
/// that is there must still be at least 5 words, as in [`layer4`].
fn first_fragment(t: Transport, l4: &[u8], claimed: usize) -> Result<FirstFragment, DecodeError> {
    if l4.len() < 4 || claimed < 4 {
        return Err(match t {
            Transport::Tcp => DecodeError::TruncatedTcp,
            Transport::Udp => DecodeError::TruncatedUdp,
        });
    }
    let (tcp_flags, hdr) = match t {
        Transport::Tcp => {
            let hdr = match l4.get(12).filter(|_| claimed > 12) {
                Some(&o) if o >> 4 < 5 => return Err(DecodeError::BadTcpHeaderLen),
                Some(&o) => usize::from(o >> 4) * 4,
                None => 20,
            };
            let flags = if l4.len() >= 14 && claimed >= 14 {
                l4[13]
            } else {
                0
            };
            (flags, hdr)
        }
        Transport::Udp => (0, 8),
    };
    Ok(FirstFragment {
        transport: t,
        src_port: be16(l4, 0),
        dst_port: be16(l4, 2),
        tcp_flags,
        payload_len: claimed.saturating_sub(hdr) as u32,
        app: guess(t, l4, hdr, claimed),
    })
}

/// What an IP header led to.
pub(super) struct IpOut<'a> {
    pub decoded: Decoded,
    /// For a packet that is not a fragment: its protocol (after any IPv6
    /// extension headers) and the captured bytes after the IP headers, cut at
    /// the IP length. This is where a tunnel's header would start.
    pub payload: Option<(u8, &'a [u8])>,
}

impl IpOut<'_> {
    fn done(decoded: Decoded) -> Self {
        IpOut {
            decoded,
            payload: None,
        }
    }
}

/// Common tail of IPv4 and IPv6: the bytes after the IP headers.
struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    ip_len: u32,
    outside: Outside,
    /// Captured bytes after all IP headers, cut at the IP length.
    l4: &'a [u8],
    /// Bytes after all IP headers according to the IP header.
    claimed: usize,
}

impl<'a> Ip<'a> {
    /// A whole (unfragmented) packet of protocol `proto`.
    #[inline]
    fn whole(&self, proto: u8) -> IpOut<'a> {
        let decoded = match transport_of(proto) {
            Some(t) => self.packet(t),
            None => Decoded::Other(other_ip(proto)),
        };
        IpOut {
            decoded,
            payload: Some((proto, self.l4)),
        }
    }

    #[inline]
    fn packet(&self, t: Transport) -> Decoded {
        match layer4(t, self.l4, self.claimed) {
            Ok(l4) => Decoded::Packet(PacketMeta {
                src: self.src,
                dst: self.dst,
                src_port: l4.src_port,
                dst_port: l4.dst_port,
                transport: t,
                tcp_flags: l4.tcp_flags,
                payload_len: l4.payload_len,
                vlan: self.outside.vlan,
                encap: self.outside.encap,
                l2_group: self.outside.l2_group,
                app: None,
            }),
            Err(e) => Decoded::Malformed(e),
        }
    }

    fn fragment(&self, id: u32, proto: u8, frag_offset: u32, more: bool, l4: u8) -> Decoded {
        let first = if frag_offset == 0 {
            let Some(t) = transport_of(l4) else {
                return Decoded::Other(other_ip(l4));
            };
            match first_fragment(t, self.l4, self.claimed) {
                Ok(h) => Some(h),
                Err(e) => return Decoded::Malformed(e),
            }
        } else {
            None
        };
        Decoded::Fragment(FragmentMeta {
            src: self.src,
            dst: self.dst,
            id,
            proto,
            frag_offset,
            more_fragments: more,
            ip_len: self.ip_len,
            payload_len: self.claimed as u32,
            vlan: self.outside.vlan,
            encap: self.outside.encap,
            l2_group: self.outside.l2_group,
            first,
        })
    }
}

/// IPv4 at the start of `b`.
#[inline]
pub(super) fn ipv4(b: &[u8], outside: Outside) -> IpOut<'_> {
    let malformed = |e| IpOut::done(Decoded::Malformed(e));
    let Some(&first) = b.first() else {
        return malformed(DecodeError::TruncatedIp);
    };
    if first >> 4 != 4 {
        return malformed(DecodeError::BadIpVersion);
    }
    if b.len() < 20 {
        return malformed(DecodeError::TruncatedIp);
    }
    let hdr = usize::from(first & 0x0f) * 4;
    if hdr < 20 {
        return malformed(DecodeError::BadIpHeaderLen);
    }
    if b.len() < hdr {
        return malformed(DecodeError::TruncatedIp);
    }
    let total = usize::from(be16(b, 2));
    // A total length of 0 is what Linux shows for TCP segmentation offload:
    // the packet is as long as what was captured.
    let ip_len = if total == 0 { b.len() } else { total };
    if ip_len < hdr {
        return malformed(DecodeError::BadIpLength);
    }
    let flags_offset = be16(b, 6);
    let more = flags_offset & 0x2000 != 0;
    let frag_offset = u32::from(flags_offset & 0x1fff) * 8;
    let proto = b[9];
    let ip = Ip {
        src: IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])),
        dst: IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19])),
        ip_len: ip_len as u32,
        outside,
        l4: b.get(hdr..ip_len.min(b.len())).unwrap_or_default(),
        claimed: ip_len - hdr,
    };
    if more || frag_offset != 0 {
        if frag_offset != 0 && transport_of(proto).is_none() {
            return IpOut::done(Decoded::Other(other_ip(proto)));
        }
        return IpOut::done(ip.fragment(u32::from(be16(b, 4)), proto, frag_offset, more, proto));
    }
    ip.whole(proto)
}

/// IPv6 at the start of `b`.
pub(super) fn ipv6(b: &[u8], outside: Outside) -> IpOut<'_> {
    let malformed = |e| IpOut::done(Decoded::Malformed(e));
    let Some(&first) = b.first() else {
        return malformed(DecodeError::TruncatedIp);
    };
    if first >> 4 != 6 {
        return malformed(DecodeError::BadIpVersion);
    }
    if b.len() < 40 {
        return malformed(DecodeError::TruncatedIp);
    }
    let payload = usize::from(be16(b, 4));
    // Payload length 0: a jumbogram or segmentation offload; use what was captured.
    let ip_len = if payload == 0 { b.len() } else { 40 + payload };
    let end = ip_len.min(b.len());
    let addr = |at: usize| {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    let (src, dst) = (addr(8), addr(24));

    // Walk the extension headers; `at` is where header `next` starts.
    let mut next = b[6];
    let mut at = 40usize;
    let mut frag: Option<(u32, u8, u32, bool)> = None;
    let mut walked = 0usize;
    loop {
        let len = match next {
            PROTO_HOPOPTS | PROTO_ROUTING | PROTO_DSTOPTS | PROTO_MOBILITY | PROTO_HIP
            | PROTO_SHIM6 => b.get(at + 1).map(|&l| (usize::from(l) + 1) * 8),
            PROTO_AH => b.get(at + 1).map(|&l| (usize::from(l) + 2) * 4),
            PROTO_FRAGMENT => Some(8),
            _ => break,
        };
        walked += 1;
        if walked > MAX_IPV6_EXT_HEADERS {
            return malformed(DecodeError::TooManyIpExt);
        }
        let Some(len) = len.filter(|&l| at + l <= end) else {
            // Beyond the IP length is a lie in the header; beyond the capture a cut.
            let reason = if at + 2 > ip_len || len.is_some_and(|l| at + l > ip_len) {
                DecodeError::BadIpLength
            } else {
                DecodeError::TruncatedIpExt
            };
            return malformed(reason);
        };
        let header_next = b[at];
        if next == PROTO_FRAGMENT {
            let fo = be16(b, at + 2);
            let offset = u32::from(fo >> 3) * 8;
            let more = fo & 1 != 0;
            // An atomic fragment (offset 0, no more) is a whole packet.
            if offset != 0 || more {
                frag = Some((be32(b, at + 4), header_next, offset, more));
            }
            if offset != 0 {
                // The rest is the middle of a datagram: nothing more to parse.
                next = header_next;
                at += len;
                break;
            }
        }
        next = header_next;
        at += len;
    }

    let ip = Ip {
        src,
        dst,
        ip_len: ip_len as u32,
        outside,
        l4: b.get(at..end).unwrap_or_default(),
        claimed: ip_len.saturating_sub(at),
    };
    match frag {
        Some((id, proto, offset, more)) => {
            if offset != 0 && transport_of(proto).is_none() && !is_ext_header(proto) {
                return IpOut::done(Decoded::Other(other_ip(proto)));
            }
            IpOut::done(ip.fragment(id, proto, offset, more, next))
        }
        None => ip.whole(next),
    }
}

fn is_ext_header(proto: u8) -> bool {
    matches!(
        proto,
        PROTO_HOPOPTS
            | PROTO_ROUTING
            | PROTO_DSTOPTS
            | PROTO_AH
            | PROTO_MOBILITY
            | PROTO_HIP
            | PROTO_SHIM6
    )
}

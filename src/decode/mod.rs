//! Bytes to a small `Copy` record: the link layer is stripped, the IP and
//! TCP/UDP headers are read, and the result is a [`Decoded`].
//!
//! [`decode`] is pure and does not allocate. Fragmented datagrams need state
//! (later fragments carry no ports), which the bounded [`Defragmenter`] keeps.
//! A packet that cannot be decoded is not an error to propagate: it is a
//! [`DecodeError`] reason, to be counted.
//!
//! Link types: Ethernet (with 802.1Q / QinQ tags, LLC/SNAP and PPPoE sessions),
//! Linux cooked SLL and SLL2, raw IP (101, and DLT 12/14), IPv4 (228), IPv6
//! (229), BSD NULL loopback (0), OpenBSD LOOP (108), PPP (9, 50) and Linux
//! NFLOG (239).
//!
//! Tunnels are entered and the packet inside is what gets decoded: GRE (with
//! ERSPAN I/II/III, transparent Ethernet bridging, WCCP redirects and PPP),
//! PPTP's GRE, GRE in UDP, VXLAN, Geneve, IP-in-IP, MPLS (also inside PPP),
//! PPPoE sessions, 802.1ah PBB and 802.1BR E-tags (see `tunnel.rs` and
//! `link.rs`).
//! The layers entered are recorded in the packet's [`Encap`], at most
//! [`MAX_ENCAP_DEPTH`] of them. Fragmented outer packets are not entered: a
//! tunnel is read only when its whole header is in one unfragmented packet.

mod app;
mod defrag;
mod encap;
mod ip;
mod link;
mod tunnel;

use std::fmt;
use std::net::IpAddr;

use crate::transport::Transport;

pub use app::{identify, AppGuess, AppSeen, RtpFollow, RtpMark, SenderRole};
pub use defrag::Defragmenter;
pub use encap::{Encap, EncapKind, MAX_ENCAP_DEPTH};
pub use ip::MAX_IPV6_EXT_HEADERS;
pub use link::{link_type_name, link_type_supported, MAX_VLAN_DEPTH};

/// A TCP or UDP packet, ready for the flow table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
    /// TCP flags byte (CWR ECE URG ACK PSH RST SYN FIN); 0 for UDP and for
    /// non-first fragments.
    pub tcp_flags: u8,
    /// Layer-4 payload bytes, from the IP header's length (not the captured bytes).
    pub payload_len: u32,
    /// The outermost 802.1Q / 802.1ad VLAN id, if tagged (in a tunnel: the
    /// first tag met from the outside in).
    pub vlan: Option<u16>,
    /// The tunnels the packet was found in; the addresses and ports above
    /// are those of the innermost packet.
    pub encap: Encap,
    /// Sent to a link-layer group address (broadcast or multicast): the
    /// group bit of the innermost Ethernet destination MAC, or on Linux
    /// cooked captures (SLL, SLL2) a broadcast or multicast packet type.
    /// False where the link has no destination address (raw IP, PPP, …) and
    /// for a packet inside an IP tunnel that carries no Ethernet frame. A
    /// broadcast destination is never a client.
    pub l2_group: bool,
    /// What the captured payload looks like, and what it says of its sender
    /// (`None`: no payload captured, or a reassembled fragment). Flows look
    /// at it for their first packets.
    pub app: Option<AppSeen>,
}

/// TCP flag bits of [`PacketMeta::tcp_flags`].
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// What the first fragment of a datagram tells about the whole datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstFragment {
    pub transport: Transport,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    /// Layer-4 payload bytes in this first fragment.
    pub payload_len: u32,
    /// What the start of the payload looks like (length checks see this
    /// fragment's bytes only, so protocols told by their lengths stay unknown).
    pub app: Option<AppSeen>,
}

/// One fragment of a TCP or UDP datagram (IPv4, or IPv6 with a Fragment header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// Protocol number that is the same in every fragment: the IPv4 protocol,
    /// or the Next Header of the IPv6 Fragment header.
    pub proto: u8,
    /// Offset of this fragment in the datagram, in bytes.
    pub frag_offset: u32,
    pub more_fragments: bool,
    /// Bytes of this fragment's IP packet, from the IP header.
    pub ip_len: u32,
    /// Bytes of this fragment after all IP headers, from the IP header.
    pub payload_len: u32,
    pub vlan: Option<u16>,
    pub encap: Encap,
    /// As [`PacketMeta::l2_group`].
    pub l2_group: bool,
    /// Set for the first fragment (offset 0): the ports.
    pub first: Option<FirstFragment>,
}

/// What a packet turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// TCP or UDP with ports.
    Packet(PacketMeta),
    /// A fragment of a TCP or UDP datagram; [`Defragmenter::resolve`] turns it
    /// into a `Packet` (or a `FragmentWithoutFirst` reason).
    Fragment(FragmentMeta),
    /// Not TCP/UDP: counted by kind, not classified.
    Other(OtherProto),
    /// Could not be decoded, and why.
    Malformed(DecodeError),
}

/// The kind of a packet that is not TCP or UDP, for statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OtherProto {
    Arp,
    Icmp,
    Icmpv6,
    Igmp,
    /// 802.3 frame with an LLC header that is not SNAP (STP, NetBIOS, …).
    Llc,
    /// Another IP protocol number.
    IpProto(u8),
    /// Another EtherType.
    EtherType(u16),
    /// A NULL/LOOP address family other than IPv4 or IPv6.
    AddressFamily(u32),
    /// A PPP protocol other than IPv4, IPv6 or MPLS (LCP, IPCP, PAP,
    /// compressed datagrams, …).
    PppProto(u16),
}

impl OtherProto {
    /// A stable snake_case key for the well-known kinds, `None` for a number
    /// without a name here (then use [`OtherProto::family`] and [`OtherProto::code`],
    /// or `Display`, which writes e.g. `ip_proto_253`).
    pub fn name(&self) -> Option<&'static str> {
        Some(match *self {
            OtherProto::Arp => "arp",
            OtherProto::Icmp => "icmp",
            OtherProto::Icmpv6 => "icmpv6",
            OtherProto::Igmp => "igmp",
            OtherProto::Llc => "llc",
            OtherProto::IpProto(p) => match p {
                4 => "ipip",
                41 => "ipv6_in_ip",
                47 => "gre",
                50 => "esp",
                51 => "ah",
                59 => "ipv6_no_next",
                89 => "ospf",
                103 => "pim",
                112 => "vrrp",
                115 => "l2tp",
                132 => "sctp",
                136 => "udplite",
                _ => return None,
            },
            OtherProto::EtherType(e) => match e {
                0x8035 => "rarp",
                0x809b => "appletalk",
                0x8137 => "ipx",
                0x22f0 => "avtp",
                0x8809 => "slow_protocols",
                0x8847 => "mpls",
                0x8848 => "mpls_multicast",
                0x8863 => "pppoe_discovery",
                0x8864 => "pppoe_session",
                0x886f => "msnlb",
                0x888e => "eapol",
                0x88cc => "lldp",
                0x88e5 => "macsec",
                0x88f7 => "ptp",
                0x8902 => "cfm",
                0x9000 => "loopback",
                _ => return None,
            },
            OtherProto::PppProto(p) => match p {
                0xc021 => "ppp_lcp",
                0x8021 => "ppp_ipcp",
                0x8057 => "ppp_ipv6cp",
                0xc023 => "ppp_pap",
                0xc223 => "ppp_chap",
                0x80fd => "ppp_ccp",
                // Compressed or encrypted (MPPE): what PPTP usually carries.
                0x00fd => "ppp_compressed",
                _ => return None,
            },
            OtherProto::AddressFamily(_) => return None,
        })
    }

    /// The numbering the kind comes from: `"ip_proto"`, `"ethertype"`,
    /// `"address_family"`, or the name itself for the fixed kinds.
    pub fn family(&self) -> &'static str {
        match self {
            OtherProto::IpProto(_) => "ip_proto",
            OtherProto::EtherType(_) => "ethertype",
            OtherProto::AddressFamily(_) => "address_family",
            OtherProto::PppProto(_) => "ppp_proto",
            OtherProto::Arp => "arp",
            OtherProto::Icmp => "icmp",
            OtherProto::Icmpv6 => "icmpv6",
            OtherProto::Igmp => "igmp",
            OtherProto::Llc => "llc",
        }
    }

    /// The number, for the numbered kinds.
    pub fn code(&self) -> Option<u32> {
        match *self {
            OtherProto::IpProto(p) => Some(u32::from(p)),
            OtherProto::EtherType(e) => Some(u32::from(e)),
            OtherProto::AddressFamily(a) => Some(a),
            OtherProto::PppProto(p) => Some(u32::from(p)),
            _ => None,
        }
    }
}

impl fmt::Display for OtherProto {
    /// The name if there is one, else `ip_proto_253`, `ethertype_0x88b5`,
    /// `address_family_7`. Writing does not allocate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.name() {
            return f.write_str(name);
        }
        match *self {
            OtherProto::EtherType(e) => write!(f, "ethertype_{e:#06x}"),
            OtherProto::PppProto(p) => write!(f, "ppp_proto_{p:#06x}"),
            _ => write!(f, "{}_{}", self.family(), self.code().unwrap_or(0)),
        }
    }
}

/// Why a packet could not be decoded. Counted, never propagated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecodeError {
    UnsupportedLinkType,
    TruncatedLink,
    TooManyVlanTags,
    /// Cut inside a GRE header (with its optional fields), or before the
    /// frame a GRE transparent-Ethernet payload promises.
    GreTruncated,
    /// Cut inside an ERSPAN header or the Ethernet header after it.
    ErspanTruncated,
    /// A VXLAN header (I flag set) cut short, or the Ethernet header after it.
    VxlanTruncated,
    /// A Geneve header (with its options) cut short, or the frame after it.
    GeneveTruncated,
    /// Cut inside an MPLS label stack, or right after its bottom label.
    MplsTruncated,
    /// Cut inside a PPPoE session header or its PPP protocol field.
    PppoeTruncated,
    /// More than [`MAX_ENCAP_DEPTH`] tunnels nested in one frame.
    TooManyEncapLayers,
    TruncatedIp,
    BadIpVersion,
    BadIpHeaderLen,
    /// The IP length field is smaller than the headers it must hold.
    BadIpLength,
    TruncatedIpExt,
    TooManyIpExt,
    TruncatedTcp,
    BadTcpHeaderLen,
    TruncatedUdp,
    BadUdpLength,
    /// A later fragment whose first fragment was not seen (or was evicted).
    FragmentWithoutFirst,
}

impl DecodeError {
    /// Every reason, in [`DecodeError::index`] order (for counter arrays).
    pub const ALL: [DecodeError; 21] = [
        DecodeError::UnsupportedLinkType,
        DecodeError::TruncatedLink,
        DecodeError::TooManyVlanTags,
        DecodeError::GreTruncated,
        DecodeError::ErspanTruncated,
        DecodeError::VxlanTruncated,
        DecodeError::GeneveTruncated,
        DecodeError::MplsTruncated,
        DecodeError::PppoeTruncated,
        DecodeError::TooManyEncapLayers,
        DecodeError::TruncatedIp,
        DecodeError::BadIpVersion,
        DecodeError::BadIpHeaderLen,
        DecodeError::BadIpLength,
        DecodeError::TruncatedIpExt,
        DecodeError::TooManyIpExt,
        DecodeError::TruncatedTcp,
        DecodeError::BadTcpHeaderLen,
        DecodeError::TruncatedUdp,
        DecodeError::BadUdpLength,
        DecodeError::FragmentWithoutFirst,
    ];

    /// Dense index into [`DecodeError::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// snake_case key used in statistics.
    pub fn as_str(&self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinkType => "unsupported_link_type",
            DecodeError::TruncatedLink => "truncated_link",
            DecodeError::TooManyVlanTags => "too_many_vlan_tags",
            DecodeError::GreTruncated => "gre_truncated",
            DecodeError::ErspanTruncated => "erspan_truncated",
            DecodeError::VxlanTruncated => "vxlan_truncated",
            DecodeError::GeneveTruncated => "geneve_truncated",
            DecodeError::MplsTruncated => "mpls_truncated",
            DecodeError::PppoeTruncated => "pppoe_truncated",
            DecodeError::TooManyEncapLayers => "too_many_encap_layers",
            DecodeError::TruncatedIp => "truncated_ip",
            DecodeError::BadIpVersion => "bad_ip_version",
            DecodeError::BadIpHeaderLen => "bad_ip_header_len",
            DecodeError::BadIpLength => "bad_ip_length",
            DecodeError::TruncatedIpExt => "truncated_ip_ext",
            DecodeError::TooManyIpExt => "too_many_ip_ext",
            DecodeError::TruncatedTcp => "truncated_tcp",
            DecodeError::BadTcpHeaderLen => "bad_tcp_header_len",
            DecodeError::TruncatedUdp => "truncated_udp",
            DecodeError::BadUdpLength => "bad_udp_length",
            DecodeError::FragmentWithoutFirst => "fragment_without_first",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the layers around an IP header said about its packet.
#[derive(Clone, Copy, Debug, Default)]
struct Outside {
    vlan: Option<u16>,
    encap: Encap,
    /// The innermost link-layer destination is a group address.
    l2_group: bool,
}

impl Outside {
    /// Records a layer about to be entered; past the depth limit the frame is malformed.
    fn enter(&mut self, kind: EncapKind) -> Result<(), Decoded> {
        self.encap.push(kind).map_err(Decoded::Malformed)
    }
}

/// Decodes one captured frame of link type `link_type` (a `LINKTYPE_*` value).
/// Pure; does not allocate. [`decode_frame`] also tells the tunnels entered
/// when the frame is not TCP/UDP.
pub fn decode(link_type: u16, data: &[u8]) -> Decoded {
    decode_frame(link_type, data).0
}

/// Like [`decode`], and the tunnels entered whatever the frame turned out to
/// be (for a packet or fragment it equals their `encap`), for statistics.
#[inline]
pub fn decode_frame(link_type: u16, data: &[u8]) -> (Decoded, Encap) {
    let (mut decoded, encap, payload) = decode_lazy(link_type, data);
    if let Decoded::Packet(meta) = &mut decoded {
        meta.app = payload.identify(meta);
    }
    (decoded, encap)
}

/// Like [`decode_frame`], but a packet's payload is not looked at: its
/// `app` is `None`, and [`Payload::identify`] gives it when the caller wants
/// it. Flows look only at their first few payload packets, so the packet
/// path identifies those alone (see `pipeline::PayloadGate`).
#[inline]
pub fn decode_lazy(link_type: u16, data: &[u8]) -> (Decoded, Encap, Payload<'_>) {
    let mut outside = Outside::default();
    let (decoded, l4) = walk(link_type, data, &mut outside);
    (decoded, outside.encap, Payload { l4 })
}

/// The layer-4 bytes of a decoded packet (captured, cut at the IP length),
/// for its payload to be identified later.
#[derive(Clone, Copy, Debug)]
pub struct Payload<'a> {
    l4: &'a [u8],
}

impl<'a> Payload<'a> {
    /// The application payload of `meta`'s packet, when there are enough
    /// captured bytes to tell anything.
    pub fn bytes(&self, meta: &PacketMeta) -> Option<&'a [u8]> {
        let hdr = match meta.transport {
            Transport::Udp => 8,
            Transport::Tcp => usize::from(*self.l4.get(12)? >> 4) * 4,
        };
        ip::payload_bytes(self.l4, hdr, hdr + meta.payload_len as usize)
    }

    /// What `meta`'s payload looks like ([`identify`]).
    pub fn identify(&self, meta: &PacketMeta) -> Option<AppSeen> {
        let bytes = self.bytes(meta)?;
        Some(identify(meta.transport, bytes, meta.payload_len as usize))
    }
}

/// Where the outermost IP header starts in a frame of `link_type`, if it
/// carries IP at all (for `--dedup`, which identifies packets from there on).
pub fn network_offset(link_type: u16, data: &[u8]) -> Option<usize> {
    link::network(link_type, data, &mut Outside::default())
        .ok()
        .map(|l3| l3.at)
}

/// Link layer, then IP, then into tunnels for as long as there are any. Every
/// round enters one more layer, so [`MAX_ENCAP_DEPTH`] bounds the rounds.
/// With a packet, its layer-4 bytes (empty for anything else).
#[inline]
fn walk<'a>(link_type: u16, data: &'a [u8], outside: &mut Outside) -> (Decoded, &'a [u8]) {
    let l3 = match link::network(link_type, data, outside) {
        Ok(l3) => l3,
        Err(d) => return (d, &[]),
    };
    let mut net = l3.net;
    let mut b = data.get(l3.at..).unwrap_or_default();
    loop {
        let net_now = match net {
            link::Net::ByVersion => match b.first().map(|v| v >> 4) {
                Some(4) => link::Net::V4,
                Some(6) => link::Net::V6,
                Some(_) => return (Decoded::Malformed(DecodeError::BadIpVersion), &[]),
                None => return (Decoded::Malformed(DecodeError::TruncatedIp), &[]),
            },
            n => n,
        };
        let ip = match net_now {
            link::Net::V6 => ip::ipv6(b, *outside),
            _ => ip::ipv4(b, *outside),
        };
        // A packet inside an IP tunnel has a link-layer destination only
        // if the tunnel carries an Ethernet frame, which sets it again.
        outside.l2_group = false;
        match tunnel::inner(&ip, outside) {
            Ok(Some(inner)) => (net, b) = (inner.net, inner.bytes),
            Ok(None) => return (ip.decoded, ip.payload.map_or(&[][..], |(_, l4)| l4)),
            Err(d) => return (d, &[]),
        }
    }
}

#[cfg(test)]
mod tests;

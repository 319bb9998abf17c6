//! Decoder tests on literal frames (and a few built with etherparse's
//! `PacketBuilder` as a cross-check). Tunnels are in `tests/tunnel.rs`, PPP and
//! GRE in UDP in `tests/ppp.rs`, PBB and E-tags in `tests/bridging.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

mod bridging;
mod l2_group;
mod ppp;
mod tunnel;

const ETH_HDR_V4: [u8; 14] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // dst
    0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // src
    0x08, 0x00, // IPv4
];

/// IPv4 10.0.0.1 -> 10.0.0.2, TCP 1234 -> 80 SYN with an MSS option.
const IPV4_TCP_SYN: [u8; 44] = [
    0x45, 0x00, 0x00, 0x2c, // v4, ihl 5, total 44
    0x00, 0x01, 0x40, 0x00, // id 1, DF
    0x40, 0x06, 0x00, 0x00, // ttl 64, TCP, checksum (unchecked)
    10, 0, 0, 1, // src
    10, 0, 0, 2, // dst
    0x04, 0xd2, 0x00, 0x50, // 1234 -> 80
    0x00, 0x00, 0x00, 0x01, // seq
    0x00, 0x00, 0x00, 0x00, // ack
    0x60, 0x02, 0xff, 0xff, // doff 6 (24 bytes), SYN, window
    0x00, 0x00, 0x00, 0x00, // checksum, urgent
    0x02, 0x04, 0x05, 0xb4, // MSS 1460
];

/// IPv4 192.168.1.1 -> 192.168.1.2, UDP 5060 -> 5060 with 4 payload bytes.
const IPV4_UDP: [u8; 32] = [
    0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, //
    192, 168, 1, 1, 192, 168, 1, 2, //
    0x13, 0xc4, 0x13, 0xc4, 0x00, 0x0c, 0x00, 0x00, // 5060 -> 5060, len 12
    b'S', b'I', b'P', b'!',
];

/// IPv6 2001:db8::1 -> 2001:db8::2, UDP 53 -> 5353 with 2 payload bytes.
const IPV6_UDP: [u8; 50] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x0a, 17, 64, // payload 10, next UDP
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, //
    0x00, 0x35, 0x14, 0xe9, 0x00, 0x0a, 0x00, 0x00, // 53 -> 5353
    0xab, 0xcd,
];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

fn packet(d: Decoded) -> PacketMeta {
    match d {
        Decoded::Packet(p) => p,
        other => panic!("expected a packet, got {other:?}"),
    }
}

fn fragment(d: Decoded) -> FragmentMeta {
    match d {
        Decoded::Fragment(f) => f,
        other => panic!("expected a fragment, got {other:?}"),
    }
}

fn syn_meta(vlan: Option<u16>) -> PacketMeta {
    PacketMeta {
        src: v4(10, 0, 0, 1),
        dst: v4(10, 0, 0, 2),
        src_port: 1234,
        dst_port: 80,
        transport: Transport::Tcp,
        tcp_flags: tcp_flags::SYN,
        payload_len: 0,
        vlan,
        encap: Encap::NONE,
        l2_group: false,
        app: None,
    }
}

#[test]
fn ethernet_ipv4_tcp() {
    let frame = cat(&[&ETH_HDR_V4, &IPV4_TCP_SYN]);
    assert_eq!(decode(1, &frame), Decoded::Packet(syn_meta(None)));
}

#[test]
fn ethernet_padding_does_not_count_as_payload() {
    let frame = cat(&[&ETH_HDR_V4, &IPV4_TCP_SYN, &[0u8; 16]]);
    assert_eq!(packet(decode(1, &frame)).payload_len, 0);
}

#[test]
fn ethernet_ipv4_udp() {
    let frame = cat(&[&ETH_HDR_V4, &IPV4_UDP]);
    let p = packet(decode(1, &frame));
    assert_eq!(p.transport, Transport::Udp);
    assert_eq!((p.src, p.dst), (v4(192, 168, 1, 1), v4(192, 168, 1, 2)));
    assert_eq!((p.src_port, p.dst_port), (5060, 5060));
    assert_eq!((p.payload_len, p.tcp_flags), (4, 0));
}

#[test]
fn single_vlan() {
    let frame = cat(&[
        &ETH_HDR_V4[..12],
        &[0x81, 0x00, 0x20, 0x64, 0x08, 0x00], // PCP 1, VID 100, then IPv4
        &IPV4_TCP_SYN,
    ]);
    assert_eq!(decode(1, &frame), Decoded::Packet(syn_meta(Some(100))));
}

#[test]
fn qinq_records_the_outer_vlan() {
    for outer_tpid in [[0x88, 0xa8], [0x91, 0x00], [0x81, 0x00]] {
        let frame = cat(&[
            &ETH_HDR_V4[..12],
            &outer_tpid,
            &[0x00, 0x0a, 0x81, 0x00], // VID 10, inner TPID
            &[0x00, 0x14, 0x08, 0x00], // VID 20, IPv4
            &IPV4_TCP_SYN,
        ]);
        assert_eq!(decode(1, &frame), Decoded::Packet(syn_meta(Some(10))));
    }
}

#[test]
fn too_many_vlan_tags() {
    let mut frame = ETH_HDR_V4[..12].to_vec();
    for _ in 0..=MAX_VLAN_DEPTH {
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
    }
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&IPV4_TCP_SYN);
    // The last "TCI" is followed by IPv4: nine tags in all.
    assert_eq!(
        decode(1, &frame),
        Decoded::Malformed(DecodeError::TooManyVlanTags)
    );
}

#[test]
fn vlan_tag_cut_short() {
    let frame = cat(&[&ETH_HDR_V4[..12], &[0x81, 0x00, 0x00]]);
    assert_eq!(
        decode(1, &frame),
        Decoded::Malformed(DecodeError::TruncatedLink)
    );
}

#[test]
fn builder_cross_check_double_vlan_ipv6_udp() {
    use etherparse::{PacketBuilder, VlanId};
    let (Ok(outer), Ok(inner)) = (VlanId::try_new(300), VlanId::try_new(7)) else {
        panic!("valid VLAN ids");
    };
    let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
        .double_vlan(outer, inner)
        .ipv6([0x20; 16], [0x30; 16], 32)
        .udp(40000, 3478);
    let mut frame = Vec::new();
    builder
        .write(&mut frame, &[0u8; 20])
        .expect("writing to a Vec cannot fail");
    let p = packet(decode(1, &frame));
    assert_eq!(p.vlan, Some(300));
    assert_eq!((p.src_port, p.dst_port, p.payload_len), (40000, 3478, 20));
    assert_eq!(p.src, IpAddr::V6(Ipv6Addr::from([0x20; 16])));
}

#[test]
fn builder_cross_check_tcp_flags() {
    use etherparse::PacketBuilder;
    let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([172, 16, 0, 1], [172, 16, 0, 2], 64)
        .tcp(5061, 49152, 7, 1024)
        .ack(99)
        .psh()
        .fin();
    let mut frame = Vec::new();
    builder
        .write(&mut frame, b"BYE sip:x SIP/2.0")
        .expect("writing to a Vec cannot fail");
    let p = packet(decode(1, &frame));
    assert_eq!(
        p.tcp_flags,
        tcp_flags::ACK | tcp_flags::PSH | tcp_flags::FIN
    );
    assert_eq!(p.payload_len, 17);
}

#[test]
fn linux_sll() {
    let sll = [
        0x00, 0x00, // packet type: to us
        0x00, 0x01, // ARPHRD_ETHER
        0x00, 0x06, // address length
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x00, 0x00, // address
        0x08, 0x00, // IPv4
    ];
    let frame = cat(&[&sll, &IPV4_UDP]);
    assert_eq!(packet(decode(113, &frame)).dst_port, 5060);
    assert_eq!(
        decode(113, &sll[..10]),
        Decoded::Malformed(DecodeError::TruncatedLink)
    );
}

#[test]
fn linux_sll2() {
    let sll2 = [
        0x86, 0xdd, // IPv6
        0x00, 0x00, // reserved
        0x00, 0x00, 0x00, 0x02, // ifindex
        0x00, 0x01, // ARPHRD_ETHER
        0x04, // outgoing
        0x06, // address length
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x00, 0x00,
    ];
    let frame = cat(&[&sll2, &IPV6_UDP]);
    let p = packet(decode(276, &frame));
    assert_eq!((p.src, p.dst), (v6(1), v6(2)));
    assert_eq!((p.src_port, p.dst_port, p.payload_len), (53, 5353, 2));
}

#[test]
fn raw_ip_link_types_decide_by_version() {
    for lt in [101, 12, 14, 228, 229] {
        assert_eq!(decode(lt, &IPV4_TCP_SYN), Decoded::Packet(syn_meta(None)));
        assert_eq!(packet(decode(lt, &IPV6_UDP)).dst_port, 5353);
    }
    assert_eq!(
        decode(101, &[0x50, 0, 0, 0]),
        Decoded::Malformed(DecodeError::BadIpVersion)
    );
    assert_eq!(
        decode(101, &[]),
        Decoded::Malformed(DecodeError::TruncatedIp)
    );
}

#[test]
fn bsd_null_either_byte_order() {
    let le = cat(&[&[2, 0, 0, 0], &IPV4_TCP_SYN]);
    let be = cat(&[&[0, 0, 0, 2], &IPV4_TCP_SYN]);
    assert_eq!(decode(0, &le), Decoded::Packet(syn_meta(None)));
    assert_eq!(decode(0, &be), Decoded::Packet(syn_meta(None)));
    for af in [24u8, 28, 30] {
        let frame = cat(&[&[af, 0, 0, 0], &IPV6_UDP]);
        assert_eq!(packet(decode(0, &frame)).src, v6(1));
        let frame = cat(&[&[0, 0, 0, af], &IPV6_UDP]);
        assert_eq!(packet(decode(0, &frame)).src, v6(1));
    }
    assert_eq!(
        decode(0, &[7, 0, 0, 0, 0x45]),
        Decoded::Other(OtherProto::AddressFamily(7))
    );
    assert_eq!(
        decode(0, &[2, 0]),
        Decoded::Malformed(DecodeError::TruncatedLink)
    );
}

#[test]
fn openbsd_loop_is_network_order() {
    let frame = cat(&[&[0, 0, 0, 2], &IPV4_TCP_SYN]);
    assert_eq!(decode(108, &frame), Decoded::Packet(syn_meta(None)));
    let frame = cat(&[&[0, 0, 0, 24], &IPV6_UDP]);
    assert_eq!(packet(decode(108, &frame)).dst, v6(2));
    // Little-endian AF_INET is not AF_INET on LOOP.
    let frame = cat(&[&[2, 0, 0, 0], &IPV4_TCP_SYN]);
    assert!(matches!(decode(108, &frame), Decoded::Other(_)));
}

#[test]
fn unsupported_link_type() {
    assert_eq!(
        decode(160, &IPV4_TCP_SYN),
        Decoded::Malformed(DecodeError::UnsupportedLinkType)
    );
    assert!(!link_type_supported(160));
    for lt in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276] {
        assert!(link_type_supported(lt), "{lt}");
    }
    assert_eq!(link_type_name(1), "ethernet");
    assert_eq!(link_type_name(276), "linux_sll2");
    assert_eq!(link_type_name(4242), "unknown");
}

#[test]
fn arp_llc_and_snap() {
    let arp = cat(&[&ETH_HDR_V4[..12], &[0x08, 0x06], &[0u8; 28]]);
    assert_eq!(decode(1, &arp), Decoded::Other(OtherProto::Arp));
    // 802.3 length + SNAP header carrying ARP.
    let snap = cat(&[
        &ETH_HDR_V4[..12],
        &[0x00, 0x24, 0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00, 0x08, 0x06],
        &[0u8; 28],
    ]);
    assert_eq!(decode(1, &snap), Decoded::Other(OtherProto::Arp));
    // 802.3 length + STP LLC.
    let stp = cat(&[
        &ETH_HDR_V4[..12],
        &[0x00, 0x26, 0x42, 0x42, 0x03],
        &[0u8; 35],
    ]);
    assert_eq!(decode(1, &stp), Decoded::Other(OtherProto::Llc));
    let lldp = cat(&[&ETH_HDR_V4[..12], &[0x88, 0xcc], &[0u8; 20]]);
    assert_eq!(
        decode(1, &lldp),
        Decoded::Other(OtherProto::EtherType(0x88cc))
    );
}

#[test]
fn ipv4_options_are_skipped() {
    let ip = [
        0x46, 0x00, 0x00, 0x24, 0x00, 0x02, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, //
        10, 1, 1, 1, 10, 1, 1, 2, //
        0x94, 0x04, 0x00, 0x00, // router alert option
        0x00, 0x7b, 0x00, 0x7b, 0x00, 0x0c, 0x00, 0x00, // NTP 123 -> 123
        1, 2, 3, 4,
    ];
    let p = packet(decode(101, &ip));
    assert_eq!((p.src_port, p.dst_port, p.payload_len), (123, 123, 4));
}

#[test]
fn ipv4_malformed_headers() {
    let mut bad = IPV4_TCP_SYN;
    bad[0] = 0x44; // header length 16
    assert_eq!(
        decode(228, &bad),
        Decoded::Malformed(DecodeError::BadIpHeaderLen)
    );
    let mut bad = IPV4_TCP_SYN;
    bad[0] = 0x4f; // header length 60, only 44 bytes captured
    assert_eq!(
        decode(228, &bad),
        Decoded::Malformed(DecodeError::TruncatedIp)
    );
    let mut bad = IPV4_TCP_SYN;
    bad[3] = 0x10; // total length 16 < header
    assert_eq!(
        decode(228, &bad),
        Decoded::Malformed(DecodeError::BadIpLength)
    );
    assert_eq!(
        decode(228, &IPV4_TCP_SYN[..19]),
        Decoded::Malformed(DecodeError::TruncatedIp)
    );
    let frame = cat(&[&ETH_HDR_V4, &[0x65, 0x00]]);
    assert_eq!(
        decode(1, &frame),
        Decoded::Malformed(DecodeError::BadIpVersion)
    );
}

#[test]
fn tcp_and_udp_malformed() {
    assert_eq!(
        decode(101, &IPV4_TCP_SYN[..30]),
        Decoded::Malformed(DecodeError::TruncatedTcp)
    );
    let mut bad = IPV4_TCP_SYN;
    bad[32] = 0x40; // data offset 4 words
    assert_eq!(
        decode(101, &bad),
        Decoded::Malformed(DecodeError::BadTcpHeaderLen)
    );
    let mut bad = IPV4_TCP_SYN;
    bad[32] = 0xf0; // 60-byte header in a 24-byte segment
    assert_eq!(
        decode(101, &bad),
        Decoded::Malformed(DecodeError::BadTcpHeaderLen)
    );
    assert_eq!(
        decode(101, &IPV4_UDP[..25]),
        Decoded::Malformed(DecodeError::TruncatedUdp)
    );
    let mut bad = IPV4_UDP;
    bad[3] = 24; // IP says 4 bytes of UDP
    assert_eq!(
        decode(101, &bad),
        Decoded::Malformed(DecodeError::BadUdpLength)
    );
}

#[test]
fn snaplen_cut_packet_keeps_header_lengths() {
    let mut ip = IPV4_TCP_SYN;
    ip[2] = 0x05;
    ip[3] = 0xdc; // total length 1500, only 44 bytes captured
    ip[33] = 0x10; // ACK
    let p = packet(decode(101, &ip));
    assert_eq!(p.payload_len, 1500 - 20 - 24);
    // Cut inside the TCP options: ports and flags still known.
    let p = packet(decode(101, &ip[..36]));
    assert_eq!(
        (p.src_port, p.dst_port, p.tcp_flags),
        (1234, 80, tcp_flags::ACK)
    );
}

#[test]
fn icmp_igmp_and_other_protocols() {
    let mut ip = IPV4_TCP_SYN;
    ip[9] = 1;
    assert_eq!(decode(101, &ip), Decoded::Other(OtherProto::Icmp));
    ip[9] = 2;
    assert_eq!(decode(101, &ip), Decoded::Other(OtherProto::Igmp));
    ip[9] = 47;
    assert_eq!(decode(101, &ip), Decoded::Other(OtherProto::IpProto(47)));
    let mut v6 = IPV6_UDP;
    v6[6] = 58;
    assert_eq!(decode(101, &v6), Decoded::Other(OtherProto::Icmpv6));
}

/// IPv6 TCP (ports 443 -> 50000) behind hop-by-hop, routing, destination
/// options and AH headers.
fn ipv6_with_extensions() -> Vec<u8> {
    let ext = [
        43, 0, 0, 0, 0, 0, 0, 0, // hop-by-hop (8), next routing
        60, 0, 0, 0, 0, 0, 0, 0, // routing (8), next dest opts
        51, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // dest opts (16), next AH
        6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, // AH (12), next TCP
    ];
    let tcp = [
        0x01, 0xbb, 0xc3, 0x50, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0x10, 0x00, 0, 0, 0, 0,
    ];
    let payload_len = (ext.len() + tcp.len() + 10) as u16;
    let mut pkt = vec![0x60, 0, 0, 0];
    pkt.extend_from_slice(&payload_len.to_be_bytes());
    pkt.extend_from_slice(&[0, 64]); // next: hop-by-hop
    pkt.extend_from_slice(&IPV6_UDP[8..40]);
    pkt.extend_from_slice(&ext);
    pkt.extend_from_slice(&tcp);
    pkt.extend_from_slice(&[0u8; 10]);
    pkt
}

#[test]
fn ipv6_extension_headers() {
    let pkt = ipv6_with_extensions();
    let p = packet(decode(229, &pkt));
    assert_eq!((p.src_port, p.dst_port), (443, 50000));
    assert_eq!(p.tcp_flags, tcp_flags::PSH | tcp_flags::ACK);
    assert_eq!(p.payload_len, 10);
    // Cut inside the destination options header.
    assert_eq!(
        decode(229, &pkt[..60]),
        Decoded::Malformed(DecodeError::TruncatedIpExt)
    );
    // A header that runs past the IPv6 payload length.
    let mut short = pkt.clone();
    short[5] = 20;
    assert_eq!(
        decode(229, &short),
        Decoded::Malformed(DecodeError::BadIpLength)
    );
}

#[test]
fn ipv6_endless_extension_chain() {
    let mut pkt = IPV6_UDP[..40].to_vec();
    pkt[4] = 0x01; // payload 256
    pkt[5] = 0x00;
    pkt[6] = 60;
    for _ in 0..32 {
        pkt.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
    }
    assert_eq!(
        decode(229, &pkt),
        Decoded::Malformed(DecodeError::TooManyIpExt)
    );
}

/// IPv4 UDP datagram 10.9.9.1:5004 -> 10.9.9.2:5006, id 0x4242, in two fragments.
fn ipv4_fragments() -> (Vec<u8>, Vec<u8>) {
    let first = cat(&[
        &[0x45, 0, 0x00, 0x24, 0x42, 0x42, 0x20, 0x00, 64, 17, 0, 0], // 36 bytes, MF
        &[10, 9, 9, 1, 10, 9, 9, 2],
        &[0x13, 0x8c, 0x13, 0x8e, 0x00, 0x1c, 0x00, 0x00], // 5004 -> 5006, UDP len 28
        &[0xee; 8],
    ]);
    let second = cat(&[
        &[0x45, 0, 0x00, 0x20, 0x42, 0x42, 0x00, 0x02, 64, 17, 0, 0], // 32 bytes, offset 16
        &[10, 9, 9, 1, 10, 9, 9, 2],
        &[0xdd; 12],
    ]);
    (first, second)
}

#[test]
fn ipv4_fragments_resolve_through_the_defragmenter() {
    let (first, second) = ipv4_fragments();
    let f1 = fragment(decode(101, &first));
    assert_eq!(
        (f1.id, f1.proto, f1.frag_offset, f1.more_fragments),
        (0x4242, 17, 0, true)
    );
    let head = f1.first.expect("the first fragment has ports");
    assert_eq!(
        (head.src_port, head.dst_port, head.payload_len),
        (5004, 5006, 8)
    );
    let f2 = fragment(decode(101, &second));
    assert_eq!(
        (f2.frag_offset, f2.more_fragments, f2.first),
        (16, false, None)
    );
    assert_eq!(f2.payload_len, 12);

    let mut defrag = Defragmenter::new();
    // A later fragment before its first: no ports.
    assert_eq!(
        defrag.resolve(Decoded::Fragment(f2)),
        Decoded::Malformed(DecodeError::FragmentWithoutFirst)
    );
    let p1 = packet(defrag.resolve(Decoded::Fragment(f1)));
    assert_eq!((p1.src_port, p1.dst_port, p1.payload_len), (5004, 5006, 8));
    let p2 = packet(defrag.resolve(Decoded::Fragment(f2)));
    assert_eq!((p2.src_port, p2.dst_port, p2.payload_len), (5004, 5006, 12));
    assert_eq!(p2.tcp_flags, 0);
    // Non-fragments pass through untouched.
    let whole = decode(101, &IPV4_UDP);
    assert_eq!(defrag.resolve(whole), whole);
}

#[test]
fn ipv4_non_first_fragment_of_icmp_is_other() {
    let (_, mut second) = ipv4_fragments();
    second[9] = 1;
    assert_eq!(decode(101, &second), Decoded::Other(OtherProto::Icmp));
}

#[test]
fn ipv6_fragments() {
    // First fragment: hop-by-hop, fragment header (offset 0, M), UDP header.
    let mut first = IPV6_UDP[..40].to_vec();
    first[4] = 0;
    first[5] = 8 + 8 + 8 + 8; // hbh + frag + udp + 8 payload bytes
    first[6] = 0; // hop-by-hop
    first.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]); // hbh, next fragment
    first.extend_from_slice(&[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]); // offset 0, M
    first.extend_from_slice(&[0x13, 0xc4, 0x13, 0xc5, 0x00, 0x40, 0x00, 0x00]);
    first.extend_from_slice(&[0x11; 8]);
    let f1 = fragment(decode(229, &first));
    assert_eq!((f1.id, f1.proto, f1.frag_offset), (0xdead_beef, 17, 0));
    assert_eq!(
        f1.first.map(|h| (h.src_port, h.dst_port)),
        Some((5060, 5061))
    );

    let mut second = IPV6_UDP[..40].to_vec();
    second[4] = 0;
    second[5] = 8 + 16;
    second[6] = 44;
    second.extend_from_slice(&[17, 0, 0x00, 0x10, 0xde, 0xad, 0xbe, 0xef]); // offset 16, last
    second.extend_from_slice(&[0x22; 16]);
    let f2 = fragment(decode(229, &second));
    assert_eq!(
        (f2.frag_offset, f2.more_fragments, f2.payload_len),
        (16, false, 16)
    );

    let mut defrag = Defragmenter::new();
    let p1 = packet(defrag.resolve(Decoded::Fragment(f1)));
    assert_eq!((p1.transport, p1.payload_len), (Transport::Udp, 8));
    let p2 = packet(defrag.resolve(Decoded::Fragment(f2)));
    assert_eq!(
        (p2.src, p2.dst, p2.src_port, p2.dst_port),
        (v6(1), v6(2), 5060, 5061)
    );
    assert_eq!(p2.payload_len, 16);

    // An atomic fragment (offset 0, no M) is an ordinary packet.
    let mut atomic = IPV6_UDP[..40].to_vec();
    atomic[5] = 8 + 10;
    atomic[6] = 44;
    atomic.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 9]);
    atomic.extend_from_slice(&IPV6_UDP[40..]);
    assert_eq!(packet(decode(229, &atomic)).dst_port, 5353);
}

#[test]
fn defragmenter_is_bounded_and_evicts_oldest() {
    let (first, second) = ipv4_fragments();
    let mut defrag = Defragmenter::with_capacity(8);
    assert_eq!(defrag.capacity(), 8);
    let mut f1 = fragment(decode(101, &first));
    let f2 = fragment(decode(101, &second));
    for id in 0..1000u32 {
        f1.id = id;
        assert!(matches!(
            defrag.resolve(Decoded::Fragment(f1)),
            Decoded::Packet(_)
        ));
    }
    assert_eq!(defrag.len(), 8);
    assert_eq!(defrag.evicted(), 1000 - 8);
    // id 0x4242 (16962) was never recorded; id 999 is recent enough to be kept.
    assert_eq!(
        defrag.resolve(Decoded::Fragment(f2)),
        Decoded::Malformed(DecodeError::FragmentWithoutFirst)
    );
    let mut recent = f2;
    recent.id = 999;
    assert!(matches!(
        defrag.resolve(Decoded::Fragment(recent)),
        Decoded::Packet(_)
    ));
    let mut old = f2;
    old.id = 0;
    assert_eq!(
        defrag.resolve(Decoded::Fragment(old)),
        Decoded::Malformed(DecodeError::FragmentWithoutFirst)
    );
}

#[test]
fn stats_keys() {
    assert_eq!(DecodeError::TruncatedIp.as_str(), "truncated_ip");
    for (i, e) in DecodeError::ALL.iter().enumerate() {
        assert_eq!(e.index(), i);
    }
    assert_eq!(OtherProto::Arp.to_string(), "arp");
    assert_eq!(OtherProto::IpProto(47).to_string(), "gre");
    assert_eq!(OtherProto::IpProto(253).to_string(), "ip_proto_253");
    assert_eq!(
        OtherProto::EtherType(0x88b5).to_string(),
        "ethertype_0x88b5"
    );
    assert_eq!(OtherProto::EtherType(0x88b5).code(), Some(0x88b5));
    assert_eq!(OtherProto::AddressFamily(7).to_string(), "address_family_7");
}

#[test]
fn decode_never_panics_on_prefixes() {
    let frames: [(u16, Vec<u8>); 4] = [
        (1, cat(&[&ETH_HDR_V4, &IPV4_TCP_SYN])),
        (229, ipv6_with_extensions()),
        (113, cat(&[&[0u8; 14], &[0x86, 0xdd], &IPV6_UDP])),
        (0, cat(&[&[2, 0, 0, 0], &IPV4_UDP])),
    ];
    for (lt, frame) in &frames {
        for n in 0..=frame.len() {
            let _ = decode(*lt, &frame[..n]);
        }
    }
}

#[test]
fn ppp_pppoe_and_nflog() {
    // PPP with address/control bytes, and with a compressed 1-byte protocol.
    let frame = cat(&[&[0xff, 0x03, 0x00, 0x21], &IPV4_TCP_SYN]);
    assert_eq!(decode(9, &frame), Decoded::Packet(syn_meta(None)));
    let frame = cat(&[&[0x21], &IPV4_TCP_SYN]);
    assert_eq!(decode(50, &frame), Decoded::Packet(syn_meta(None)));
    assert_eq!(
        decode(9, &[0xff, 0x03, 0xc0, 0x21, 1, 2]),
        Decoded::Other(OtherProto::PppProto(0xc021))
    );
    // PPPoE session inside a VLAN.
    let frame = cat(&[
        &ETH_HDR_V4[..12],
        &[0x81, 0x00, 0x00, 0x05, 0x88, 0x64],
        &[0x11, 0x00, 0x12, 0x34, 0x00, 0x2e, 0x00, 0x21],
        &IPV4_TCP_SYN,
    ]);
    let mut want = syn_meta(Some(5));
    want.encap.push(EncapKind::Pppoe).expect("one layer");
    assert_eq!(decode(1, &frame), Decoded::Packet(want));
    // NFLOG: header, a prefix TLV (type 10), then the payload TLV (type 9).
    let frame = cat(&[
        &[2, 0, 0, 0],
        &[8, 0, 10, 0, b'h', b'i', 0, 0],
        &[48, 0, 9, 0],
        &IPV4_TCP_SYN,
    ]);
    assert_eq!(decode(239, &frame), Decoded::Packet(syn_meta(None)));
    assert_eq!(
        decode(239, &[2, 0, 0, 0, 200, 0, 9, 0]),
        Decoded::Malformed(DecodeError::TruncatedLink)
    );
}

/// A TCP header whose data offset is under 5 words (20 bytes) is malformed
/// wherever it is met: a whole packet, IPv4 or IPv6, inside a tunnel, or in a
/// first fragment (whose later fragments then have no ports to take).
#[test]
fn tcp_data_offset_below_five_is_malformed_on_every_path() {
    let bad = DecodeError::BadTcpHeaderLen;
    for doff in 0u8..5 {
        let mut v4 = IPV4_TCP_SYN;
        v4[32] = (doff << 4) | (v4[32] & 0x0f);
        assert_eq!(decode(101, &v4), Decoded::Malformed(bad), "doff {doff}");
        assert_eq!(
            decode(1, &cat(&[&ETH_HDR_V4, &v4])),
            Decoded::Malformed(bad)
        );
        // IPv4 in IPv4: the inner header is read by the same code.
        let outer = [
            0x45, 0, 0, 64, 0, 9, 0, 0, 64, 4, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        let (decoded, encap) = decode_frame(101, &cat(&[&outer, &v4]));
        assert_eq!(decoded, Decoded::Malformed(bad), "doff {doff}");
        assert_eq!(encap.layers(), [EncapKind::IpInIp]);
        // IPv6: the same 24-byte TCP header.
        let mut v6 = IPV6_UDP[..40].to_vec();
        v6[5] = 24;
        v6[6] = 6;
        v6.extend_from_slice(&v4[20..]);
        assert_eq!(decode(229, &v6), Decoded::Malformed(bad), "doff {doff}");

        // A first fragment (MF set) with that header, then its second half.
        let mut first = v4;
        first[6] = 0x20;
        assert_eq!(decode(101, &first), Decoded::Malformed(bad), "doff {doff}");
        let mut second = v4;
        second[6] = 0x00;
        second[7] = 0x03; // offset 24 bytes, last
        let mut defrag = Defragmenter::new();
        for frame in [&first, &second] {
            let resolved = defrag.resolve(decode(101, frame));
            assert!(
                matches!(resolved, Decoded::Malformed(_)),
                "doff {doff}: {resolved:?}"
            );
        }
        assert_eq!(
            defrag.resolve(decode(101, &second)),
            Decoded::Malformed(DecodeError::FragmentWithoutFirst)
        );
        // An IPv6 first fragment.
        let mut v6_first = IPV6_UDP[..40].to_vec();
        v6_first[5] = 8 + 24;
        v6_first[6] = 44;
        v6_first.extend_from_slice(&[6, 0, 0x00, 0x01, 0, 0, 0, 7]); // offset 0, M
        v6_first.extend_from_slice(&v4[20..]);
        assert_eq!(decode(229, &v6_first), Decoded::Malformed(bad));
    }
    // Five words is the least a header may have.
    let mut v4 = IPV4_TCP_SYN;
    v4[32] = 0x50;
    assert_eq!(packet(decode(101, &v4)).payload_len, 4);
    v4[6] = 0x20;
    assert_eq!(
        fragment(decode(101, &v4)).first.map(|h| h.payload_len),
        Some(4)
    );
}

#[test]
fn tiny_first_fragment_still_gives_ports() {
    // First fragment with only 8 bytes of TCP header (RFC 1858 tiny fragment).
    let first = cat(&[
        &[0x45, 0, 0x00, 0x1c, 0x00, 0x07, 0x20, 0x00, 64, 6, 0, 0],
        &[10, 0, 0, 1, 10, 0, 0, 2],
        &[0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1],
    ]);
    let f = fragment(decode(101, &first));
    let head = f.first.expect("ports");
    assert_eq!(
        (head.src_port, head.dst_port, head.tcp_flags),
        (1234, 80, 0)
    );
}

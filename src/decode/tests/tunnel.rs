//! Tunnels and encapsulations, on frames built by hand: each valid, cut at
//! every byte of its own header, nested, and past the depth limit.

use super::*;

use EncapKind::{Erspan1, Erspan2, Erspan3, Geneve, Gre, IpInIp, Mpls, Pppoe, Vxlan};

/// Ethernet II around `payload` (the addresses of [`ETH_HDR_V4`]).
pub(super) fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&ETH_HDR_V4[..12], &ethertype.to_be_bytes(), payload])
}

/// The inner frame most tests carry: Ethernet, IPv4, TCP SYN 1234 -> 80.
pub(super) fn inner_frame() -> Vec<u8> {
    eth(0x0800, &IPV4_TCP_SYN)
}

/// IPv4 192.0.2.1 -> 192.0.2.2, protocol `proto`, around `payload`.
pub(super) fn outer_v4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    cat(&[&h, &[192, 0, 2, 1, 192, 0, 2, 2], payload])
}

/// IPv6 2001:db8::a -> 2001:db8::b, next header `next`, around `payload`.
pub(super) fn outer_v6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0, 0, 0, next, 64];
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    let addr = |last: u8| {
        [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last,
        ]
    };
    cat(&[&h, &addr(0xa), &addr(0xb), payload])
}

pub(super) fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    cat(&[
        &src_port.to_be_bytes(),
        &dst_port.to_be_bytes(),
        &len.to_be_bytes(),
        &[0, 0],
        payload,
    ])
}

/// A GRE header with `flags`, and a zero word for each of C, K, S set.
pub(super) fn gre(flags: u16, proto: u16, payload: &[u8]) -> Vec<u8> {
    let words = [0x8000u16, 0x2000, 0x1000]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count();
    cat(&[
        &flags.to_be_bytes(),
        &proto.to_be_bytes(),
        &vec![0u8; 4 * words],
        payload,
    ])
}

/// Ethernet, IPv4, GRE (`flags`, `proto`), `payload`: the usual tunnel frame.
pub(super) fn in_gre(flags: u16, proto: u16, payload: &[u8]) -> Vec<u8> {
    eth(0x0800, &outer_v4(47, &gre(flags, proto, payload)))
}

fn vxlan(flags: u8, vni: u32, payload: &[u8]) -> Vec<u8> {
    let v = vni.to_be_bytes();
    cat(&[&[flags, 0, 0, 0, v[1], v[2], v[3], 0], payload])
}

/// Ethernet, IPv4, UDP 50000 -> `port`, `payload`.
pub(super) fn in_udp(port: u16, payload: &[u8]) -> Vec<u8> {
    eth(0x0800, &outer_v4(17, &udp(50000, port, payload)))
}

pub(super) fn encap(kinds: &[EncapKind], vni: Option<u32>) -> Encap {
    let mut e = Encap::NONE;
    for &k in kinds {
        e.push(k).expect("within the depth limit");
    }
    if let Some(v) = vni {
        e.set_vni(v);
    }
    e
}

/// The SYN of [`IPV4_TCP_SYN`], found inside `kinds`.
pub(super) fn syn_in(kinds: &[EncapKind], vni: Option<u32>, vlan: Option<u16>) -> Decoded {
    Decoded::Packet(PacketMeta {
        encap: encap(kinds, vni),
        ..syn_meta(vlan)
    })
}

pub(super) fn malformed(e: DecodeError) -> Decoded {
    Decoded::Malformed(e)
}

/// Every prefix of `frame` from `from` (exclusive) to `to` (exclusive) decodes to `want`.
pub(super) fn cut_between(frame: &[u8], from: usize, to: usize, want: Decoded) {
    for n in from + 1..to {
        assert_eq!(
            decode(1, &frame[..n]),
            want,
            "cut at {n} of {}",
            frame.len()
        );
    }
}

/// Bytes before the GRE header in [`in_gre`]: Ethernet and IPv4.
pub(super) const GRE_AT: usize = 14 + 20;

#[test]
fn gre_carrying_ipv4() {
    let frame = in_gre(0, 0x0800, &IPV4_TCP_SYN);
    assert_eq!(decode(1, &frame), syn_in(&[Gre], None, None));
}

#[test]
fn gre_optional_fields_are_skipped_and_cuts_are_gre_truncated() {
    // Checksum, key and sequence number: 12 more bytes.
    let frame = in_gre(0xb000, 0x0800, &IPV4_TCP_SYN);
    assert_eq!(decode(1, &frame), syn_in(&[Gre], None, None));
    cut_between(
        &frame,
        GRE_AT - 1,
        GRE_AT + 16,
        malformed(DecodeError::GreTruncated),
    );
    // Only the key.
    let frame = in_gre(0x2000, 0x86dd, &IPV6_UDP);
    let p = packet(decode(1, &frame));
    assert_eq!(
        (p.dst, p.dst_port, p.encap),
        (v6(2), 5353, encap(&[Gre], None))
    );
}

#[test]
fn gre_transparent_ethernet_bridging() {
    let tagged = cat(&[
        &ETH_HDR_V4[..12],
        &[0x81, 0x00, 0x00, 0x2a, 0x08, 0x00],
        &IPV4_TCP_SYN,
    ]);
    let frame = in_gre(0, 0x6558, &tagged);
    // The outer frame is untagged: the first tag met is the inner one.
    assert_eq!(decode(1, &frame), syn_in(&[Gre], None, Some(42)));
    cut_between(
        &frame,
        GRE_AT - 1,
        GRE_AT + 4 + 14,
        malformed(DecodeError::GreTruncated),
    );
}

#[test]
fn gre_that_is_not_entered() {
    // RFC 1701 routing, and versions above PPTP's 1, stay GRE.
    for flags in [0x4000, 0x0002, 0x0007] {
        let frame = in_gre(flags, 0x0800, &IPV4_TCP_SYN);
        assert_eq!(
            decode_frame(1, &frame),
            (Decoded::Other(OtherProto::IpProto(47)), Encap::NONE)
        );
    }
    // A payload type that is not ours: the EtherType, inside GRE.
    let frame = in_gre(0, 0x88b5, &[0xff, 0x03, 0x00, 0x21]);
    assert_eq!(
        decode_frame(1, &frame),
        (
            Decoded::Other(OtherProto::EtherType(0x88b5)),
            encap(&[Gre], None)
        )
    );
    // ICMP inside GRE is ICMP, and the tunnel is still reported.
    let mut icmp = IPV4_TCP_SYN;
    icmp[9] = 1;
    let frame = in_gre(0, 0x0800, &icmp);
    assert_eq!(
        decode_frame(1, &frame),
        (Decoded::Other(OtherProto::Icmp), encap(&[Gre], None))
    );
}

#[test]
fn gre_wccp_redirect() {
    let frame = in_gre(0, 0x883e, &cat(&[&[0x05, 0x59, 0x00, 0x48], &IPV4_TCP_SYN]));
    assert_eq!(decode(1, &frame), syn_in(&[Gre], None, None));
    // Without the redirect header the IPv4 packet starts at once.
    let frame = in_gre(0, 0x883e, &IPV4_TCP_SYN);
    assert_eq!(decode(1, &frame), syn_in(&[Gre], None, None));
}

#[test]
fn erspan_type_1_has_no_header() {
    let frame = in_gre(0, 0x88be, &inner_frame());
    assert_eq!(decode(1, &frame), syn_in(&[Gre, Erspan1], None, None));
    cut_between(
        &frame,
        GRE_AT + 4,
        GRE_AT + 4 + 14,
        malformed(DecodeError::ErspanTruncated),
    );
}

const ERSPAN2_HDR: [u8; 8] = [0x10, 0x64, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07];

#[test]
fn erspan_type_2() {
    // GRE with a sequence number (4 + 4 bytes), then 8 bytes of ERSPAN.
    let frame = in_gre(0x1000, 0x88be, &cat(&[&ERSPAN2_HDR, &inner_frame()]));
    assert_eq!(decode(1, &frame), syn_in(&[Gre, Erspan2], None, None));
    cut_between(
        &frame,
        GRE_AT - 1,
        GRE_AT + 8,
        malformed(DecodeError::GreTruncated),
    );
    cut_between(
        &frame,
        GRE_AT + 8 - 1,
        GRE_AT + 8 + 8 + 14,
        malformed(DecodeError::ErspanTruncated),
    );
    let mut bad = ERSPAN2_HDR;
    bad[0] = 0x30;
    let frame = in_gre(0x1000, 0x88be, &cat(&[&bad, &inner_frame()]));
    assert_eq!(
        decode(1, &frame),
        Decoded::Other(OtherProto::EtherType(0x88be))
    );
}

/// ERSPAN III: version 2, session 1, a timestamp, then `ft_o` as the last two bytes.
fn erspan3_hdr(last: [u8; 2]) -> Vec<u8> {
    cat(&[&[0x20, 0x0a, 0x00, 0x01, 1, 2, 3, 4, 0, 0], &last])
}

#[test]
fn erspan_type_3() {
    let frame = in_gre(
        0x1000,
        0x22eb,
        &cat(&[&erspan3_hdr([0, 0]), &inner_frame()]),
    );
    assert_eq!(decode(1, &frame), syn_in(&[Gre, Erspan3], None, None));
    cut_between(
        &frame,
        GRE_AT + 7,
        GRE_AT + 8 + 12 + 14,
        malformed(DecodeError::ErspanTruncated),
    );
    // The O flag: an 8-byte platform-specific subheader follows.
    let frame = in_gre(
        0x1000,
        0x22eb,
        &cat(&[&erspan3_hdr([0, 1]), &[0x0c; 8], &inner_frame()]),
    );
    assert_eq!(decode(1, &frame), syn_in(&[Gre, Erspan3], None, None));
    cut_between(
        &frame,
        GRE_AT + 7,
        GRE_AT + 8 + 20 + 14,
        malformed(DecodeError::ErspanTruncated),
    );
    // Frame type 2: an IP packet without an Ethernet header.
    let frame = in_gre(0x1000, 0x22eb, &cat(&[&erspan3_hdr([0x08, 0]), &IPV6_UDP]));
    assert_eq!(
        packet(decode(1, &frame)).encap,
        encap(&[Gre, Erspan3], None)
    );
    // Another frame type, or another version: not entered further.
    let frame = in_gre(
        0x1000,
        0x22eb,
        &cat(&[&erspan3_hdr([0x0c, 0]), &inner_frame()]),
    );
    assert_eq!(
        decode(1, &frame),
        Decoded::Other(OtherProto::EtherType(0x22eb))
    );
}

#[test]
fn vxlan_with_the_i_flag_is_entered() {
    let frame = in_udp(4789, &vxlan(0x08, 0x12_3456, &inner_frame()));
    assert_eq!(decode(1, &frame), syn_in(&[Vxlan], Some(0x12_3456), None));
    // Reserved bits set (as some senders do) change nothing.
    let frame = in_udp(4789, &vxlan(0xff, 7, &inner_frame()));
    assert_eq!(decode(1, &frame), syn_in(&[Vxlan], Some(7), None));
    let udp_at = 14 + 20 + 8;
    cut_between(
        &frame,
        udp_at,
        udp_at + 8 + 14,
        malformed(DecodeError::VxlanTruncated),
    );
}

#[test]
fn udp_4789_that_is_not_vxlan_stays_udp() {
    // No I flag, an empty payload, or 4789 as the source port only.
    for frame in [
        in_udp(4789, &vxlan(0x00, 7, &inner_frame())),
        in_udp(4789, &[]),
        eth(
            0x0800,
            &outer_v4(17, &udp(4789, 50000, &vxlan(0x08, 7, &inner_frame()))),
        ),
    ] {
        let p = packet(decode(1, &frame));
        assert_eq!((p.transport, p.encap), (Transport::Udp, Encap::NONE));
        assert!(p.dst_port == 4789 || p.src_port == 4789);
    }
}

#[test]
fn geneve_with_options() {
    // Options length 2 words, protocol type 0x6558 (Ethernet), VNI 0xabcdef.
    let hdr = [0x02, 0x00, 0x65, 0x58, 0xab, 0xcd, 0xef, 0x00];
    let frame = in_udp(6081, &cat(&[&hdr, &[0x11; 8], &inner_frame()]));
    assert_eq!(decode(1, &frame), syn_in(&[Geneve], Some(0xab_cdef), None));
    let udp_at = 14 + 20 + 8;
    cut_between(
        &frame,
        udp_at,
        udp_at + 16 + 14,
        malformed(DecodeError::GeneveTruncated),
    );
    // IPv6 right after the header; and version 1 is not Geneve we know.
    let frame = in_udp(
        6081,
        &cat(&[&[0x00, 0x00, 0x86, 0xdd, 0, 0, 1, 0], &IPV6_UDP]),
    );
    assert_eq!(packet(decode(1, &frame)).encap, encap(&[Geneve], Some(1)));
    let frame = in_udp(
        6081,
        &cat(&[&[0x40, 0x00, 0x86, 0xdd, 0, 0, 1, 0], &IPV6_UDP]),
    );
    assert_eq!(packet(decode(1, &frame)).encap, Encap::NONE);
}

/// Label 16 (not bottom of stack), label 17 (bottom of stack).
pub(super) const MPLS_STACK: [u8; 8] = [0x00, 0x01, 0x00, 0x40, 0x00, 0x01, 0x11, 0x40];

#[test]
fn mpls_label_stack() {
    let frame = eth(0x8847, &cat(&[&MPLS_STACK, &IPV4_TCP_SYN]));
    assert_eq!(decode(1, &frame), syn_in(&[Mpls], None, None));
    cut_between(
        &frame,
        14 - 1,
        14 + 8 + 1,
        malformed(DecodeError::MplsTruncated),
    );
    let frame = eth(0x8848, &cat(&[&MPLS_STACK[4..], &IPV6_UDP]));
    assert_eq!(packet(decode(1, &frame)).encap, encap(&[Mpls], None));
    // A pseudowire control word, then an Ethernet frame.
    let frame = eth(0x8847, &cat(&[&MPLS_STACK, &[0; 4], &inner_frame()]));
    assert_eq!(decode(1, &frame), syn_in(&[Mpls], None, None));
    cut_between(
        &frame,
        14 + 8,
        14 + 8 + 4 + 14,
        malformed(DecodeError::MplsTruncated),
    );
    // No bottom of stack before the end; a payload of unknown kind.
    let endless = eth(0x8847, &[0x00, 0x01, 0x00, 0x40].repeat(50));
    assert_eq!(decode(1, &endless), malformed(DecodeError::MplsTruncated));
    let frame = eth(0x8847, &cat(&[&MPLS_STACK, &[0x91; 20]]));
    assert_eq!(
        decode_frame(1, &frame),
        (
            Decoded::Other(OtherProto::EtherType(0x8847)),
            encap(&[Mpls], None)
        )
    );
}

#[test]
fn pppoe_session_and_discovery() {
    let frame = eth(
        0x8864,
        &cat(&[
            &[0x11, 0x00, 0x12, 0x34, 0x00, 0x2e, 0x00, 0x21],
            &IPV4_TCP_SYN,
        ]),
    );
    assert_eq!(decode(1, &frame), syn_in(&[Pppoe], None, None));
    cut_between(
        &frame,
        14 - 1,
        14 + 8,
        malformed(DecodeError::PppoeTruncated),
    );
    let frame = eth(
        0x8864,
        &[0x11, 0x00, 0x12, 0x34, 0x00, 0x04, 0xc0, 0x21, 1, 2],
    );
    assert_eq!(
        decode_frame(1, &frame),
        (
            Decoded::Other(OtherProto::PppProto(0xc021)),
            encap(&[Pppoe], None)
        )
    );
    let discovery = eth(0x8863, &[0x11, 0x09, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(
        decode_frame(1, &discovery),
        (Decoded::Other(OtherProto::EtherType(0x8863)), Encap::NONE)
    );
}

#[test]
fn ip_in_ip_all_four_ways() {
    for frame in [
        outer_v4(4, &IPV4_TCP_SYN),
        outer_v6(4, &IPV4_TCP_SYN),
        outer_v4(41, &IPV6_UDP),
        outer_v6(41, &IPV6_UDP),
    ] {
        let p = packet(decode(101, &frame));
        assert_eq!(p.encap, encap(&[IpInIp], None));
        assert!(p.dst_port == 80 || p.dst_port == 5353);
    }
    assert_eq!(
        decode(101, &outer_v4(4, &IPV4_TCP_SYN[..10])),
        malformed(DecodeError::TruncatedIp)
    );
}

#[test]
fn nested_tunnels_are_recorded_outermost_first() {
    // GRE carrying IPv4 / UDP / VXLAN carrying Ethernet / MPLS / IPv4 TCP.
    let inner = eth(0x8847, &cat(&[&MPLS_STACK, &IPV4_TCP_SYN]));
    let vx = outer_v4(17, &udp(1, 4789, &vxlan(0x08, 99, &inner)));
    let frame = in_gre(0, 0x0800, &vx);
    assert_eq!(
        decode(1, &frame),
        syn_in(&[Gre, Vxlan, Mpls], Some(99), None)
    );
    // The outermost VNI is kept.
    let twice = in_udp(4789, &vxlan(0x08, 5, &eth(0x0800, &vx)));
    assert_eq!(packet(decode(1, &twice)).encap.vni(), Some(5));
}

#[test]
fn nesting_deeper_than_the_limit_is_malformed() {
    let mut frame = IPV4_TCP_SYN.to_vec();
    for depth in 1..=20 {
        frame = outer_v4(4, &frame);
        let want = if depth <= MAX_ENCAP_DEPTH {
            syn_in(&[IpInIp].repeat(depth), None, None)
        } else {
            malformed(DecodeError::TooManyEncapLayers)
        };
        assert_eq!(decode(101, &frame), want, "depth {depth}");
    }
    // GRE and ERSPAN count as two layers: two more GREs fill the four.
    let erspan = in_gre(0x1000, 0x88be, &cat(&[&ERSPAN2_HDR, &inner_frame()]));
    let four = in_gre(0, 0x6558, &in_gre(0, 0x6558, &erspan));
    assert_eq!(
        decode(1, &four),
        syn_in(&[Gre, Gre, Gre, Erspan2], None, None)
    );
    let five = in_gre(0, 0x6558, &four);
    assert_eq!(decode(1, &five), malformed(DecodeError::TooManyEncapLayers));
}

#[test]
fn fragments_inside_a_tunnel_keep_it_and_outer_fragments_are_not_entered() {
    let (first, second) = ipv4_fragments();
    let mut defrag = Defragmenter::new();
    for frag in [first.clone(), second] {
        let f = fragment(decode(1, &in_gre(0, 0x0800, &frag)));
        assert_eq!(f.encap, encap(&[Gre], None));
        let p = packet(defrag.resolve(Decoded::Fragment(f)));
        assert_eq!((p.dst_port, p.encap), (5006, encap(&[Gre], None)));
    }
    // The first fragment of an outer GRE packet: not entered.
    let mut outer = outer_v4(47, &gre(0, 0x0800, &first));
    outer[6] = 0x20; // MF
    assert_eq!(
        decode_frame(101, &outer),
        (Decoded::Other(OtherProto::IpProto(47)), Encap::NONE)
    );
}

#[test]
fn encap_names_and_size() {
    for (i, k) in EncapKind::ALL.iter().enumerate() {
        assert_eq!(k.index(), i);
        assert_eq!(k.to_string(), k.as_str());
    }
    assert_eq!(IpInIp.as_str(), "ip_in_ip");
    let names: Vec<&str> = EncapKind::ALL[9..].iter().map(|k| k.as_str()).collect();
    assert_eq!(names, ["pptp", "gre_in_udp", "pbb", "etag"]);
    assert_eq!(std::mem::size_of::<Encap>(), 8);
    // A packet record still fits in a cache line.
    assert!(std::mem::size_of::<PacketMeta>() <= 64);
    let e = encap(&[Gre, Erspan2], None);
    assert_eq!(
        format!("{e:?}"),
        "Encap { layers: [Gre, Erspan2], vni: None }"
    );
    assert_eq!(Encap::default(), Encap::NONE);
    assert!(Encap::NONE.is_empty() && Encap::NONE.vni().is_none());
}

#[test]
fn tunnel_frames_never_panic_when_cut_or_bent_anywhere() {
    let frames = [
        in_gre(
            0xb000,
            0x22eb,
            &cat(&[&erspan3_hdr([0, 1]), &[0; 8], &inner_frame()]),
        ),
        in_udp(
            4789,
            &vxlan(
                0x08,
                1,
                &eth(0x8847, &cat(&[&MPLS_STACK, &[0; 4], &inner_frame()])),
            ),
        ),
        in_udp(
            6081,
            &cat(&[&[0x3f, 0, 0x65, 0x58, 0, 0, 1, 0], &inner_frame()]),
        ),
        eth(
            0x8864,
            &cat(&[
                &[0x11, 0, 0, 1, 0, 0x2e, 0x00, 0x57],
                &outer_v6(4, &IPV4_TCP_SYN),
            ]),
        ),
        // PPTP (sequence and acknowledgment numbers) carrying MPLS in PPP.
        eth(
            0x0800,
            &outer_v4(
                47,
                &cat(&[
                    &[0x30, 0x81, 0x88, 0x0b, 0x00, 0x34, 0x00, 0x07],
                    &[0; 8],
                    &[0xff, 0x03, 0x02, 0x81],
                    &MPLS_STACK,
                    &IPV4_TCP_SYN,
                ]),
            ),
        ),
        // GRE in UDP carrying PPP; PBB carrying an E-tagged frame.
        in_udp(4754, &gre(0x2000, 0x880b, &cat(&[&[0x21], &IPV4_TCP_SYN]))),
        eth(
            0x88e7,
            &cat(&[
                &[0x60, 0, 0, 1],
                &ETH_HDR_V4[..12],
                &[0x89, 0x3f, 0, 5, 1, 0x23, 0, 0, 0x08, 0x00],
                &IPV4_TCP_SYN,
            ]),
        ),
    ];
    for frame in &frames {
        for n in 0..=frame.len() {
            let _ = decode_frame(1, &frame[..n]);
        }
        // Or with any one byte set to any value.
        let mut bent = frame.clone();
        for i in 0..bent.len() {
            for v in 0..=u8::MAX {
                bent[i] = v;
                let _ = decode_frame(1, &bent);
            }
            bent[i] = frame[i];
        }
    }
}

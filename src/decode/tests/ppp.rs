//! PPP carried in tunnels (GRE, PPTP's GRE, PPPoE) and MPLS carried in PPP,
//! and GRE in UDP: each valid, cut inside its own header, and the look-alikes
//! that are not entered.

use super::tunnel::{
    cut_between, encap, eth, gre, in_gre, in_udp, inner_frame, malformed, outer_v4, syn_in, udp,
    GRE_AT, MPLS_STACK,
};
use super::*;

use EncapKind::{Erspan2, Gre, GreInUdp, Mpls, Pppoe, Pptp};

/// PPP's address and control bytes, then the protocol field for IPv4.
const PPP_V4: [u8; 4] = [0xff, 0x03, 0x00, 0x21];

/// PPTP's GRE (version 1, key bit set) around the PPP frame `ppp`: payload
/// length, call id 7, then a sequence and an acknowledgment number when asked.
fn pptp(seq: bool, ack: bool, ppp: &[u8]) -> Vec<u8> {
    let mut flags: u16 = 0x2001;
    if seq {
        flags |= 0x1000;
    }
    if ack {
        flags |= 0x0080;
    }
    let words = usize::from(seq) + usize::from(ack);
    cat(&[
        &flags.to_be_bytes(),
        &[0x88, 0x0b],
        &(ppp.len() as u16).to_be_bytes(),
        &[0, 7],
        &vec![0xaa; 4 * words],
        ppp,
    ])
}

fn in_pptp(seq: bool, ack: bool, ppp: &[u8]) -> Vec<u8> {
    eth(0x0800, &outer_v4(47, &pptp(seq, ack, ppp)))
}

#[test]
fn gre_carrying_ppp() {
    let frame = in_gre(0, 0x880b, &cat(&[&PPP_V4, &IPV4_TCP_SYN]));
    assert_eq!(decode(1, &frame), syn_in(&[Gre], None, None));
    // Address and control bytes negotiated away, a one-byte protocol field.
    let frame = in_gre(0, 0x880b, &cat(&[&[0x21], &IPV4_TCP_SYN]));
    assert_eq!(decode(1, &frame), syn_in(&[Gre], None, None));
    let frame = in_gre(0x2000, 0x880b, &cat(&[&[0x00, 0x57], &IPV6_UDP]));
    assert_eq!(packet(decode(1, &frame)).encap, encap(&[Gre], None));
    // LCP is PPP's own: counted by its protocol, inside GRE.
    let frame = in_gre(0, 0x880b, &[0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]);
    assert_eq!(
        decode_frame(1, &frame),
        (
            Decoded::Other(OtherProto::PppProto(0xc021)),
            encap(&[Gre], None)
        )
    );
    // Nothing after the GRE header; a PPP frame cut in its protocol field.
    let frame = in_gre(0, 0x880b, &cat(&[&PPP_V4, &IPV4_TCP_SYN]));
    assert_eq!(
        decode(1, &frame[..GRE_AT + 4]),
        malformed(DecodeError::GreTruncated)
    );
    for n in [GRE_AT + 6, GRE_AT + 7] {
        assert_eq!(
            decode(1, &frame[..n]),
            malformed(DecodeError::TruncatedLink)
        );
    }
}

#[test]
fn pptp_gre_version_1_carrying_ppp() {
    for (seq, ack) in [(true, true), (true, false), (false, true), (false, false)] {
        let frame = in_pptp(seq, ack, &cat(&[&PPP_V4, &IPV4_TCP_SYN]));
        assert_eq!(
            decode(1, &frame),
            syn_in(&[Pptp], None, None),
            "seq {seq} ack {ack}"
        );
    }
    // Header, key, sequence and acknowledgment numbers: 16 bytes, then PPP.
    let frame = in_pptp(true, true, &cat(&[&PPP_V4, &IPV4_TCP_SYN]));
    cut_between(
        &frame,
        GRE_AT - 1,
        GRE_AT + 17,
        malformed(DecodeError::GreTruncated),
    );
    // MPPE: compressed (encrypted) datagrams, inside the tunnel.
    let frame = in_pptp(true, false, &[0xfd, 0x90, 0x01, 0x02, 0x03]);
    let (decoded, layers) = decode_frame(1, &frame);
    assert_eq!(
        (decoded, layers),
        (
            Decoded::Other(OtherProto::PppProto(0x00fd)),
            encap(&[Pptp], None)
        )
    );
    assert_eq!(OtherProto::PppProto(0x00fd).to_string(), "ppp_compressed");
}

#[test]
fn pptp_gre_that_is_not_entered() {
    let not_entered = (Decoded::Other(OtherProto::IpProto(47)), Encap::NONE);
    // An acknowledgment alone: no payload.
    let ack_only = in_pptp(false, true, &[]);
    assert_eq!(decode_frame(1, &ack_only), not_entered);
    // Without the key bit, with a checksum, or carrying something else than PPP.
    let ppp = cat(&[&PPP_V4, &IPV4_TCP_SYN]);
    let mut bent = pptp(true, false, &ppp);
    bent[0] &= !0x20;
    assert_eq!(
        decode_frame(1, &eth(0x0800, &outer_v4(47, &bent))),
        not_entered
    );
    let mut bent = pptp(true, false, &ppp);
    bent[0] |= 0x80;
    assert_eq!(
        decode_frame(1, &eth(0x0800, &outer_v4(47, &bent))),
        not_entered
    );
    let mut bent = pptp(true, false, &ppp);
    bent[2..4].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(
        decode_frame(1, &eth(0x0800, &outer_v4(47, &bent))),
        not_entered
    );
}

#[test]
fn mpls_inside_ppp() {
    let mpls_v4 = cat(&[&MPLS_STACK, &IPV4_TCP_SYN]);
    // On a PPP link (9 and 50): unicast 0x0281, multicast 0x0283.
    for proto in [[0x02, 0x81], [0x02, 0x83]] {
        for link in [9, 50] {
            let frame = cat(&[&[0xff, 0x03], &proto, &mpls_v4]);
            assert_eq!(decode(link, &frame), syn_in(&[Mpls], None, None));
        }
    }
    let frame = cat(&[&[0xff, 0x03, 0x02, 0x81], &MPLS_STACK[4..], &IPV6_UDP]);
    assert_eq!(packet(decode(9, &frame)).encap, encap(&[Mpls], None));
    // Cut inside the label stack.
    let frame = cat(&[&[0xff, 0x03, 0x02, 0x81], &mpls_v4]);
    for n in 5..4 + 8 {
        assert_eq!(
            decode(9, &frame[..n]),
            malformed(DecodeError::MplsTruncated),
            "cut at {n}"
        );
    }
    // In a PPPoE session, in GRE and in PPTP.
    let pppoe = eth(
        0x8864,
        &cat(&[&[0x11, 0x00, 0x12, 0x34, 0x00, 0x32, 0x02, 0x81], &mpls_v4]),
    );
    assert_eq!(decode(1, &pppoe), syn_in(&[Pppoe, Mpls], None, None));
    let frame = in_gre(0, 0x880b, &cat(&[&[0xff, 0x03, 0x02, 0x81], &mpls_v4]));
    assert_eq!(decode(1, &frame), syn_in(&[Gre, Mpls], None, None));
    let frame = in_pptp(true, false, &cat(&[&[0x02, 0x81], &mpls_v4]));
    assert_eq!(decode(1, &frame), syn_in(&[Pptp, Mpls], None, None));
}

/// Bytes before the UDP payload in [`in_udp`]: Ethernet, IPv4, UDP.
const UDP_PAYLOAD_AT: usize = 14 + 20 + 8;

#[test]
fn gre_in_udp() {
    let frame = in_udp(4754, &gre(0, 0x0800, &IPV4_TCP_SYN));
    assert_eq!(decode(1, &frame), syn_in(&[GreInUdp], None, None));
    let frame = in_udp(4754, &gre(0x2000, 0x86dd, &IPV6_UDP));
    let p = packet(decode(1, &frame));
    assert_eq!((p.dst_port, p.encap), (5353, encap(&[GreInUdp], None)));
    // Whatever GRE carries: a mirrored frame (ERSPAN II), an Ethernet frame.
    let erspan = [0x10, 0x64, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07];
    let frame = in_udp(4754, &gre(0x1000, 0x88be, &cat(&[&erspan, &inner_frame()])));
    assert_eq!(decode(1, &frame), syn_in(&[GreInUdp, Erspan2], None, None));
    let frame = in_udp(4754, &gre(0, 0x6558, &inner_frame()));
    assert_eq!(decode(1, &frame), syn_in(&[GreInUdp], None, None));
    // A header that agrees, cut short (the key promises 4 more bytes).
    let frame = in_udp(4754, &gre(0x2000, 0x0800, &IPV4_TCP_SYN));
    cut_between(
        &frame,
        UDP_PAYLOAD_AT + 1,
        UDP_PAYLOAD_AT + 8,
        malformed(DecodeError::GreTruncated),
    );
}

#[test]
fn udp_4754_that_is_not_gre_stays_udp() {
    let ip = IPV4_TCP_SYN;
    for frame in [
        // Routing, strict source route, recursion, reserved flags, version 1.
        in_udp(4754, &gre(0x4000, 0x0800, &ip)),
        in_udp(4754, &gre(0x0800, 0x0800, &ip)),
        in_udp(4754, &gre(0x0100, 0x0800, &ip)),
        in_udp(4754, &gre(0x0008, 0x0800, &ip)),
        in_udp(4754, &gre(0x2001, 0x880b, &ip)),
        // Too short for GRE's flags; 4754 as the source port only.
        in_udp(4754, &[]),
        in_udp(4754, &[0]),
        eth(
            0x0800,
            &outer_v4(17, &udp(4754, 50000, &gre(0, 0x0800, &ip))),
        ),
    ] {
        let p = packet(decode(1, &frame));
        assert_eq!((p.transport, p.encap), (Transport::Udp, Encap::NONE));
        assert!(p.dst_port == 4754 || p.src_port == 4754);
    }
}

#[test]
fn ppp_tunnels_count_towards_the_depth_limit() {
    // PPTP in GRE in UDP in GRE in UDP: five layers.
    let mut b = outer_v4(47, &pptp(false, false, &cat(&[&PPP_V4, &IPV4_TCP_SYN])));
    for _ in 0..2 {
        b = outer_v4(17, &udp(1, 4754, &gre(0, 0x0800, &b)));
    }
    assert_eq!(
        decode(101, &b),
        syn_in(&[GreInUdp, GreInUdp, Pptp], None, None)
    );
    b = outer_v4(47, &gre(0, 0x0800, &b));
    assert_eq!(
        decode(101, &b),
        syn_in(&[Gre, GreInUdp, GreInUdp, Pptp], None, None)
    );
    b = outer_v4(47, &gre(0, 0x0800, &b));
    assert_eq!(decode(101, &b), malformed(DecodeError::TooManyEncapLayers));
}

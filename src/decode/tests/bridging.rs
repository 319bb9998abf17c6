//! Bridging tags entered like tunnels: 802.1ah PBB (MAC-in-MAC) and 802.1BR
//! E-tags, valid, cut inside, nested, and inside other tunnels.

use super::tunnel::{cut_between, encap, eth, in_udp, inner_frame, malformed, syn_in};
use super::*;

use EncapKind::{Etag, Pbb, Vxlan};

/// I-TAG: priority 3, service id 0x010203.
const I_TAG: [u8; 4] = [0x60, 0x01, 0x02, 0x03];

/// E-TAG: priority, ingress E-CID 5, destination E-CID 0x123, extensions 0.
const E_TAG: [u8; 6] = [0x00, 0x05, 0x01, 0x23, 0x00, 0x00];

#[test]
fn pbb_carries_the_customer_frame() {
    let frame = eth(0x88e7, &cat(&[&I_TAG, &inner_frame()]));
    assert_eq!(decode(1, &frame), syn_in(&[Pbb], None, None));
    // A backbone VLAN (B-TAG, 0x88a8) outside: it is the first tag met.
    let frame = eth(
        0x88a8,
        &cat(&[&[0x00, 0x64, 0x88, 0xe7], &I_TAG, &inner_frame()]),
    );
    assert_eq!(decode(1, &frame), syn_in(&[Pbb], None, Some(100)));
    // Untagged backbone: the customer's own tag is the first.
    let customer = cat(&[
        &ETH_HDR_V4[..12],
        &[0x81, 0x00, 0x00, 0x2a, 0x08, 0x00],
        &IPV4_TCP_SYN,
    ]);
    let frame = eth(0x88e7, &cat(&[&I_TAG, &customer]));
    assert_eq!(decode(1, &frame), syn_in(&[Pbb], None, Some(42)));
    // Cut in the I-TAG or the customer's Ethernet header.
    let frame = eth(0x88e7, &cat(&[&I_TAG, &inner_frame()]));
    cut_between(
        &frame,
        13,
        14 + 4 + 14,
        malformed(DecodeError::TruncatedLink),
    );
    // ARP inside: counted as ARP, found inside PBB.
    let arp = eth(0x0806, &[0; 28]);
    assert_eq!(
        decode_frame(1, &eth(0x88e7, &cat(&[&I_TAG, &arp]))),
        (Decoded::Other(OtherProto::Arp), encap(&[Pbb], None))
    );
}

#[test]
fn e_tag_then_the_frame_s_own_ethertype() {
    let frame = eth(0x893f, &cat(&[&E_TAG, &[0x08, 0x00], &IPV4_TCP_SYN]));
    assert_eq!(decode(1, &frame), syn_in(&[Etag], None, None));
    // An 802.1Q tag after the E-TAG, as a port extender sends it.
    let frame = eth(
        0x893f,
        &cat(&[&E_TAG, &[0x81, 0x00, 0x00, 0x07, 0x86, 0xdd], &IPV6_UDP]),
    );
    let p = packet(decode(1, &frame));
    assert_eq!((p.vlan, p.encap), (Some(7), encap(&[Etag], None)));
    let frame = eth(0x893f, &cat(&[&E_TAG, &[0x08, 0x00], &IPV4_TCP_SYN]));
    cut_between(&frame, 13, 14 + 8, malformed(DecodeError::TruncatedLink));
}

#[test]
fn bridging_tags_inside_tunnels_and_nested_past_the_limit() {
    let tagged = eth(0x893f, &cat(&[&E_TAG, &[0x08, 0x00], &IPV4_TCP_SYN]));
    let frame = in_udp(4789, &cat(&[&[0x08, 0, 0, 0, 0, 0, 9, 0], &tagged]));
    assert_eq!(decode(1, &frame), syn_in(&[Vxlan, Etag], Some(9), None));
    // PBB in PBB …: four layers, and a fifth is refused.
    let mut frame = inner_frame();
    for depth in 1..=5 {
        frame = eth(0x88e7, &cat(&[&I_TAG, &frame]));
        let want = if depth <= MAX_ENCAP_DEPTH {
            syn_in(&[Pbb].repeat(depth), None, None)
        } else {
            malformed(DecodeError::TooManyEncapLayers)
        };
        assert_eq!(decode(1, &frame), want, "depth {depth}");
    }
    let mut frame = cat(&[&[0x08, 0x00], &IPV4_TCP_SYN]);
    for _ in 0..5 {
        frame = cat(&[&[0x89, 0x3f], &E_TAG, &frame]);
    }
    let frame = cat(&[&ETH_HDR_V4[..12], &frame]);
    assert_eq!(
        decode(1, &frame),
        malformed(DecodeError::TooManyEncapLayers)
    );
}

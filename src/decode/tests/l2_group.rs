//! `PacketMeta::l2_group`: the packet was sent to a link-layer broadcast or
//! multicast address, as the innermost Ethernet destination (or a Linux
//! cooked capture's packet type) says.

use super::tunnel::{eth, gre, in_gre, in_udp, outer_v4, MPLS_STACK};
use super::*;

const BROADCAST: [u8; 6] = [0xff; 6];
const IPV4_MULTICAST: [u8; 6] = [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03];
const IPV6_MULTICAST: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];
const UNICAST: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
/// The group bit is in the first octet only: this one is unicast.
const UNICAST_ODD_LAST: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// An Ethernet II frame to `dst` around `payload`.
fn eth_to(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&dst, &ETH_HDR_V4[6..12], &ethertype.to_be_bytes(), payload])
}

fn group(link_type: u16, frame: &[u8]) -> bool {
    match decode(link_type, frame) {
        Decoded::Packet(p) => p.l2_group,
        Decoded::Fragment(f) => f.l2_group,
        other => panic!("expected a packet, got {other:?}"),
    }
}

#[test]
fn ethernet_destination_group_bit() {
    for (dst, want) in [
        (BROADCAST, true),
        (IPV4_MULTICAST, true),
        (IPV6_MULTICAST, true),
        (UNICAST, false),
        (UNICAST_ODD_LAST, false),
    ] {
        assert_eq!(
            group(1, &eth_to(dst, 0x0800, &IPV4_UDP)),
            want,
            "{dst:02x?}"
        );
        // Behind VLAN tags and in an 802.3 frame with LLC/SNAP, the same.
        let tagged = cat(&[&[0x00, 0x0a, 0x08, 0x00], &IPV4_UDP]);
        assert_eq!(group(1, &eth_to(dst, 0x8100, &tagged)), want);
        let snap = cat(&[&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00], &IPV4_UDP]);
        assert_eq!(group(1, &eth_to(dst, 40, &snap)), want);
    }
}

#[test]
fn links_without_a_destination_address_are_not_group() {
    assert!(!group(101, &IPV4_UDP));
    assert!(!group(9, &cat(&[&[0xff, 0x03, 0x00, 0x21], &IPV4_UDP])));
    assert!(!group(0, &cat(&[&2u32.to_le_bytes(), &IPV4_UDP])));
}

#[test]
fn linux_cooked_packet_types() {
    // SLL: packet type, ARPHRD, address length, address, protocol.
    for (packet_type, want) in [(0u8, false), (1, true), (2, true), (3, false), (4, false)] {
        let sll = cat(&[
            &[0, packet_type, 0, 1, 0, 6],
            &[0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0, 0],
            &[0x08, 0x00],
            &IPV4_UDP,
        ]);
        assert_eq!(group(113, &sll), want, "SLL packet type {packet_type}");
        // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address.
        let sll2 = cat(&[
            &[0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, packet_type, 6],
            &[0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0, 0],
            &IPV4_UDP,
        ]);
        assert_eq!(group(276, &sll2), want, "SLL2 packet type {packet_type}");
    }
}

#[test]
fn the_innermost_ethernet_frame_decides() {
    // VXLAN from one VTEP to another carrying a broadcast; and a unicast
    // frame flooded to a VXLAN multicast group.
    let inner = |dst| eth_to(dst, 0x0800, &IPV4_UDP);
    let vxlan = |dst| cat(&[&[0x08, 0, 0, 0, 0, 0, 1, 0], &inner(dst)]);
    assert!(group(1, &in_udp(4789, &vxlan(BROADCAST))));
    let flooded = eth_to(
        IPV4_MULTICAST,
        0x0800,
        &outer_v4(17, &super::tunnel::udp(1, 4789, &vxlan(UNICAST))),
    );
    assert!(!group(1, &flooded));
    // GRE carrying an Ethernet frame; MPLS with a pseudowire control word; PBB.
    assert!(group(1, &in_gre(0, 0x6558, &inner(BROADCAST))));
    let pw = cat(&[&MPLS_STACK, &[0; 4], &inner(BROADCAST)]);
    assert!(group(1, &eth_to(UNICAST, 0x8847, &pw)));
    let pbb = cat(&[&[0x60, 0, 0, 1], &inner(IPV6_MULTICAST)]);
    assert!(group(1, &eth_to(UNICAST, 0x88e7, &pbb)));
    let pbb = cat(&[&[0x60, 0, 0, 1], &inner(UNICAST)]);
    assert!(!group(1, &eth_to(BROADCAST, 0x88e7, &pbb)));
    // An IP tunnel carries no Ethernet frame: the outer destination, here a
    // group address, says nothing of the packet inside.
    let ip_in_gre = eth_to(BROADCAST, 0x0800, &outer_v4(47, &gre(0, 0x0800, &IPV4_UDP)));
    assert!(!group(1, &ip_in_gre));
    // Link-level layers (MPLS without a control word, PPPoE) keep the frame's own.
    let mpls = cat(&[&MPLS_STACK, &IPV4_UDP]);
    assert!(group(1, &eth_to(BROADCAST, 0x8847, &mpls)));
    assert!(!group(1, &eth(0x8847, &mpls)));
}

#[test]
fn fragments_keep_their_frame_s_group_bit() {
    let (first, second) = ipv4_fragments();
    let mut defrag = Defragmenter::new();
    let resolved = |defrag: &mut Defragmenter, frame: &[u8]| match defrag.resolve(decode(1, frame))
    {
        Decoded::Packet(p) => p.l2_group,
        other => panic!("{other:?}"),
    };
    assert!(resolved(&mut defrag, &eth_to(BROADCAST, 0x0800, &first)));
    assert!(resolved(&mut defrag, &eth_to(BROADCAST, 0x0800, &second)));
    assert!(!resolved(&mut defrag, &eth_to(UNICAST, 0x0800, &second)));
}

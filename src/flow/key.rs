//! The direction-free identity of a flow, and the hash that shards it.

use std::net::IpAddr;

use crate::decode::PacketMeta;
use crate::transport::Transport;

/// One side of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

/// A packet's (sender, receiver).
pub fn endpoints(meta: &PacketMeta) -> (Endpoint, Endpoint) {
    (
        Endpoint {
            ip: meta.src,
            port: meta.src_port,
        },
        Endpoint {
            ip: meta.dst,
            port: meta.dst_port,
        },
    )
}

/// The same for both directions of a flow: the endpoints are stored in order.
/// By default VLAN ids and tunnels are not part of it, so a flow tagged or
/// tunnelled on one direction only is one flow, and the inner 5-tuple alone
/// names a tunnelled flow (as Suricata and Zeek do by default for VLANs). The
/// price: the same 5-tuple in two VLANs, VXLAN segments or VRFs is one flow;
/// `--vlan-key` puts the VLAN id in the key where address spaces overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub transport: Transport,
    pub lo: Endpoint,
    pub hi: Endpoint,
    /// The outer VLAN id, only with `--vlan-key`.
    pub vlan: Option<u16>,
}

impl FlowKey {
    pub fn new(transport: Transport, a: Endpoint, b: Endpoint) -> FlowKey {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        FlowKey {
            transport,
            lo,
            hi,
            vlan: None,
        }
    }

    /// The key of a decoded packet's flow; with `vlan_key`, its VLAN id is part of it.
    pub fn of(meta: &PacketMeta, vlan_key: bool) -> FlowKey {
        let (a, b) = endpoints(meta);
        FlowKey {
            vlan: if vlan_key { meta.vlan } else { None },
            ..FlowKey::new(meta.transport, a, b)
        }
    }

    /// The hash that shards flows over the workers and finds them in a
    /// table: the same in both directions and in every run, and cheap (one
    /// folded multiply for IPv4, a mixing round per 64 bits otherwise).
    /// [`packet_hash`] computes it straight from a packet.
    pub fn flow_hash(&self) -> u64 {
        let h = if let (IpAddr::V4(lo), IpAddr::V4(hi)) = (self.lo.ip, self.hi.ip) {
            hash_v4(
                self.transport,
                pack(u32::from(lo), self.lo.port),
                pack(u32::from(hi), self.hi.port),
            )
        } else {
            let mut h = hash_seed(self.transport);
            for ep in [self.lo, self.hi] {
                match ep.ip {
                    IpAddr::V4(v4) => h = mix(h, pack(u32::from(v4), ep.port)),
                    IpAddr::V6(v6) => {
                        let bits = u128::from(v6);
                        h = mix(h, (bits >> 64) as u64);
                        h = mix(h, bits as u64 ^ u64::from(ep.port) << 48);
                    }
                }
            }
            h
        };
        with_vlan(h, self.vlan)
    }

    /// A hash that is the same in both directions and in every run (unlike
    /// `std`'s seeded hasher), from which the flow id is made: ids must not
    /// depend on the process, and stay what they were in earlier versions.
    pub fn stable_hash(&self) -> u64 {
        let mut h = hash_seed(self.transport);
        for ep in [self.lo, self.hi] {
            match ep.ip {
                IpAddr::V4(v4) => h = mix(h, u64::from(u32::from(v4))),
                IpAddr::V6(v6) => {
                    let bits = u128::from(v6);
                    h = mix(h, (bits >> 64) as u64);
                    h = mix(h, bits as u64);
                }
            }
            h = mix(h, u64::from(ep.port));
        }
        with_vlan(h, self.vlan)
    }
}

/// [`FlowKey::flow_hash`] of the flow a packet belongs to, in either
/// direction, without building the key: for IPv4 the ordering and the mixing
/// work on integers. Computed once per packet, by whoever decodes it, to
/// shard on; the worker's table finds the flow with it.
pub fn packet_hash(meta: &PacketMeta, vlan_key: bool) -> u64 {
    match (meta.src, meta.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // `Endpoint`'s order for two IPv4 endpoints: address, then port.
            let a = pack(u32::from(s), meta.src_port);
            let b = pack(u32::from(d), meta.dst_port);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let vlan = if vlan_key { meta.vlan } else { None };
            with_vlan(hash_v4(meta.transport, lo, hi), vlan)
        }
        _ => FlowKey::of(meta, vlan_key).flow_hash(),
    }
}

/// With `--vlan-key`, the VLAN id mixed into a flow's hash.
fn with_vlan(h: u64, vlan: Option<u16>) -> u64 {
    match vlan {
        Some(vlan) => mix(h, 0x1_0000 | u64::from(vlan)),
        None => h,
    }
}

/// An IPv4 address and a port in one integer, ordered as [`Endpoint`]s are.
fn pack(ip: u32, port: u16) -> u64 {
    (u64::from(ip) << 16) | u64::from(port)
}

/// Two ordered IPv4 endpoints (48 bits each) and the transport, in one
/// 64x64-bit multiply folded to 64 bits (as foldhash and wyhash do). The
/// constants' top bits are set, so neither factor is ever zero.
fn hash_v4(transport: Transport, lo: u64, hi: u64) -> u64 {
    let proto = u64::from(transport.ip_proto()) << 48;
    fold_mul(
        (lo | proto) ^ 0x243f_6a88_85a3_08d3,
        hi ^ 0x1319_8a2e_0370_7344,
    )
}

/// The 128-bit product of `a` and `b`, its halves xored.
pub(crate) fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

fn hash_seed(transport: Transport) -> u64 {
    0x9e37_79b9_7f4a_7c15 ^ u64::from(transport.ip_proto())
}

/// One round of a multiply-xorshift mixer (from splitmix64).
pub(crate) fn mix(h: u64, v: u64) -> u64 {
    let mut z = (h ^ v).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `ep("10.0.0.1", 443)`, for tests across the crate.
#[cfg(test)]
pub(crate) fn ep(ip: &str, port: u16) -> Endpoint {
    Endpoint {
        ip: ip.parse().expect("test address"),
        port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_hash_ignore_direction() {
        let a = ep("10.0.0.1", 40000);
        let b = ep("10.0.0.2", 443);
        let k1 = FlowKey::new(Transport::Tcp, a, b);
        let k2 = FlowKey::new(Transport::Tcp, b, a);
        assert_eq!(k1, k2);
        assert_eq!(k1.stable_hash(), k2.stable_hash());
        assert_ne!(
            k1.stable_hash(),
            FlowKey::new(Transport::Udp, a, b).stable_hash()
        );
    }

    #[test]
    fn packet_hash_is_the_keys_flow_hash() {
        let ips = [
            "10.0.0.1",
            "10.0.0.2",
            "192.168.1.1",
            "0.0.0.0",
            "255.255.255.255",
            "fd00::1",
            "fd00::2",
            "::ffff:10.0.0.1",
        ];
        for (i, src) in ips.iter().enumerate() {
            for dst in &ips[i..] {
                for (sp, dp) in [(1, 2), (2, 1), (443, 443), (0, 65535)] {
                    for transport in Transport::ALL {
                        let meta = PacketMeta {
                            src: src.parse().expect("ip"),
                            dst: dst.parse().expect("ip"),
                            src_port: sp,
                            dst_port: dp,
                            transport,
                            tcp_flags: 0,
                            ip_len: 0,
                            payload_len: 0,
                            vlan: Some(7),
                            encap: crate::decode::Encap::NONE,
                            app: None,
                            l2_group: false,
                        };
                        for vlan_key in [false, true] {
                            let vlan = vlan_key.then_some(7);
                            let key = FlowKey {
                                vlan,
                                ..FlowKey::new(transport, ep(src, sp), ep(dst, dp))
                            };
                            let reverse = FlowKey {
                                vlan,
                                ..FlowKey::new(transport, ep(dst, dp), ep(src, sp))
                            };
                            let hash = packet_hash(&meta, vlan_key);
                            assert_eq!(hash, key.flow_hash(), "{src} {dst} {sp} {dp}");
                            assert_eq!(hash, reverse.flow_hash(), "{src} {dst} {sp} {dp}");
                        }
                    }
                }
            }
        }
    }
}

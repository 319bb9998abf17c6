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

    /// A hash that is the same in both directions and in every run (unlike
    /// `std`'s seeded hasher): it picks the worker and seeds the flow id, so
    /// both must not depend on the process.
    pub fn stable_hash(&self) -> u64 {
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(self.transport.ip_proto());
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
        match self.vlan {
            Some(vlan) => mix(h, 0x1_0000 | u64::from(vlan)),
            None => h,
        }
    }
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
}

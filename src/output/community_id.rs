//! Community ID v1 (<https://github.com/corelight/community-id-spec>): the
//! flow hash that Zeek, Suricata and tshark print, so our events join theirs.
//!
//! Twenty lines over `sha1_smol` and `base64`: simpler to check against the
//! spec's vectors than to follow a third-party crate's choices.

use std::net::IpAddr;

use base64::Engine;

use crate::flow::Endpoint;
use crate::transport::Transport;

/// `1:<base64 sha1>` for a flow, the same in both directions.
pub fn community_id(seed: u16, transport: Transport, a: Endpoint, b: Endpoint) -> String {
    let (lo, hi) = if (a.ip, a.port) <= (b.ip, b.port) {
        (a, b)
    } else {
        (b, a)
    };
    let mut h = sha1_smol::Sha1::new();
    h.update(&seed.to_be_bytes());
    for ip in [lo.ip, hi.ip] {
        match ip {
            IpAddr::V4(v4) => h.update(&v4.octets()),
            IpAddr::V6(v6) => h.update(&v6.octets()),
        }
    }
    h.update(&[transport.ip_proto(), 0]);
    h.update(&lo.port.to_be_bytes());
    h.update(&hi.port.to_be_bytes());
    let digest = h.digest().bytes();
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::ep;

    /// The spec's published baseline (README of its baseline folder).
    #[test]
    fn matches_the_spec_vectors() {
        let (a, b) = (ep("1.2.3.4", 1122), ep("5.6.7.8", 3344));
        let vectors = [
            (0, Transport::Tcp, a, b, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
            (0, Transport::Tcp, b, a, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
            (0, Transport::Udp, a, b, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
            (1, Transport::Tcp, a, b, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
            (1, Transport::Udp, b, a, "1:OShq+iKDAMVouh/4bMxB9Sz4amw="),
        ];
        for (seed, t, from, to, want) in vectors {
            assert_eq!(community_id(seed, t, from, to), want, "seed {seed} {t}");
        }
    }
}

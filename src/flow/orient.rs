//! Who listens: the evidence that makes one end of a new flow its server.
//!
//! A client's ephemeral port falls inside the matrix's wide media ranges by
//! chance (Linux's 32768–60999 overlaps the Windows media range 20000–45499
//! by half), so a port alone must not decide when something better is there.
//! The evidence, strongest first (docs/guide.md, "Who listens", gives an example of each):
//!
//! 1. the handshake: the SYN's sender (or the SYN-ACK's receiver) is the client;
//! 2. a multicast or broadcast destination is the receiver, never a client
//!    (ahead of the payload: an mDNS answer to its group is still the group's);
//! 3. the payload: a request or a response in the first bytes (a DNS query,
//!    `HTTP/1.1 200`, a TLS ServerHello…), unless both peers of its protocol
//!    listen (SIP, STUN, RTP);
//! 4. the ports: a documented listening port or a system port (< 1024) on
//!    one side only; a port only inside a wide range counts on the receiving
//!    side alone, never on the sender's;
//! 5. media (both ports inside wide ranges, or RTP-shaped payload with one
//!    port there): the reading that documents the flow, since each side of
//!    a media stream sends from the port it listens on;
//! 6. a request or response of a protocol whose peers both listen;
//! 7. the heuristic: the first sender (UDP), the lower port (TCP).

use super::{Direction, Endpoint};
use crate::classify::{Classifier, FlowQuery, PortClaim};
use crate::decode::{tcp_flags, AppGuess, PacketMeta, SenderRole};
use crate::transport::Transport;
use crate::verdict::Verdict;

/// A new flow's two ends, and what told them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Orientation {
    pub client: Endpoint,
    pub server: Endpoint,
    pub direction: Direction,
}

/// Tell client from server on a flow's first packet.
pub(super) fn orient(
    classifier: &Classifier,
    meta: &PacketMeta,
    sender: Endpoint,
    receiver: Endpoint,
) -> Orientation {
    let t = meta.transport;
    let forward = |direction| Orientation {
        client: sender,
        server: receiver,
        direction,
    };
    let backward = |direction| Orientation {
        client: receiver,
        server: sender,
        direction,
    };
    if t == Transport::Tcp && meta.tcp_flags & tcp_flags::SYN != 0 {
        return if meta.tcp_flags & tcp_flags::ACK == 0 {
            forward(Direction::Handshake)
        } else {
            backward(Direction::Handshake)
        };
    }
    if is_group(receiver, meta) {
        return forward(Direction::Multicast);
    }
    let payload = meta.app.unwrap_or_default();
    match payload.decisive_role() {
        SenderRole::Client => return forward(Direction::Payload),
        SenderRole::Server => return backward(Direction::Payload),
        SenderRole::Unknown => {}
    }
    let (s, r) = (
        classifier.port_claim(t, sender.port),
        classifier.port_claim(t, receiver.port),
    );
    let by_port = |claim: PortClaim| {
        if claim == PortClaim::Documented {
            Direction::Matrix
        } else {
            Direction::Heuristic
        }
    };
    if r.is_strong() && !s.is_strong() {
        return forward(by_port(r));
    }
    if s.is_strong() && !r.is_strong() {
        return backward(by_port(s));
    }
    if !s.is_strong() && !r.is_strong() {
        // Media: both ports in wide ranges, or media payload with one of them
        // there. Each side sends from the port it listens on.
        let wide = (s, r) == (PortClaim::WideRange, PortClaim::WideRange)
            || (is_media(payload.guess)
                && (s == PortClaim::WideRange || r == PortClaim::WideRange));
        if wide {
            if let Some(listener) = documenting_reading(classifier, meta, sender, receiver) {
                return if listener == receiver {
                    forward(Direction::Matrix)
                } else {
                    backward(Direction::Matrix)
                };
            }
        }
        if (s, r) == (PortClaim::None, PortClaim::WideRange) {
            return forward(Direction::Matrix);
        }
    }
    // The ports tie: a request or response between peers that both listen.
    match payload.sender {
        SenderRole::Client => return forward(Direction::Payload),
        SenderRole::Server => return backward(Direction::Payload),
        SenderRole::Unknown => {}
    }
    // The heuristic: UDP's first sender is the client; mid-stream TCP's
    // lower port listens (ties: the lower address).
    if t == Transport::Udp || (receiver.port, receiver.ip) <= (sender.port, sender.ip) {
        forward(Direction::Heuristic)
    } else {
        backward(Direction::Heuristic)
    }
}

/// RTP-shaped, RTCP, or the STUN/DTLS that sets media up.
fn is_media(guess: AppGuess) -> bool {
    matches!(
        guess,
        AppGuess::MaybeRtp | AppGuess::Rtp | AppGuess::StunDtls
    )
}

/// A multicast group, or a broadcast: the limited broadcast address, or a
/// frame sent to the link's broadcast address (a subnet's broadcast).
fn is_group(receiver: Endpoint, meta: &PacketMeta) -> bool {
    match receiver.ip {
        std::net::IpAddr::V4(ip) => ip.is_multicast() || ip.is_broadcast() || meta.l2_group,
        std::net::IpAddr::V6(ip) => ip.is_multicast(),
    }
}

/// Between two ports that both lie only in wide (media) ranges: the end that
/// listens in the one reading the matrix documents, if exactly one does.
fn documenting_reading(
    classifier: &Classifier,
    meta: &PacketMeta,
    sender: Endpoint,
    receiver: Endpoint,
) -> Option<Endpoint> {
    let documents = |client: Endpoint, server: Endpoint| {
        classifier
            .classify(FlowQuery {
                transport: meta.transport,
                port: server.port,
                multicast: false,
                same_host: client.ip == server.ip,
                client: client.ip,
                server: server.ip,
                vlan: meta.vlan,
            })
            .verdict
            == Verdict::Documented
    };
    match (documents(sender, receiver), documents(receiver, sender)) {
        (true, false) => Some(receiver),
        (false, true) => Some(sender),
        _ => None,
    }
}

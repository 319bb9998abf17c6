//! Following a TCP connection's state from the flags of its packets, as a
//! passive observer that may have missed the start: a flow first seen in
//! the middle is taken as established.

use super::{Flow, TcpState};
use crate::decode::tcp_flags;

/// Moves `flow`'s TCP state on for a packet with `flags`, sent towards the
/// server if `to_server`; the packet is already counted on the flow. A UDP
/// flow (no TCP state) is left alone, and so is a closed connection.
#[inline]
pub(super) fn follow(flow: &mut Flow, flags: u8, to_server: bool) {
    let Some(state) = flow.tcp_state else {
        return;
    };
    let (syn, ack, fin, rst) = (
        flags & tcp_flags::SYN != 0,
        flags & tcp_flags::ACK != 0,
        flags & tcp_flags::FIN != 0,
        flags & tcp_flags::RST != 0,
    );
    let first = flow.pkts_toserver + flow.pkts_toclient == 1;
    let mut next = state;
    if first && syn {
        next = if ack {
            TcpState::SynRecv
        } else {
            TcpState::SynSent
        };
    } else if syn && ack && state == TcpState::SynSent && !to_server {
        next = TcpState::SynRecv;
    } else if ack && state == TcpState::SynRecv && to_server {
        next = TcpState::Established;
    }
    if fin {
        if to_server {
            flow.fin_from_client = true;
        } else {
            flow.fin_from_server = true;
        }
        next = if flow.fin_from_client && flow.fin_from_server {
            TcpState::Closed
        } else {
            TcpState::Closing
        };
    }
    if rst {
        next = TcpState::Closed;
    }
    if state != TcpState::Closed {
        flow.tcp_state = Some(next);
    }
}

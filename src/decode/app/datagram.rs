//! Datagram protocols whose first byte may look like RTP's: DNS and NetBIOS
//! name service (a transaction id), NTP, IAX2; and QUIC's long header and
//! NetBIOS datagrams. Each is checked by fields that random bytes rarely
//! get right together.

use super::{be16, be32, AppGuess, SenderRole};
use SenderRole::{Client, Server, Unknown};

pub(super) fn identify(p: &[u8], declared: usize) -> Option<(AppGuess, SenderRole)> {
    if let Some(found) = dns(p) {
        return Some(found);
    }
    if let Some(found) = ntp(p, declared) {
        return Some(found);
    }
    if is_quic_long_header(p) {
        return Some((AppGuess::Quic, Unknown));
    }
    if is_iax2_opening(p) {
        return Some((AppGuess::Iax2, Client));
    }
    if is_netbios_datagram(p) {
        return Some((AppGuess::NetBios, Unknown));
    }
    None
}

/// A DNS (or NetBIOS name service, or mDNS/LLMNR) message: a plausible
/// header, then the first name well-formed as far as it was captured. The
/// QR bit tells a query from a response.
pub(super) fn dns(p: &[u8]) -> Option<(AppGuess, SenderRole)> {
    if p.len() < 17 {
        return None;
    }
    let (flags, z) = (p[2], p[3]);
    let opcode = (flags >> 3) & 0x0f;
    if !matches!(opcode, 0 | 1 | 2 | 4 | 5) || z & 0x40 != 0 || z & 0x0f > 10 {
        return None;
    }
    let [qd, an, ns, ar] = [4, 6, 8, 10].map(|at| be16(p, at).unwrap_or(u16::MAX));
    let response = flags & 0x80 != 0;
    let records = u32::from(an) + u32::from(ns) + u32::from(ar);
    if qd > 8 || an > 512 || ns > 512 || ar > 512 || (qd == 0 && (records == 0 || !response)) {
        return None;
    }
    let netbios = first_name(&p[12..])?;
    let guess = if netbios {
        AppGuess::NetBios
    } else {
        AppGuess::Dns
    };
    Some((guess, if response { Server } else { Client }))
}

/// Walks the labels of a name at the start of `p` as far as `p` goes: each a
/// length 1–63 and that many bytes, up to the root (0) or a compression
/// pointer. `Some(true)` for a NetBIOS-encoded name (32 letters A–P).
fn first_name(p: &[u8]) -> Option<bool> {
    let mut at = 0;
    let mut labels = 0;
    while let Some(&len) = p.get(at) {
        match len {
            0 => return (labels > 0).then_some(false),
            1..=63 => {
                let label = p.get(at + 1..at + 1 + usize::from(len));
                let shown = label.unwrap_or(&p[at + 1..]);
                if shown.iter().any(|&b| b < 0x20 || b == 0x7f) {
                    return None;
                }
                if labels == 0 && len == 32 && shown.iter().all(|b| (b'A'..=b'P').contains(b)) {
                    return Some(true);
                }
                labels += 1;
                at += 1 + usize::from(len);
            }
            0xc0..=0xff => return Some(false),
            _ => return None,
        }
    }
    // Cut by the look-ahead inside a well-formed name.
    (labels > 0).then_some(false)
}

/// An NTP packet: version 1–4, and either a time packet (48 bytes plus whole
/// extension words, stratum ≤ 16, a poll interval and a precision of real
/// clocks), a mode-6 control message or a mode-7 private one. Client and
/// server modes, and the response bits, say who is who.
fn ntp(p: &[u8], declared: usize) -> Option<(AppGuess, SenderRole)> {
    let (version, mode) = ((p[0] >> 3) & 7, p[0] & 7);
    if !(1..=4).contains(&version) {
        return None;
    }
    if mode == 6 {
        // Control: opcode 1–31 with a response bit, then the data's length.
        let data = usize::from(be16(p, 10)?);
        let opcode = p[1] & 0x1f;
        return (opcode >= 1 && 12 + data <= declared && declared <= 12 + data + 3 + 24).then(
            || {
                let sender = if p[1] & 0x80 != 0 { Server } else { Client };
                (AppGuess::Ntp, sender)
            },
        );
    }
    if mode == 7 {
        // ntpdc's private mode: an implementation number, then items of one
        // size that fill the packet exactly.
        let items = usize::from(be16(p, 4)? & 0x0fff);
        let size = usize::from(be16(p, 6)? & 0x0fff);
        let sender = if p[0] & 0x80 != 0 { Server } else { Client };
        return (matches!(p[2], 0 | 2 | 3) && 8 + items * size == declared)
            .then_some((AppGuess::Ntp, sender));
    }
    let precision = p.get(3).map(|&b| b as i8)?;
    let timed = declared >= 48
        && (declared - 48).is_multiple_of(4)
        && declared <= 48 + 1024
        && (1..=5).contains(&mode)
        && p[1] <= 16
        && p[2] <= 17
        && (-32..=0).contains(&precision);
    timed.then_some((
        AppGuess::Ntp,
        match mode {
            3 => Client,
            4 => Server,
            _ => Unknown,
        },
    ))
}

/// A QUIC long header (form and fixed bits set) with a known version: 1, 2,
/// an IETF draft, Google's Q0xx, or 0 (version negotiation).
fn is_quic_long_header(p: &[u8]) -> bool {
    if p.len() < 7 || p[0] & 0xc0 != 0xc0 || p[5] > 20 {
        return false;
    }
    let Some(version) = be32(p, 1) else {
        return false;
    };
    matches!(version, 0 | 1 | 0x6b33_43cf)
        || version & 0xffff_ff00 == 0xff00_0000
        || (version >> 16 == 0x5130 && p[3].is_ascii_digit() && p[4].is_ascii_digit())
}

/// The first frame of an IAX2 exchange: a full frame of type IAX (6) to
/// destination call 0 (NEW, POKE, REGREQ, REGREL…).
fn is_iax2_opening(p: &[u8]) -> bool {
    p.len() >= 12
        && p[0] & 0x80 != 0
        && be16(p, 2).is_some_and(|dst| dst & 0x7fff == 0)
        && p[10] == 6
        && (1..=0x26).contains(&p[11])
}

/// A NetBIOS datagram service header: message type 0x10–0x16 and the
/// source port field at 138.
fn is_netbios_datagram(p: &[u8]) -> bool {
    p.len() >= 10 && (0x10..=0x16).contains(&p[0]) && be16(p, 8) == Some(138)
}

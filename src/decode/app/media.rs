//! Media and its companions on the media ports: STUN (RFC 5389 with its
//! magic cookie, classic RFC 3489, and over TCP with RFC 4571 framing), DTLS,
//! RTCP compound packets, and RTP-shaped datagrams.

use super::{be16, AppGuess, RtpMark, SenderRole};
use crate::transport::Transport;
use SenderRole::{Client, Server, Unknown};

const STUN_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// STUN or DTLS. Over TCP, STUN may come with a two-byte length in front
/// (RFC 4571); DTLS is UDP only.
pub(super) fn stun(t: Transport, p: &[u8], declared: usize) -> Option<(AppGuess, SenderRole)> {
    if let Some(found) = stun_message(p, declared) {
        return Some(found);
    }
    match t {
        Transport::Tcp => {
            let framed = be16(p, 0).is_some_and(|n| usize::from(n) + 2 == declared);
            framed
                .then(|| stun_message(&p[2..], declared - 2))
                .flatten()
        }
        Transport::Udp => dtls(p),
    }
}

/// A STUN message: the two top bits clear, a length in whole words, and the
/// magic cookie; without the cookie (classic STUN) a known message type and
/// a length that is exactly the rest of the payload.
fn stun_message(p: &[u8], declared: usize) -> Option<(AppGuess, SenderRole)> {
    let kind = be16(p, 0)?;
    let len = usize::from(be16(p, 2)?);
    if kind & 0xc000 != 0 || !len.is_multiple_of(4) || p.len() < 20 {
        return None;
    }
    let cookie = p[4..8] == STUN_COOKIE;
    let classic =
        matches!(kind, 0x0001 | 0x0101 | 0x0111 | 0x0002 | 0x0102 | 0x0112) && 20 + len == declared;
    if !cookie && !classic {
        return None;
    }
    // The class: bits 0x0100 and 0x0010 of the type.
    let sender = match (kind & 0x0100 != 0, kind & 0x0010 != 0) {
        (false, false) => Client,
        (true, _) => Server,
        (false, true) => Unknown, // an indication
    };
    Some((AppGuess::StunDtls, sender))
}

/// A DTLS record (content type in RFC 7983's 20–63, version 0xfeXX); a
/// handshake record's message tells a ClientHello from a ServerHello.
fn dtls(p: &[u8]) -> Option<(AppGuess, SenderRole)> {
    if p.len() < 13 || !(20..=63).contains(&p[0]) || p[1] != 0xfe {
        return None;
    }
    let sender = match (p[0], p.get(13)) {
        (22, Some(1)) => Client,
        (22, Some(2)) => Server,
        _ => Unknown,
    };
    Some((AppGuess::StunDtls, sender))
}

/// An RTCP compound packet: each part version 2, packet type 192–207 (the
/// first a report, source description, BYE or APP: 200–204), and lengths that
/// add up to exactly the payload. When the parts run beyond the bytes looked
/// at, two part headers must have been seen and agreed.
pub(super) fn rtcp(p: &[u8], declared: usize) -> Option<(AppGuess, SenderRole)> {
    if p.len() < 8 || !(200..=204).contains(&p[1]) {
        return None;
    }
    let mut at = 0;
    let mut parts = 0;
    while at < declared {
        let (Some(&first), Some(&kind), Some(words)) = (p.get(at), p.get(at + 1), be16(p, at + 2))
        else {
            // Beyond the bytes looked at: taken on the lengths so far.
            return (parts >= 2).then_some((AppGuess::Rtp, Unknown));
        };
        if first >> 6 != 2 || !(192..=207).contains(&kind) {
            return None;
        }
        parts += 1;
        at += (usize::from(words) + 1) * 4;
    }
    (at == declared).then_some((AppGuess::Rtp, Unknown))
}

/// SRTCP (RTCP encrypted after its first header): a sender or receiver
/// report's header, then ciphertext, the 4-byte SRTCP index (its E bit set)
/// and a 10-byte authentication tag. Only the stream shows it is RTCP: the
/// [`RtpMark`] carries the SSRC and the index, which counts up by one.
pub(super) fn srtcp(p: &[u8], declared: usize) -> Option<RtpMark> {
    const TRAILER: usize = 4 + 10;
    if p.len() < 8 || p[0] >> 6 != 2 || !matches!(p[1], 200 | 201) {
        return None;
    }
    let first = (usize::from(be16(p, 2)?) + 1) * 4;
    let at = declared.checked_sub(TRAILER).filter(|&at| at >= first)?;
    let index = p.get(at..at + 4)?;
    (index[0] & 0x80 != 0).then(|| RtpMark {
        ssrc: p[4] ^ p[5] ^ p[6] ^ p[7],
        timestamp: 0,
        seq: u16::from_be_bytes([index[2], index[3]]),
    })
}

/// An RTP-shaped datagram: version 2, a payload type of the audio/video
/// ranges (static 0–34, dynamic 96–127), room for the CSRCs and any header
/// extension, and sane padding. Its [`RtpMark`], for the flow to compare.
pub(super) fn rtp(p: &[u8], declared: usize) -> Option<RtpMark> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let payload_type = p[1] & 0x7f;
    if !(payload_type <= 34 || payload_type >= 96) {
        return None;
    }
    let mut header = 12 + 4 * usize::from(p[0] & 0x0f);
    if p[0] & 0x10 != 0 {
        // The extension header's length in words, where it was looked at.
        let words = be16(p, header + 2).map_or(0, usize::from);
        header += 4 + 4 * words;
    }
    if header > declared {
        return None;
    }
    if p[0] & 0x20 != 0 && p.len() == declared {
        // Padding: its count is the last byte.
        let pad = usize::from(p[declared - 1]);
        if pad == 0 || header + pad > declared {
            return None;
        }
    }
    Some(RtpMark {
        ssrc: p[8] ^ p[9] ^ p[10] ^ p[11],
        timestamp: p[5],
        seq: be16(p, 2)?,
    })
}

//! What application protocol the first payload bytes of a packet look like,
//! and whether they make the sender the client or the server.
//!
//! Small fingerprints, only as sure as the bytes make them: a packet either
//! clearly starts like one protocol (an HTTP request line, a TLS record
//! header, an SSH banner, a DNS header with a well-formed question…) or it is
//! [`AppGuess::Unknown`]. Encrypted or unrecognised payload never counts
//! against a rule; see `classify` for how a guess is compared with the rule's
//! `app_protocol`. Reading stays within the first [`LOOK`] bytes and never
//! allocates.
//!
//! RTP has no signature one packet can show: any datagram whose first byte is
//! 0x80–0xBF has "version 2". So a packet is at most [`AppGuess::MaybeRtp`],
//! with an [`RtpMark`] that the flow compares with the next packet of the
//! same direction (same SSRC, sequence number and timestamp moving forward;
//! see `flow::inspect`); so is encrypted RTCP (SRTCP), whose index counts
//! up like a sequence number. Protocols that share RTP's first byte (DNS and
//! NetBIOS transaction ids, NTP, IAX2) are recognised first.

mod binary;
mod datagram;
mod media;
mod text;

use crate::transport::Transport;

/// The protocol a payload looks like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppGuess {
    /// No payload, or nothing recognisable.
    #[default]
    Unknown,
    /// Printable text that matches no protocol below (plain text, not TLS).
    Text,
    Tls,
    Http,
    Sip,
    Ssh,
    Smtp,
    Pop3,
    Imap,
    Ftp,
    Ldap,
    Rdp,
    Xmpp,
    /// RTP or RTCP: a well-formed RTCP compound packet, or RTP packets whose
    /// SSRC, sequence numbers and timestamps hold together (flows only).
    Rtp,
    /// STUN or DTLS, which share media ports with RTP (ICE, SRTP keying).
    StunDtls,
    Dns,
    /// NetBIOS name service (DNS-shaped, with an encoded NetBIOS name) or datagram service.
    NetBios,
    Ntp,
    /// A QUIC long header (handshake packets; short headers look like nothing).
    Quic,
    /// An IAX2 full frame that opens an exchange (NEW, POKE, REGREQ…).
    Iax2,
    Syslog,
    /// MS-SQL's Tabular Data Stream.
    Tds,
    /// SMB (1, 2 or 3) in its NetBIOS session framing.
    Smb,
    Snmp,
    Rtsp,
    /// A MySQL server greeting.
    Mysql,
    /// One datagram shaped like RTP: no evidence alone (see the module doc).
    MaybeRtp,
}

impl AppGuess {
    pub fn as_str(self) -> &'static str {
        match self {
            AppGuess::Unknown | AppGuess::MaybeRtp => "unknown",
            AppGuess::Text => "text",
            AppGuess::Tls => "tls",
            AppGuess::Http => "http",
            AppGuess::Sip => "sip",
            AppGuess::Ssh => "ssh",
            AppGuess::Smtp => "smtp",
            AppGuess::Pop3 => "pop3",
            AppGuess::Imap => "imap",
            AppGuess::Ftp => "ftp",
            AppGuess::Ldap => "ldap",
            AppGuess::Rdp => "rdp",
            AppGuess::Xmpp => "xmpp",
            AppGuess::Rtp => "rtp",
            AppGuess::StunDtls => "stun_dtls",
            AppGuess::Dns => "dns",
            AppGuess::NetBios => "netbios",
            AppGuess::Ntp => "ntp",
            AppGuess::Quic => "quic",
            AppGuess::Iax2 => "iax2",
            AppGuess::Syslog => "syslog",
            AppGuess::Tds => "tds",
            AppGuess::Smb => "smb",
            AppGuess::Snmp => "snmp",
            AppGuess::Rtsp => "rtsp",
            AppGuess::Mysql => "mysql",
        }
    }

    /// Encrypted, so it can never prove a mismatch, only that TLS is used.
    pub fn is_encrypted(self) -> bool {
        matches!(self, AppGuess::Tls | AppGuess::StunDtls | AppGuess::Quic)
    }

    /// Names a protocol (not unknown, plain text, or a single RTP-shaped datagram).
    pub fn is_named(self) -> bool {
        !matches!(
            self,
            AppGuess::Unknown | AppGuess::Text | AppGuess::MaybeRtp
        )
    }

    /// Both peers of this protocol listen (SIP user agents, ICE candidates,
    /// media endpoints): a request in it says less about who listens than a
    /// documented port does.
    pub fn peers_listen(self) -> bool {
        matches!(
            self,
            AppGuess::Sip
                | AppGuess::StunDtls
                | AppGuess::Rtp
                | AppGuess::MaybeRtp
                | AppGuess::Iax2
        )
    }
}

/// What a packet's payload says of its sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SenderRole {
    /// Nothing: data, a banner both sides send, or an unknown protocol.
    #[default]
    Unknown,
    /// A request (DNS query, HTTP request line, TLS ClientHello…): the sender is the client.
    Client,
    /// A response or a server's greeting (DNS answer, `HTTP/1.1 200`,
    /// ServerHello, `220 ` SMTP banner…): the sender is the listener.
    Server,
}

/// What identifies an RTP stream in one packet, folded to fit the packet
/// record: the SSRC (its four bytes xor-ed), the sequence number, and bits
/// 16–23 of the timestamp (they move once every 65,536 clock ticks: 8 s of
/// 8 kHz audio, 0.7 s of 90 kHz video).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RtpMark {
    pub ssrc: u8,
    pub timestamp: u8,
    pub seq: u16,
}

/// How a later RTP-shaped packet of the same direction relates to an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpFollow {
    /// Same stream, sequence number 1–100 ahead, timestamp not going back: RTP.
    Continues,
    /// A copy of the same packet (a SPAN seeing it twice): says nothing.
    Repeats,
    /// Another SSRC, or numbers that do not move forward: not one RTP stream.
    Breaks,
}

impl RtpMark {
    pub fn followed_by(self, next: RtpMark) -> RtpFollow {
        if next.ssrc != self.ssrc {
            return RtpFollow::Breaks;
        }
        let seq = next.seq.wrapping_sub(self.seq);
        let ts = next.timestamp.wrapping_sub(self.timestamp);
        match seq {
            0 if ts == 0 => RtpFollow::Repeats,
            1..=100 if ts <= 2 => RtpFollow::Continues,
            _ => RtpFollow::Breaks,
        }
    }
}

/// What one packet's first payload bytes say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AppSeen {
    pub guess: AppGuess,
    pub sender: SenderRole,
    /// Set for [`AppGuess::MaybeRtp`].
    pub rtp: RtpMark,
}

impl AppSeen {
    fn of(guess: AppGuess, sender: SenderRole) -> AppSeen {
        AppSeen {
            guess,
            sender,
            rtp: RtpMark::default(),
        }
    }

    /// A sender role that should decide who listens ahead of the ports: the
    /// payload says it, and its protocol is not one whose peers both listen.
    pub fn decisive_role(self) -> SenderRole {
        if self.guess.peers_listen() {
            SenderRole::Unknown
        } else {
            self.sender
        }
    }
}

/// How many payload bytes the fingerprints look at.
pub const LOOK: usize = 64;

/// Guess the protocol of one packet's payload. `payload` is what was
/// captured (the snaplen may have cut it); `declared` is the payload length
/// the IP header gives, which length fields inside the payload must agree with.
pub fn identify(transport: Transport, payload: &[u8], declared: usize) -> AppSeen {
    let p = &payload[..payload.len().min(LOOK)];
    let Some(&first) = p.first() else {
        return AppSeen::default();
    };
    let known = |(guess, sender)| AppSeen::of(guess, sender);
    if let Some(tls) = binary::tls_record(p) {
        return known(tls);
    }
    if let Some(found) = media::stun(transport, p, declared) {
        return known(found);
    }
    match transport {
        Transport::Udp => {
            if let Some(found) = datagram::identify(p, declared) {
                return known(found);
            }
            if let Some(found) = media::rtcp(p, declared) {
                return known(found);
            }
            if let Some(rtp) = media::rtp(p, declared).or_else(|| media::srtcp(p, declared)) {
                return AppSeen {
                    guess: AppGuess::MaybeRtp,
                    sender: SenderRole::Unknown,
                    rtp,
                };
            }
        }
        Transport::Tcp => {
            if let Some(found) = binary::rdp(p) {
                return known(found);
            }
            if let Some(found) = binary::on_stream(p, declared) {
                return known(found);
            }
        }
    }
    if first.is_ascii_graphic() {
        if let Some(found) = text::identify(p) {
            return known(found);
        }
    }
    if let Some(found) = binary::identify(p) {
        return known(found);
    }
    if p.len() >= 8 && p.iter().all(|&b| is_text_byte(b)) {
        return known((AppGuess::Text, SenderRole::Unknown));
    }
    AppSeen::default()
}

fn is_text_byte(b: u8) -> bool {
    b.is_ascii_graphic() || b == b' ' || b == b'\r' || b == b'\n' || b == b'\t'
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

fn be32(p: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *p.get(at)?,
        *p.get(at + 1)?,
        *p.get(at + 2)?,
        *p.get(at + 3)?,
    ]))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests;

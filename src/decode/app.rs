//! What application protocol the first payload bytes of a packet look like.
//!
//! Small fingerprints, only as sure as the bytes make them: a packet either
//! clearly starts like one protocol (an HTTP request line, a TLS record
//! header, an SSH banner, a version-2 RTP header…) or it is [`AppGuess::Unknown`].
//! Encrypted or unrecognised payload never counts against a rule; see
//! `classify` for how a guess is compared with the rule's `app_protocol`.
//! Reading stays within the first 64 bytes and never allocates.

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
    Rtp,
    /// STUN or DTLS, which share media ports with RTP (ICE, SRTP keying).
    StunDtls,
}

impl AppGuess {
    pub fn as_str(self) -> &'static str {
        match self {
            AppGuess::Unknown => "unknown",
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
        }
    }

    /// Encrypted, so it can never prove a mismatch, only that TLS is used.
    pub fn is_encrypted(self) -> bool {
        matches!(self, AppGuess::Tls | AppGuess::StunDtls)
    }
}

/// How many payload bytes the fingerprints look at.
const LOOK: usize = 64;

const HTTP_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

const SIP_METHODS: [&[u8]; 14] = [
    b"INVITE ",
    b"ACK ",
    b"BYE ",
    b"CANCEL ",
    b"OPTIONS ",
    b"REGISTER ",
    b"SUBSCRIBE ",
    b"NOTIFY ",
    b"PUBLISH ",
    b"INFO ",
    b"REFER ",
    b"MESSAGE ",
    b"UPDATE ",
    b"PRACK ",
];

/// Guess the protocol of one packet's payload (`payload` may be cut short by
/// the snaplen; a guess needs only the first bytes).
pub fn identify(transport: Transport, payload: &[u8]) -> AppGuess {
    let p = &payload[..payload.len().min(LOOK)];
    let Some(&first) = p.first() else {
        return AppGuess::Unknown;
    };
    if is_tls_record(p) {
        return AppGuess::Tls;
    }
    if transport == Transport::Udp {
        if let Some(guess) = media(p) {
            return guess;
        }
    }
    if first.is_ascii_graphic() {
        if let Some(guess) = text_protocol(p) {
            return guess;
        }
    }
    if first == 0x03 && p.len() >= 7 && p[1] == 0 && (p[5] & 0xf0) == 0xe0 {
        // TPKT header, then an X.224 connection request or confirm.
        return AppGuess::Rdp;
    }
    if is_ldap_message(p) {
        return AppGuess::Ldap;
    }
    if p.len() >= 8
        && p.iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\r' || b == b'\n' || b == b'\t')
    {
        return AppGuess::Text;
    }
    AppGuess::Unknown
}

/// A TLS (or SSL 3) record: content type 20–23, version 3.x.
fn is_tls_record(p: &[u8]) -> bool {
    p.len() >= 5 && (20..=23).contains(&p[0]) && p[1] == 3 && p[2] <= 4
}

/// RTP/RTCP (version 2), or STUN (its magic cookie) or DTLS (version 0xfeXX),
/// the first-byte ranges of RFC 7983.
fn media(p: &[u8]) -> Option<AppGuess> {
    const STUN_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    match p[0] {
        0..=3 if p.len() >= 20 && p[4..8] == STUN_COOKIE => Some(AppGuess::StunDtls),
        20..=63 if p.get(1) == Some(&0xfe) => Some(AppGuess::StunDtls),
        128..=191 if p.len() >= 12 => Some(AppGuess::Rtp),
        _ => None,
    }
}

fn text_protocol(p: &[u8]) -> Option<AppGuess> {
    let line = first_line(p);
    if line.starts_with(b"SIP/2.0 ") || line.ends_with(b" SIP/2.0") {
        return Some(AppGuess::Sip);
    }
    if line.starts_with(b"HTTP/1.") || line.starts_with(b"HTTP/2") {
        return Some(AppGuess::Http);
    }
    if HTTP_METHODS.iter().any(|m| line.starts_with(m)) && contains(line, b" HTTP/") {
        return Some(AppGuess::Http);
    }
    // A SIP request line cut by the look-ahead: the method and a sip: URI.
    if SIP_METHODS.iter().any(|m| line.starts_with(m)) && contains(line, b" sip:") {
        return Some(AppGuess::Sip);
    }
    if line.starts_with(b"SSH-") {
        return Some(AppGuess::Ssh);
    }
    if line.starts_with(b"EHLO ") || line.starts_with(b"HELO ") {
        return Some(AppGuess::Smtp);
    }
    if line.starts_with(b"220 ") || line.starts_with(b"220-") {
        let upper = |w: &[u8]| contains_ignore_case(line, w);
        return Some(if upper(b"SMTP") {
            AppGuess::Smtp
        } else if upper(b"FTP") {
            AppGuess::Ftp
        } else {
            AppGuess::Text
        });
    }
    if line.starts_with(b"+OK") {
        return Some(AppGuess::Pop3);
    }
    if line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH") {
        return Some(AppGuess::Imap);
    }
    // XMPP opens a stream (after an optional XML declaration); any other XML
    // is only text.
    if (line.starts_with(b"<?xml") || line.starts_with(b"<stream:"))
        && contains(p, b"<stream:stream")
    {
        return Some(AppGuess::Xmpp);
    }
    None
}

/// An LDAP message: a BER SEQUENCE holding an INTEGER message id, then an
/// APPLICATION-class protocol operation (SNMP, also BER, has an OCTET STRING
/// or a SEQUENCE there instead).
fn is_ldap_message(p: &[u8]) -> bool {
    if p.len() < 7 || p[0] != 0x30 {
        return false;
    }
    // Short or long (1–4 byte) BER length, then the INTEGER tag.
    let at = match p[1] {
        0..=0x7f => 2,
        0x81..=0x84 => 2 + usize::from(p[1] & 0x7f),
        _ => return false,
    };
    let Some(&id_len) = p.get(at + 1) else {
        return false;
    };
    p.get(at) == Some(&0x02)
        && (1..=4).contains(&id_len)
        && p.get(at + 2 + usize::from(id_len))
            .is_some_and(|&tag| tag & 0xc0 == 0x40)
}

fn first_line(p: &[u8]) -> &[u8] {
    let end = p
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(p.len());
    &p[..end]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Transport::{Tcp, Udp};

    #[test]
    fn text_protocols_by_their_first_line() {
        let cases: [(&[u8], AppGuess); 15] = [
            (b"GET /index.html HTTP/1.1\r\nHost: x\r\n", AppGuess::Http),
            (b"HTTP/1.1 200 OK\r\n", AppGuess::Http),
            (b"OPTIONS * HTTP/1.1\r\n", AppGuess::Http),
            (
                b"INVITE sip:5000@10.10.1.10 SIP/2.0\r\nVia: x",
                AppGuess::Sip,
            ),
            (b"OPTIONS sip:ping@10.10.1.10 SIP/2.0\r\n", AppGuess::Sip),
            (b"SIP/2.0 200 OK\r\n", AppGuess::Sip),
            (b"SSH-2.0-OpenSSH_9.2\r\n", AppGuess::Ssh),
            (b"220 mail.example ESMTP Postfix\r\n", AppGuess::Smtp),
            (b"EHLO client.example\r\n", AppGuess::Smtp),
            (b"220 ProFTPD Server ready\r\n", AppGuess::Ftp),
            (b"+OK POP3 ready\r\n", AppGuess::Pop3),
            (b"* OK IMAP4rev1 ready\r\n", AppGuess::Imap),
            (
                b"<?xml version='1.0'?><stream:stream to='x'",
                AppGuess::Xmpp,
            ),
            (b"<?xml version=\"1.0\"?><soap:Envelope>", AppGuess::Text),
            (b"hello there, plain words\r\n", AppGuess::Text),
        ];
        for (payload, want) in cases {
            assert_eq!(
                identify(Tcp, payload),
                want,
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn binary_protocols_by_their_headers() {
        let client_hello = [
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        assert_eq!(identify(Tcp, &client_hello), AppGuess::Tls);
        let x224_cr = [
            0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(identify(Tcp, &x224_cr), AppGuess::Rdp);
        // LDAP bindRequest: SEQUENCE { INTEGER 1, [APPLICATION 0] … }
        let bind = [0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03];
        assert_eq!(identify(Tcp, &bind), AppGuess::Ldap);
        // SNMPv2c get: SEQUENCE { INTEGER 1 (version), OCTET STRING "public", … }
        let snmp = [
            0x30, 0x26, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c',
        ];
        assert_eq!(identify(Udp, &snmp), AppGuess::Unknown);
        let mut rtp = [0u8; 172];
        rtp[0] = 0x80;
        assert_eq!(identify(Udp, &rtp), AppGuess::Rtp);
        // The same bytes over TCP are not RTP.
        assert_eq!(identify(Tcp, &rtp), AppGuess::Unknown);
        let mut stun = [0u8; 20];
        stun[1] = 0x01;
        stun[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(identify(Udp, &stun), AppGuess::StunDtls);
        let dtls_hello = [22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50];
        assert_eq!(identify(Udp, &dtls_hello), AppGuess::StunDtls);
        // A DNS query with a small id is not STUN.
        let dns = [
            0x00, 0x02, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 3, b'w', b'w', b'w', 0, 0, 1, 0,
            1,
        ];
        assert_eq!(identify(Udp, &dns), AppGuess::Unknown);
    }

    #[test]
    fn nothing_or_noise_is_unknown_and_never_panics() {
        assert_eq!(identify(Tcp, b""), AppGuess::Unknown);
        assert_eq!(identify(Udp, &[0x45]), AppGuess::Unknown);
        assert_eq!(
            identify(Tcp, &[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4]),
            AppGuess::Unknown
        );
        for len in 0..80 {
            for fill in [0u8, 0x03, 0x16, 0x30, 0x80, 0xff, b'G', b'S'] {
                let bytes = vec![fill; len];
                let _ = identify(Tcp, &bytes);
                let _ = identify(Udp, &bytes);
            }
        }
        assert!(AppGuess::Tls.is_encrypted() && !AppGuess::Http.is_encrypted());
    }
}

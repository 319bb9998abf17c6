//! Binary protocols by their headers: TLS records, RDP's TPKT/X.224, BER
//! messages (LDAP, SNMP), and on TCP streams MS-SQL's TDS, NetBIOS sessions
//! and SMB, MySQL's greeting and DNS with its length prefix.

use super::{be16, datagram, AppGuess, SenderRole};
use SenderRole::{Client, Server, Unknown};

/// A TLS (or SSL 3) record: content type 20–23, version 3.x; a handshake
/// record's first message tells a ClientHello from a ServerHello.
pub(super) fn tls_record(p: &[u8]) -> Option<(AppGuess, SenderRole)> {
    if p.len() < 5 || !(20..=23).contains(&p[0]) || p[1] != 3 || p[2] > 4 {
        return None;
    }
    let sender = match (p[0], p.get(5)) {
        (22, Some(1)) => Client,
        (22, Some(2)) => Server,
        _ => Unknown,
    };
    Some((AppGuess::Tls, sender))
}

/// Protocols only seen on TCP whose header carries the message length.
pub(super) fn on_stream(p: &[u8], declared: usize) -> Option<(AppGuess, SenderRole)> {
    if let Some(found) = tds(p, declared) {
        return Some(found);
    }
    if let Some(found) = netbios_session(p, declared) {
        return Some(found);
    }
    if is_mysql_greeting(p, declared) {
        return Some((AppGuess::Mysql, Server));
    }
    // DNS over TCP: a two-byte length, then the message.
    if be16(p, 0).is_some_and(|n| usize::from(n) + 2 == declared) {
        if let Some(found) = datagram::dns(&p[2..]) {
            return Some(found);
        }
    }
    None
}

/// RDP's first packets: a TPKT header, then an X.224 connection request or
/// confirm (checked before TDS, whose RPC packets also start 0x03).
pub(super) fn rdp(p: &[u8]) -> Option<(AppGuess, SenderRole)> {
    if p.len() < 7 || p[0] != 0x03 || p[1] != 0 || usize::from(p[4]) + 5 > usize::from(be16(p, 2)?)
    {
        return None;
    }
    match p[5] & 0xf0 {
        0xe0 => Some((AppGuess::Rdp, Client)),
        0xd0 => Some((AppGuess::Rdp, Server)),
        _ => None,
    }
}

/// Protocols recognised on either transport after the others had their turn.
pub(super) fn identify(p: &[u8]) -> Option<(AppGuess, SenderRole)> {
    ber_message(p)
}

/// TDS packet types a client sends (SQL batch, pre-TDS7 login, RPC,
/// attention, bulk load, federated auth, transaction manager, login7, SSPI,
/// prelogin) and the one a server sends (tabular result).
const TDS_CLIENT: [u8; 10] = [0x01, 0x02, 0x03, 0x06, 0x07, 0x0e, 0x0f, 0x10, 0x11, 0x12];
const TDS_SERVER: u8 = 0x04;

/// A TDS packet header: a known type, status bits only where they are
/// defined, a length that fits the segment, window 0.
fn tds(p: &[u8], declared: usize) -> Option<(AppGuess, SenderRole)> {
    if p.len() < 8 || p[1] & 0xe0 != 0 || p[7] != 0 {
        return None;
    }
    let sender = if p[0] == TDS_SERVER {
        Server
    } else if TDS_CLIENT.contains(&p[0]) {
        Client
    } else {
        return None;
    };
    let len = usize::from(be16(p, 2)?);
    // One packet per segment, or a large packet that continues in the next
    // segments (the server's results: up to the negotiated 4 KiB or more).
    let fits = len == declared || (len > declared && declared >= 512 && len <= 32_768);
    (len >= 8 && fits).then_some((AppGuess::Tds, sender))
}

/// NetBIOS's session service (TCP 139; SMB over TCP 445 uses the same
/// four-byte header): a session request or its answer, or a session message
/// carrying SMB, whose header flags a response.
fn netbios_session(p: &[u8], declared: usize) -> Option<(AppGuess, SenderRole)> {
    if p.len() < 8 || p[1] & 0xfe != 0 {
        return None;
    }
    let len = (usize::from(p[1]) << 16) + usize::from(be16(p, 2)?) + 4;
    match p[0] {
        0x00 if len == declared || (len > declared && declared >= 512) => {
            let sender = match &p[4..8] {
                b"\xffSMB" => match p.get(13) {
                    Some(flags) if flags & 0x80 != 0 => Server,
                    Some(_) => Client,
                    None => Unknown,
                },
                b"\xfeSMB" => match p.get(20) {
                    Some(flags) if flags & 1 != 0 => Server,
                    Some(_) => Client,
                    None => Unknown,
                },
                b"\xfdSMB" => Unknown,
                _ => return None,
            };
            Some((AppGuess::Smb, sender))
        }
        0x81 if len == declared => Some((AppGuess::NetBios, Client)),
        0x82 | 0x83 if len == declared => Some((AppGuess::NetBios, Server)),
        _ => None,
    }
}

/// MySQL's first packet: a 3-byte length, sequence 0, protocol version 10,
/// then the server version as text.
fn is_mysql_greeting(p: &[u8], declared: usize) -> bool {
    p.len() >= 8
        && usize::from(p[0]) + (usize::from(p[1]) << 8) + (usize::from(p[2]) << 16) + 4 == declared
        && p[3] == 0
        && p[4] == 10
        && p[5].is_ascii_digit()
        && p[6] == b'.'
}

/// LDAP or SNMP: a BER SEQUENCE holding an INTEGER (LDAP's message id, SNMP's
/// version), then LDAP's APPLICATION-class operation, or SNMP's community
/// string and PDU.
fn ber_message(p: &[u8]) -> Option<(AppGuess, SenderRole)> {
    if p.len() < 7 || p[0] != 0x30 {
        return None;
    }
    // Short or long (1–4 byte) BER length, then the INTEGER.
    let at = match p[1] {
        0..=0x7f => 2,
        0x81..=0x84 => 2 + usize::from(p[1] & 0x7f),
        _ => return None,
    };
    let int_len = usize::from(*p.get(at + 1)?);
    if p.get(at) != Some(&0x02) || !(1..=4).contains(&int_len) {
        return None;
    }
    let next = at + 2 + int_len;
    let tag = *p.get(next)?;
    if tag & 0xc0 == 0x40 {
        return Some((AppGuess::Ldap, ldap_sender(tag)));
    }
    let version = p[at + 2];
    if int_len == 1 && version <= 1 && tag == 0x04 {
        // SNMP v1/v2c: the community, then the PDU's context tag.
        let community = usize::from(*p.get(next + 1)?);
        let pdu = p.get(next + 2 + community).copied();
        return match pdu {
            Some(0xa0 | 0xa1 | 0xa3 | 0xa4 | 0xa5 | 0xa6 | 0xa7) => Some((AppGuess::Snmp, Client)),
            Some(0xa2 | 0xa8) => Some((AppGuess::Snmp, Server)),
            Some(_) => None,
            // Beyond the bytes looked at: SNMP, direction unknown.
            None => Some((AppGuess::Snmp, Unknown)),
        };
    }
    if int_len == 1 && version == 3 && tag == 0x30 {
        return Some((AppGuess::Snmp, Unknown));
    }
    None
}

/// LDAP protocol operations: the responses and results are the server's.
fn ldap_sender(tag: u8) -> SenderRole {
    match tag {
        0x61 | 0x64 | 0x65 | 0x67 | 0x69 | 0x6b | 0x6d | 0x6f | 0x73 | 0x78 | 0x79 => Server,
        0x42 | 0x4a | 0x50 | 0x60 | 0x63 | 0x66 | 0x68 | 0x6c | 0x6e | 0x77 => Client,
        _ => Unknown,
    }
}

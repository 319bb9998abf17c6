use super::*;
use SenderRole::{Client, Server, Unknown};
use Transport::{Tcp, Udp};

/// The guess and role for a whole payload (declared = captured).
fn seen(t: Transport, payload: &[u8]) -> (AppGuess, SenderRole) {
    let s = identify(t, payload, payload.len());
    (s.guess, s.sender)
}

#[test]
fn text_protocols_by_their_first_line() {
    let long_get = b"GET /agentdesktop/api/v2/sessions/0123456789abcdef0123456789abcdef/state?x=1 HTTP/1.1\r\n";
    let cases: [(&[u8], AppGuess, SenderRole); 23] = [
        (
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n",
            AppGuess::Http,
            Client,
        ),
        (long_get, AppGuess::Http, Client),
        (b"HTTP/1.1 200 OK\r\n", AppGuess::Http, Server),
        (b"OPTIONS * HTTP/1.1\r\n", AppGuess::Http, Client),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", AppGuess::Http, Client),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\n",
            AppGuess::Http,
            Client,
        ),
        (
            b"INVITE sip:5000@10.10.1.10 SIP/2.0\r\nVia: x",
            AppGuess::Sip,
            Client,
        ),
        (
            b"OPTIONS sip:ping@10.10.1.10 SIP/2.0\r\n",
            AppGuess::Sip,
            Client,
        ),
        (b"SIP/2.0 200 OK\r\n", AppGuess::Sip, Server),
        (
            b"DESCRIBE rtsp://cam/stream RTSP/1.0\r\n",
            AppGuess::Rtsp,
            Client,
        ),
        (
            b"OPTIONS rtsp://cam/stream RTSP/1.0\r\n",
            AppGuess::Rtsp,
            Client,
        ),
        (b"RTSP/1.0 200 OK\r\n", AppGuess::Rtsp, Server),
        (b"SSH-2.0-OpenSSH_9.2\r\n", AppGuess::Ssh, Unknown),
        (
            b"220 mail.example ESMTP Postfix\r\n",
            AppGuess::Smtp,
            Server,
        ),
        (b"EHLO client.example\r\n", AppGuess::Smtp, Client),
        (b"220 ProFTPD Server ready\r\n", AppGuess::Ftp, Server),
        (b"+OK POP3 ready\r\n", AppGuess::Pop3, Server),
        (b"* OK IMAP4rev1 ready\r\n", AppGuess::Imap, Server),
        (
            b"<?xml version='1.0'?><stream:stream to='x'",
            AppGuess::Xmpp,
            Unknown,
        ),
        (
            b"<?xml version=\"1.0\"?><soap:Envelope>",
            AppGuess::Text,
            Unknown,
        ),
        (
            b"<34>1 2026-01-05T09:00:00Z host app - - - hello",
            AppGuess::Syslog,
            Client,
        ),
        (
            b"<13>Jan  5 09:00:00 host app: hello",
            AppGuess::Syslog,
            Client,
        ),
        (b"hello there, plain words\r\n", AppGuess::Text, Unknown),
    ];
    for (payload, guess, sender) in cases {
        assert_eq!(
            seen(Tcp, payload),
            (guess, sender),
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
    // The version of a request line that ends within the bytes looked at
    // must be HTTP's; one beyond them is taken on the method and target.
    assert_eq!(seen(Tcp, b"GET /x FOO/1.0\r\n").0, AppGuess::Text);
    assert_eq!(seen(Tcp, b"GET notapath HTTP/1.1\r\n").0, AppGuess::Text);
}

#[test]
fn binary_protocols_by_their_headers() {
    let client_hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    assert_eq!(seen(Tcp, &client_hello), (AppGuess::Tls, Client));
    let server_hello = [
        0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03,
    ];
    assert_eq!(seen(Tcp, &server_hello), (AppGuess::Tls, Server));
    let x224_cr = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_eq!(seen(Tcp, &x224_cr), (AppGuess::Rdp, Client));
    let x224_cc = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00,
    ];
    assert_eq!(seen(Tcp, &x224_cc), (AppGuess::Rdp, Server));
    // LDAP bindRequest and bindResponse.
    let bind = [0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03];
    assert_eq!(seen(Tcp, &bind), (AppGuess::Ldap, Client));
    let bound = [0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00];
    assert_eq!(seen(Tcp, &bound), (AppGuess::Ldap, Server));
    // SNMPv2c get-request and response.
    let mut get = vec![0x30, 0x26, 0x02, 0x01, 0x01, 0x04, 0x06];
    get.extend_from_slice(b"public");
    get.extend_from_slice(&[0xa0, 0x19, 0x02, 0x04]);
    assert_eq!(seen(Udp, &get), (AppGuess::Snmp, Client));
    get[13] = 0xa2;
    assert_eq!(seen(Udp, &get), (AppGuess::Snmp, Server));
    // TDS: a SQL batch, and a tabular result from the server.
    let mut batch = vec![0x01, 0x01, 0x00, 0x20, 0x00, 0x00, 0x01, 0x00];
    batch.resize(32, 0x41);
    assert_eq!(seen(Tcp, &batch), (AppGuess::Tds, Client));
    let mut result = vec![0x04, 0x01, 0x00, 0x30, 0x00, 0x35, 0x01, 0x00];
    result.resize(48, 0);
    assert_eq!(seen(Tcp, &result), (AppGuess::Tds, Server));
    // A length that does not fit the segment is not TDS.
    assert_eq!(identify(Tcp, &result, 40).guess, AppGuess::Unknown);
    // SMB2 negotiate in its NetBIOS session framing, and the response.
    let mut smb2 = vec![0x00, 0x00, 0x00, 0x44, 0xfe, b'S', b'M', b'B', 64, 0];
    smb2.resize(0x48, 0);
    assert_eq!(seen(Tcp, &smb2), (AppGuess::Smb, Client));
    smb2[20] = 1;
    assert_eq!(seen(Tcp, &smb2), (AppGuess::Smb, Server));
    // A NetBIOS session request (TCP 139).
    let mut request = vec![0x81, 0x00, 0x00, 0x44];
    request.resize(0x48, 0x20);
    assert_eq!(seen(Tcp, &request), (AppGuess::NetBios, Client));
    // MySQL's greeting.
    let mut greeting = vec![0x4a, 0x00, 0x00, 0x00, 0x0a];
    greeting.extend_from_slice(b"8.0.36\0");
    greeting.resize(0x4a + 4, 0);
    assert_eq!(seen(Tcp, &greeting), (AppGuess::Mysql, Server));
}

/// A DNS query for www.example.com with this transaction id.
fn dns_query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    q
}

#[test]
fn datagrams_that_share_rtps_first_byte_are_told_apart() {
    // A quarter of DNS transaction ids start with 0x80–0xBF.
    let query = dns_query(0x8a31);
    assert_eq!(seen(Udp, &query), (AppGuess::Dns, Client));
    let mut answer = query.clone();
    answer[2] = 0x81;
    answer[3] = 0x80;
    answer[7] = 1;
    assert_eq!(seen(Udp, &answer), (AppGuess::Dns, Server));
    // DNS over TCP, with its length in front.
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    assert_eq!(seen(Tcp, &framed), (AppGuess::Dns, Client));
    // NetBIOS name query: the encoded name is 32 letters A–P.
    let mut nbns = vec![0x93, 0x1c, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0x20];
    nbns.extend_from_slice(b"FHEPFCELEHFCEPFFFACACACACACACAAA\0\0\x20\0\x01");
    assert_eq!(seen(Udp, &nbns), (AppGuess::NetBios, Client));
    // NTP: a client request (v4, mode 3) and a server reply (mode 4, LI 2).
    let mut ntp = [0u8; 48];
    ntp[0] = 0x23;
    ntp[2] = 6;
    ntp[3] = 0xec;
    assert_eq!(seen(Udp, &ntp), (AppGuess::Ntp, Client));
    ntp[0] = 0xa4;
    ntp[1] = 2;
    assert_eq!(seen(Udp, &ntp), (AppGuess::Ntp, Server));
    // ntpdc's monlist answer (mode 7, response bit): 5 items of 72 bytes.
    let mut monlist = vec![0x97, 0x0e, 0x03, 0x2a, 0x00, 0x05, 0x00, 0x48];
    monlist.resize(8 + 5 * 72, 0);
    assert_eq!(seen(Udp, &monlist), (AppGuess::Ntp, Server));
    assert_ne!(identify(Udp, &monlist, 8 + 4 * 72).guess, AppGuess::Ntp);
    // IAX2 NEW: a full frame of type IAX to call 0.
    let iax = [
        0x80, 0x01, 0x00, 0x00, 0, 0, 0, 3, 0, 0, 6, 1, 0x0b, 0x02, 0x00, 0x02,
    ];
    assert_eq!(seen(Udp, &iax), (AppGuess::Iax2, Client));
    // QUIC v1 Initial (long header): not RTP's range, but named.
    let mut quic = vec![0xc3, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0];
    quic.resize(1200, 0);
    assert_eq!(seen(Udp, &quic), (AppGuess::Quic, Unknown));
}

/// An RTP packet (PT 0) with these fields and `len` bytes in all.
fn rtp(seq: u16, timestamp: u32, ssrc: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(len, 0xd5);
    p
}

#[test]
fn one_rtp_shaped_datagram_is_only_maybe_rtp_and_its_stream_decides() {
    let first = identify(Udp, &rtp(1000, 160_000, 0x1234_5678, 172), 172);
    assert_eq!(first.guess, AppGuess::MaybeRtp);
    assert_eq!(first.guess.as_str(), "unknown");
    let next = |seq, ts, ssrc| identify(Udp, &rtp(seq, ts, ssrc, 172), 172).rtp;
    assert_eq!(
        first.rtp.followed_by(next(1001, 160_160, 0x1234_5678)),
        RtpFollow::Continues
    );
    assert_eq!(
        first.rtp.followed_by(next(1000, 160_000, 0x1234_5678)),
        RtpFollow::Repeats
    );
    assert_eq!(
        first.rtp.followed_by(next(1001, 160_160, 0x0bad_cafe)),
        RtpFollow::Breaks
    );
    assert_eq!(
        first.rtp.followed_by(next(900, 160_160, 0x1234_5678)),
        RtpFollow::Breaks,
        "sequence going back"
    );
    // SRTCP: a receiver report's header, ciphertext, the index (E bit) and a tag.
    let srtcp = |index: u8| {
        let mut p = vec![
            0x80, 0xc9, 0x00, 0x01, 0x73, 0x4e, 0x7b, 0x28, 0x80, 0, 0, index,
        ];
        p.extend_from_slice(&[0x5a; 10]);
        identify(Udp, &p, p.len())
    };
    assert_eq!(srtcp(5).guess, AppGuess::MaybeRtp);
    assert_eq!(srtcp(5).rtp.followed_by(srtcp(6).rtp), RtpFollow::Continues);
    // Payload types outside the audio/video ranges, and RTP over TCP, are not RTP.
    let mut odd = rtp(1, 1, 1, 60);
    odd[1] = 72;
    assert_ne!(identify(Udp, &odd, 60).guess, AppGuess::MaybeRtp);
    assert_eq!(seen(Tcp, &rtp(1, 1, 1, 172)).0, AppGuess::Unknown);
}

#[test]
fn rtcp_compounds_stun_and_dtls() {
    // RTCP receiver report (1 block) + SDES: 32 + 16 bytes.
    let mut rr = vec![0x81, 201, 0, 7];
    rr.resize(32, 0);
    rr.extend_from_slice(&[
        0x81, 202, 0, 3, 0, 0, 0, 1, 1, 4, b'a', b'b', b'c', b'd', 0, 0,
    ]);
    assert_eq!(seen(Udp, &rr), (AppGuess::Rtp, Unknown));
    // The same with a length that does not add up.
    let mut bad = rr.clone();
    bad[35] = 4;
    assert_ne!(seen(Udp, &bad).0, AppGuess::Rtp);
    // STUN binding request (with the cookie), over UDP and framed over TCP.
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.resize(20, 7);
    assert_eq!(seen(Udp, &stun), (AppGuess::StunDtls, Client));
    let mut framed = vec![0x00, 20];
    framed.extend_from_slice(&stun);
    assert_eq!(seen(Tcp, &framed), (AppGuess::StunDtls, Client));
    // Classic STUN (RFC 3489): no cookie, exact length; a binding response.
    let mut classic = vec![0x01, 0x01, 0x00, 0x0c];
    classic.resize(32, 9);
    assert_eq!(seen(Udp, &classic), (AppGuess::StunDtls, Server));
    assert_ne!(identify(Udp, &classic, 36).guess, AppGuess::StunDtls);
    let dtls_hello = [22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 1];
    assert_eq!(seen(Udp, &dtls_hello), (AppGuess::StunDtls, Client));
    // A DNS query with a small id is not STUN.
    assert_eq!(seen(Udp, &dns_query(2)).0, AppGuess::Dns);
}

#[test]
fn nothing_or_noise_is_unknown_and_never_panics() {
    assert_eq!(seen(Tcp, b""), (AppGuess::Unknown, Unknown));
    assert_eq!(seen(Udp, &[0x45]).0, AppGuess::Unknown);
    assert_eq!(
        seen(Tcp, &[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4]).0,
        AppGuess::Unknown
    );
    for len in 0..80 {
        for fill in [0u8, 0x03, 0x16, 0x30, 0x80, 0xc0, 0xff, b'G', b'S', b'<'] {
            let bytes = vec![fill; len];
            for declared in [0, len / 2, len, len + 7, 70_000] {
                let _ = identify(Tcp, &bytes, declared);
                let _ = identify(Udp, &bytes, declared);
            }
        }
    }
    assert!(AppGuess::Tls.is_encrypted() && !AppGuess::Http.is_encrypted());
    assert!(AppGuess::Sip.peers_listen() && !AppGuess::Dns.peers_listen());
}

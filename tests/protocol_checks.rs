//! Protocol checks on documented ports: the first payload bytes against the
//! rules' `app_protocol`, end to end through `portmatrix analyze`.
//!
//! Small captures are written here byte by byte (a TCP handshake and one
//! payload per flow), so each case states exactly what crossed the wire; the
//! corpus cases use real captures from `../shared/corpus` when present.

use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "common/pcap.rs"]
mod pcap;
use pcap::{analyze_events, Pcap};

fn analyze(path: &Path) -> Vec<Value> {
    analyze_events(path, &[])
}

/// The flow event to `port`: (verdict, app_protocol_seen).
fn flow_to(events: &[Value], port: u64) -> (String, Option<String>) {
    let f = events
        .iter()
        .find(|e| e["event_type"] == "flow" && e["dest_port"] == port)
        .unwrap_or_else(|| panic!("no flow to port {port}"));
    (
        f["verdict"].as_str().expect("verdict").to_string(),
        f["app_protocol_seen"].as_str().map(str::to_string),
    )
}

const AGENT: [u8; 4] = [10, 10, 20, 51];
const AACC: [u8; 4] = [10, 10, 1, 10];
const SM: [u8; 4] = [10, 10, 1, 30];
const AAMS: [u8; 4] = [10, 10, 1, 20];

/// An RTP packet (version 2, PCMU) of 172 bytes.
fn rtp(seq: u16, timestamp: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(172, 0xff);
    p
}

#[test]
fn documented_ports_carrying_another_protocol_are_flagged() {
    let mut p = Pcap::new();
    let tls_hello = [
        0x16, 0x03, 0x01, 0x00, 0x30, 0x01, 0x00, 0x00, 0x2c, 0x03, 0x03,
    ];
    // Fits: TLS on 443, SIP on 5060, HTTP on 80.
    p.conversation((AGENT, 50001), (AACC, 443), &tls_hello, &tls_hello);
    p.conversation(
        (SM, 50002),
        (AACC, 5060),
        b"OPTIONS sip:aacc@10.10.1.10 SIP/2.0\r\n",
        b"SIP/2.0 200 OK\r\n",
    );
    p.conversation(
        (AGENT, 50003),
        (AACC, 80),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n",
    );
    // Contradicts: HTTP on the SIP port, SSH on 443, plain text where HTTPS is documented.
    p.conversation(
        (AGENT, 50004),
        (AACC, 5060),
        b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\n",
    );
    p.conversation(
        (AGENT, 50005),
        (AACC, 8443),
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n",
    );
    p.conversation(
        (AGENT, 50006),
        (AACC, 8445),
        b"hello, are you there?\r\n",
        b"yes, plain text here\r\n",
    );
    // Undecided: encrypted or unrecognised payload never changes a verdict.
    p.conversation(
        (SM, 50007),
        (AACC, 5061),
        &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4],
        &[9, 8, 7, 6, 5, 4, 3, 2],
    );
    p.conversation((AGENT, 50008), (AACC, 29373), b"", b"");
    // RTP range: RTP fits, even after a probe (one RTP-shaped packet is not
    // enough: the next of the same stream shows it); two packets of
    // something else do not.
    p.udp((AGENT, 2050), (AAMS, 6544), b"TEST\0");
    p.udp((AGENT, 2050), (AAMS, 6544), &rtp(7, 1_600, 0x0102_0304));
    p.udp((AAMS, 6544), (AGENT, 2050), &rtp(900, 8_000, 0x0a0b_0c0d));
    p.udp((AGENT, 2050), (AAMS, 6544), &rtp(8, 1_760, 0x0102_0304));
    p.udp(
        (AGENT, 2052),
        (AAMS, 6546),
        b"\x01\x02\x03\x04\x05\x06\x07\x08\x09",
    );
    p.udp(
        (AGENT, 2052),
        (AAMS, 6546),
        b"\x01\x02\x03\x04\x05\x06\x07\x08\x09",
    );
    p.udp(
        (AGENT, 2054),
        (AAMS, 6548),
        b"INVITE sip:x@10.10.1.20 SIP/2.0\r\n",
    );
    let events = analyze(&p.write("protocol", "mixed.pcap"));

    let fits = |port, app: &str| {
        assert_eq!(
            flow_to(&events, port),
            ("documented".into(), Some(app.into())),
            "port {port}"
        );
    };
    fits(443, "tls");
    fits(80, "http");
    fits(6544, "rtp");
    let flagged = |port, app: &str| {
        assert_eq!(
            flow_to(&events, port),
            ("protocol_mismatch".into(), Some(app.into())),
            "port {port}"
        );
    };
    flagged(8443, "ssh");
    flagged(8445, "text");
    flagged(6546, "unknown");
    flagged(6548, "sip");
    let on_5060: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event_type"] == "flow" && e["dest_port"] == 5060)
        .map(|e| {
            (
                e["verdict"].as_str().unwrap_or(""),
                e["app_protocol_seen"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(on_5060.contains(&("documented", "sip")), "{on_5060:?}");
    assert!(
        on_5060.contains(&("protocol_mismatch", "http")),
        "{on_5060:?}"
    );
    assert_eq!(
        flow_to(&events, 5061),
        ("documented".into(), Some("unknown".into()))
    );
    assert_eq!(flow_to(&events, 29373), ("documented".into(), None));

    // Each mismatch is alerted once, high, naming the rules and what was seen.
    let alerts: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["verdict"] == "protocol_mismatch")
        .collect();
    assert_eq!(alerts.len(), 5, "{alerts:?}");
    for a in &alerts {
        assert_eq!(a["severity"], "high");
        assert!(!a["rule_ids"].as_array().expect("rule ids").is_empty());
        assert!(a["app_protocol_seen"].is_string());
    }
    let stats = &events.last().expect("stats")["stats"];
    assert_eq!(stats["flows_per_verdict"]["protocol_mismatch"], 5);
}

fn corpus(file: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(file);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} is not here", p.display());
        None
    }
}

#[test]
fn real_calls_pass_and_a_spoofed_invite_into_the_media_range_does_not() {
    if let Some(path) = corpus("voip/sipnab__sip-rtp-g711.pcap") {
        let events = analyze(&path);
        let rtp: Vec<&Value> = events
            .iter()
            .filter(|e| e["event_type"] == "flow" && e["app_protocol_seen"] == "rtp")
            .collect();
        assert!(rtp.len() >= 2, "the call's RTP streams");
        // Wireshark's sample sends a "TEST" probe ahead of one stream: still RTP.
        assert!(rtp.iter().all(|e| e["verdict"] == "documented"), "{rtp:?}");
        assert!(!events.iter().any(|e| e["verdict"] == "protocol_mismatch"));
    }
    if let Some(path) = corpus("voip/sipnab__metasploit-sip-invite-spoof.pcap") {
        let events = analyze(&path);
        let (verdict, app) = flow_to(&events, 10270);
        assert_eq!(
            (verdict.as_str(), app.as_deref()),
            ("protocol_mismatch", Some("sip"))
        );
    }
}

//! Who listens is decided by evidence, not by a lucky port: each case is a
//! flow of one packet or a few, written here byte by byte, where a client's
//! ephemeral port inside one of the matrix's wide ranges, a reply seen
//! before its request, or a multicast destination used to turn the flow
//! round and change its verdict.

use serde_json::Value;

#[path = "common/pcap.rs"]
mod pcap;
use pcap::{analyze_events, Pcap, Socket, ACK, PSH};

#[path = "common/contract.rs"]
mod contract;
use contract::FlowEvent;

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

/// A DNS message for www.example.com: a query, or (`answer`) its response.
fn dns(id: u16, answer: bool) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    let (flags, answers) = if answer {
        (0x8180u16, 1u16)
    } else {
        (0x0100, 0)
    };
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&answers.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    if answer {
        m.extend_from_slice(&[
            0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34,
        ]);
    }
    m
}

/// An RTP packet (version 2, PCMU, 160 bytes of audio).
fn rtp(seq: u16, timestamp: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(172, 0xd5);
    p
}

/// A QUIC version 1 Initial packet, padded as clients pad it.
fn quic_initial() -> Vec<u8> {
    let mut p = vec![0xc3, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0x44, 0xd0];
    p.resize(1200, 0);
    p
}

/// A NetFlow v9 export packet header and one data flowset's start.
fn netflow_v9() -> Vec<u8> {
    let mut p = vec![
        0, 9, 0, 2, 0, 0, 0x27, 0x10, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 7, 0, 0, 0, 1,
    ];
    p.extend_from_slice(&[1, 0, 0, 24]);
    p.resize(64, 0x11);
    p
}

/// The flow event between these two sockets (either way round).
fn flow_between(flows: &[FlowEvent], a: Socket, b: Socket) -> &FlowEvent {
    let ip = |s: Socket| std::net::Ipv4Addr::from(s.0).to_string();
    flows
        .iter()
        .find(|f| {
            let ends = [
                (f.src_ip.clone(), f.src_port),
                (f.dest_ip.clone(), f.dest_port),
            ];
            ends.contains(&(ip(a), a.1)) && ends.contains(&(ip(b), b.1))
        })
        .unwrap_or_else(|| panic!("no flow between {a:?} and {b:?}"))
}

fn flows(events: &[Value]) -> Vec<FlowEvent> {
    events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(|e| serde_json::from_value(e.clone()).expect("a flow event of the contract"))
        .collect()
}

/// What a case must come out as: the listener, the verdict, the evidence.
struct Want {
    listener: Socket,
    verdict: &'static str,
    direction: &'static str,
}

#[test]
fn each_example_gets_the_right_listener_and_verdict() {
    let mut p = Pcap::new();
    let mut cases: Vec<(&str, Socket, Socket, Want)> = Vec::new();
    let mut case =
        |p: &mut Pcap, name, a: Socket, b: Socket, want: Want, write: &dyn Fn(&mut Pcap)| {
            write(p);
            cases.push((name, a, b, want));
        };

    // A DNS query from an ephemeral port inside the AAMS media range: the
    // query names its client, whatever port it came from.
    let (c, s) = ((A, 30000), (B, 53));
    case(
        &mut p,
        "dns query from 30000",
        c,
        s,
        Want {
            listener: s,
            verdict: "undocumented",
            direction: "payload",
        },
        &|p| {
            p.udp(c, s, &dns(0x8a31, false));
            p.udp(s, c, &dns(0x8a31, true));
        },
    );
    let (c, s) = ((A, 50000), (B, 53));
    case(
        &mut p,
        "dns query from 50000",
        c,
        s,
        Want {
            listener: s,
            verdict: "undocumented",
            direction: "payload",
        },
        &|p| p.udp(c, s, &dns(0x1234, false)),
    );
    // The reply seen before its request: the reply's sender listens.
    let (c, s) = ((A, 31000), (B, 53));
    case(
        &mut p,
        "dns reply first",
        c,
        s,
        Want {
            listener: s,
            verdict: "undocumented",
            direction: "payload",
        },
        &|p| {
            p.udp(s, c, &dns(0x9abc, true));
            p.udp(c, s, &dns(0x9abd, false));
        },
    );
    // SSDP to its multicast group: the group receives, it is never the client.
    let (c, s) = ((A, 40000), ([239, 255, 255, 250], 1900));
    case(
        &mut p,
        "ssdp",
        c,
        s,
        Want {
            listener: s,
            verdict: "undocumented",
            direction: "multicast",
        },
        &|p| {
            p.udp(c, s, b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\r\n")
        },
    );
    // A broadcast to the limited broadcast address.
    let (c, s) = ((A, 40001), ([255, 255, 255, 255], 6001));
    case(
        &mut p,
        "broadcast",
        c,
        s,
        Want {
            listener: s,
            verdict: "documented",
            direction: "multicast",
        },
        &|p| p.udp(c, s, &[0x42; 24]),
    );
    // A subnet's broadcast: only the frame's destination (ff:ff:ff:ff:ff:ff)
    // tells it from a host.
    let (c, s) = ((A, 40005), ([10, 0, 0, 255], 6002));
    case(
        &mut p,
        "subnet broadcast",
        c,
        s,
        Want {
            listener: s,
            verdict: "documented",
            direction: "multicast",
        },
        &|p| {
            p.broadcast = true;
            p.udp(c, s, &[0x42; 24]);
            p.broadcast = false;
        },
    );
    // NetFlow export to 2055 from an exporter's port in the Windows media
    // range: a wide range on the sender's side alone is no evidence.
    let (c, s) = ((A, 40002), (B, 2055));
    case(
        &mut p,
        "netflow",
        c,
        s,
        Want {
            listener: s,
            verdict: "undocumented",
            direction: "heuristic",
        },
        &|p| p.udp(c, s, &netflow_v9()),
    );
    // QUIC to udp/443: HTTPS is documented on TCP only.
    let (c, s) = ((A, 40003), (B, 443));
    case(
        &mut p,
        "quic",
        c,
        s,
        Want {
            listener: s,
            verdict: "wrong_transport",
            direction: "heuristic",
        },
        &|p| p.udp(c, s, &quic_initial()),
    );
    // A SIP 200 OK seen before its request: both peers of SIP listen, so
    // the documented port decides.
    let (c, s) = ((A, 30500), (B, 5060));
    case(
        &mut p,
        "sip reply first",
        c,
        s,
        Want {
            listener: s,
            verdict: "documented",
            direction: "matrix",
        },
        &|p| {
            p.udp(
                s,
                c,
                b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:30500\r\nCSeq: 1 OPTIONS\r\n\r\n",
            )
        },
    );
    // Mid-stream TCP: a TDS (MS-SQL) reply from 1433 to a client whose port
    // happens to be the CMF's internal port 11111.
    let (c, s) = ((A, 11111), (B, 1433));
    let mut tds = vec![0x04, 0x01, 0x00, 0x30, 0x00, 0x35, 0x01, 0x00];
    tds.resize(0x30, 0xfd);
    case(
        &mut p,
        "tds reply mid-stream",
        c,
        s,
        Want {
            listener: s,
            verdict: "undocumented",
            direction: "payload",
        },
        &|p| p.tcp(s, c, PSH | ACK, &tds),
    );
    // Mid-stream TCP: an HTTP reply from 8080 to a client on istio's 31390.
    let (c, s) = ((A, 31390), (B, 8080));
    case(
        &mut p,
        "http reply mid-stream",
        c,
        s,
        Want {
            listener: s,
            verdict: "undocumented",
            direction: "payload",
        },
        &|p| {
            p.tcp(
                s,
                c,
                PSH | ACK,
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            )
        },
    );
    // RTP between two media-range ports: the Linux AAMS range documents the
    // 30000 side, the Windows range (deprecated) the 40392 side.
    let (c, s) = ((A, 40392), (B, 30000));
    case(
        &mut p,
        "rtp 40392 first",
        c,
        s,
        Want {
            listener: s,
            verdict: "documented",
            direction: "matrix",
        },
        &|p| {
            p.udp(c, s, &rtp(1, 160, 7));
            p.udp(s, c, &rtp(900, 8000, 9));
            p.udp(c, s, &rtp(2, 320, 7));
        },
    );
    let (c, s) = ((A, 40394), (B, 30002));
    case(
        &mut p,
        "rtp 30002 first",
        c,
        s,
        Want {
            listener: s,
            verdict: "documented",
            direction: "matrix",
        },
        &|p| {
            p.udp(s, c, &rtp(5, 160, 3));
            p.udp(c, s, &rtp(70, 8000, 4));
        },
    );
    // Media from the AAMS's documented port to a phone's undocumented one:
    // RTP-shaped payload makes the wide range count on the sender's side.
    let (c, s) = ((A, 50004), (B, 31002));
    case(
        &mut p,
        "rtp from aams",
        c,
        s,
        Want {
            listener: s,
            verdict: "documented",
            direction: "matrix",
        },
        &|p| {
            p.udp(s, c, &rtp(5, 160, 3));
            p.udp(s, c, &rtp(6, 320, 3));
        },
    );
    // A change of mind: picked up mid-stream on an empty ACK, the client's
    // documented port (8443) looked like the listener; the reply from 45000
    // shows who serves, and the flow is turned round before any alert.
    let (c, s) = ((A, 8443), (B, 45000));
    case(
        &mut p,
        "turned round",
        c,
        s,
        Want {
            listener: s,
            verdict: "undocumented",
            direction: "payload",
        },
        &|p| {
            p.tcp(c, s, ACK, b"");
            p.tcp(
                s,
                c,
                PSH | ACK,
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            );
        },
    );

    let events = analyze_events(&p.write("listener-evidence", "examples.pcap"), &[]);
    let flows = flows(&events);
    assert_eq!(flows.len(), cases.len(), "one flow per case");
    let ip = |s: Socket| std::net::Ipv4Addr::from(s.0).to_string();
    for (name, a, b, want) in &cases {
        let f = flow_between(&flows, *a, *b);
        let got = (
            f.dest_ip.clone(),
            f.dest_port,
            f.verdict.as_str(),
            f.direction.as_str(),
        );
        let expected = (
            ip(want.listener),
            want.listener.1,
            want.verdict,
            want.direction,
        );
        assert_eq!(got, expected, "{name}");
        // An alert, when there is one, names the same listener.
        for alert in events
            .iter()
            .filter(|e| e["event_type"] == "alert" && e["flow_id"] == f.flow_id)
        {
            assert_eq!(
                (alert["dest_port"].as_u64(), alert["verdict"].as_str()),
                (Some(u64::from(want.listener.1)), Some(want.verdict)),
                "{name}"
            );
        }
    }
    // The turned-round flow counts each side's packets on the right side.
    let turned = flow_between(&flows, (A, 8443), (B, 45000));
    assert_eq!(
        (turned.pkts_toserver, turned.pkts_toclient),
        (Some(1), Some(1))
    );
}

/// 100 long conversations to an undocumented port, from clients whose port
/// (8443) is a documented listening port, among enough short flows that
/// `--max-flows 1000` evicts each conversation between its rounds. Each
/// comes back picked up mid-stream; it keeps its listener and is alerted
/// once, not once per return.
#[test]
fn evicted_conversations_come_back_with_their_listener_and_no_new_alert() {
    const CONVERSATIONS: u8 = 100;
    const ROUNDS: usize = 6;
    let server: Socket = ([10, 2, 0, 1], 4444);
    let client = |i: u8| -> Socket { ([10, 1, 0, i], 8443) };
    let mut p = Pcap::new();
    for i in 1..=CONVERSATIONS {
        p.conversation(client(i), server, b"", b"");
    }
    let mut churn: u32 = 0;
    for _ in 0..ROUNDS {
        for i in 1..=CONVERSATIONS {
            p.tcp(
                client(i),
                server,
                PSH | ACK,
                b"more data for the undocumented service",
            );
            p.tcp(server, client(i), ACK, b"");
        }
        // Short documented flows: SIP OPTIONS from 1,500 other hosts.
        for _ in 0..1500 {
            churn += 1;
            let [_, _, hi, lo] = churn.to_be_bytes();
            p.udp(
                ([10, 4, hi, lo], 5060),
                ([10, 5, 0, 1], 5060),
                b"OPTIONS sip:ping@10.5.0.1 SIP/2.0\r\n\r\n",
            );
        }
    }
    let events = analyze_events(
        &p.write("listener-evidence", "churn.pcap"),
        &["--max-flows", "1000"],
    );
    let alerts: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert_eq!(
        alerts.len(),
        usize::from(CONVERSATIONS),
        "one alert per conversation"
    );
    assert!(alerts
        .iter()
        .all(|a| a["dest_port"] == 4444 && a["verdict"] == "undocumented"));
    let segments: Vec<FlowEvent> = flows(&events)
        .into_iter()
        .filter(|f| f.src_port == 4444 || f.dest_port == 4444)
        .collect();
    let resumed = segments.iter().filter(|f| f.resumed == Some(true)).count();
    assert!(
        segments.len() > usize::from(CONVERSATIONS)
            && resumed == segments.len() - usize::from(CONVERSATIONS),
        "{} segments, {resumed} resumed: each conversation evicted and back",
        segments.len()
    );
    for f in &segments {
        assert_eq!(
            (f.dest_port, f.src_port, f.verdict.as_str()),
            (4444, 8443, "undocumented"),
            "{f:?}"
        );
        if f.resumed == Some(true) {
            assert_eq!(f.direction, "handshake", "the evidence it had");
        }
    }
    let stats = events
        .iter()
        .find(|e| e["event_type"] == "stats")
        .expect("stats");
    assert_eq!(
        stats["stats"]["resumed_flows"].as_u64(),
        Some(resumed as u64)
    );
}

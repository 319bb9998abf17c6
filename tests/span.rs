//! What a real SPAN port does to traffic: mirrored copies (`--dedup`),
//! overlapping address spaces in VLANs (`--vlan-key`), and one direction
//! missing (`one_sided`). Captures are written byte by byte.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[path = "common/pcap.rs"]
mod pcap;
use pcap::{analyze_events, Pcap, ACK, PSH, SYN};

const BIN: &str = env!("CARGO_BIN_EXE_portmatrix");

const AGENT: ([u8; 4], u16) = ([10, 10, 20, 51], 50001);
const AACC: ([u8; 4], u16) = ([10, 10, 1, 10], 443);

fn analyze(path: &Path, args: &[&str]) -> Vec<Value> {
    analyze_events(path, args)
}

fn flows(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .collect()
}

fn stats(events: &[Value]) -> &Value {
    &events.last().expect("a stats event")["stats"]
}

#[test]
fn dedup_drops_the_routed_copy_and_the_counts_come_out_right() {
    let mut p = Pcap::new();
    let tls = [
        0x16, 0x03, 0x01, 0x00, 0x30, 0x01, 0x00, 0x00, 0x2c, 0x03, 0x03,
    ];
    let steps: [(bool, u8, &[u8]); 5] = [
        (true, SYN, b""),
        (false, SYN | ACK, b""),
        (true, ACK, b""),
        (true, PSH | ACK, &tls),
        (false, PSH | ACK, &tls),
    ];
    for (to_server, flags, payload) in steps {
        let (from, to) = if to_server {
            (AGENT, AACC)
        } else {
            (AACC, AGENT)
        };
        p.tcp(from, to, flags, payload);
        p.mirror_last(|p| p.tcp(from, to, flags, payload));
    }
    let path = p.write("span", "mirrored.pcap");

    let doubled = analyze(&path, &[]);
    let f = flows(&doubled)[0];
    assert_eq!(
        (&f["pkts_toserver"], &f["pkts_toclient"]),
        (&6.into(), &4.into())
    );
    assert!(
        stats(&doubled).get("duplicates").is_none(),
        "absent without --dedup"
    );

    let deduped = analyze(&path, &["--dedup"]);
    let f = flows(&deduped)[0];
    assert_eq!(
        (&f["pkts_toserver"], &f["pkts_toclient"]),
        (&3.into(), &2.into())
    );
    let s = stats(&deduped);
    assert_eq!(s["duplicates"], 5);
    assert_eq!(
        s["packets"], 10,
        "copies are read and counted, then dropped"
    );
    // An explicit window; the copies are 100 µs apart.
    let s = analyze(&path, &["--dedup=1ms"]);
    assert_eq!(stats(&s)["duplicates"], 5);
}

#[test]
fn vlans_are_one_flow_by_default_and_apart_with_vlan_key() {
    let mut p = Pcap::new();
    // The same addresses in two VLANs (two VRFs reusing a private range).
    for vlan in [10, 20] {
        p.vlan = Some(vlan);
        p.conversation(AGENT, AACC, b"", b"");
    }
    let path = p.write("span", "vlans.pcap");

    let merged = analyze(&path, &[]);
    assert_eq!(flows(&merged).len(), 1);
    assert_eq!(
        flows(&merged)[0]["vlan"],
        10,
        "events carry the first VLAN seen"
    );

    let apart = analyze(&path, &["--vlan-key"]);
    let mut vlans: Vec<u64> = flows(&apart)
        .iter()
        .map(|f| f["vlan"].as_u64().expect("vlan"))
        .collect();
    vlans.sort_unstable();
    assert_eq!(vlans, [10, 20]);
    let ids: Vec<&Value> = flows(&apart).iter().map(|f| &f["flow_id"]).collect();
    assert_ne!(ids[0], ids[1], "two flows, two ids");
}

#[test]
fn one_direction_missing_is_flagged_as_one_sided() {
    let mut p = Pcap::new();
    // Only the client's side of an established connection was mirrored.
    let server = ([10, 10, 1, 10], 8443);
    for _ in 0..3 {
        p.tcp(AGENT, server, PSH | ACK, b"GET / HTTP/1.1\r\n\r\n");
    }
    // An unanswered SYN is a failed connection, not asymmetry.
    p.tcp(([10, 10, 20, 52], 50002), AACC, SYN, b"");
    // A whole conversation.
    p.conversation(([10, 10, 20, 53], 50003), AACC, b"", b"");
    let events = analyze(&p.write("span", "one-sided.pcap"), &[]);
    let one_sided: Vec<u64> = flows(&events)
        .iter()
        .filter(|f| f["one_sided"] == true)
        .map(|f| f["dest_port"].as_u64().expect("port"))
        .collect();
    assert_eq!(one_sided, [8443]);
    assert!(
        flows(&events).iter().all(|f| f["one_sided"] != false),
        "absent when false"
    );
    assert_eq!(stats(&events)["one_sided_flows"], 1);

    let out = Command::new(BIN)
        .args(["analyze"])
        .arg(p.write("span", "one-sided.pcap"))
        .output()
        .expect("run");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("one-sided: 1 TCP flows"), "{summary}");
}

//! The file path reads, decodes and tracks in chunks of about 1 MiB spread
//! over the workers. A capture of several chunks whose flows and fragmented
//! datagrams straddle chunk ends gives the same events, and the same
//! counts, with any number of workers.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// An Ethernet + IPv4 frame: `proto`, fragment fields, then `payload`.
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + payload.len());
    f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = (20 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&frag.to_be_bytes());
    f.extend_from_slice(&[64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(payload);
    f
}

fn udp(sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.resize(len, 0x55);
    u
}

fn tcp(sport: u16, dport: u16, flags: u8, payload: usize) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.resize(20 + payload, 0xaa);
    t
}

/// A pcap of many chunks: a few hundred TCP flows interleaved all along, a
/// UDP datagram whose two fragments are megabytes apart, and a fragment
/// whose first fragment never came. With `mirrored`, every seventh TCP
/// packet comes twice, the second copy a microsecond later with another TTL,
/// as a SPAN of both sides of a router shows it.
fn capture(name: &str, mirrored: bool) -> PathBuf {
    let mut file = Vec::new();
    for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        file.extend_from_slice(&x.to_le_bytes());
    }
    let mut t = 1_700_000_000u32;
    let mut record = |file: &mut Vec<u8>, frame: Vec<u8>, copy: bool| {
        t += 1;
        let mut put = |frame: &[u8], usecs: u32| {
            for x in [
                t / 1000,
                (t % 1000) * 1000 + usecs,
                frame.len() as u32,
                frame.len() as u32,
            ] {
                file.extend_from_slice(&x.to_le_bytes());
            }
            file.extend_from_slice(frame);
        };
        put(&frame, 0);
        if copy {
            let mut again = frame.clone();
            again[22] -= 1; // the TTL, one router later
            put(&again, 1);
        }
    };
    let client = |i: u32| [10, 20, (i / 250) as u8, (i % 250) as u8 + 1];
    let server = [10, 10, 1, 10];
    // UDP 10.20.9.9:5004 -> 10.10.1.10:2000, 1,208 bytes in two fragments.
    let datagram = udp(5004, 2000, 1208);
    let first = ipv4([10, 20, 9, 9], server, 17, 77, 0x2000, &datagram[..600]);
    let second = ipv4([10, 20, 9, 9], server, 17, 77, 600 / 8, &datagram[600..]);
    for round in 0..30u32 {
        for i in 0..300u32 {
            let flags = if round == 0 { 0x02 } else { 0x18 };
            record(
                &mut file,
                ipv4(
                    client(i),
                    server,
                    6,
                    0,
                    0x4000,
                    &tcp(40000 + i as u16, 8443, flags, 400),
                ),
                mirrored && (round * 300 + i) % 7 == 0,
            );
        }
        match round {
            2 => record(&mut file, first.clone(), false),
            27 => record(&mut file, second.clone(), false),
            // A later fragment of a datagram whose start was never captured.
            15 => record(
                &mut file,
                ipv4([10, 20, 9, 8], server, 17, 78, 100, &[0u8; 64]),
                false,
            ),
            _ => {}
        }
    }
    assert!(file.len() > 3 << 20, "several chunks");
    let dir =
        std::env::temp_dir().join(format!("portmatrix-chunked-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, file).expect("write capture");
    path
}

/// The events of `analyze --json --flows` as a set of lines, and the stats.
fn run(path: &PathBuf, workers: usize) -> (BTreeSet<String>, Value) {
    run_with(path, workers, &[])
}

fn run_with(path: &PathBuf, workers: usize, options: &[&str]) -> (BTreeSet<String>, Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(["analyze", "--json", "--flows", "-q", "--workers"])
        .arg(workers.to_string())
        .args(options)
        .arg(path)
        .output()
        .expect("portmatrix runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let stats = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .find(|e| e["event_type"] == "stats")
        .expect("a stats event");
    (lines, stats["stats"].clone())
}

#[test]
fn any_number_of_workers_gives_the_same_events_across_chunks() {
    let path = capture("straddle.pcap", false);
    let (one, stats) = run(&path, 1);
    assert_eq!(stats["packets"], 30 * 300 + 3);
    assert_eq!(stats["tcp_udp_packets"], 30 * 300 + 2);
    assert_eq!(stats["flows"], 301);
    assert_eq!(stats["decode_failures"]["fragment_without_first"], 1);
    // Both fragments counted on the one UDP flow, a chunk or more apart.
    let udp = one
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .find(|e| e["event_type"] == "flow" && e["proto"] == "UDP")
        .expect("the UDP flow");
    assert_eq!(udp["pkts_toserver"], 2);
    assert_eq!(udp["bytes_toserver"], 2 * 14 + 20 * 2 + 1208);
    for workers in [2, 3, 4, 7] {
        let (other, _) = run(&path, workers);
        let differ: Vec<&String> = one.symmetric_difference(&other).collect();
        assert!(differ.is_empty(), "{workers} workers: {differ:?}");
    }
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

/// The events without the stats line (which counts what was left out).
fn flows_and_alerts(lines: &BTreeSet<String>) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|l| !l.contains(r#""event_type":"stats""#))
        .cloned()
        .collect()
}

/// What depends on capture order (the dedup window, relative times, which
/// flow a fragment belongs to) and what is carried along (evidence frames)
/// is the same with any number of workers reading chunks in parallel.
#[test]
fn dedup_focus_and_evidence_do_not_depend_on_the_workers() {
    let plain = capture("plain.pcap", false);
    let mirrored = capture("mirrored.pcap", true);
    let (reference, _) = run(&plain, 1);
    for workers in [1, 2, 3] {
        // The copies go, and with them every trace of the mirroring.
        let (deduped, stats) = run_with(&mirrored, workers, &["--dedup"]);
        assert_eq!(stats["duplicates"], (30 * 300 + 6) / 7, "{workers} workers");
        assert_eq!(
            flows_and_alerts(&deduped),
            flows_and_alerts(&reference),
            "{workers} workers"
        );
    }
    let focus = [
        "--since", "+2s", "--until", "+6s", "--port", "40007", "--port", "2000",
    ];
    let (one, stats) = run_with(&plain, 1, &focus);
    assert_eq!(
        stats["flows"], 1,
        "the UDP datagram's fragments are outside the window"
    );
    let filtered = stats["filtered"].as_u64().expect("filtered counted");
    // The one flow's 13 packets in the window, and the fragment whose first
    // fragment never came (a decode failure whatever the focus).
    assert_eq!(stats["packets"].as_u64(), Some(filtered + 13 + 1));
    for workers in [2, 3] {
        let (other, _) = run_with(&plain, workers, &focus);
        assert_eq!(one, other, "{workers} workers");
    }
    let evidence = |workers: usize| {
        let dir = plain
            .parent()
            .expect("dir")
            .join(format!("evidence-{workers}"));
        let dir_arg = dir.display().to_string();
        run_with(&plain, workers, &["--extract", &dir_arg]);
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("evidence dir")
            .map(|e| {
                let e = e.expect("entry");
                let bytes = std::fs::read(e.path()).expect("evidence file");
                (e.file_name().to_string_lossy().into_owned(), bytes)
            })
            .collect();
        files.sort();
        files
    };
    let one = evidence(1);
    assert!(!one.is_empty(), "evidence written");
    assert_eq!(one, evidence(3));
    for path in [plain, mirrored] {
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}

#[path = "common/pcap.rs"]
mod pcap;

/// Packets outside the focus are not analysed, but the time they were
/// captured at still passes: a flow idle past its timeout behind them ends
/// with `timeout`, as it does without a focus, not at the end of the input.
#[test]
fn packets_outside_the_focus_still_move_the_clock() {
    let mut p = pcap::Pcap::new();
    p.tcp(
        ([10, 0, 0, 1], 40000),
        ([10, 0, 0, 2], 8443),
        pcap::ACK,
        b"hello",
    );
    p.wait(400_000_000); // 400 s, past the TCP timeout of 300 s
    p.udp(([10, 0, 0, 3], 5000), ([10, 0, 0, 4], 5001), b"later");
    let path = p.write("chunked-clock", "idle.pcap");
    for focus in [
        &["--bpf", "tcp"][..],
        &["--port", "8443"],
        &["--dedup"],
        &[],
    ] {
        for workers in ["1", "2"] {
            let args = [focus, &["--workers", workers]].concat();
            let events = pcap::analyze_events(&path, &args);
            let tcp = events
                .iter()
                .find(|e| e["event_type"] == "flow" && e["proto"] == "TCP")
                .expect("the TCP flow");
            assert_eq!(tcp["reason"], "timeout", "{args:?}");
        }
    }
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

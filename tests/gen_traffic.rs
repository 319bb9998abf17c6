//! `scripts/gen-traffic`, the benchmark capture generator: its output is
//! deterministic, and portmatrix reads it whole with the verdicts its mix is
//! built to produce.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;

#[path = "common/contract.rs"]
mod contract;
#[path = "common/temp.rs"]
mod temp;
use contract::FlowEvent;
use temp::{python3_missing, TempDir};

const PACKETS: u64 = 20_000;
const SCANNER: &str = "10.20.250.99";

/// Runs the generator; returns the flow count from its summary line.
fn generate(out: &Path, seed: u64) -> u64 {
    generate_with(out, seed, PACKETS, &[])
}

fn generate_with(out: &Path, seed: u64, packets: u64, more: &[&std::ffi::OsStr]) -> u64 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-traffic");
    let o = Command::new("python3")
        .arg(script)
        .arg("-o")
        .arg(out)
        .args([
            "--packets",
            &packets.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .args(more)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "gen-traffic failed: {stderr}");
    // "gen-traffic: FILE: 20000 packets, 303 flows, ..."
    let flows = stderr
        .split(", ")
        .find_map(|part| part.strip_suffix(" flows"))
        .unwrap_or_else(|| panic!("no flow count in: {stderr}"));
    flows.parse().expect("flow count")
}

/// The final event, strictly: a new field must be added here on purpose.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StatsEvent {
    timestamp: String,
    event_type: String,
    stats: Stats,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Stats {
    packets: u64,
    bytes: u64,
    tcp_udp_packets: u64,
    flows: u64,
    flows_per_verdict: BTreeMap<String, u64>,
    other_protocols: BTreeMap<String, u64>,
    decode_failures: BTreeMap<String, u64>,
    encapsulated: BTreeMap<String, u64>,
    evictions: u64,
    timeouts: u64,
    one_sided_flows: u64,
    files: Vec<serde_json::Value>,
}

#[test]
fn generated_traffic_is_deterministic_and_classified_as_intended() {
    if python3_missing() {
        eprintln!("skipped: python3 is not installed, scripts/gen-traffic needs it");
        return;
    }
    let dir = TempDir::new("gen-traffic", "deterministic");
    let (a, b, c) = (
        dir.0.join("a.pcap"),
        dir.0.join("b.pcap"),
        dir.0.join("c.pcap"),
    );
    let flows_made = generate(&a, 7);
    generate(&b, 7);
    generate(&c, 8);
    let bytes = |p: &Path| std::fs::read(p).expect("capture");
    assert!(
        bytes(&a) == bytes(&b),
        "same seed, same arguments: same bytes"
    );
    assert!(bytes(&a) != bytes(&c), "another seed gives another capture");

    let o = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(["analyze", "--json", "--flows", "-q"])
        .arg(&a)
        .output()
        .expect("portmatrix runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let mut flows = Vec::new();
    let mut stats = None;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        match v["event_type"].as_str() {
            Some("flow") => flows.push(serde_json::from_value::<FlowEvent>(v).expect("flow")),
            Some("stats") => stats = Some(serde_json::from_value::<StatsEvent>(v).expect("stats")),
            _ => {}
        }
    }
    let stats = stats.expect("a final stats event").stats;

    // Every packet is Ethernet/IP/TCP or UDP and decodes.
    assert_eq!(stats.packets, PACKETS);
    assert_eq!(stats.tcp_udp_packets, PACKETS);
    assert!(
        stats.decode_failures.values().all(|&n| n == 0),
        "{:?}",
        stats.decode_failures
    );
    // Each generated flow is its own 5-tuple, so the counts agree.
    assert_eq!(stats.flows, flows_made);
    assert_eq!(flows.len() as u64, stats.flows);

    let verdict = |v: &str| stats.flows_per_verdict.get(v).copied().unwrap_or(0);
    assert!(
        verdict("documented") > stats.flows / 2,
        "{:?}",
        stats.flows_per_verdict
    );
    assert!(verdict("undocumented") > 0, "{:?}", stats.flows_per_verdict);

    // RSM statistics: 12 multicast groups, all documented (2.2.2#3).
    let multicast: Vec<&FlowEvent> = flows
        .iter()
        .filter(|f| f.dest_ip.starts_with("230."))
        .collect();
    assert_eq!(multicast.len(), 12);
    assert!(
        multicast.iter().all(|f| f.verdict == "documented"),
        "{multicast:?}"
    );

    // RTP to the AAMS media range, all documented (2.2.5#17).
    let rtp: Vec<&FlowEvent> = flows
        .iter()
        .filter(|f| {
            f.proto == "UDP"
                && f.dest_ip.starts_with("10.10.1.2")
                && (6000..=32599).contains(&f.dest_port)
        })
        .collect();
    assert!(rtp.len() > 20, "{} RTP flows", rtp.len());
    assert!(rtp.iter().all(|f| f.verdict == "documented"), "{rtp:?}");

    // The scan: one flow per probe (packets / 200 by default), most undocumented.
    let scan: Vec<&FlowEvent> = flows.iter().filter(|f| f.src_ip == SCANNER).collect();
    assert_eq!(scan.len() as u64, PACKETS / 200);
    let undocumented = scan.iter().filter(|f| f.verdict == "undocumented").count();
    assert!(
        undocumented > scan.len() / 2,
        "{undocumented} of {}",
        scan.len()
    );
    // And undocumented services besides the scan (telnet, 4444, proxy 8080, DNS).
    assert!(flows
        .iter()
        .any(|f| f.src_ip != SCANNER && f.verdict == "undocumented"));

    // Some flows are tagged, some are IPv6.
    assert!(flows.iter().any(|f| f.vlan.is_some()));
    assert!(flows.iter().any(|f| f.dest_ip.contains(':')));
}

/// A flow's transport and its two ends in order: the same either way round.
type FlowEnds = (String, [(String, u16); 2]);

/// A flow as the generator built it (`--truth`): its client, its listener,
/// the verdict it should get (none for scan probes), and whether it was
/// already running when the capture started.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Truth {
    proto: String,
    src_ip: String,
    src_port: u16,
    dest_ip: String,
    dest_port: u16,
    verdict: Option<String>,
    /// The verdict with the site inventory of `--site`.
    site_verdict: Option<String>,
    mid_stream: bool,
}

#[test]
fn every_generated_flow_gets_its_listener_and_verdict_with_any_number_of_workers() {
    if python3_missing() {
        eprintln!("skipped: python3 is not installed, scripts/gen-traffic needs it");
        return;
    }
    let dir = TempDir::new("gen-traffic", "truth");
    let (capture, truth_file) = (dir.0.join("truth.pcap"), dir.0.join("truth.jsonl"));
    let site = dir.0.join("site.toml");
    generate_with(
        &capture,
        11,
        60_000,
        &[
            "--truth".as_ref(),
            truth_file.as_os_str(),
            "--site".as_ref(),
            site.as_os_str(),
        ],
    );
    let truth: Vec<Truth> = std::fs::read_to_string(&truth_file)
        .expect("truth file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a truth line"))
        .collect();
    let mid_stream = truth.iter().filter(|t| t.mid_stream).count();
    assert!(mid_stream > 50, "{mid_stream} flows picked up mid-stream");
    // By port alone with 1 and 3 workers, and with the generator's site.
    for (workers, with_site) in [("1", false), ("3", false), ("3", true)] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portmatrix"));
        cmd.args(["analyze", "--json", "--flows", "-q", "--workers", workers]);
        if with_site {
            cmd.arg("--site").arg(&site);
        }
        let o = cmd.arg(&capture).output().expect("portmatrix runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let flows: Vec<FlowEvent> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("\"event_type\":\"flow\""))
            .map(|l| serde_json::from_str(l).expect("flow"))
            .collect();
        let mut by_ends: BTreeMap<FlowEnds, Vec<&FlowEvent>> = BTreeMap::new();
        for f in &flows {
            let mut ends = [
                (f.src_ip.clone(), f.src_port),
                (f.dest_ip.clone(), f.dest_port),
            ];
            ends.sort();
            by_ends.entry((f.proto.clone(), ends)).or_default().push(f);
        }
        let mut wrong = Vec::new();
        let mut mid_stream_right = 0;
        for t in &truth {
            let mut ends = [
                (t.src_ip.clone(), t.src_port),
                (t.dest_ip.clone(), t.dest_port),
            ];
            ends.sort();
            let found = by_ends
                .get(&(t.proto.clone(), ends))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let verdict = if with_site {
                &t.site_verdict
            } else {
                &t.verdict
            };
            let right = matches!(found, [f] if f.src_ip == t.src_ip
                && f.src_port == t.src_port
                && verdict.as_ref().is_none_or(|v| *v == f.verdict));
            if right {
                mid_stream_right += usize::from(t.mid_stream);
            } else {
                wrong.push(format!("{t:?} -> {found:?}"));
            }
        }
        eprintln!(
            "{workers} worker(s){}: {} of {} flows right, {mid_stream_right} of {mid_stream} picked up mid-stream",
            if with_site { " with the site" } else { "" },
            truth.len() - wrong.len(),
            truth.len()
        );
        assert!(
            wrong.is_empty(),
            "{} wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
}

//! The report on a real volume: a 300,000-packet generated capture
//! (`scripts/gen-traffic`: over a thousand agents, the contact center's
//! servers, a SYN scan). Its diagram names every server; clients fold by subnet
//! and the scan into one edge per server it probed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

mod common;
use common::temp::{python3_missing, TempDir};
use common::{portmatrix, stderr};
use serde::Deserialize;

const SCANNER: &str = "10.20.250.99";

/// The event fields this test counts on.
#[derive(Deserialize)]
struct Head {
    event_type: String,
    verdict: Option<String>,
    src_ip: Option<String>,
    dest_ip: Option<String>,
}

/// Generate the capture, analyze it, write the report: (events, page).
fn volume(dir: &Path, packets: u64) -> (String, String) {
    let capture = dir.join("capture.pcap");
    let o = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-traffic"))
        .arg("-o")
        .arg(&capture)
        .args(["--packets", &packets.to_string(), "--seed", "1"])
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "gen-traffic failed: {}", stderr(&o));
    let events = dir.join("events.jsonl");
    let page = dir.join("report.html");
    let (c, e, p) = (
        capture.display().to_string(),
        events.display().to_string(),
        page.display().to_string(),
    );
    let o = portmatrix(&["analyze", "--json", "--flows", "--quiet", &c]);
    assert!(o.status.success(), "analyze failed: {}", stderr(&o));
    std::fs::write(&events, &o.stdout).expect("write the events");
    let o = portmatrix(&["report", &e, "-o", &p]);
    assert!(o.status.success(), "report failed: {}", stderr(&o));
    (
        std::fs::read_to_string(&events).expect("the events"),
        std::fs::read_to_string(&page).expect("the page"),
    )
}

/// The labels of the diagram's nodes (clients and servers), as drawn.
fn node_labels(html: &str) -> Vec<String> {
    let start = html.find("<svg id=\"diagram-svg\"").expect("the diagram");
    let svg = &html[start..];
    let svg = &svg[..svg.find("</svg>").expect("end of the diagram")];
    let mut labels = Vec::new();
    // A client is `<g class="node" …><circle …/><text …>label`, a server
    // `<text class="node" …>label`.
    for (i, part) in svg.match_indices("class=\"node\"") {
        let text = &svg[i + part.len()..];
        let text = if svg[..i].ends_with("<g ") {
            &text[text.find("<text").expect("a label")..]
        } else {
            text
        };
        let text = &text[text.find('>').expect("text opens") + 1..];
        labels.push(text[..text.find('<').expect("text ends")].to_string());
    }
    labels
}

/// The servers' column's labels only.
fn server_labels(html: &str) -> Vec<String> {
    html.split("<text class=\"node\"")
        .skip(1)
        .map(|t| {
            let t = &t[t.find('>').expect("text opens") + 1..];
            t[..t.find('<').expect("text ends")].to_string()
        })
        .collect()
}

#[test]
fn every_busy_server_is_its_own_labelled_node_and_a_scan_is_one_edge() {
    if python3_missing() {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let dir = TempDir::new("report-volume", "servers");
    let (events, html) = volume(&dir.0, 300_000);

    let mut documented: BTreeMap<String, u64> = BTreeMap::new();
    let mut clients: BTreeSet<String> = BTreeSet::new();
    // The scanner's verdicts: of its flows, of its alerts.
    let (mut scan_flows, mut scan_alerts) = (BTreeMap::new(), BTreeSet::new());
    for line in events.lines() {
        let e: Head = serde_json::from_str(line).expect("an event");
        if e.src_ip.as_deref() == Some(SCANNER) {
            let v = e.verdict.clone().unwrap_or_default();
            match e.event_type.as_str() {
                "flow" => *scan_flows.entry(v).or_insert(0u64) += 1,
                "alert" => {
                    scan_alerts.insert(v);
                }
                _ => {}
            }
        }
        if e.event_type != "flow" {
            continue;
        }
        clients.extend(e.src_ip);
        if e.verdict.as_deref() == Some("documented") {
            *documented.entry(e.dest_ip.expect("dest_ip")).or_default() += 1;
        }
    }
    assert!(
        clients.len() > 500,
        "hundreds of clients: {}",
        clients.len()
    );
    let busy: Vec<&String> = documented
        .iter()
        .filter(|(_, &n)| n >= 100)
        .map(|(ip, _)| ip)
        .collect();
    assert!(busy.len() >= 3, "the AACC, CCMA and CCMM servers at least");

    let labels = node_labels(&html);
    let servers = server_labels(&html);
    for ip in &busy {
        assert!(
            servers
                .iter()
                .any(|l| l.starts_with(&format!("{ip} \u{b7} "))),
            "{ip} is not a server node of its own: {servers:?}"
        );
        let label = labels
            .iter()
            .find(|l| l.starts_with(&format!("{ip} \u{b7} ")))
            .unwrap_or_else(|| panic!("{ip} is not a node of its own: {labels:?}"));
        let role = &label[ip.len() + " \u{b7} ".len()..];
        assert!(!role.is_empty() && role != "server", "{ip} has no role");
    }
    let aacc = labels.iter().any(|l| l == "10.10.1.10 \u{b7} aacc_server");
    assert!(aacc, "the AACC server is named: {labels:?}");
    // Clients fold by subnet: far fewer nodes than hosts.
    assert!(labels.iter().any(|l| l == "10.20.1.0/24"), "{labels:?}");
    assert!(labels.len() < 100, "{} nodes", labels.len());

    // The scanner is one node, and its probes one edge per server it probed.
    let scanner = format!("{SCANNER} \u{b7} scanner, ");
    assert_eq!(
        labels.iter().filter(|l| l.starts_with(&scanner)).count(),
        1,
        "{labels:?}"
    );
    let scan_edges = html
        .split("<path class=\"edge\"")
        .skip(1)
        .filter(|e| e.contains(&format!("<title>{scanner}")))
        .count();
    assert!(
        (1..=10).contains(&scan_edges),
        "{scan_edges} edges from the scanner"
    );
    assert!(html.contains("scanned: "), "the scan's row on a server");
}

//! `portmatrix diff`: two generated captures that differ by known flows.
//! The base is a scripts/gen-traffic capture; the new run reads it with a
//! small capture of three more flows (one undocumented to a new host, one
//! role mismatch, one documented). The diff must name exactly those flows as
//! new, and, the other way round, exactly those as gone; --fail-on gates on
//! them, and `report --baseline` shows them.

mod common;
#[path = "common/pcap.rs"]
mod pcap;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::{portmatrix, stderr, work_dir};
use pcap::{Pcap, Socket};

/// (proto, client, listener, port, verdict) of the extra flows.
const EXTRA: [(&str, &str, &str, u16, &str); 3] = [
    ("TCP", "10.20.1.5", "10.10.1.99", 4444, "undocumented"),
    ("TCP", "10.10.1.12", "10.10.1.10", 1972, "role_mismatch"),
    ("TCP", "10.10.1.23", "10.10.1.20", 8443, "documented"),
];

fn ip4(s: &str) -> [u8; 4] {
    let ip: std::net::Ipv4Addr = s.parse().expect("address");
    ip.octets()
}

/// Base capture, its site, and the base and new runs' events.
fn runs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (base, site) = (dir.join("base.pcap"), dir.join("site.toml"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-traffic");
    let o = Command::new("python3")
        .arg(script)
        .arg("-o")
        .arg(&base)
        .args(["--packets", "10000", "--seed", "4", "--site"])
        .arg(&site)
        .output()
        .expect("python3 runs scripts/gen-traffic");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut extra = Pcap::new();
    for (i, (_, client, server, port, _)) in EXTRA.iter().enumerate() {
        let c: Socket = (ip4(client), 50_000 + i as u16);
        let s: Socket = (ip4(server), *port);
        extra.conversation(c, s, b"hello", b"world");
    }
    let extra = extra.write("diff", "extra.pcap");
    let events = |name: &str, captures: &[&Path]| {
        let mut args = vec![
            "analyze".to_string(),
            "-q".into(),
            "--json".into(),
            "--flows".into(),
            "--site".into(),
            site.display().to_string(),
        ];
        args.extend(captures.iter().map(|c| c.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = portmatrix(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let path = dir.join(name);
        std::fs::write(&path, &o.stdout).expect("write events");
        path
    };
    let a = events("base.jsonl", &[&base]);
    let b = events("new.jsonl", &[&base, &extra]);
    (site, a, b)
}

fn diff_json(a: &Path, b: &Path) -> Value {
    let o = portmatrix(&[
        "diff",
        "--json",
        &a.display().to_string(),
        &b.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

/// The changes of `kind` as (proto, src, dest, port, verdict).
fn flows(d: &Value, kind: &str) -> BTreeSet<(String, String, String, u64, String)> {
    d["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["kind"] == kind)
        .map(|c| {
            (
                c["proto"].as_str().unwrap_or_default().to_uppercase(),
                c["src_ip"].as_str().unwrap_or_default().to_string(),
                c["dest_ip"].as_str().unwrap_or_default().to_string(),
                c["dest_port"].as_u64().unwrap_or_default(),
                c["verdict"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_diff_of_two_captures_names_exactly_the_flows_that_differ() {
    // gen-traffic writes only outside the repository.
    let dir = std::env::temp_dir().join(format!("portmatrix-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (_site, a, b) = runs(&dir);
    let expected: BTreeSet<(String, String, String, u64, String)> = EXTRA
        .iter()
        .map(|(p, c, s, port, v)| {
            (
                p.to_string(),
                c.to_string(),
                s.to_string(),
                u64::from(*port),
                v.to_string(),
            )
        })
        .collect();

    let forward = diff_json(&a, &b);
    assert_eq!(flows(&forward, "new_flow"), expected);
    assert!(flows(&forward, "gone_flow").is_empty());
    let hosts: BTreeSet<String> = forward["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["kind"] == "new_host")
        .map(|c| c["dest_ip"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(hosts.contains("10.10.1.99"), "{hosts:?}");
    let extra_hosts: BTreeSet<&str> = EXTRA.iter().flat_map(|e| [e.1, e.2]).collect();
    assert!(
        hosts.iter().all(|h| extra_hosts.contains(h.as_str())),
        "{hosts:?}"
    );
    let ports: Vec<&Value> = forward["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["kind"] == "new_port")
        .collect();
    assert!(ports
        .iter()
        .any(|p| p["dest_ip"] == "10.10.1.99" && p["dest_port"] == 4444));
    // Ranked: the high-severity new flows before the documented one.
    let kinds: Vec<&str> = forward["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["severity"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds.first(), Some(&"high"), "{kinds:?}");

    let backward = diff_json(&b, &a);
    assert_eq!(flows(&backward, "gone_flow"), expected);
    assert!(flows(&backward, "new_flow").is_empty());

    // The drift gate: exit 3 on new undocumented or role-mismatch flows.
    let (a_arg, b_arg) = (a.display().to_string(), b.display().to_string());
    let gate = "new-undocumented,new-role-mismatch";
    let o = portmatrix(&["diff", &a_arg, &b_arg, "--fail-on", gate]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("new undocumented"), "{text}");
    assert!(text.contains("TCP 10.20.1.5 -> 10.10.1.99:4444"), "{text}");
    assert!(
        text.contains("now role_mismatch") || text.contains("new role_mismatch"),
        "{text}"
    );
    assert!(text.contains("summary: "), "{text}");
    let o = portmatrix(&["diff", &b_arg, &a_arg, "--fail-on", gate]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = portmatrix(&[
        "diff",
        &a_arg,
        &a_arg,
        "--fail-on",
        "new-flow,gone-flow,new-host",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 new hosts"));

    // The report's section with --baseline.
    let html = dir.join("report.html");
    let o = portmatrix(&[
        "report",
        &b_arg,
        "--baseline",
        &a_arg,
        "-o",
        &html.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).expect("the report");
    assert!(page.contains("Changes since the baseline"));
    assert!(page.contains("10.10.1.99:4444"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn diff_refuses_bad_gates_and_counts_bad_lines() {
    let dir = work_dir("diff", "bad-input");
    let o = portmatrix(&["diff", "a", "b", "--fail-on", "new-bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("new-undocumented"), "{}", stderr(&o));
    let good = r#"{"timestamp":"2021-08-02T09:00:18.010000Z","event_type":"flow","flow_id":1,"proto":"TCP","src_ip":"10.10.1.11","src_port":51234,"dest_ip":"10.10.1.10","dest_port":8100,"verdict":"internal_only","severity":"high","rule_ids":["2.2.2#19"],"start":"2021-08-02T09:00:18.000000Z","end":"2021-08-02T09:00:18.010000Z","pkts_toserver":6,"pkts_toclient":4,"bytes_toserver":367,"bytes_toclient":257}"#;
    let base = dir.join("base.jsonl");
    std::fs::write(&base, format!("{good}\n")).expect("write");
    let new = dir.join("new.jsonl");
    std::fs::write(&new, format!("{good}\nnot json\n")).expect("write");
    let o = portmatrix(&[
        "diff",
        &base.display().to_string(),
        &new.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("new.jsonl:2:"), "{}", stderr(&o));
    let o = portmatrix(&["diff", &base.display().to_string(), "/nonexistent.jsonl"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot open events file /nonexistent.jsonl"));
    // Everything in the base is gone when nothing could be read.
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 flows gone"));
}

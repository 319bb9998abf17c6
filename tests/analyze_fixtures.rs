//! `portmatrix analyze` on the project's own fixtures (made by scripts/gen-fixtures):
//! every flow, verdict, direction and count equals what the generator intended.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::Value;

#[path = "common/contract.rs"]
mod contract;
use contract::FlowEvent;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn analyze(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .arg("analyze")
        .args(args)
        .output()
        .expect("portmatrix runs")
}

/// The flow fields a fixture's expected file pins down.
#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct ExpectedFlow {
    proto: String,
    src_ip: String,
    src_port: u16,
    dest_ip: String,
    dest_port: u16,
    verdict: String,
    direction: String,
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    vlan: Option<u16>,
    encap: Option<Vec<String>>,
    vni: Option<u32>,
}

fn events(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
        .collect()
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

fn expected_flows(name: &str) -> Vec<ExpectedFlow> {
    let text =
        std::fs::read_to_string(fixture(&format!("{name}.expected.jsonl"))).expect("expected file");
    let mut flows: Vec<ExpectedFlow> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("expected flow"))
        .collect();
    flows.sort();
    flows
}

fn flows_of(events: &[Value]) -> Vec<ExpectedFlow> {
    let mut flows: Vec<ExpectedFlow> = of_type(events, "flow")
        .into_iter()
        .map(|e| serde_json::from_value((*e).clone()).expect("flow fields"))
        .collect();
    flows.sort();
    flows
}

const FIXTURES: [(&str, &str); 8] = [
    ("sample-contact-center", "pcapng"),
    ("link-types", "pcapng"),
    ("sll2", "pcap"),
    ("nanosecond-be", "pcap"),
    ("vlan-qinq-ipv6ext", "pcap"),
    ("truncated", "pcap"),
    ("tunnels", "pcap"),
    ("tunnels-ppp-bridging", "pcapng"),
];

#[test]
fn every_fixture_gives_the_intended_flows_and_stats() {
    for (name, ext) in FIXTURES {
        let path = fixture(&format!("{name}.{ext}"));
        let o = analyze(&["--json", "--flows", "--quiet", path.to_str().expect("path")]);
        let evs = events(&o);
        assert_eq!(flows_of(&evs), expected_flows(name), "{name}");
        for e in of_type(&evs, "flow")
            .into_iter()
            .chain(of_type(&evs, "alert"))
        {
            let parsed: FlowEvent = serde_json::from_value(e.clone())
                .unwrap_or_else(|err| panic!("{name}: {err}: {e}"));
            assert!(parsed.community_id.starts_with("1:"));
            assert!(parsed.timestamp.ends_with('Z') && parsed.timestamp.len() == 27);
        }
        let stats = of_type(&evs, "stats");
        assert_eq!(stats.len(), 1, "{name}: one final stats event");
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("{name}.stats.json"))).expect("stats"),
        )
        .expect("stats JSON");
        let s = &stats[0]["stats"];
        assert_eq!(s["packets"], want["packets"], "{name}");
        assert_eq!(s["tcp_udp_packets"], want["tcp_udp_packets"], "{name}");
        assert_eq!(s["other_protocols"], want["other"], "{name}");
        // Only files with tunnels list them; the others expect none.
        let no_tunnels = Value::Object(serde_json::Map::new());
        let encapsulated = want.get("encapsulated").unwrap_or(&no_tunnels);
        assert_eq!(&s["encapsulated"], encapsulated, "{name}");
        let flows = of_type(&evs, "flow").len() as u64;
        assert_eq!(s["flows"], flows, "{name}");
    }
}

#[test]
fn alerts_are_written_for_every_flagged_flow_and_only_those() {
    let path = fixture("sample-contact-center.pcapng");
    let o = analyze(&["--json", "--flows", "-q", path.to_str().expect("path")]);
    assert!(o.status.success());
    let evs = events(&o);
    let flagged: Vec<(String, u64)> = {
        let mut v: Vec<(String, u64)> = of_type(&evs, "flow")
            .into_iter()
            .filter(|e| e["verdict"] != "documented")
            .map(|e| {
                (
                    e["verdict"].as_str().unwrap_or("").to_string(),
                    e["flow_id"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        v.sort();
        v
    };
    let mut alerts: Vec<(String, u64)> = of_type(&evs, "alert")
        .into_iter()
        .map(|e| {
            (
                e["verdict"].as_str().unwrap_or("").to_string(),
                e["flow_id"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    alerts.sort();
    assert_eq!(alerts, flagged);
    let verdicts: std::collections::BTreeSet<&str> =
        alerts.iter().map(|(v, _)| v.as_str()).collect();
    // The sample shows every verdict but `documented` in alerts.
    assert_eq!(verdicts.len(), 6, "{verdicts:?}");
    // Each alert comes before its own flow event.
    for (i, e) in evs.iter().enumerate() {
        if e["event_type"] == "alert" {
            let later = evs[i..]
                .iter()
                .any(|f| f["event_type"] == "flow" && f["flow_id"] == e["flow_id"]);
            assert!(later, "alert before flow: {e}");
        }
    }
}

#[test]
fn the_same_events_for_any_number_of_workers() {
    let path = fixture("sample-contact-center.pcapng");
    let run = |w: &str| {
        sorted_lines(&analyze(&[
            "--json",
            "--flows",
            "-q",
            "--workers",
            w,
            path.to_str().expect("path"),
        ]))
    };
    let one = run("1");
    assert!(one.len() > 40);
    assert_eq!(one, run("4"));
}

#[test]
fn a_truncated_capture_reports_what_came_before_and_fails() {
    let path = fixture("truncated.pcap");
    let o = analyze(&["--json", "--flows", path.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("truncated.pcap") && err.contains("offset 2040"),
        "{err}"
    );
    assert!(err.contains("portmatrix: 1 file(s), 9 packets"), "{err}");
    let evs = events(&o);
    assert_eq!(flows_of(&evs), expected_flows("truncated"));
    let stats = &of_type(&evs, "stats")[0]["stats"];
    assert!(stats["files"][0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("2040")));
}

#[test]
fn bad_inputs_name_the_file_and_never_panic() {
    let dir = std::env::temp_dir().join(format!("portmatrix-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "this is not a capture\n").expect("write");
    let o = analyze(&[text.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("notes.txt") && err.contains("not a pcap"),
        "{err}"
    );
    assert!(!err.contains("panicked"));

    let o = analyze(&["/nonexistent/capture.pcap"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/capture.pcap"));

    // A good file after a bad one is still analysed.
    let good = fixture("sll2.pcap");
    let o = analyze(&[
        "--json",
        "--flows",
        text.to_str().expect("path"),
        good.to_str().expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(flows_of(&events(&o)), expected_flows("sll2"));
}

#[test]
fn a_directory_is_read_in_time_order() {
    let o = analyze(&[
        "--json",
        "--flows",
        "-q",
        fixture("").to_str().expect("path"),
    ]);
    // truncated.pcap makes the run fail, but every file is analysed.
    assert_eq!(o.status.code(), Some(1));
    let evs = events(&o);
    let stats = &of_type(&evs, "stats")[0]["stats"];
    let files = stats["files"].as_array().expect("files");
    assert_eq!(files.len(), FIXTURES.len());
    for f in files {
        let path = f["path"].as_str().expect("path");
        let name = Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name");
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("{name}.stats.json"))).expect("stats"),
        )
        .expect("stats JSON");
        assert_eq!(f["packets"], want["packets"], "{path}");
    }
    let firsts: Vec<&str> = files.iter().filter_map(|f| f["path"].as_str()).collect();
    // Files are ordered by their first packet's time, not by name.
    let mut by_name = firsts.clone();
    by_name.sort();
    assert_eq!(firsts.len(), by_name.len());
}

#[test]
fn text_output_and_summary_for_people() {
    let path = fixture("sample-contact-center.pcapng");
    let o = analyze(&[path.to_str().expect("path")]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().all(|l| l.contains(" alert ")), "{out}");
    assert!(
        out.contains("internal_only") && out.contains("rules 2.2.2#19"),
        "{out}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    for needle in [
        "flows per verdict:",
        "top undocumented destination ports:",
        "matrix coverage:",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in out.lines() {
        *counts
            .entry(if l.contains("undocumented") { "u" } else { "o" })
            .or_default() += 1;
    }
    assert!(counts.get("u").copied().unwrap_or(0) >= 5);
}

#[test]
fn text_output_names_the_tunnels() {
    let path = fixture("tunnels.pcap");
    let o = analyze(&["--flows", path.to_str().expect("path")]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "10.10.99.5:61500 -> 10.10.1.10:4444 in vxlan vni 4242",
        "10.10.1.10:50500 -> 10.10.1.70:162 vlan 900 in mpls/gre/erspan2",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
}

/// tshark, an independent decoder, finds the same TCP and UDP endpoint pairs
/// in the tunnel fixtures, less the tunnels' own datagrams (VXLAN, Geneve,
/// GRE in UDP), which run between tunnel endpoints in 10.99.0.0/16 and are
/// not flows.
#[test]
fn tunnel_fixtures_agree_with_tshark() {
    for name in ["tunnels.pcap", "tunnels-ppp-bridging.pcapng"] {
        let path = fixture(name);
        let path = path.to_str().expect("path");
        let o = Command::new("tshark")
            .args(["-r", path, "-q", "-z", "conv,tcp", "-z", "conv,udp"])
            .output()
            .expect("tshark runs (scripts/setup --test installs it)");
        assert!(o.status.success(), "{name}: tshark failed");
        let mut theirs = std::collections::BTreeSet::new();
        let mut proto = "";
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if line.starts_with("TCP Conversations") {
                proto = "TCP";
            } else if line.starts_with("UDP Conversations") {
                proto = "UDP";
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [a, "<->", b, ..] = words[..] {
                if !a.starts_with("10.99.") || !b.starts_with("10.99.") {
                    theirs.insert((
                        proto.to_string(),
                        a.min(b).to_string(),
                        a.max(b).to_string(),
                    ));
                }
            }
        }
        let ours: std::collections::BTreeSet<_> =
            flows_of(&events(&analyze(&["--json", "--flows", "-q", path])))
                .into_iter()
                .map(|f| {
                    let a = format!("{}:{}", f.src_ip, f.src_port);
                    let b = format!("{}:{}", f.dest_ip, f.dest_port);
                    (f.proto.clone(), a.clone().min(b.clone()), a.max(b))
                })
                .collect();
        assert!(!ours.is_empty(), "{name}");
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn closing_stdout_early_is_a_quiet_end() {
    use std::io::Read;
    use std::process::Stdio;
    let path = fixture("sample-contact-center.pcapng");
    let mut child = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args([
            "analyze",
            "--json",
            "--flows",
            "-q",
            path.to_str().expect("path"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read one byte, then hang up, as `| head -c1` would.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).expect("some output");
    drop(stdout);
    let status = child.wait().expect("exit");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert!(status.success(), "{status:?} {err}");
}

#[test]
fn a_full_flow_table_evicts_and_reports_instead_of_losing_flows() {
    let path = fixture("sample-contact-center.pcapng");
    let o = analyze(&[
        "--json",
        "--flows",
        "-q",
        "--workers",
        "1",
        "--max-flows",
        "5",
        path.to_str().expect("path"),
    ]);
    assert!(o.status.success());
    let evs = events(&o);
    let stats = &of_type(&evs, "stats")[0]["stats"];
    let evicted = of_type(&evs, "flow")
        .into_iter()
        .filter(|e| e["reason"] == "evicted")
        .count() as u64;
    assert!(evicted > 0);
    assert_eq!(stats["evictions"], evicted);
    // Nothing flagged is lost: every flagged flow still has its alert.
    let alerts = of_type(&evs, "alert").len();
    let flagged = of_type(&evs, "flow")
        .into_iter()
        .filter(|e| e["verdict"] != "documented")
        .count();
    assert!(
        alerts >= 15 && flagged >= alerts,
        "{alerts} alerts, {flagged} flagged flows"
    );
}

#[test]
fn timeouts_run_on_packet_time_and_are_configurable() {
    let path = fixture("sample-contact-center.pcapng");
    let default = analyze(&["--json", "--flows", "-q", path.to_str().expect("path")]);
    let short_timeouts = || {
        analyze(&[
            "--json",
            "--flows",
            "-q",
            "--udp-timeout",
            "1",
            "--tcp-timeout",
            "1",
            path.to_str().expect("path"),
        ])
    };
    let short = short_timeouts();
    let count = |o: &Output, reason: &str| {
        of_type(&events(o), "flow")
            .into_iter()
            .filter(|e| e["reason"] == reason)
            .count()
    };
    assert_eq!(count(&default, "timeout"), 0);
    assert!(count(&short, "timeout") > 0);
    // Same input, same events: the wall clock plays no part.
    let again = short_timeouts();
    assert_eq!(sorted_lines(&short), sorted_lines(&again));
}

/// stdout's lines in order: events compared as a set.
fn sorted_lines(o: &Output) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

//! Incident forensics, as a user runs them on the shipped sample capture
//! (42 flows, 15 of them flagged): evidence files (`--extract`, checked with
//! tshark and with portmatrix's own reader), the focus filters, `--verdict`,
//! the `--fail-on` gate, CSV output and `analyze --report`.
//!
//! tshark (Debian `tshark`, installed by `scripts/setup --test`) reads every
//! evidence file; where it is missing the tshark checks say SKIPPED on stderr
//! (the files are still read back by portmatrix's reader), unless
//! `PORTMATRIX_LIVE_TESTS=require` (the full CI environment) makes it a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{portmatrix, stderr, work_dir};

use portmatrix::capture::CaptureFile;
use serde_json::Value;

const SAMPLE: &str = "sample-contact-center.pcapng";
const SAMPLE_FLAGGED: usize = 15;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

fn analyze(args: &[&str]) -> Output {
    let mut all = vec!["analyze"];
    all.extend_from_slice(args);
    portmatrix(&all)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
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

fn stats(events: &[Value]) -> &Value {
    &of_type(events, "stats")
        .last()
        .expect("a final stats event")["stats"]
}

fn packets_of(flow: &Value) -> u64 {
    flow["pkts_toserver"].as_u64().expect("pkts_toserver")
        + flow["pkts_toclient"].as_u64().expect("pkts_toclient")
}

/// Is tshark here? If not, say the tshark checks are skipped (or fail in the
/// full CI environment, where `scripts/setup --test` installed it).
fn tshark_available(test: &str) -> bool {
    let found = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
            "{test}: tshark is not installed (scripts/setup --test installs it)"
        );
        eprintln!(
            "SKIPPED {test}: tshark checks (tshark is not installed; scripts/setup --test installs it)"
        );
    }
    found
}

/// What tshark reads in `file`: one comment (or "") per packet. Fails if
/// tshark does not read the whole file.
fn tshark_comments(file: &Path) -> Vec<String> {
    let out = Command::new("tshark")
        .args([
            "-n",
            "-r",
            path_str(file),
            "-T",
            "fields",
            "-e",
            "frame.comment",
        ])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark cannot read {}: {}",
        file.display(),
        stderr(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Packets in `file` as portmatrix's own reader sees them.
fn own_count(file: &Path) -> u64 {
    let mut cap = CaptureFile::open(file).unwrap_or_else(|e| panic!("{e}"));
    let mut n = 0;
    while cap
        .next_packet()
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .is_some()
    {
        n += 1;
    }
    n
}

/// `--extract DIR` on the sample; the events and the folder's files.
fn extract_sample(name: &str, extra: &[&str]) -> (Vec<Value>, PathBuf) {
    let dir = work_dir("forensics", name).join("evidence");
    let mut args = vec!["--json", "--flows", "-q", "--extract", path_str(&dir)];
    args.extend_from_slice(extra);
    let sample = fixture(SAMPLE);
    args.push(&sample);
    let o = analyze(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    (events(&o), dir)
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("evidence folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_flagged_flow_has_a_file_holding_all_its_packets_and_why() {
    let (evs, dir) = extract_sample("per-flow", &[]);
    let flows = of_type(&evs, "flow");
    assert_eq!(flows.len(), 42);
    let mut named = BTreeSet::new();
    let mut written = 0;
    let tshark = tshark_available("every_flagged_flow_has_a_file");
    for f in &flows {
        let Some(evidence) = f["evidence"].as_str() else {
            assert_eq!(
                f["verdict"], "documented",
                "a flagged flow without evidence: {f}"
            );
            continue;
        };
        assert_ne!(f["verdict"], "documented", "{f}");
        // The folder as given, then a name that says what the flow is.
        let path = PathBuf::from(evidence);
        assert_eq!(path.parent(), Some(dir.as_path()), "{evidence}");
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let verdict = f["verdict"].as_str().expect("verdict");
        let want = format!(
            "{}-{verdict}-{}-{}_{}-{}_{}.pcapng",
            f["flow_id"],
            f["proto"].as_str().expect("proto").to_lowercase(),
            f["src_ip"].as_str().expect("ip"),
            f["src_port"],
            f["dest_ip"].as_str().expect("ip"),
            f["dest_port"]
        );
        assert_eq!(name, want);
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
        named.insert(name.to_string());
        let packets = packets_of(f);
        assert_eq!(own_count(&path), packets, "{name}");
        written += packets;
        if tshark {
            let comments = tshark_comments(&path);
            assert_eq!(comments.len() as u64, packets, "tshark's count of {name}");
            // The first packet says why; the others say nothing.
            let why = &comments[0];
            for needle in [
                format!("flow {} flagged {verdict}", f["flow_id"]),
                format!("severity {}", f["severity"].as_str().expect("severity")),
                format!("flow_id: {}", f["flow_id"]),
                format!(
                    "community_id: {}",
                    f["community_id"].as_str().expect("community_id")
                ),
            ] {
                assert!(why.contains(&needle), "{needle} not in {why}");
            }
            for rule in f["rule_ids"].as_array().expect("rule_ids") {
                let rule = rule.as_str().expect("rule id");
                assert!(why.contains(&format!("rule {rule}: ")), "{rule}: {why}");
            }
            assert!(comments[1..].iter().all(String::is_empty), "{comments:?}");
            // The section header says it too (capinfos shows it; Wireshark
            // under Statistics > Capture File Properties).
            let info = Command::new("capinfos")
                .args(["-k", path_str(&path)])
                .output()
                .expect("capinfos");
            let info = String::from_utf8_lossy(&info.stdout);
            assert!(info.contains(&format!("flagged {verdict}")), "{info}");
        }
    }
    assert_eq!(named.len(), SAMPLE_FLAGGED);
    assert_eq!(files_in(&dir), named, "files nobody names, or missing");
    let x = &stats(&evs)["extract"];
    assert_eq!(x["files"], SAMPLE_FLAGGED as u64);
    assert_eq!(x["packets"], written);
    assert_eq!(x["capped_packets"], 0);
    assert_eq!(x["capped_flows"], 0);
    assert_eq!(x["errors"], 0);
    assert!(x["bytes"].as_u64().is_some_and(|b| b > written * 60));
    // Alerts do not name the evidence (it is decided just after them).
    assert!(of_type(&evs, "alert")
        .iter()
        .all(|a| a.get("evidence").is_none()));
}

#[test]
fn the_same_evidence_bytes_for_any_number_of_workers() {
    let (_, one) = extract_sample("workers-1", &["--workers", "1"]);
    let (_, four) = extract_sample("workers-4", &["--workers", "4"]);
    let names = files_in(&one);
    assert_eq!(names.len(), SAMPLE_FLAGGED);
    assert_eq!(files_in(&four), names);
    for name in names {
        let read = |d: &Path| std::fs::read(d.join(&name)).expect("read");
        assert!(read(&one) == read(&four), "{name} differs");
    }
}

#[test]
fn per_verdict_files_and_the_per_flow_cap() {
    let (evs, dir) = extract_sample(
        "per-verdict",
        &["--extract-by", "verdict", "--extract-max-packets", "2"],
    );
    let mut want: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut capped_packets, mut capped_flows) = (0, 0);
    for f in of_type(&evs, "flow") {
        let verdict = f["verdict"].as_str().expect("verdict").to_string();
        if verdict == "documented" {
            assert!(f.get("evidence").is_none());
            continue;
        }
        let evidence = f["evidence"].as_str().expect("evidence");
        assert!(
            evidence.ends_with(&format!("/{verdict}.pcapng")),
            "{evidence}"
        );
        let packets = packets_of(f);
        let entry = want.entry(verdict).or_default();
        entry.0 += packets.min(2);
        entry.1 += 1;
        capped_packets += packets.saturating_sub(2);
        capped_flows += u64::from(packets > 2);
    }
    assert_eq!(want.len(), 6, "one file per flagged verdict: {want:?}");
    let names: BTreeSet<String> = want.keys().map(|v| format!("{v}.pcapng")).collect();
    assert_eq!(files_in(&dir), names);
    let tshark = tshark_available("per_verdict_files_and_the_per_flow_cap");
    for (verdict, (packets, flows)) in &want {
        let path = dir.join(format!("{verdict}.pcapng"));
        assert_eq!(own_count(&path), *packets, "{verdict}");
        if tshark {
            let comments = tshark_comments(&path);
            assert_eq!(comments.len() as u64, *packets, "{verdict}");
            // Each flow's first packet carries its own reason.
            let commented = comments.iter().filter(|c| !c.is_empty()).count() as u64;
            assert_eq!(commented, *flows, "{verdict}: {comments:?}");
        }
    }
    let x = &stats(&evs)["extract"];
    assert_eq!(x["files"], 6);
    assert_eq!(x["capped_packets"], capped_packets);
    assert_eq!(x["capped_flows"], capped_flows);
    assert!(capped_flows > 0);
}

/// A pcap of `flows` TCP flows to the undocumented port 4444, each a SYN and
/// then `data` packets of `payload` bytes; the flows one after the other, or
/// `interleaved` (one packet of each in turn).
fn synthetic_capture(path: &Path, flows: u16, data: u32, payload: usize, interleaved: bool) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let order: Vec<(u16, u32)> = if interleaved {
        (0..=data)
            .flat_map(|i| (0..flows).map(move |f| (f, i)))
            .collect()
    } else {
        (0..flows)
            .flat_map(|f| (0..=data).map(move |i| (f, i)))
            .collect()
    };
    for (t, (flow, i)) in order.into_iter().enumerate() {
        let payload = if i == 0 { 0 } else { payload };
        let mut frame = vec![0u8; 54 + payload];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip_len = u16::try_from(40 + payload).expect("fits");
        frame[14] = 0x45;
        frame[16..18].copy_from_slice(&ip_len.to_be_bytes());
        frame[22] = 64;
        frame[23] = 6;
        frame[26..30].copy_from_slice(&[10, 0, 0, 1]);
        frame[30..34].copy_from_slice(&[10, 0, 0, 2]);
        frame[34..36].copy_from_slice(&(40_000 + flow).to_be_bytes());
        frame[36..38].copy_from_slice(&4444u16.to_be_bytes());
        frame[46] = 0x50;
        frame[47] = if i == 0 { 0x02 } else { 0x18 };
        out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        out.extend_from_slice(&u32::try_from(t + 1).expect("fits").to_le_bytes());
        let len = u32::try_from(frame.len()).expect("fits");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).expect("write the capture");
}

#[test]
fn more_flows_than_open_files_are_closed_and_reopened_whole() {
    // 200 flagged flows whose packets alternate: far more files than the
    // extract thread keeps open, each reopened in append mode as it goes.
    let work = work_dir("forensics", "many-files");
    let capture = work.join("scan.pcap");
    synthetic_capture(&capture, 200, 4, 100, true);
    let dir = work.join("evidence");
    let o = analyze(&[
        "--json",
        "--flows",
        "-q",
        "--extract",
        path_str(&dir),
        path_str(&capture),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let evs = events(&o);
    let flows = of_type(&evs, "flow");
    assert_eq!(flows.len(), 200);
    let tshark = tshark_available("more_flows_than_open_files");
    for f in flows {
        let path = PathBuf::from(f["evidence"].as_str().expect("evidence"));
        assert_eq!(own_count(&path), 5, "{}", path.display());
        let port = f["src_port"].as_u64().expect("port");
        if tshark && [40_000, 40_100, 40_199].contains(&port) {
            assert_eq!(tshark_comments(&path).len(), 5);
        }
    }
    assert_eq!(files_in(&dir).len(), 200);
    assert_eq!(stats(&evs)["extract"]["packets"], 1000);
}

#[test]
fn the_total_cap_stops_extraction_for_good_and_is_counted() {
    let work = work_dir("forensics", "total-cap");
    let capture = work.join("big.pcap");
    // 3 flows of 1 + 500 packets, about 0.7 MB each: the 1 MiB cap ends
    // the second flow's file early and leaves the third without one.
    synthetic_capture(&capture, 3, 500, 1400, false);
    let dir = work.join("evidence");
    // One worker: with several, which packets come after the cap depends on
    // how the workers' progress interleaves.
    let o = analyze(&[
        "--json",
        "--flows",
        "-q",
        "--workers",
        "1",
        "--extract",
        path_str(&dir),
        "--extract-max-mb",
        "1",
        path_str(&capture),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let evs = events(&o);
    let flows = of_type(&evs, "flow");
    assert_eq!(flows.len(), 3);
    let total: u64 = flows.iter().map(|f| packets_of(f)).sum();
    let with_file: Vec<&&Value> = flows.iter().filter(|f| f["evidence"].is_string()).collect();
    assert_eq!(with_file.len(), 2, "{flows:?}");
    let tshark = tshark_available("the_total_cap_stops_extraction");
    let mut written = 0;
    for f in &with_file {
        let path = PathBuf::from(f["evidence"].as_str().expect("path"));
        let n = own_count(&path);
        if tshark {
            assert_eq!(tshark_comments(&path).len() as u64, n);
        }
        written += n;
    }
    let x = &stats(&evs)["extract"];
    assert_eq!(x["packets"], written);
    assert_eq!(x["capped_packets"], total - written);
    assert_eq!(
        x["capped_flows"], 2,
        "the cut flow and the one without a file"
    );
    // Captured bytes stop under the cap; the files add their block headers.
    // Two SYNs of 54 bytes, the rest 1,454-byte data packets.
    let data = (written - 2) * 1454 + 2 * 54;
    assert!(data <= 1 << 20 && data > (1 << 20) - 1454, "{data}");
}

#[test]
fn host_and_port_focus_keeps_the_matching_flows_whole() {
    let sample = fixture(SAMPLE);
    let all = events(&analyze(&["--json", "--flows", "-q", &sample]));
    let flows_where = |keep: &dyn Fn(&Value) -> bool| -> BTreeSet<String> {
        of_type(&all, "flow")
            .into_iter()
            .filter(|f| keep(f))
            .map(|f| f.to_string())
            .collect()
    };
    let run = |args: &[&str]| {
        let mut a = vec!["--json", "--flows", "-q"];
        a.extend_from_slice(args);
        a.push(&sample);
        let o = analyze(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        events(&o)
    };
    let flows_of = |evs: &[Value]| -> BTreeSet<String> {
        of_type(evs, "flow").iter().map(|f| f.to_string()).collect()
    };

    let scanner = run(&["--host", "10.10.99.5"]);
    let want = flows_where(&|f| f["src_ip"] == "10.10.99.5" || f["dest_ip"] == "10.10.99.5");
    assert!(want.len() >= 8);
    assert_eq!(flows_of(&scanner), want);
    let s = stats(&scanner);
    assert_eq!(s["filters"]["host"], serde_json::json!(["10.10.99.5"]));
    let counted = s["tcp_udp_packets"].as_u64().expect("n")
        + s["other_protocols"]
            .as_object()
            .expect("map")
            .values()
            .map(|v| v.as_u64().expect("n"))
            .sum::<u64>();
    assert_eq!(s["filtered"].as_u64().expect("filtered") + counted, 780);
    assert_eq!(s["packets"], 780);

    let port = run(&["--port", "8100", "--host", "10.10.0.0/16"]);
    let want = flows_where(&|f| f["src_port"] == 8100 || f["dest_port"] == 8100);
    assert_eq!(want.len(), 2);
    assert_eq!(flows_of(&port), want);
    assert_eq!(stats(&port)["flows"], 2);
    assert_eq!(stats(&port)["filters"]["port"], serde_json::json!([8100]));

    // BPF on files: the same packets as the equivalent options.
    let bpf = run(&["--bpf", "tcp port 8100"]);
    assert_eq!(flows_of(&bpf), want);
    assert_eq!(stats(&bpf)["filters"]["bpf"], "tcp port 8100");
    assert_eq!(stats(&bpf)["filtered"], stats(&port)["filtered"]);
}

#[test]
fn bpf_is_compiled_for_each_link_type_of_a_file() {
    // Ethernet, Linux SLL, raw IP, loopback… in one pcapng: the expression
    // keeps every TCP/UDP packet whatever the link layer.
    let file = fixture("link-types.pcapng");
    let all = events(&analyze(&["--json", "-q", &file]));
    let o = analyze(&["--json", "-q", "--bpf", "tcp or udp", &file]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let s = stats(&events(&o)).clone();
    assert_eq!(s["flows"], stats(&all)["flows"]);
    assert_eq!(s["tcp_udp_packets"], stats(&all)["tcp_udp_packets"]);
}

#[test]
fn the_time_window_counts_from_the_first_packet_or_a_moment() {
    let sample = fixture(SAMPLE);
    let window = |since: &str, until: &str| {
        let o = analyze(&[
            "--json", "--flows", "--since", since, "--until", until, &sample,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        (events(&o), stderr(&o))
    };
    let (relative, summary) = window("+10s", "+30s");
    let (absolute, _) = window("2021-08-02T09:00:10Z", "2021-08-02T09:00:30Z");
    let lines = |evs: &[Value]| -> BTreeSet<String> {
        evs.iter()
            .filter(|e| e["event_type"] != "stats")
            .map(Value::to_string)
            .collect()
    };
    assert!(
        lines(&relative) == lines(&absolute),
        "the two windows differ"
    );
    let flows = of_type(&relative, "flow");
    assert!(!flows.is_empty() && flows.len() < 42);
    for f in &flows {
        let (start, end) = (
            f["start"].as_str().expect("start"),
            f["end"].as_str().expect("end"),
        );
        assert!(
            start >= "2021-08-02T09:00:10" && end < "2021-08-02T09:00:30",
            "{f}"
        );
    }
    let s = stats(&relative);
    assert_eq!(s["filters"]["since"], "2021-08-02T09:00:10.000000Z");
    assert_eq!(s["filters"]["until"], "2021-08-02T09:00:30.000000Z");
    assert!(s["filtered"].as_u64().is_some_and(|n| n > 0));
    // The summary on stderr says which filters were active.
    assert!(
        summary.contains("filters: since 2021-08-02T09:00:10.000000Z, until 2021-08-02T09:00:30"),
        "{summary}"
    );
    assert!(summary.contains("packets outside them"), "{summary}");
}

#[test]
fn bad_focus_options_are_usage_errors() {
    let sample = fixture(SAMPLE);
    for (args, needle) in [
        (vec!["--since", "+10s", "--until", "+5s"], "not before"),
        (vec!["--since", "yesterday"], "RFC 3339"),
        (vec!["--host", "10.1.2.3/16"], "host bits"),
        (vec!["--bpf", "tcp port nonsense"], "bad BPF expression"),
        (vec!["--verdict", "bogus"], "out_of_profile"),
        (vec!["--fail-on", "undocumented,nope"], "`nope`"),
        (vec!["--json", "--format", "csv"], "cannot be used with"),
        (vec!["--report", "-"], "--report needs a file"),
    ] {
        let mut a = args.clone();
        a.push(&sample);
        let o = analyze(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn verdict_selects_what_is_reported_and_extracted_but_all_flows_count() {
    let dir = work_dir("forensics", "verdict").join("evidence");
    let o = analyze(&[
        "--json",
        "--flows",
        "-q",
        "--verdict",
        "internal_only,wrong_transport",
        "--extract",
        path_str(&dir),
        &fixture(SAMPLE),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let evs = events(&o);
    let reported: BTreeSet<&str> = evs
        .iter()
        .filter(|e| e["event_type"] != "stats")
        .map(|e| e["verdict"].as_str().expect("verdict"))
        .collect();
    assert_eq!(
        reported,
        BTreeSet::from(["internal_only", "wrong_transport"])
    );
    assert_eq!(of_type(&evs, "alert").len(), 3);
    assert_eq!(of_type(&evs, "flow").len(), 3);
    let s = stats(&evs);
    assert_eq!(s["flows"], 42);
    assert_eq!(
        s["filters"]["verdict"],
        serde_json::json!(["wrong_transport", "internal_only"])
    );
    assert!(s.get("filtered").is_none(), "no packet filter: {s}");
    assert_eq!(files_in(&dir).len(), 3);
    assert_eq!(s["extract"]["files"], 3);
}

#[test]
fn fail_on_exits_3_and_an_unreadable_input_wins() {
    let sample = fixture(SAMPLE);
    let code = |args: &[&str]| analyze(args).status.code();
    assert_eq!(code(&["-q", "--fail-on", "undocumented", &sample]), Some(3));
    assert_eq!(
        code(&[
            "-q",
            "--fail-on",
            "deprecated",
            "--fail-on",
            "internal_only",
            &sample
        ]),
        Some(3)
    );
    // Nothing with those verdicts in the focus: success.
    assert_eq!(
        code(&[
            "-q",
            "--port",
            "8100",
            "--fail-on",
            "undocumented,wrong_transport",
            &sample
        ]),
        Some(0)
    );
    // The gate counts every flow, not only those --verdict reports.
    assert_eq!(
        code(&[
            "-q",
            "--verdict",
            "documented",
            "--fail-on",
            "undocumented",
            &sample
        ]),
        Some(3)
    );
    // A damaged input gives 1 even when the gate matched too.
    let every = "documented,undocumented,wrong_transport,internal_only,closed_by_default,\
deprecated,out_of_profile";
    let truncated = fixture("truncated.pcap");
    let o = analyze(&["--json", "--flows", "-q", "--fail-on", every, &truncated]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stats(&events(&o))["flows"].as_u64().is_some_and(|n| n > 0));
    let help = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(["analyze", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("3 every input was read"), "{help}");
}

/// RFC 4180 records: quoted cells may hold commas, quotes (doubled) and
/// line breaks; records end in CRLF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut cell) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\n') => panic!("a record ends in LF without CR"),
            (false, c) => cell.push(c),
        }
    }
    assert!(
        row.is_empty() && cell.is_empty() && !quoted,
        "unterminated record"
    );
    rows
}

#[test]
fn csv_has_a_header_and_one_row_per_flow_event() {
    let work = work_dir("forensics", "csv");
    // A site rule whose id needs quoting documents FTP (port 21).
    let rules = work.join("site.toml");
    std::fs::write(
        &rules,
        "schema = 1\n[[rule]]\nid = 'site,\"ftp\"'\nlisten_ports = [21]\ntransports = [\"tcp\"]\n",
    )
    .expect("rules");
    let dir = work.join("evidence");
    let sample = fixture(SAMPLE);
    let common = [
        "-q",
        "--rules",
        path_str(&rules),
        "--extract",
        path_str(&dir),
        sample.as_str(),
    ];
    let with = |first: &[&str]| {
        let mut a = first.to_vec();
        a.extend_from_slice(&common);
        analyze(&a)
    };
    let csv = with(&["--format", "csv"]);
    assert!(csv.status.success(), "{}", stderr(&csv));
    let text = String::from_utf8(csv.stdout).expect("utf-8");
    let rows = parse_csv(&text);
    let header = &rows[0];
    assert_eq!(header.len(), 26);
    let json = events(&with(&["--json", "--flows"]));
    let flows = of_type(&json, "flow");
    assert_eq!(rows.len() - 1, flows.len(), "one row per flow, no alerts");
    let by_id: BTreeMap<String, &Value> = flows
        .iter()
        .map(|f| (f["flow_id"].to_string(), *f))
        .collect();
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len(), "{row:?}");
        let cell = |name: &str| {
            let i = header.iter().position(|h| h == name).expect(name);
            row[i].as_str()
        };
        let f = by_id[cell("flow_id")];
        for name in [
            "timestamp",
            "community_id",
            "proto",
            "src_ip",
            "dest_ip",
            "verdict",
        ] {
            assert_eq!(cell(name), f[name].as_str().expect(name), "{name}");
        }
        for name in ["src_port", "dest_port", "pkts_toserver", "bytes_toclient"] {
            assert_eq!(cell(name), f[name].to_string(), "{name}");
        }
        let rules: Vec<&str> = f["rule_ids"]
            .as_array()
            .expect("rule_ids")
            .iter()
            .map(|r| r.as_str().expect("id"))
            .collect();
        assert_eq!(cell("rule_ids"), rules.join(" "));
        assert_eq!(cell("evidence"), f["evidence"].as_str().unwrap_or(""));
        assert_eq!(
            cell("app_protocol_seen"),
            f["app_protocol_seen"].as_str().unwrap_or("")
        );
        let one_sided = if f["one_sided"] == true { "true" } else { "" };
        assert_eq!(cell("one_sided"), one_sided);
    }
    assert!(text.contains("\"site,\"\"ftp\"\"\""), "quoted id");
    assert!(rows.iter().any(|r| r.contains(&"site,\"ftp\"".to_string())));
}

#[test]
fn json_is_an_alias_of_format_json() {
    let sample = fixture(SAMPLE);
    let lines = |o: Output| -> BTreeSet<String> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let a = lines(analyze(&["--json", "--flows", "-q", &sample]));
    let b = lines(analyze(&["--format", "json", "--flows", "-q", &sample]));
    assert!(a.len() > 42);
    assert!(a == b, "--json and --format json differ");
    // Text stays the default.
    let t = analyze(&["-q", &sample]);
    assert!(String::from_utf8_lossy(&t.stdout).contains(" alert "));
}

#[test]
fn report_is_written_at_the_end_of_the_run_with_its_evidence_links() {
    let work = work_dir("forensics", "report");
    let report = work.join("report.html");
    let evidence = work.join("evidence");
    let o = analyze(&[
        "--extract",
        path_str(&evidence),
        "--report",
        path_str(&report),
        "--fail-on",
        "undocumented",
        &fixture(SAMPLE),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrote "), "{}", stderr(&o));
    let html = std::fs::read_to_string(&report).expect("report written");
    for needle in ["<svg", "Matrix coverage", "internal_only"] {
        assert!(html.contains(needle), "{needle}");
    }
    // Every flagged flow's file is linked from the table.
    let links = html.matches(".pcapng\" title=").count();
    assert_eq!(links, SAMPLE_FLAGGED);
    // The report counts every flow, though text output wrote only alerts.
    assert!(html.contains(">42<"), "42 flows in the overview");
    // No draft left beside it.
    assert_eq!(
        files_in(&work),
        BTreeSet::from(["evidence".to_string(), "report.html".to_string()])
    );
    // The same page as `portmatrix report` makes from the JSON events.
    let events_file = work.join("events.jsonl");
    let j = analyze(&[
        "--json",
        "--flows",
        "-q",
        "--extract",
        path_str(&evidence),
        &fixture(SAMPLE),
    ]);
    std::fs::write(&events_file, &j.stdout).expect("events");
    let again = work.join("again.html");
    let r = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(["report", path_str(&events_file), "-o", path_str(&again)])
        .output()
        .expect("report");
    assert!(r.status.success(), "{}", stderr(&r));
    let again = std::fs::read_to_string(&again).expect("second report");
    assert_eq!(again.matches(".pcapng\" title=").count(), SAMPLE_FLAGGED);
}

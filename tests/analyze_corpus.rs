//! `portmatrix analyze --json --flows -q` over the shared capture corpus
//! (`../shared/corpus`, read-only), compared with tshark's view of each file
//! (EXPECTED.tsv) and with published Community IDs (`community-id/expected/`).
//!
//! 1. Every file in EXPECTED.tsv finishes within a timeout, never panics and
//!    exits 0 or 1 (1 only with the file named on stderr); files tshark reads
//!    to the end must exit 0 unless listed in [`EXIT_EXCEPTIONS`].
//! 2. For files tshark reads to the end, the distinct unordered
//!    (ip:port, ip:port) pairs among our TCP / UDP flow events equal
//!    `tcp_endpoint_pairs` / `udp_endpoint_pairs` (less the VXLAN / Geneve
//!    outer pairs of [`TUNNEL_UDP_PAIRS`]), except for the files in
//!    [`FLOW_COUNT_EXCEPTIONS`] (tunnels we do not enter, fragments, snaplen).
//! 3. Community IDs of TCP/UDP flows in the Community ID spec's captures equal
//!    tshark's and the spec's baseline.
//!
//! The corpus is run once (a few files in parallel) and shared by the tests.
//! If the corpus is absent every test prints a notice and passes.

mod common;
use common::read_tsv;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A run that takes longer than this is killed and fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Files run at once.
const PARALLEL: usize = 4;

/// Files tshark reads to the end (`tshark_read_error` = no) that may still
/// exit 1, each with the reason. None so far.
const EXIT_EXCEPTIONS: &[(&str, &str)] = &[];

/// UDP endpoint pairs that tshark counts but that are tunnels we enter: the
/// outer datagrams of VXLAN (4789) and Geneve (6081) carry the flows and are
/// not flows themselves (src/decode/tunnel.rs), so our UDP pairs are tshark's
/// minus these. Counted with `tshark -Y "vxlan || geneve" -T fields -E
/// occurrence=f -e ip.src -e ipv6.src -e udp.srcport -e ip.dst -e ipv6.dst
/// -e udp.dstport`, as distinct unordered pairs.
const TUNNEL_UDP_PAIRS: &[(&str, usize)] = &[
    ("encap/tcpdump__vxlan.pcap", 4),
    ("encap/tcpdump__geneve.pcap", 4),
    ("encap/tcpdump__gso-ipv4-vxlan-ipv4.pcap", 1),
    ("encap/zeek__geneve-many-options.pcap", 1),
    ("encap/zeek__geneve-ipv6.pcap", 1),
    ("encap/zeek__vxlan-encapsulated-http.pcap", 1),
    ("encap/zeek__vxlan-encapsulated-igmp-v2.pcap", 3),
    ("encap/suricata__vxlan-decoder-03.pcap", 13),
    ("encap/suricata__vxlan-non-zero-reserved-fields.pcap", 1),
    ("encap/suricata__vxlan-arp.pcap", 2),
    ("encap/ndpi__vxlan.pcap", 9),
    // A Geneve header cut short: tshark still lists the outer pair.
    ("malformed/zeek__geneve-truncated.pcapng", 1),
];

/// Well-formed files whose TCP/UDP endpoint pairs differ from tshark's, each
/// with the reason: tunnels we do not enter (tshark counts every TCP/UDP
/// header at any depth), fragments and snaplen.
const FLOW_COUNT_EXCEPTIONS: &[(&str, &str)] = &[
    // Tunnels not entered (src/decode/tunnel.rs lists those that are).
    ("encap/zeek__gtp7_ipv6.pcap", "inner flows of GTP-U not decoded"),
    (
        "encap/suricata__decode-nsh-type1.pcap",
        "NSH (EtherType 0x894f) not entered",
    ),
    (
        "encap/ndpi__ipv6_in_gtp.pcap",
        "inner flows of GTP-U not decoded",
    ),
    (
        "encap/ndpi__capwap_data.pcapng",
        "inner flows of CAPWAP data (802.11 frames) not decoded",
    ),
    // Fragments: we give every fragment the ports of its first fragment
    // (src/decode/defrag.rs); tshark dissects TCP/UDP only once a datagram
    // is reassembled.
    (
        "ip/zeek__ipv4-fragmented-3.pcap",
        "incomplete fragment series (all 5 fragments have MF set): tshark never reassembles it, we count its first fragment's TCP ports",
    ),
    (
        "malformed/ndpi__quic-fuzz-overflow.pcapng",
        "lone first fragment (MF set) of a UDP datagram: tshark never reassembles it, we count its UDP ports",
    ),
    // Snaplen: tshark dissects the TCP header but leaves it out of its
    // conversation table.
    (
        "malformed/tcpdump__heapoverflow-tcp_print.pcap",
        "one frame with 64 of 262144 bytes captured: tshark dissects TCP 48.48.48.48:12336 but lists no conversation",
    ),
    (
        "malformed/tcpdump__tcp-auth-heapoverflow.pcap",
        "one frame with 64 of 262144 bytes captured: tshark dissects TCP 48.48.48.48:12336 but lists no conversation",
    ),
];

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.join("EXPECTED.tsv").is_file().then_some(dir)
}

fn col<'a>(row: &'a HashMap<String, String>, name: &str) -> &'a str {
    row.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("column {name} missing in {row:?}"))
}

/// One side of a flow.
type Endpoint = (IpAddr, u16);

/// An unordered pair of endpoints.
fn pair(a: Endpoint, b: Endpoint) -> (Endpoint, Endpoint) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

#[derive(Debug)]
struct Flow {
    proto: String,
    ends: (Endpoint, Endpoint),
    community_id: String,
}

#[derive(Debug)]
struct Run {
    file: String,
    /// None when the run was killed after [`TIMEOUT`].
    exit: Option<i32>,
    stderr: String,
    flows: Vec<Flow>,
    /// Lines of stdout that are not JSON objects with an `event_type`.
    bad_lines: Vec<String>,
}

fn endpoint(ev: &Value, ip: &str, port: &str) -> Option<Endpoint> {
    let ip = ev.get(ip)?.as_str()?.parse().ok()?;
    let port = u16::try_from(ev.get(port)?.as_u64()?).ok()?;
    Some((ip, port))
}

fn parse_flows(stdout: &str) -> (Vec<Flow>, Vec<String>) {
    let mut flows = Vec::new();
    let mut bad = Vec::new();
    for line in stdout.lines().filter(|l| !l.is_empty()) {
        let ev: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => {
                bad.push(line.to_string());
                continue;
            }
        };
        match ev.get("event_type").and_then(Value::as_str) {
            Some("flow") => {}
            Some(_) => continue,
            None => {
                bad.push(line.to_string());
                continue;
            }
        }
        let proto = ev.get("proto").and_then(Value::as_str).unwrap_or_default();
        if proto != "TCP" && proto != "UDP" {
            bad.push(line.to_string());
            continue;
        }
        match (
            endpoint(&ev, "src_ip", "src_port"),
            endpoint(&ev, "dest_ip", "dest_port"),
        ) {
            (Some(a), Some(b)) => flows.push(Flow {
                proto: proto.to_string(),
                ends: pair(a, b),
                community_id: ev
                    .get("community_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }),
            _ => bad.push(line.to_string()),
        }
    }
    (flows, bad)
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        // A read error leaves what was read so far; the checks then fail on it.
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Runs `analyze --json --flows -q FILE` in the corpus directory, killing it
/// after [`TIMEOUT`].
fn run(dir: &Path, file: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(["analyze", "--json", "--flows", "-q", file])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("portmatrix starts");
    let out = drain(child.stdout.take().expect("stdout is piped"));
    let err = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + TIMEOUT;
    let exit = loop {
        match child.try_wait().expect("wait for portmatrix") {
            Some(status) => break Some(status.code().unwrap_or(-1)),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    };
    let stdout = String::from_utf8_lossy(&out.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    let (flows, bad_lines) = parse_flows(&stdout);
    Run {
        file: file.to_string(),
        exit,
        stderr,
        flows,
        bad_lines,
    }
}

struct Corpus {
    dir: PathBuf,
    expected: Vec<HashMap<String, String>>,
    runs: HashMap<String, Run>,
}

/// The corpus, every file of EXPECTED.tsv run once; None without a corpus.
fn corpus() -> Option<&'static Corpus> {
    static CORPUS: OnceLock<Option<Corpus>> = OnceLock::new();
    CORPUS
        .get_or_init(|| {
            let dir = corpus_dir()?;
            let expected = read_tsv(&dir.join("EXPECTED.tsv"));
            let files: Vec<&str> = expected.iter().map(|r| col(r, "file")).collect();
            let chunk = files.len().div_ceil(PARALLEL).max(1);
            let runs = thread::scope(|s| {
                let handles: Vec<_> = files
                    .chunks(chunk)
                    .map(|c| s.spawn(|| c.iter().map(|f| run(&dir, f)).collect::<Vec<_>>()))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("runner thread"))
                    .map(|r| (r.file.clone(), r))
                    .collect()
            });
            Some(Corpus {
                dir,
                expected,
                runs,
            })
        })
        .as_ref()
}

fn corpus_or_notice(test: &str) -> Option<&'static Corpus> {
    let c = corpus();
    if c.is_none() {
        eprintln!("{test}: ../shared/corpus is absent; skipping");
    }
    c
}

fn well_formed(row: &HashMap<String, String>) -> bool {
    col(row, "tshark_read_error") == "no"
}

fn reason<'a>(table: &'a [(&str, &str)], file: &str) -> Option<&'a str> {
    table.iter().find(|(f, _)| *f == file).map(|(_, r)| *r)
}

#[test]
fn exception_tables_name_listed_well_formed_files() {
    let Some(c) = corpus_or_notice("exception_tables_name_listed_well_formed_files") else {
        return;
    };
    let rows: HashMap<&str, &HashMap<String, String>> =
        c.expected.iter().map(|r| (col(r, "file"), r)).collect();
    let mut problems = Vec::new();
    let tunnels: Vec<(&str, &str)> = TUNNEL_UDP_PAIRS
        .iter()
        .map(|&(file, _)| (file, "tunnel"))
        .collect();
    for (name, table) in [
        ("EXIT_EXCEPTIONS", EXIT_EXCEPTIONS),
        ("FLOW_COUNT_EXCEPTIONS", FLOW_COUNT_EXCEPTIONS),
        ("TUNNEL_UDP_PAIRS", &tunnels[..]),
    ] {
        let mut seen = BTreeSet::new();
        for (file, why) in table {
            match rows.get(file) {
                None => problems.push(format!("{name}: {file} is not in EXPECTED.tsv")),
                Some(r) if !well_formed(r) => problems.push(format!(
                    "{name}: {file} has tshark_read_error = yes and needs no exception"
                )),
                Some(_) => {}
            }
            if why.trim().is_empty() {
                problems.push(format!("{name}: {file} has no reason"));
            }
            if !seen.insert(*file) {
                problems.push(format!("{name}: {file} is listed twice"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_file_finishes_without_panic() {
    let Some(c) = corpus_or_notice("every_file_finishes_without_panic") else {
        return;
    };
    let mut problems = Vec::new();
    let mut clean = 0;
    for row in &c.expected {
        let file = col(row, "file");
        let r = &c.runs[file];
        let name = Path::new(file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(file);
        let before = problems.len();
        match r.exit {
            None => problems.push(format!("{file}: killed after {TIMEOUT:?}")),
            Some(0) => {}
            Some(1) => {
                if !r.stderr.contains(name) {
                    problems.push(format!(
                        "{file}: exit 1 but stderr does not name the file: {}",
                        r.stderr.trim()
                    ));
                }
                if well_formed(row) && reason(EXIT_EXCEPTIONS, file).is_none() {
                    problems.push(format!(
                        "{file}: tshark reads it to the end but we exit 1: {}",
                        r.stderr.trim()
                    ));
                }
            }
            Some(code) => problems.push(format!("{file}: exit {code}: {}", r.stderr.trim())),
        }
        if r.stderr.contains("panicked") {
            problems.push(format!("{file}: panicked: {}", r.stderr.trim()));
        }
        if let Some(line) = r.bad_lines.first() {
            problems.push(format!(
                "{file}: {} unexpected stdout lines, first: {line}",
                r.bad_lines.len()
            ));
        }
        if problems.len() == before {
            clean += 1;
        }
    }
    eprintln!("{clean} of {} files ran cleanly", c.expected.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn distinct_pairs(run: &Run, proto: &str) -> usize {
    run.flows
        .iter()
        .filter(|f| f.proto == proto)
        .map(|f| f.ends)
        .collect::<BTreeSet<_>>()
        .len()
}

#[test]
fn flow_counts_match_tshark_endpoint_pairs() {
    let Some(c) = corpus_or_notice("flow_counts_match_tshark_endpoint_pairs") else {
        return;
    };
    let mut problems = Vec::new();
    let (mut matched, mut excepted) = (0, 0);
    for row in c.expected.iter().filter(|r| well_formed(r)) {
        let file = col(row, "file");
        if reason(FLOW_COUNT_EXCEPTIONS, file).is_some() {
            excepted += 1;
            continue;
        }
        let r = &c.runs[file];
        let want = |column: &str| -> usize {
            col(row, column)
                .parse()
                .unwrap_or_else(|e| panic!("{file}: {column}: {e}"))
        };
        let (tcp, udp) = (distinct_pairs(r, "TCP"), distinct_pairs(r, "UDP"));
        let tunnels = TUNNEL_UDP_PAIRS
            .iter()
            .find(|(f, _)| *f == file)
            .map_or(0, |&(_, n)| n);
        let (want_tcp, want_udp) = (
            want("tcp_endpoint_pairs"),
            want("udp_endpoint_pairs").saturating_sub(tunnels),
        );
        if (tcp, udp) == (want_tcp, want_udp) {
            matched += 1;
        } else {
            problems.push(format!(
                "{file}: TCP pairs {tcp} (tshark {want_tcp}), UDP pairs {udp} (tshark {want_udp}, tunnels not counted)"
            ));
        }
    }
    eprintln!("{matched} files match tshark's endpoint pairs, {excepted} excepted");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Flows of one corpus file by unordered endpoint pair and protocol.
fn flows_by_pair(
    c: &Corpus,
    file: &str,
) -> HashMap<(&'static str, (Endpoint, Endpoint)), Vec<String>> {
    let r = c
        .runs
        .get(file)
        .unwrap_or_else(|| panic!("{file} is not in EXPECTED.tsv"));
    assert_eq!(r.exit, Some(0), "{file}: {}", r.stderr);
    let mut m: HashMap<_, Vec<String>> = HashMap::new();
    for f in &r.flows {
        let proto = if f.proto == "TCP" { "TCP" } else { "UDP" };
        m.entry((proto, f.ends))
            .or_default()
            .push(f.community_id.clone());
    }
    m
}

fn proto_name(number: u64) -> Option<&'static str> {
    match number {
        6 => Some("TCP"),
        17 => Some("UDP"),
        _ => None,
    }
}

/// Checks one expected (proto, endpoints, community ID); returns a problem.
fn check_cid(
    flows: &HashMap<(&'static str, (Endpoint, Endpoint)), Vec<String>>,
    what: &str,
    proto: &'static str,
    a: Endpoint,
    b: Endpoint,
    want: &str,
) -> Option<String> {
    match flows.get(&(proto, pair(a, b))) {
        None => Some(format!("{what}: no {proto} flow {a:?} <-> {b:?}")),
        Some(ids) if !ids.iter().any(|id| id == want) => Some(format!(
            "{what}: {proto} {a:?} <-> {b:?}: community_id {ids:?}, expected {want}"
        )),
        Some(_) => None,
    }
}

#[test]
fn community_ids_match_tshark_and_spec() {
    let Some(c) = corpus_or_notice("community_ids_match_tshark_and_spec") else {
        return;
    };
    let expected_dir = c.dir.join("community-id/expected");
    let mut problems = Vec::new();
    let mut checked = 0;
    for name in ["tcp", "udp", "ipv6", "combined"] {
        let file = format!("community-id/cidspec__{name}.pcap");
        let flows = flows_by_pair(c, &file);
        let tsv = expected_dir.join(format!("cidspec__{name}.pcap.tshark-communityid-seed0.tsv"));
        for row in read_tsv(&tsv) {
            let Some(proto) = col(&row, "proto").parse().ok().and_then(proto_name) else {
                continue;
            };
            let ep = |ip: &str, port: &str| -> Endpoint {
                let ip = col(&row, ip)
                    .parse()
                    .unwrap_or_else(|e| panic!("{}: {row:?}: {e}", tsv.display()));
                let port = col(&row, port)
                    .parse()
                    .unwrap_or_else(|e| panic!("{}: {row:?}: {e}", tsv.display()));
                (ip, port)
            };
            let (a, b) = (ep("src", "sport_or_icmptype"), ep("dst", "dport"));
            checked += 1;
            problems.extend(check_cid(
                &flows,
                &format!("{file} (tshark)"),
                proto,
                a,
                b,
                col(&row, "community_id"),
            ));
        }
    }

    let file = "community-id/cidspec__combined.pcap";
    let flows = flows_by_pair(c, file);
    let json = expected_dir.join("cidspec__combined.pcap.baseline_deflt.json");
    let text = fs::read_to_string(&json).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    let baseline: Vec<Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    for entry in &baseline {
        let Some(proto) = entry
            .get("proto")
            .and_then(Value::as_u64)
            .and_then(proto_name)
        else {
            continue;
        };
        let (Some(a), Some(b), Some(want)) = (
            endpoint(entry, "saddr", "sport"),
            endpoint(entry, "daddr", "dport"),
            entry.get("communityid").and_then(Value::as_str),
        ) else {
            panic!("{}: unreadable entry {entry}", json.display());
        };
        checked += 1;
        problems.extend(check_cid(
            &flows,
            &format!("{file} (spec baseline)"),
            proto,
            a,
            b,
            want,
        ));
    }
    eprintln!("{checked} expected TCP/UDP community IDs checked");
    assert!(checked > 0, "no TCP/UDP community IDs found to check");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

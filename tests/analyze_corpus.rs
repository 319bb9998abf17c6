//! `portmatrix analyze --json --flows -q` over the shared capture corpus
//! (`../shared/corpus`, read-only), compared with tshark's view of each file
//! (EXPECTED.tsv) and with published Community IDs (`community-id/expected/`).
//!
//! 1. Every file of the corpus (the captures of EXPECTED.tsv, and the notes,
//!    tables and expected outputs beside them, which are not captures)
//!    finishes within a timeout, never panics or dies of a signal, and exits
//!    0 or 1; files tshark reads to the end must exit 0 unless listed in
//!    [`EXIT_EXCEPTIONS`]. Exit 1 comes with an error on stderr naming the file
//!    and a byte offset, and the stats event still closes the output with
//!    everything read before the damage (the file's packets, its error, and a
//!    flow event for every flow counted).
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
use common::{read_tsv, run_bounded};

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

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
    /// None when the run was killed after [`TIMEOUT`] or died of a signal.
    exit: Option<i32>,
    signal: Option<i32>,
    stderr: String,
    flows: Vec<Flow>,
    /// The last line of stdout, when it is the stats event.
    stats: Option<Value>,
    /// Flow events written (of any protocol).
    flow_events: u64,
    /// Lines of stdout that are not JSON objects with an `event_type`.
    bad_lines: Vec<String>,
}

fn endpoint(ev: &Value, ip: &str, port: &str) -> Option<Endpoint> {
    let ip = ev.get(ip)?.as_str()?.parse().ok()?;
    let port = u16::try_from(ev.get(port)?.as_u64()?).ok()?;
    Some((ip, port))
}

/// What stdout held: flows, the final stats event, lines that are not events.
struct Parsed {
    flows: Vec<Flow>,
    stats: Option<Value>,
    flow_events: u64,
    bad: Vec<String>,
}

fn parse_events(stdout: &str) -> Parsed {
    let mut p = Parsed {
        flows: Vec::new(),
        stats: None,
        flow_events: 0,
        bad: Vec::new(),
    };
    for line in stdout.lines().filter(|l| !l.is_empty()) {
        let ev: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => {
                p.bad.push(line.to_string());
                continue;
            }
        };
        // Only the last line may be the stats event.
        p.stats = None;
        match ev.get("event_type").and_then(Value::as_str) {
            Some("flow") => p.flow_events += 1,
            Some("stats") => {
                p.stats = ev.get("stats").cloned();
                continue;
            }
            Some(_) => continue,
            None => {
                p.bad.push(line.to_string());
                continue;
            }
        }
        let proto = ev.get("proto").and_then(Value::as_str).unwrap_or_default();
        if proto != "TCP" && proto != "UDP" {
            p.bad.push(line.to_string());
            continue;
        }
        match (
            endpoint(&ev, "src_ip", "src_port"),
            endpoint(&ev, "dest_ip", "dest_port"),
        ) {
            (Some(a), Some(b)) => p.flows.push(Flow {
                proto: proto.to_string(),
                ends: pair(a, b),
                community_id: ev
                    .get("community_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }),
            _ => p.bad.push(line.to_string()),
        }
    }
    p
}

/// Runs `analyze --json --flows -q FILE` in the corpus directory, killing it
/// after [`TIMEOUT`].
fn run(dir: &Path, file: &str) -> Run {
    let done = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_portmatrix"))
            .args(["analyze", "--json", "--flows", "-q", file])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        TIMEOUT,
    );
    let parsed = parse_events(&done.stdout);
    Run {
        file: file.to_string(),
        exit: done.code,
        signal: done.signal.filter(|_| !done.timed_out),
        stderr: done.stderr,
        flows: parsed.flows,
        stats: parsed.stats,
        flow_events: parsed.flow_events,
        bad_lines: parsed.bad,
    }
}

struct Corpus {
    dir: PathBuf,
    expected: Vec<HashMap<String, String>>,
    runs: HashMap<String, Run>,
}

/// Every file under `dir`, as paths relative to it, sorted.
fn every_file(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                files.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    files
}

/// The corpus, every file in it run once (the captures of EXPECTED.tsv and
/// everything beside them); None without a corpus.
fn corpus() -> Option<&'static Corpus> {
    static CORPUS: OnceLock<Option<Corpus>> = OnceLock::new();
    CORPUS
        .get_or_init(|| {
            let dir = corpus_dir()?;
            let expected = read_tsv(&dir.join("EXPECTED.tsv"));
            let files = every_file(&dir);
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
    let rows: HashMap<&str, &HashMap<String, String>> =
        c.expected.iter().map(|r| (col(r, "file"), r)).collect();
    for row in &c.expected {
        assert!(c.runs.contains_key(col(row, "file")), "{row:?} not found");
    }
    let mut problems = Vec::new();
    let mut clean = 0;
    let mut files: Vec<&String> = c.runs.keys().collect();
    files.sort();
    for file in files {
        let r = &c.runs[file];
        let name = Path::new(file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(file);
        // Files beside the captures (notes, tables, expected outputs) are
        // not captures: they must be refused as such.
        let row = rows.get(file.as_str());
        let before = problems.len();
        match (r.exit, r.signal) {
            (None, Some(sig)) => problems.push(format!("{file}: killed by signal {sig}")),
            (None, None) => problems.push(format!("{file}: killed after {TIMEOUT:?}")),
            (Some(0), _) if row.is_none() => {
                problems.push(format!("{file}: not a capture, but exit 0"))
            }
            (Some(0), _) => {}
            (Some(1), _) => {
                if !r.stderr.contains(name) {
                    problems.push(format!(
                        "{file}: exit 1 but stderr does not name the file: {}",
                        r.stderr.trim()
                    ));
                }
                if row.is_some_and(|row| well_formed(row))
                    && reason(EXIT_EXCEPTIONS, file).is_none()
                {
                    problems.push(format!(
                        "{file}: tshark reads it to the end but we exit 1: {}",
                        r.stderr.trim()
                    ));
                }
            }
            (Some(code), _) => problems.push(format!("{file}: exit {code}: {}", r.stderr.trim())),
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
    eprintln!(
        "{clean} of {} files ran cleanly ({} captures)",
        c.runs.len(),
        c.expected.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The number after the first "offset " in `text`: "… at byte offset 2040: …" -> 2040.
fn offset_in(text: &str) -> Option<u64> {
    let at = text.find("offset ")? + "offset ".len();
    text.get(at..)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn damage_is_located_and_what_came_before_is_reported() {
    let Some(c) = corpus_or_notice("damage_is_located_and_what_came_before_is_reported") else {
        return;
    };
    let mut problems = Vec::new();
    let mut damaged = 0;
    let mut files: Vec<&String> = c.runs.keys().collect();
    files.sort();
    for file in files {
        let r = &c.runs[file];
        // Other exits are every_file_finishes_without_panic's to report.
        if !matches!(r.exit, Some(0 | 1)) {
            continue;
        }
        let Some(stats) = &r.stats else {
            problems.push(format!(
                "{file}: the last line of stdout is not a stats event"
            ));
            continue;
        };
        let input = &stats["files"][0];
        if stats["files"].as_array().map(Vec::len) != Some(1) || input["path"] != file.as_str() {
            problems.push(format!(
                "{file}: stats.files is not this one file: {}",
                stats["files"]
            ));
            continue;
        }
        // Nothing counted is missing from the events.
        if stats["flows"].as_u64() != Some(r.flow_events) {
            problems.push(format!(
                "{file}: stats count {} flows, {} flow events written",
                stats["flows"], r.flow_events
            ));
        }
        if stats["packets"] != input["packets"] {
            problems.push(format!(
                "{file}: stats.packets {} but the file gave {}",
                stats["packets"], input["packets"]
            ));
        }
        let error = input["error"].as_str();
        match (r.exit, error) {
            (Some(0), None) => {}
            (Some(0), Some(e)) => problems.push(format!("{file}: exit 0 with an error: {e}")),
            (_, None) => problems.push(format!("{file}: exit 1 without an error in stats.files")),
            (_, Some(e)) => {
                damaged += 1;
                let offset = offset_in(e);
                if offset.is_none() || offset_in(&r.stderr) != offset || !e.contains(file.as_str())
                {
                    problems.push(format!(
                        "{file}: the error must name the file and the byte offset, on stderr and in stats: {e} / {}",
                        r.stderr.trim()
                    ));
                }
                // What was read stops before the damage.
                let read = input["bytes_read"].as_u64().unwrap_or(u64::MAX);
                if offset.is_some_and(|o| read > o) {
                    problems.push(format!(
                        "{file}: {read} bytes read past the damage at {offset:?}"
                    ));
                }
            }
        }
    }
    eprintln!("{damaged} damaged or unusable files, each located");
    assert!(damaged > 0, "the corpus has damaged files");
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

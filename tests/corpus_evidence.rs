//! The listener evidence and the payload fingerprints on real captures
//! (`../shared/corpus`, read-only): every capture of MANIFEST.tsv is analysed
//! once, then
//!
//! 1. every UDP flow whose packets all went from the side called the server
//!    to the side called the client must be explained by the evidence that
//!    decided it (the server's replies were seen without the requests, one-way
//!    media the matrix documents, replies from a well-known port); before
//!    listener evidence, 280 such flows of the public corpus were flows turned
//!    round by a client's port or a multicast group;
//! 2. `app_protocol_seen` is compared with nDPI's expected results
//!    (`expected/**/*.ndpi.out`, flows matched by 5-tuple either way, fuzzed
//!    captures aside): precision and recall per label, with the floors of the
//!    guide's protocol-check section (docs/guide.md, Verdicts); and no flow nDPI calls STUN, DTLS, RTP
//!    or RTCP is a `protocol_mismatch`.
//!
//! If the corpus is absent every test prints a notice and passes.

mod common;
use common::{read_tsv, run_bounded};

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);
const PARALLEL: usize = 4;

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.join("MANIFEST.tsv").is_file().then_some(dir)
}

/// A capture of the manifest and the flow events analysing it gave.
struct Analysed {
    file: String,
    category: String,
    flows: Vec<Value>,
}

/// Every capture of the manifest, analysed once; None without a corpus.
fn corpus() -> Option<&'static (PathBuf, Vec<Analysed>)> {
    static CORPUS: OnceLock<Option<(PathBuf, Vec<Analysed>)>> = OnceLock::new();
    CORPUS
        .get_or_init(|| {
            let dir = corpus_dir()?;
            let captures: Vec<(String, String)> = read_tsv(&dir.join("MANIFEST.tsv"))
                .into_iter()
                .filter(|row| row.get("kind").map(String::as_str) == Some("capture"))
                .filter_map(|row| Some((row.get("file")?.clone(), row.get("category")?.clone())))
                .collect();
            let chunk = captures.len().div_ceil(PARALLEL).max(1);
            let analysed = thread::scope(|s| {
                let handles: Vec<_> = captures
                    .chunks(chunk)
                    .map(|part| {
                        let dir = &dir;
                        s.spawn(move || {
                            part.iter()
                                .map(|(file, category)| Analysed {
                                    file: file.clone(),
                                    category: category.clone(),
                                    flows: flow_events(dir, file),
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("runner thread"))
                    .collect()
            });
            Some((dir, analysed))
        })
        .as_ref()
}

fn flow_events(dir: &Path, file: &str) -> Vec<Value> {
    let done = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_portmatrix"))
            .args(["analyze", "--json", "--flows", "-q", file])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        TIMEOUT,
    );
    assert!(
        !done.timed_out && done.signal.is_none(),
        "{file}: {}",
        done.describe()
    );
    done.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event_type"] == "flow")
        .collect()
}

fn corpus_or_notice(test: &str) -> Option<&'static (PathBuf, Vec<Analysed>)> {
    let c = corpus();
    if c.is_none() {
        eprintln!("{test}: ../shared/corpus is absent; skipping");
    }
    c
}

fn num(e: &Value, field: &str) -> u64 {
    e[field].as_u64().unwrap_or_default()
}

/// Why a flow whose every packet went from server to client has the right
/// listener; None when nothing explains it.
fn explained(f: &Value) -> Option<&'static str> {
    let app = f["app_protocol_seen"].as_str().unwrap_or_default();
    match f["direction"].as_str().unwrap_or_default() {
        "payload" => Some("the server's replies, without the requests"),
        "matrix" if matches!(app, "rtp" | "unknown" | "stun_dtls") => {
            Some("one-way media: the reading the matrix documents")
        }
        "heuristic" | "matrix" if num(f, "dest_port") < 1024 && num(f, "src_port") >= 1024 => {
            Some("replies from a well-known port")
        }
        _ => None,
    }
}

#[test]
fn udp_flows_seen_only_from_the_server_are_explained() {
    let Some((_, analysed)) = corpus_or_notice("udp_flows_seen_only_from_the_server_are_explained")
    else {
        return;
    };
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for a in analysed {
        for f in &a.flows {
            let reversed =
                f["proto"] == "UDP" && num(f, "pkts_toserver") == 0 && num(f, "pkts_toclient") > 0;
            if !reversed {
                continue;
            }
            match explained(f) {
                Some(why) => *reasons.entry(why).or_default() += 1,
                None => unexplained.push(format!(
                    "{}: {}:{} -> {}:{} {} {} {}",
                    a.file,
                    f["src_ip"],
                    f["src_port"],
                    f["dest_ip"],
                    f["dest_port"],
                    f["verdict"],
                    f["direction"],
                    f["app_protocol_seen"]
                )),
            }
        }
    }
    eprintln!("UDP flows seen only from the server, by reason: {reasons:?}");
    assert!(
        unexplained.is_empty(),
        "turned round without evidence:\n{}",
        unexplained.join("\n")
    );
}

/// Our labels that nDPI's protocol name (its master protocol, before any
/// `.`) agrees with; the first is the one it stands for. STARTTLS flows
/// start in the clear, so nDPI's IMAPS/POPS/SMTPS accept the plain label.
fn accepted(ndpi: &str) -> Option<&'static [&'static str]> {
    Some(match ndpi {
        "HTTP" | "HTTP_Proxy" => &["http"],
        "HTTP2" => &["http", "tls"],
        "TLS" => &["tls"],
        "IMAPS" => &["tls", "imap"],
        "POPS" => &["tls", "pop3"],
        "SMTPS" => &["tls", "smtp"],
        "SIP" => &["sip"],
        "RTP" | "RTCP" => &["rtp"],
        "STUN" | "DTLS" => &["stun_dtls", "rtp"],
        "DNS" => &["dns"],
        "NetBIOS" => &["netbios", "smb"],
        "SMBv1" | "SMBv23" => &["smb"],
        "NTP" => &["ntp"],
        "QUIC" => &["quic"],
        "RTSP" => &["rtsp"],
        "MsSQL-TDS" => &["tds"],
        "MySQL" => &["mysql"],
        "IAX" => &["iax2"],
        "LDAP" => &["ldap"],
        "RDP" => &["rdp"],
        "SSH" => &["ssh"],
        "SMTP" => &["smtp"],
        "POP3" => &["pop3"],
        "IMAP" => &["imap"],
        "FTP_CONTROL" => &["ftp"],
        "SNMP" => &["snmp"],
        "Syslog" => &["syslog"],
        "XMPP" | "Jabber" => &["xmpp"],
        _ => return None,
    })
}

/// A flow's transport and its two ends, in order: the same key either way round.
type FlowKey = (String, [(IpAddr, u16); 2]);

/// `[2001:db8::1]:443` or `10.0.0.1:443`.
fn endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = s.rsplit_once(':')?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Some((ip.parse().ok()?, port.parse().ok()?))
}

/// The flows of an ndpiReader output, with nDPI's protocol name.
fn ndpi_flows(path: &Path) -> Vec<(FlowKey, String)> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.next()?.parse::<u32>().ok()?;
            let proto = words.next()?;
            let a = endpoint(words.next()?)?;
            words.next().filter(|w| *w == "<->" || *w == "->")?;
            let b = endpoint(words.next()?)?;
            let name = line.split("[proto: ").nth(1)?.split(']').next()?;
            let name = name.split_once('/')?.1;
            let mut ends = [a, b];
            ends.sort();
            Some(((proto.to_string(), ends), name.to_string()))
        })
        .filter(|((proto, _), _)| proto == "TCP" || proto == "UDP")
        .collect()
}

/// Per label: (flows we gave it that nDPI named, of which nDPI agrees;
/// flows nDPI named for it, of which we agree).
#[derive(Default, Debug)]
struct Score {
    ours: usize,
    ours_agreed: usize,
    theirs: usize,
    theirs_found: usize,
}

#[test]
fn payload_fingerprints_agree_with_ndpi() {
    let Some((dir, analysed)) = corpus_or_notice("payload_fingerprints_agree_with_ndpi") else {
        return;
    };
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    let mut disagreements = Vec::new();
    let mut false_alarms = Vec::new();
    let mut matched = 0;
    for a in analysed.iter().filter(|a| a.category != "malformed") {
        let expected = dir.join("expected").join(format!("{}.ndpi.out", a.file));
        if !expected.is_file() {
            continue;
        }
        let mut ours: HashMap<FlowKey, (&str, &str)> = HashMap::new();
        for f in &a.flows {
            let ends = [("src_ip", "src_port"), ("dest_ip", "dest_port")].map(|(ip, port)| {
                let ip: IpAddr = f[ip]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .expect("an address");
                (ip, num(f, port) as u16)
            });
            let mut ends = ends;
            ends.sort();
            let label = f["app_protocol_seen"].as_str().unwrap_or("unknown");
            let verdict = f["verdict"].as_str().unwrap_or_default();
            ours.insert(
                (f["proto"].as_str().unwrap_or_default().to_string(), ends),
                (label, verdict),
            );
        }
        for (key, name) in ndpi_flows(&expected) {
            let ends = key.1;
            let Some(&(label, verdict)) = ours.get(&key) else {
                continue;
            };
            matched += 1;
            let master = name.split('.').next().unwrap_or_default();
            // Media and what sets it up are never a protocol mismatch.
            if matches!(master, "STUN" | "DTLS" | "RTP" | "RTCP") && verdict == "protocol_mismatch"
            {
                false_alarms.push(format!("{}: {ends:?} nDPI {name}", a.file));
            }
            let named = !matches!(label, "unknown" | "text");
            if master == "Unknown" {
                continue; // nDPI says nothing: no ground truth either way.
            }
            let accepts = accepted(master);
            if named {
                let s = scores.entry(label.to_string()).or_default();
                s.ours += 1;
                if accepts.is_some_and(|l| l.contains(&label)) {
                    s.ours_agreed += 1;
                } else {
                    disagreements.push(format!("{}: {ends:?} we say {label}, nDPI {name}", a.file));
                }
            }
            if let Some(&[primary, ..]) = accepts {
                let s = scores.entry(primary.to_string()).or_default();
                s.theirs += 1;
                if accepts.is_some_and(|l| l.contains(&label)) {
                    s.theirs_found += 1;
                } else {
                    disagreements.push(format!("{}: {ends:?} nDPI {name}, we say {label}", a.file));
                }
            }
        }
    }
    eprintln!("{matched} flows matched nDPI's");
    for (label, s) in &scores {
        eprintln!(
            "  {label:10} precision {}/{}  recall {}/{}",
            s.ours_agreed, s.ours, s.theirs_found, s.theirs
        );
    }
    for d in &disagreements {
        eprintln!("  {d}");
    }
    assert!(
        false_alarms.is_empty(),
        "protocol_mismatch on media:\n{}",
        false_alarms.join("\n")
    );
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    for (label, s) in &scores {
        let precision = ratio(s.ours_agreed, s.ours);
        let recall = ratio(s.theirs_found, s.theirs);
        let (min_precision, min_recall) = match label.as_str() {
            "rtp" => (0.95, 0.85),
            "http" | "xmpp" | "stun_dtls" => (0.98, 0.95),
            _ => (0.98, 0.0),
        };
        assert!(
            precision >= min_precision,
            "{label}: precision {precision:.2} below {min_precision}: {s:?}"
        );
        assert!(
            recall >= min_recall,
            "{label}: recall {recall:.2} below {min_recall}: {s:?}"
        );
    }
}

//! What each fuzz target checks, in one place: the targets in `fuzz_targets/`
//! call these functions, and the main crate's `tests/fuzz_regressions.rs`
//! includes this file to replay the inputs that once broke a promise
//! (`tests/regressions/<target>/`). Each function panics when portmatrix
//! misbehaves on its input; returning means the input was handled.
//!
//! Besides "no panic, no hang, no unbounded allocation" (libFuzzer watches
//! those), the checks hold portmatrix to what its documentation says: decoding
//! is pure, errors name the input and an offset inside it, limits hold.

use std::sync::{Arc, OnceLock};

use portmatrix::capture::{CaptureError, CaptureFile, Chunk};
use portmatrix::classify::{Classifier, FlowQuery};
use portmatrix::config_file::{ConfigError, Problem, MAX_ERRORS};
use portmatrix::decode::{decode, decode_frame, Decoded, Defragmenter, MAX_ENCAP_DEPTH};
use portmatrix::matrix::{parse_rules, PortMatrix, Product, MAX_RANGES_PER_RULE, MAX_RULES};
use portmatrix::report::{render, ModelBuilder, Page};
use portmatrix::site::{parse_site, DeviationQuery, ExceptionMatch, MAX_EXCEPTIONS};
use portmatrix::timestamp::Timestamp;
use portmatrix::transport::Transport;
use portmatrix::verdict::Verdict;

/// `decode` target. Layout: a link type (2 bytes, big-endian), then frames,
/// each after its length (2 bytes, big-endian; the last frame takes whatever
/// is left). Several frames per input let fragments meet their first
/// fragment in the `Defragmenter`, whose tiny table also exercises eviction.
pub fn decode_frames(data: &[u8]) {
    let Some((&[hi, lo], mut rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let link_type = u16::from_be_bytes([hi, lo]);
    let mut defrag = Defragmenter::with_capacity(4);
    while !rest.is_empty() {
        let frame;
        (frame, rest) = match rest.split_first_chunk::<2>() {
            Some((&len, tail)) => {
                tail.split_at(usize::from(u16::from_be_bytes(len)).min(tail.len()))
            }
            None => (rest, &[][..]),
        };
        let (decoded, encap) = decode_frame(link_type, frame);
        assert_eq!(decode(link_type, frame), decoded, "decode is pure");
        assert!(encap.layers().len() <= MAX_ENCAP_DEPTH);
        match decoded {
            Decoded::Packet(m) => {
                assert_eq!(m.encap, encap);
                // An IP packet holds at most 64 KiB (IPv6 jumbograms aside).
                assert!(m.payload_len < 1 << 20, "{m:?}");
            }
            Decoded::Fragment(f) => {
                assert_eq!(f.encap, encap);
                assert!(f.payload_len <= f.ip_len, "{f:?}");
            }
            Decoded::Other(o) => assert!(!o.to_string().is_empty()),
            Decoded::Malformed(e) => assert!(!e.as_str().is_empty()),
        }
        let resolved = defrag.resolve(decoded);
        assert!(
            !matches!(resolved, Decoded::Fragment(_)),
            "the defragmenter resolves every fragment"
        );
        assert!(defrag.len() <= defrag.capacity());
    }
}

/// The name the in-memory capture goes by in errors.
const CAPTURE_NAME: &str = "fuzz.pcap";

/// `capture` target: the bytes as a capture file, read to the end or the
/// first error. Packets come in file order, lie inside the file, and an
/// error names the file and an offset inside it; afterwards the reader
/// stays finished. Read again in chunks (as `analyze` reads files), it gives
/// the same packets and the same error.
pub fn read_capture(data: &[u8]) {
    let total = data.len() as u64;
    let mut cap = match CaptureFile::from_bytes(CAPTURE_NAME, data.to_vec()) {
        Ok(cap) => cap,
        Err(e) => return check_capture_error(&e, total),
    };
    let mut packets: Vec<Packet> = Vec::new();
    let mut last_offset = None;
    let error = loop {
        match cap.next_packet() {
            Ok(Some(p)) => {
                assert!(last_offset.is_none_or(|o| p.offset > o), "offsets grow");
                last_offset = Some(p.offset);
                assert!(p.offset + p.data.len() as u64 <= total);
                assert!(!p.ts.to_string().is_empty());
                packets.push((p.ts, p.link_type, p.orig_len, p.data.to_vec()));
            }
            Ok(None) => break None,
            Err(e) => {
                check_capture_error(&e, total);
                break Some(e.to_string());
            }
        }
        assert!(cap.bytes_read() <= total);
    };
    assert!(matches!(cap.next_packet(), Ok(None)), "stays finished");
    let (chunked, chunk_error) = read_chunks(data);
    assert!(
        chunked == packets,
        "chunks give the packets one at a time gives"
    );
    assert_eq!(chunk_error, error, "chunks stop at the same error");
}

/// (time, link type, length on the wire, captured bytes) of a packet.
type Packet = (Timestamp, u16, u32, Vec<u8>);

/// The packets of a capture read with `next_chunk`, and the error that ended it.
fn read_chunks(data: &[u8]) -> (Vec<Packet>, Option<String>) {
    let Ok(mut cap) = CaptureFile::from_bytes(CAPTURE_NAME, data.to_vec()) else {
        unreachable!("the header was read once already");
    };
    let mut chunk = Chunk::new();
    let mut packets = Vec::new();
    loop {
        match cap.next_chunk(&mut chunk) {
            Ok(true) => {
                assert!(!chunk.is_empty(), "a chunk holds at least one packet");
                for (p, bytes) in chunk.iter() {
                    packets.push((p.ts, p.link_type, p.orig_len, bytes.to_vec()));
                }
            }
            Ok(false) => return (packets, None),
            Err(e) => return (packets, Some(e.to_string())),
        }
    }
}

fn check_capture_error(e: &CaptureError, total: u64) {
    assert_ne!(e.kind(), "io", "bytes in memory cannot fail to read: {e}");
    let message = e.to_string();
    assert!(message.contains(CAPTURE_NAME), "{message}");
    let offset = e.offset().unwrap_or(u64::MAX);
    assert!(
        offset <= total,
        "offset {offset} beyond {total} bytes: {message}"
    );
    assert!(message.contains("offset"), "{message}");
}

/// `rules` target: the bytes as a rules file (up to the first byte that is
/// not UTF-8, which the file reader refuses before parsing). Errors point
/// inside the text; a valid file respects the limits and compiles into a
/// classifier that answers for every port.
pub fn load_rules(data: &[u8]) {
    let text = utf8_prefix(data);
    let file = match parse_rules("fuzz.toml", text) {
        Ok(file) => file,
        Err(problems) => return check_problems(&problems, text),
    };
    assert!(file.rules.len() <= MAX_RULES);
    for rule in &file.rules {
        assert!(!rule.listen_ports.is_empty() && rule.listen_ports.len() <= MAX_RANGES_PER_RULE);
        assert!(rule.listen_ports.iter().all(|r| r.lo <= r.hi));
    }
    let Ok(matrix) = PortMatrix::from_files(vec![file]) else {
        return;
    };
    let classifier = Classifier::new(Arc::new(matrix), Product::Aacc);
    for transport in Transport::ALL {
        for port in [0, 1, 80, 443, 5060, 6000, 32599, 65535] {
            let ip = std::net::IpAddr::from([192, 0, 2, 1]);
            let c = classifier.classify(FlowQuery {
                transport,
                port,
                multicast: false,
                same_host: false,
                client: ip,
                server: ip,
                vlan: None,
            });
            assert_eq!(classifier.rule_ids(c.decision), c.rule_ids);
            for &i in c.rule_ids {
                assert!(classifier.matrix().rule(i).covers_port(port));
            }
        }
    }
}

/// The bytes up to the first that is not UTF-8: the file reader refuses a
/// file there, before parsing, so the parsers only ever see such text.
fn utf8_prefix(data: &[u8]) -> &str {
    match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// What every problem of a rules or site file must be: placed inside the
/// text, naming the file, and at most [`MAX_ERRORS`] of them plus one that
/// counts the rest.
fn check_problems(problems: &[Problem], text: &str) {
    let lines = text.split('\n').count();
    assert!(!problems.is_empty());
    assert!(
        problems.len() <= MAX_ERRORS + 1,
        "{} problems",
        problems.len()
    );
    for p in problems {
        assert!(p.line >= 1 && p.line <= lines, "{p}");
        assert!(p.column >= 1, "{p}");
        assert!(p.to_string().starts_with("fuzz.toml:"), "{p}");
    }
}

/// `site` target: the bytes as a site file. Problems point inside the text
/// and are capped; a valid site respects its limits, ties its exceptions'
/// rules to the built-in matrix or names the ones it lacks, gives every host
/// the same roles through the classifier as directly, and each exception
/// covers a flow made of what it names.
pub fn load_site(data: &[u8]) {
    let text = utf8_prefix(data);
    let mut site = match parse_site("fuzz.toml", text) {
        Ok(site) => site,
        Err(problems) => return check_problems(&problems, text),
    };
    assert!(site.exceptions.len() <= MAX_EXCEPTIONS);
    let matrix = builtin();
    let resolved = match site.resolve_rules(matrix) {
        Ok(()) => true,
        Err(ConfigError::Invalid { problems, .. }) => {
            check_problems(&problems, text);
            false
        }
        Err(e) => panic!("resolving rules reads nothing: {e}"),
    };
    let site = Arc::new(site);
    let classifier =
        Classifier::with_site(Arc::clone(matrix), Product::Aacc, Some(Arc::clone(&site)));
    let mut hosts: Vec<std::net::IpAddr> = vec![[192, 0, 2, 1].into(), [10, 10, 1, 10].into()];
    for e in &site.exceptions {
        hosts.extend(e.src.iter().chain(&e.dst).map(|n| n.addr));
    }
    for &ip in hosts.iter().take(64) {
        for vlan in [None, Some(1), Some(120)] {
            let direct = site.roles_of(ip, vlan);
            let c = classifier.classify(FlowQuery {
                transport: Transport::Tcp,
                port: 443,
                multicast: false,
                same_host: false,
                client: ip,
                server: ip,
                vlan,
            });
            if let Some((client, server)) = classifier.roles_of(c.decision) {
                assert_eq!(client, direct, "{ip} {vlan:?}");
                assert_eq!(server, direct, "{ip} {vlan:?}");
            }
        }
    }
    if !resolved {
        return;
    }
    for e in &site.exceptions {
        let rules: Vec<u16> = e
            .rule
            .iter()
            .filter_map(|id| matrix.rules().iter().position(|r| &r.id == id))
            .filter_map(|i| u16::try_from(i).ok())
            .collect();
        let q = DeviationQuery {
            transport: e.proto.unwrap_or(Transport::Tcp),
            client: e.src.first().map_or([192, 0, 2, 1].into(), |n| n.addr),
            server: e.dst.first().map_or([192, 0, 2, 2].into(), |n| n.addr),
            port: e.ports.first().map_or(443, |r| r.lo),
            verdict: e.verdict.unwrap_or(Verdict::Undocumented),
            start: Timestamp::from_nanos(0),
            has_rule: &|i| rules.contains(&i),
        };
        assert_ne!(
            site.exception_for(&q),
            ExceptionMatch::None,
            "exception {} does not cover what it names",
            e.id
        );
    }
}

/// The built-in matrix, loaded once for the `site` and `events` targets.
fn builtin() -> &'static Arc<PortMatrix> {
    static MATRIX: OnceLock<Arc<PortMatrix>> = OnceLock::new();
    MATRIX.get_or_init(|| Arc::new(PortMatrix::builtin().unwrap_or_else(|e| panic!("{e}"))))
}

/// Occurrences of `<script` in `html`.
fn scripts(html: &str) -> usize {
    html.matches("<script").count()
}

/// The report page of `data` read as one events file.
fn report_of(data: &[u8]) -> String {
    let mut builder = ModelBuilder::new();
    let read = builder.read("fuzz.jsonl", data);
    assert!(
        read.is_ok(),
        "bytes in memory cannot fail to read: {read:?}"
    );
    let model = builder.finish();
    // Everything in the events is new against an empty baseline: the drift
    // section renders every host, port and flow they hold.
    let drift = portmatrix::report::drift::Drift::between(&Default::default(), &model);
    let page = Page {
        title: "fuzz",
        model: &model,
        matrix: builtin(),
        product: Product::Aacc,
        drift: Some(&drift),
    };
    render(&page).unwrap_or_else(|e| panic!("render: {e}"))
}

/// `events` target: any bytes as an events file for `portmatrix report`
/// (event files are untrusted input). The page renders, and no text from the
/// events opens a script: the page has exactly the script tags of an empty one.
pub fn report_events(data: &[u8]) {
    static EMPTY_PAGE_SCRIPTS: OnceLock<usize> = OnceLock::new();
    let want = *EMPTY_PAGE_SCRIPTS.get_or_init(|| scripts(&report_of(b"")));
    let html = report_of(data);
    assert_eq!(scripts(&html), want, "event text escaped into a script tag");
}

//! What an evidence capture is called and what its comments say, so that a
//! file opened in Wireshark, months later and far from the events, still
//! tells which flow it holds and why it was flagged.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::classify::Classifier;
use crate::flow::Flow;
use crate::verdict::Verdict;

use crate::output::community_id;

/// How flagged flows are grouped into files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractBy {
    /// One file per flow: the evidence of one finding, to hand over as is.
    Flow,
    /// One file per verdict: few files, every flow's first packet commented.
    Verdict,
}

/// The file holding `flow`'s packets, inside the evidence folder:
/// `<flow_id>-<verdict>-<proto>-<src>_<sport>-<dst>_<dport>.pcapng` (client
/// first; an IPv6 address's colons become dots), or `<verdict>.pcapng`.
/// Only ASCII letters, digits, `.`, `_` and `-`: safe in any file system and URL.
pub fn file_name(by: ExtractBy, flow: &Flow) -> String {
    match by {
        ExtractBy::Verdict => format!("{}.pcapng", flow.verdict.as_str()),
        ExtractBy::Flow => {
            let mut name = format!(
                "{}-{}-{}-",
                flow.id,
                flow.verdict.as_str(),
                flow.transport.as_str()
            );
            push_ip(&mut name, flow.client.ip);
            let _ = write!(name, "_{}-", flow.client.port);
            push_ip(&mut name, flow.server.ip);
            let _ = write!(name, "_{}.pcapng", flow.server.port);
            name
        }
    }
}

fn push_ip(name: &mut String, ip: IpAddr) {
    let text = ip.to_string();
    name.extend(text.chars().map(|c| if c == ':' { '.' } else { c }));
}

/// Why `flow` was flagged, for the section header of its own file and for
/// its first packet: verdict, severity, rules (with their document text),
/// flow id, Community ID and the endpoints.
pub fn flow_comment(flow: &Flow, classifier: &Classifier) -> String {
    let mut c = String::with_capacity(256);
    let _ = writeln!(
        c,
        "portmatrix: flow {} flagged {} (severity {})",
        flow.id,
        flow.verdict.as_str(),
        flow.severity.as_str()
    );
    let _ = writeln!(
        c,
        "{} {} port {} -> {} port {}, first packet {}",
        flow.transport.eve_name(),
        flow.client.ip,
        flow.client.port,
        flow.server.ip,
        flow.server.port,
        flow.start
    );
    let matrix = classifier.matrix();
    let rules = classifier.rule_ids(flow.decision);
    if rules.is_empty() {
        let _ = writeln!(c, "rules: none covers this port");
    }
    for &i in rules {
        let rule = matrix.rule(i);
        let _ = writeln!(c, "rule {}: {}", rule.id, rule.description);
    }
    let _ = writeln!(c, "flow_id: {}", flow.id);
    let _ = write!(
        c,
        "community_id: {}",
        community_id(0, flow.transport, flow.client, flow.server)
    );
    c
}

/// The section header comment of a per-verdict file.
pub fn verdict_comment(verdict: Verdict) -> String {
    format!(
        "portmatrix: flows flagged {}; the first packet of each flow carries its verdict, \
rules, flow id and Community ID",
        verdict.as_str()
    )
}

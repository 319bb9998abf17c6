//! `portmatrix site suggest`: a draft inventory from the servers seen in captures.
//!
//! A host that answers on a documented port (a TCP SYN-ACK, or a UDP datagram
//! back to the one that spoke to it) is listening there. Each rule covering
//! that port names the systems that listen on it; the system that explains
//! most of a host's ports is the guess: a host answering on 5060, 1972 and
//! 29373 is the AACC server. The draft carries its evidence as comments and
//! parses with `--site` as it is; people review it before use.
//!
//! The evidence is the flows of the pipeline `analyze` runs (the same
//! decoding, flow tracking and orientation, so the draft names the server
//! that `analyze` classifies, and a flow's first packet is the one its flow
//! event starts at), handed over as they end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::classify::{Classifier, FlowQuery, PortClaim};
use crate::decode::tcp_flags;
use crate::flow::Flow;
use crate::matrix::{RuleIdx, System, SYSTEMS};
use crate::timestamp::Timestamp;
use crate::transport::Transport;

/// A host's answers on one documented port.
#[derive(Debug, Clone, Copy)]
struct PortSeen {
    flows: u64,
    first: Timestamp,
}

/// What the captures show about who listens where.
pub struct Evidence {
    classifier: Arc<Classifier>,
    hosts: BTreeMap<IpAddr, BTreeMap<(Transport, u16), PortSeen>>,
    packets: u64,
    span: Option<(Timestamp, Timestamp)>,
}

impl Evidence {
    /// `classifier` (by port alone) says which ports are documented.
    pub fn new(classifier: Arc<Classifier>) -> Evidence {
        Evidence {
            classifier,
            hosts: BTreeMap::new(),
            packets: 0,
            span: None,
        }
    }

    /// The TCP/UDP packets the captures held (the run's stats count them).
    pub fn set_packets(&mut self, packets: u64) {
        self.packets = packets;
    }

    /// Look at one ended flow: its server answered (a SYN-ACK, or a UDP
    /// datagram back) on a documented port, or it did not.
    pub fn flow(&mut self, flow: &Flow) {
        let span = (flow.start, flow.last);
        self.span = Some(
            self.span
                .map_or(span, |(a, b)| (a.min(span.0), b.max(span.1))),
        );
        // Its first part was counted before it was evicted (--max-flows).
        if flow.resumed || flow.client.ip.is_multicast() || flow.server.ip.is_multicast() {
            return;
        }
        let answered = match flow.transport {
            Transport::Tcp => {
                let syn_ack = tcp_flags::SYN | tcp_flags::ACK;
                flow.flags_toclient() & syn_ack == syn_ack
            }
            Transport::Udp => flow.pkts_toserver > 0 && flow.pkts_toclient > 0,
        };
        if !answered {
            return;
        }
        let server = flow.server;
        let claim = self.classifier.port_claim(flow.transport, server.port);
        if !matches!(claim, PortClaim::Documented | PortClaim::WideRange) {
            return;
        }
        let seen = self
            .hosts
            .entry(server.ip)
            .or_default()
            .entry((flow.transport, server.port))
            .or_insert(PortSeen {
                flows: 0,
                first: flow.start,
            });
        seen.flows += 1;
        seen.first = seen.first.min(flow.start);
    }

    /// The draft site file, evidence as comments.
    pub fn render(&self, inputs: &[PathBuf]) -> String {
        let mut out = String::new();
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        let _ = writeln!(
            out,
            "# Draft site file from `portmatrix site suggest`. REVIEW IT before use with --site."
        );
        let _ = writeln!(out, "# Captures: {}", names.join(", "));
        if let Some((first, last)) = self.span {
            let _ = writeln!(
                out,
                "# {} TCP/UDP packets from {first} to {last}.",
                self.packets
            );
        }
        let _ = writeln!(
            out,
            "# Each host below answered (a TCP SYN-ACK, or a UDP reply) on ports the matrix\n\
# documents; it is given the system whose rules explain most of those ports\n\
# (each port is a point shared among the systems that listen on it; deprecated\n\
# and other-product rules weigh half). Clients are not listed: add agents and\n\
# other clients by subnet, e.g. agent_desktop = [\"10.0.20.0/24\"] under [systems].\n\
# A host running several systems (a single-server AACC) may list them all."
        );
        let _ = writeln!(out, "\nschema = 1");
        if self.hosts.is_empty() {
            let _ = writeln!(out, "\n# No host answered on a documented port.");
        }
        for (ip, ports) in &self.hosts {
            let scores = self.scores(ports);
            let _ = writeln!(out);
            match scores.first() {
                Some(&(best, score)) => {
                    let others: Vec<String> = scores
                        .iter()
                        .skip(1)
                        .take(3)
                        .map(|(s, n)| format!("{s} {n:.1}"))
                        .collect();
                    let _ = write!(out, "# {ip}: {best} (score {score:.1}");
                    if !others.is_empty() {
                        let _ = write!(out, "; next: {}", others.join(", "));
                    }
                    let _ = writeln!(out, ")");
                    let tied = tied_with(&scores);
                    if !tied.is_empty() {
                        let _ = writeln!(
                            out,
                            "#   a tie with {}: the ports cannot tell them apart, and {best} is\n\
#   named as the one an AACC site more often has. Check the host (it may run several).",
                            tied.join(", ")
                        );
                    }
                }
                None => {
                    let _ = writeln!(out, "# {ip}: no system's rules explain these ports");
                }
            }
            for (&(t, port), seen) in ports {
                let rules: Vec<&str> = self
                    .port_rules(t, port)
                    .iter()
                    .map(|&i| self.classifier.matrix().rule(i).id.as_str())
                    .collect();
                let _ = writeln!(
                    out,
                    "#   {:<10} {:>4} flow{} first {}  rules {}",
                    format!("{t}/{port}"),
                    seen.flows,
                    if seen.flows == 1 { " " } else { "s" },
                    seen.first,
                    rules.join(" ")
                );
            }
            if let Some(&(best, _)) = scores.first() {
                let _ = writeln!(out, "[[system]]\nname = \"{best}\"\naddresses = [\"{ip}\"]");
            }
        }
        out
    }

    /// The hosts whose best systems tie, for a warning on stderr: (host, the
    /// system the draft names, the others with the same score).
    pub fn ties(&self) -> Vec<(IpAddr, System, Vec<String>)> {
        self.hosts
            .iter()
            .filter_map(|(ip, ports)| {
                let scores = self.scores(ports);
                let tied = tied_with(&scores);
                let &(best, _) = scores.first()?;
                (!tied.is_empty()).then_some((*ip, best, tied))
            })
            .collect()
    }

    /// The rules that document `port` on `t` by port alone.
    fn port_rules(&self, t: Transport, port: u16) -> &[RuleIdx] {
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        self.classifier
            .classify(FlowQuery {
                transport: t,
                port,
                multicast: false,
                same_host: false,
                client: unspecified,
                server: unspecified,
                vlan: None,
            })
            .rule_ids
    }

    /// Systems by how well their rules explain the ports, best first;
    /// systems explaining nothing are left out. Each port is one point,
    /// shared among the systems its rules say listen there (deprecated and
    /// other-product rules weigh half), so a port many systems use says
    /// little and a port only one uses says much. Exact ties (5060 alone
    /// fits every SIP peer) go to the system an AACC site more often has
    /// ([`PREFERENCE`]).
    fn scores(&self, ports: &BTreeMap<(Transport, u16), PortSeen>) -> Vec<(System, f64)> {
        let matrix = self.classifier.matrix();
        let mut score = [0.0f64; SYSTEMS.len()];
        for &(t, port) in ports.keys() {
            let mut raw = [0.0f64; SYSTEMS.len()];
            for &i in self.port_rules(t, port) {
                let rule = matrix.rule(i);
                if rule.listener_systems.is_any() {
                    continue;
                }
                let weight =
                    if rule.deprecated || !rule.profile.applies_to(self.classifier.product()) {
                        0.5
                    } else {
                        1.0
                    };
                for s in rule.listener_systems.iter() {
                    raw[s.index()] = raw[s.index()].max(weight);
                }
            }
            let total: f64 = raw.iter().sum();
            if total > 0.0 {
                for (acc, r) in score.iter_mut().zip(raw) {
                    *acc += r / total;
                }
            }
        }
        let rank = |s: System| {
            PREFERENCE
                .iter()
                .position(|&n| n == s.as_str())
                .unwrap_or(PREFERENCE.len())
        };
        let mut ranked: Vec<(System, f64)> =
            System::all().zip(score).filter(|&(_, n)| n > 0.0).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(rank(a.0).cmp(&rank(b.0))));
        ranked
    }
}

/// The systems after the first whose score equals the first's (scores are
/// sums of the same few fractions, so equal ones agree to far better than
/// 1e-9): the ports alone cannot tell them from the one the draft names.
fn tied_with(scores: &[(System, f64)]) -> Vec<String> {
    let Some(&(_, best)) = scores.first() else {
        return Vec::new();
    };
    scores
        .iter()
        .skip(1)
        .take_while(|(_, n)| (best - n).abs() < 1e-9)
        .map(|(s, _)| s.to_string())
        .collect()
}

/// Which system a draft names when the ports cannot tell them apart: the
/// servers an AACC site usually has first, the peripheral ones after.
pub const PREFERENCE: [&str; 21] = [
    "session_manager",
    "aams",
    "ccma",
    "ccmm",
    "aacc_server",
    "cct",
    "communication_manager",
    "workspaces",
    "presence_server",
    "pom",
    "sntp_server",
    "snmp_manager",
    "ldap_server",
    "mail_server",
    "ip_office",
    "aes",
    "cs1k",
    "lync",
    "predictive_server",
    "agent_desktop",
    "web_browser",
];

//! Drift between two runs' events (`portmatrix diff BASE NEW`, and the
//! report's section with `--baseline`): new hosts, new listening ports, new
//! flows with their verdicts, and the flows and rules that disappeared,
//! ranked most severe first.
//!
//! A flow here is what the model counts: client, listener, transport,
//! listening port and verdict (the client's ephemeral port is left out, so
//! the next call of the same phone is not "new"). Both sides are read into a
//! [`Model`], whose bounds hold: past [`super::model::MAX_EDGES`] pairs the
//! quietest hosts are folded into "other hosts" and are compared as such.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use super::model::{EdgeKey, Model, Usage};
use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::{Severity, Verdict};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A client, listener, port and verdict the base never had.
    NewFlow,
    /// A listener's transport and port the base never saw used.
    NewPort,
    /// An address the base never saw, on either side.
    NewHost,
    /// A flow of the base that the new events do not have.
    GoneFlow,
    /// A rule the base's flows used and the new ones do not.
    GoneRule,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::NewFlow => "new_flow",
            ChangeKind::NewPort => "new_port",
            ChangeKind::NewHost => "new_host",
            ChangeKind::GoneFlow => "gone_flow",
            ChangeKind::GoneRule => "gone_rule",
        }
    }
}

/// One change, with the traffic behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// How much it matters: the verdict's default severity for new things
    /// (the worst of a new host's or port's flows); `low` for a documented
    /// flow or a rule that went away, `info` for a flagged flow that did.
    pub severity: Severity,
    /// The flows' verdict; for a host or a port the worst of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The verdicts the same client, listener and port had in the base.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub was: Vec<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<Transport>,
    /// The client; `None` with `other_hosts` when it was folded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    /// The listener (for a new host: the host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The flows behind the change (in the base, for what went away).
    pub flows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Timestamp>,
}

/// Both runs in a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub inputs: Vec<String>,
    pub flows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Timestamp>,
}

impl Side {
    fn of(m: &Model) -> Side {
        Side {
            inputs: m.inputs.iter().map(|i| i.name.clone()).collect(),
            flows: m.flows,
            first: m.span.map(|s| s.0),
            last: m.span.map(|s| s.1),
        }
    }
}

/// Every change, most severe first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub base: Side,
    pub new: Side,
    pub changes: Vec<Change>,
}

/// The worst of some verdicts (by default severity, then the verdict order).
fn worst(verdicts: impl IntoIterator<Item = Verdict>) -> Option<Verdict> {
    verdicts
        .into_iter()
        .max_by_key(|v| (v.default_severity(), std::cmp::Reverse(*v)))
}

/// (client, listener, transport, port): a flow without its verdict.
type Pair = (Option<IpAddr>, Option<IpAddr>, Transport, u16);

fn pair(k: &EdgeKey) -> Pair {
    (k.client, k.server, k.transport, k.port)
}

fn flow_change(kind: ChangeKind, k: &EdgeKey, u: &Usage, severity: Severity) -> Change {
    Change {
        kind,
        severity,
        verdict: Some(k.verdict),
        was: Vec::new(),
        proto: Some(k.transport),
        src_ip: k.client,
        dest_ip: k.server,
        dest_port: Some(k.port),
        rule_id: None,
        flows: u.flows,
        first: u.first,
        last: u.last,
    }
}

impl Drift {
    /// What changed from `base` to `new`.
    pub fn between(base: &Model, new: &Model) -> Drift {
        let mut changes = Vec::new();
        let base_pairs: BTreeMap<Pair, Vec<Verdict>> =
            base.edges.keys().fold(BTreeMap::new(), |mut m, k| {
                m.entry(pair(k)).or_insert_with(Vec::new).push(k.verdict);
                m
            });
        let new_pairs: BTreeSet<Pair> = new.edges.keys().map(pair).collect();
        let hosts = |m: &Model| -> BTreeSet<IpAddr> {
            m.edges
                .keys()
                .flat_map(|k| [k.client, k.server])
                .flatten()
                .collect()
        };
        let base_hosts = hosts(base);
        let base_ports: BTreeSet<(Option<IpAddr>, Transport, u16)> = base
            .edges
            .keys()
            .map(|k| (k.server, k.transport, k.port))
            .collect();
        let mut new_hosts: BTreeMap<IpAddr, (Usage, Vec<Verdict>)> = BTreeMap::new();
        let mut new_ports: BTreeMap<(IpAddr, Transport, u16), (Usage, Vec<Verdict>)> =
            BTreeMap::new();
        for (k, u) in &new.edges {
            if !base.edges.contains_key(k) {
                let mut c = flow_change(ChangeKind::NewFlow, k, u, k.verdict.default_severity());
                c.was = base_pairs.get(&pair(k)).cloned().unwrap_or_default();
                changes.push(c);
            }
            for host in [k.client, k.server].into_iter().flatten() {
                if !base_hosts.contains(&host) {
                    let e = new_hosts.entry(host).or_default();
                    e.0.merge(u);
                    e.1.push(k.verdict);
                }
            }
            if let Some(server) = k.server {
                if !base_ports.contains(&(k.server, k.transport, k.port)) {
                    let e = new_ports.entry((server, k.transport, k.port)).or_default();
                    e.0.merge(u);
                    e.1.push(k.verdict);
                }
            }
        }
        for ((server, transport, port), (u, verdicts)) in new_ports {
            let verdict = worst(verdicts);
            changes.push(Change {
                kind: ChangeKind::NewPort,
                severity: verdict.map_or(Severity::Info, Verdict::default_severity),
                verdict,
                was: Vec::new(),
                proto: Some(transport),
                src_ip: None,
                dest_ip: Some(server),
                dest_port: Some(port),
                rule_id: None,
                flows: u.flows,
                first: u.first,
                last: u.last,
            });
        }
        for (host, (u, verdicts)) in new_hosts {
            let verdict = worst(verdicts);
            changes.push(Change {
                kind: ChangeKind::NewHost,
                severity: verdict.map_or(Severity::Info, Verdict::default_severity),
                verdict,
                was: Vec::new(),
                proto: None,
                src_ip: None,
                dest_ip: Some(host),
                dest_port: None,
                rule_id: None,
                flows: u.flows,
                first: u.first,
                last: u.last,
            });
        }
        for (k, u) in &base.edges {
            // A flow whose verdict changed is its new flow's `was`.
            if !new.edges.contains_key(k) && !new_pairs.contains(&pair(k)) {
                let severity = if k.verdict == Verdict::Documented {
                    Severity::Low
                } else {
                    Severity::Info
                };
                changes.push(flow_change(ChangeKind::GoneFlow, k, u, severity));
            }
        }
        for (id, u) in &base.rules {
            if u.flows > 0 && new.rules.get(id).is_none_or(|n| n.flows == 0) {
                changes.push(Change {
                    kind: ChangeKind::GoneRule,
                    severity: Severity::Low,
                    verdict: None,
                    was: Vec::new(),
                    proto: None,
                    src_ip: None,
                    dest_ip: None,
                    dest_port: None,
                    rule_id: Some(id.clone()),
                    flows: u.flows,
                    first: u.first,
                    last: u.last,
                });
            }
        }
        changes.sort_by(|a, b| {
            (
                std::cmp::Reverse(a.severity),
                a.kind,
                std::cmp::Reverse(a.flows),
            )
                .cmp(&(
                    std::cmp::Reverse(b.severity),
                    b.kind,
                    std::cmp::Reverse(b.flows),
                ))
                .then_with(|| rank_key(a).cmp(&rank_key(b)))
        });
        Drift {
            base: Side::of(base),
            new: Side::of(new),
            changes,
        }
    }

    /// How many changes of each kind; new flows also per verdict.
    pub fn counts(&self) -> (BTreeMap<ChangeKind, u64>, BTreeMap<Verdict, u64>) {
        let mut kinds = BTreeMap::new();
        let mut verdicts = BTreeMap::new();
        for c in &self.changes {
            *kinds.entry(c.kind).or_default() += 1;
            if let (ChangeKind::NewFlow, Some(v)) = (c.kind, c.verdict) {
                *verdicts.entry(v).or_default() += 1;
            }
        }
        (kinds, verdicts)
    }

    /// `2 new hosts, 1 new listening port, 3 new flows (undocumented 2, …), …`.
    pub fn summary(&self) -> String {
        let (kinds, verdicts) = self.counts();
        let n = |k: ChangeKind| kinds.get(&k).copied().unwrap_or(0);
        let per: Vec<String> = verdicts.iter().map(|(v, n)| format!("{v} {n}")).collect();
        format!(
            "{} new hosts, {} new listening ports, {} new flows{}, {} flows gone, {} rules no longer used",
            n(ChangeKind::NewHost),
            n(ChangeKind::NewPort),
            n(ChangeKind::NewFlow),
            if per.is_empty() {
                String::new()
            } else {
                format!(" ({})", per.join(", "))
            },
            n(ChangeKind::GoneFlow),
            n(ChangeKind::GoneRule)
        )
    }
}

/// A total order among equally ranked changes, so output is stable.
fn rank_key(c: &Change) -> impl Ord + '_ {
    (
        c.dest_ip,
        c.dest_port,
        c.proto,
        c.src_ip,
        c.verdict,
        c.rule_id.as_deref(),
    )
}

/// A class of change that fails `diff --fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// `new-undocumented`, `new-role-mismatch`, … : a new flow with that verdict.
    NewVerdict(Verdict),
    /// `new-flow`: any new flow.
    NewFlow,
    NewPort,
    NewHost,
    GoneFlow,
    GoneRule,
}

impl FailOn {
    /// `new-undocumented`, `new_role_mismatch`, `new-host`, `gone-rule`…
    pub fn parse(s: &str) -> Result<FailOn, String> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        match norm.as_str() {
            "new_flow" => return Ok(FailOn::NewFlow),
            "new_port" => return Ok(FailOn::NewPort),
            "new_host" => return Ok(FailOn::NewHost),
            "gone_flow" => return Ok(FailOn::GoneFlow),
            "gone_rule" => return Ok(FailOn::GoneRule),
            _ => {}
        }
        if let Some(v) = norm.strip_prefix("new_").and_then(Verdict::parse) {
            return Ok(FailOn::NewVerdict(v));
        }
        let verdicts: Vec<String> = Verdict::ALL
            .iter()
            .map(|v| format!("new-{}", v.as_str().replace('_', "-")))
            .collect();
        Err(format!(
            "`{s}`: expected new-host, new-port, new-flow, gone-flow, gone-rule or a new verdict ({})",
            verdicts.join(", ")
        ))
    }

    pub fn matches(self, c: &Change) -> bool {
        match self {
            FailOn::NewVerdict(v) => c.kind == ChangeKind::NewFlow && c.verdict == Some(v),
            FailOn::NewFlow => c.kind == ChangeKind::NewFlow,
            FailOn::NewPort => c.kind == ChangeKind::NewPort,
            FailOn::NewHost => c.kind == ChangeKind::NewHost,
            FailOn::GoneFlow => c.kind == ChangeKind::GoneFlow,
            FailOn::GoneRule => c.kind == ChangeKind::GoneRule,
        }
    }
}

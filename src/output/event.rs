//! The events portmatrix writes: serde types, field names after Suricata's EVE.
//! This is the output contract of `analyze --json`; change it only by adding fields.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Serialize, Serializer};

use crate::classify::Classifier;
use crate::decode::Encap;
use crate::flow::{Direction, EndReason, Flow};
use crate::matrix::{RuleIdx, SystemSet};
use crate::site::ExceptionMatch;
use crate::timestamp::Timestamp;
use crate::verdict::Severity;
use crate::verdict::Verdict;

use super::community_id::community_id;
use super::kafka::KafkaStats;
use super::latency::LatencySummary;
use super::syslog::SyslogStats;

/// RFC 3339 UTC with microseconds, e.g. `2021-08-02T09:00:00.123456Z`.
fn rfc3339<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(ts)
}

/// The layers' names, outermost first: `["gre", "erspan2"]`.
fn encap_names<S: Serializer>(encap: &Encap, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(encap.layers().iter().map(|k| k.as_str()))
}

/// An `alert` or `flow` event.
#[derive(Debug, Serialize)]
pub struct FlowEventJson<'a> {
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: Timestamp,
    pub event_type: &'static str,
    pub flow_id: u64,
    pub community_id: String,
    pub proto: &'static str,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub verdict: Verdict,
    pub severity: Severity,
    pub rule_ids: Vec<&'a str>,
    pub direction: Direction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// The tunnels the flow was found in, outermost first; absent when none.
    /// Not Suricata's `tunnel`, which is an object about the outer packet:
    /// a different shape under the same name would mislead EVE readers.
    #[serde(
        skip_serializing_if = "Encap::is_empty",
        serialize_with = "encap_names"
    )]
    pub encap: Encap,
    /// The outermost VXLAN or Geneve VNI (the mirror session in cloud
    /// traffic mirroring), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// What the first payload bytes looked like (`http`, `tls`, `sip`, `rtp`,
    /// `unknown`…); absent when no payload was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol_seen: Option<&'static str>,
    /// With a site file: the client's systems, `["unknown"]` when the
    /// inventory does not list it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_roles: Option<Vec<&'static str>>,
    /// With a site file: the listening side's systems, or `["unknown"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_roles: Option<Vec<&'static str>>,
    /// `true` when a site exception accepts the flow: it was counted, not
    /// alerted. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<bool>,
    /// The id of the exception that accepted the flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowFields>,
    /// The pcapng file holding the flow's packets (`--extract`): the
    /// evidence folder as given joined with the file's name. Only on `flow`
    /// events, and only when the file holds at least the first packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<&'a str>,
}

/// What a `flow` event adds to an alert's fields.
#[derive(Debug, Serialize)]
pub struct FlowFields {
    #[serde(serialize_with = "rfc3339")]
    pub start: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    pub end: Timestamp,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_state: Option<&'static str>,
    pub reason: EndReason,
    /// Only one direction of this TCP connection was captured (see `Flow::one_sided`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub one_sided: bool,
    /// The flow came back after it was evicted (`--max-flows`): it kept the
    /// ends it had, and its alert, if any, was written the first time.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

impl<'a> FlowEventJson<'a> {
    /// The alert for a flow just classified: stamped with its first packet.
    /// `rules`: those the flow's events name (`Classifier::visit_rules`).
    pub fn alert(flow: &Flow, rules: &[RuleIdx], classifier: &'a Classifier) -> Self {
        Self::build(flow, rules, classifier, "alert", flow.start, None)
    }

    /// The record of a flow that ended: stamped with its last packet, and
    /// naming the site exception that accepted it, if one did.
    pub fn ended(
        flow: &Flow,
        reason: EndReason,
        rules: &[RuleIdx],
        classifier: &'a Classifier,
        evidence: Option<&'a str>,
    ) -> Self {
        let fields = FlowFields {
            start: flow.start,
            end: flow.last,
            pkts_toserver: flow.pkts_toserver,
            pkts_toclient: flow.pkts_toclient,
            bytes_toserver: flow.bytes_toserver,
            bytes_toclient: flow.bytes_toclient,
            tcp_state: flow.tcp_state.map(|s| s.as_str()),
            reason,
            one_sided: flow.one_sided(),
            resumed: flow.resumed,
        };
        let accepted_by = match flow.exception {
            ExceptionMatch::Suppressed(i) => classifier
                .site()
                .and_then(|s| s.exceptions.get(usize::from(i))),
            ExceptionMatch::Expired(_) | ExceptionMatch::None => None,
        };
        FlowEventJson {
            evidence,
            suppressed: accepted_by.map(|_| true),
            exception: accepted_by.map(|e| e.id.as_str()),
            ..Self::build(flow, rules, classifier, "flow", flow.last, Some(fields))
        }
    }

    fn build(
        flow: &Flow,
        rules: &[RuleIdx],
        classifier: &'a Classifier,
        event_type: &'static str,
        timestamp: Timestamp,
        fields: Option<FlowFields>,
    ) -> Self {
        let matrix = classifier.matrix();
        let roles = classifier.roles_of(flow.decision);
        FlowEventJson {
            timestamp,
            event_type,
            flow_id: flow.id,
            community_id: community_id(0, flow.transport, flow.client, flow.server),
            proto: flow.transport.eve_name(),
            src_ip: flow.client.ip,
            src_port: flow.client.port,
            dest_ip: flow.server.ip,
            dest_port: flow.server.port,
            verdict: flow.verdict,
            severity: flow.severity,
            rule_ids: rules.iter().map(|&i| matrix.rule(i).id.as_str()).collect(),
            direction: flow.direction,
            vlan: flow.vlan,
            encap: flow.encap,
            vni: flow.encap.vni(),
            app_protocol_seen: flow.app_seen.map(|a| a.as_str()),
            src_roles: roles.map(|(c, _)| role_names(c)),
            dest_roles: roles.map(|(_, s)| role_names(s)),
            suppressed: None,
            exception: None,
            flow: fields,
            evidence: None,
        }
    }
}

/// A host's systems as events name them: `["unknown"]` outside the inventory.
pub fn role_names(roles: SystemSet) -> Vec<&'static str> {
    if roles.is_empty() {
        vec!["unknown"]
    } else {
        roles.names()
    }
}

/// An `alert_summary` event: the alerts of one source folded by storm
/// control during one window of packet time. Every flow still has its `flow`
/// event with its verdict; only the alert lines are folded.
#[derive(Debug, Serialize)]
pub struct AlertSummaryJson {
    /// The window's start: the first folded alert's first packet.
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: Timestamp,
    pub event_type: &'static str,
    pub src_ip: IpAddr,
    /// The highest severity among the folded alerts.
    pub severity: Severity,
    /// Alerts folded in this window.
    pub count: u64,
    #[serde(serialize_with = "rfc3339")]
    pub window_start: Timestamp,
    /// `window_start` plus one minute: alerts from then on open a new window.
    #[serde(serialize_with = "rfc3339")]
    pub window_end: Timestamp,
    /// The last folded alert's first packet.
    #[serde(serialize_with = "rfc3339")]
    pub last_alert: Timestamp,
    pub verdicts: BTreeMap<&'static str, u64>,
    /// The most alerted destination ports, most first (ties: lower port).
    pub ports: Vec<PortCount>,
    /// The most alerted destination addresses, most first.
    pub targets: Vec<TargetCount>,
}

#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
pub struct PortCount {
    pub proto: &'static str,
    pub port: u16,
    pub count: u64,
}

#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
pub struct TargetCount {
    pub ip: IpAddr,
    pub count: u64,
}

/// The final `stats` event: everything counted, so a reader knows how
/// complete the analysis is.
#[derive(Debug, Serialize)]
pub struct StatsEventJson {
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: Timestamp,
    pub event_type: &'static str,
    pub stats: Stats,
}

#[derive(Debug, Default, Serialize, Clone)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_udp_packets: u64,
    pub flows: u64,
    pub flows_per_verdict: BTreeMap<&'static str, u64>,
    pub other_protocols: BTreeMap<String, u64>,
    pub decode_failures: BTreeMap<&'static str, u64>,
    /// Packets found inside each kind of tunnel (a packet counts once per
    /// kind it was in), whatever they turned out to be.
    pub encapsulated: BTreeMap<&'static str, u64>,
    pub evictions: u64,
    /// Flows that came back after they were evicted and kept their ends
    /// (`resumed` on their flow events); present once there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_flows: Option<u64>,
    pub timeouts: u64,
    /// TCP flows of which only one direction was captured: a SPAN that
    /// mirrors one direction only shows up here.
    pub one_sided_flows: u64,
    /// Flows open when the stats were taken (live mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_flows: Option<u64>,
    /// Packets dropped inside portmatrix, by reason (live mode: a full worker
    /// queue). Present whenever drops are possible, zeros included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_drops: Option<BTreeMap<&'static str, u64>>,
    /// Packets read but outside the focus (`--since`, `--until`, `--host`,
    /// `--port`, `--bpf` on files); present when a packet filter is active.
    /// They count in `packets` and `bytes` and nowhere else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtered: Option<u64>,
    /// Mirrored copies dropped by `--dedup` (present with it). They count in
    /// `packets` and `bytes` and nowhere else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<u64>,
    /// The filters of the run, when any was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<ActiveFilters>,
    /// What `--extract` wrote and what its caps cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract: Option<ExtractStats>,
    /// `analyze` stopped by a signal before the end of its input: the
    /// signal's name (`SIGTERM`, `SIGINT`). What was read is reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileStats>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceStats>,
    /// Live mode: time from a flagged flow's first packet to its alert's output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_latency: Option<LatencySummary>,
    /// Storm control: alerts folded into `alert_summary` events. Present
    /// once something was folded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_storms: Option<StormStats>,
    /// With a site file that lists exceptions: per exception id, the flagged
    /// flows it accepted (`flows`) and those it named after it had expired
    /// (`expired_flows`, alerted as usual).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<BTreeMap<String, SuppressedStats>>,
    /// `--syslog`: messages sent, dropped and reconnections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogStats>,
    /// `--kafka`: messages delivered, failed, dropped and still queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaStats>,
}

/// What storm control folded.
#[derive(Debug, Default, Serialize, Clone, PartialEq, Eq)]
pub struct StormStats {
    pub alerts_folded: u64,
    pub summaries: u64,
}

/// What one site exception did.
#[derive(Debug, Default, Serialize, Clone, PartialEq, Eq)]
pub struct SuppressedStats {
    pub flows: u64,
    pub expired_flows: u64,
    pub why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// What was captured on one live interface; the kernel's counters come from libpcap.
#[derive(Debug, Default, Serialize, Clone)]
pub struct InterfaceStats {
    pub name: String,
    /// Packets portmatrix read from the interface.
    pub packets: u64,
    /// Packets the kernel passed the filter and queued for portmatrix.
    pub kernel_received: u64,
    /// Packets the kernel dropped because its buffer was full.
    pub kernel_dropped: u64,
    /// Packets the interface or its driver dropped.
    pub interface_dropped: u64,
    /// Bytes read from the interface (metrics only: the stats event has the sum).
    #[serde(skip)]
    pub bytes: u64,
    /// Packets of this interface dropped at a full worker queue (metrics
    /// only: the stats event has the sum in `queue_drops`).
    #[serde(skip)]
    pub queue_dropped: u64,
    /// Why the capture stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What was read from one input file.
#[derive(Debug, Default, Serialize, Clone)]
pub struct FileStats {
    pub path: String,
    pub format: &'static str,
    pub packets: u64,
    pub bytes_read: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The filters a run applied, as the user gave them; relative times are
/// shown resolved (RFC 3339) once the capture's first packet is known.
#[derive(Debug, Default, Serialize, Clone, PartialEq, Eq)]
pub struct ActiveFilters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port: Vec<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf: Option<String>,
    /// Which flows were reported (`--verdict`); all were counted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verdict: Vec<&'static str>,
}

/// What `--extract` did: files, packets and bytes written (block headers
/// included), and what the caps left out.
#[derive(Debug, Default, Serialize, Clone, Copy, PartialEq, Eq)]
pub struct ExtractStats {
    pub files: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Packets of flagged flows not written: past `--extract-max-packets` in
    /// their flow, or after the total reached `--extract-max-mb`.
    pub capped_packets: u64,
    /// Flagged flows with at least one packet not written for those caps.
    pub capped_flows: u64,
    /// Packets that could not be written (the file system refused).
    pub errors: u64,
}

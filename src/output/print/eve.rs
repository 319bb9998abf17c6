//! Suricata's EVE JSON (`--format eve`): every event valid against
//! Suricata's own schema, so that tools built for Suricata (Elastic's and
//! Splunk's integrations, EveBox, SELKS) take portmatrix's events without a
//! mapping. The native `--json` events are EVE-like but carry their own
//! top-level fields, which EVE's schema refuses; here they move to where EVE
//! keeps a detector's facts: `alert.metadata` (arrays of strings, the
//! convention of Suricata's rule metadata) for alerts and alert summaries,
//! `metadata.flowvars` for flow events. docs/events.md, "EVE", is the
//! mapping; `signature_id` numbers are part of it and do not change.
//!
//! Built once per event from the event the other printers get; nothing here
//! runs per packet.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::Arc;

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use super::Printer;
use crate::classify::Classifier;
use crate::flow::EndReason;
use crate::matrix::Product;
use crate::output::event::{AlertSummaryJson, FlowEventJson, FlowFields, StatsEventJson};
use crate::timestamp::EveTime;
use crate::verdict::Verdict;

mod signature;
mod stats;

pub use signature::{eve_severity, rule_code, signature_id, SID_ALERT_SUMMARY};

/// Where the events come from, as EVE names it: `host` (the sensor's name),
/// `in_iface` (live, one interface), `pcap_filename` (offline, one file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sensor {
    pub host: String,
    /// Native JSON events carry `host` too (`--sensor-name`, `--kafka`).
    pub host_in_json: bool,
    pub in_iface: Option<String>,
    pub pcap_filename: Option<String>,
}

/// Writes each event as one EVE object and a newline.
pub struct Eve<W> {
    out: W,
    names: Names,
}

/// What the events name besides the event itself: the sensor and the rules.
struct Names {
    sensor: Arc<Sensor>,
    /// "AACC 7.1.2 matrix", the start of every signature.
    matrix: &'static str,
    /// Each rule's text, by id, for the alerts' metadata.
    rules: HashMap<String, String>,
}

impl<W: Write> Eve<W> {
    pub fn new(out: W, classifier: &Classifier, sensor: Arc<Sensor>) -> Eve<W> {
        let rules = classifier
            .matrix()
            .rules()
            .iter()
            .map(|r| (r.id.clone(), format!("{}: {}", r.id, r.description)))
            .collect();
        let matrix = match classifier.product() {
            Product::Aacc => "AACC 7.1.2 matrix",
            Product::Accs => "ACCS 7.1.2 matrix",
        };
        Eve {
            out,
            names: Names {
                sensor,
                matrix,
                rules,
            },
        }
    }
}

fn line(out: &mut impl Write, event: &Record<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.write_all(b"\n")
}

impl Names {
    /// The fields every event has.
    fn record<'s>(&'s self, timestamp: EveTime, event_type: &'static str) -> Record<'s> {
        Record {
            timestamp,
            flow_id: None,
            in_iface: self.sensor.in_iface.as_deref(),
            pcap_filename: self.sensor.pcap_filename.as_deref(),
            event_type,
            vlan: None,
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            proto: None,
            community_id: None,
            alert: None,
            app_proto: None,
            flow: None,
            metadata: None,
            stats: None,
            host: &self.sensor.host,
        }
    }

    /// The fields of an `alert` or `flow` event about one flow.
    fn flow_record<'s>(&'s self, e: &'s FlowEventJson<'_>) -> Record<'s> {
        Record {
            flow_id: Some(e.flow_id),
            vlan: e.vlan.map(|v| [v]),
            src_ip: Some(e.src_ip),
            src_port: Some(e.src_port),
            dest_ip: Some(e.dest_ip),
            dest_port: Some(e.dest_port),
            proto: Some(e.proto),
            community_id: Some(&e.community_id),
            app_proto: e.app_protocol_seen.map(app_proto),
            ..self.record(EveTime(e.timestamp), e.event_type)
        }
    }

    fn signature(&self, e: &FlowEventJson<'_>) -> String {
        let proto = match e.proto {
            "TCP" => "tcp",
            _ => "udp",
        };
        let mut s = format!("{}: {} {proto}/{}", self.matrix, e.verdict, e.dest_port);
        if let Some(first) = e.rule_ids.first() {
            s.push_str(" (");
            s.push_str(first);
            s.push(')');
        }
        s
    }
}

/// EVE's `app_proto`: Suricata writes `failed` when it could not tell.
fn app_proto(seen: &'static str) -> &'static str {
    match seen {
        "unknown" => "failed",
        named => named,
    }
}

/// One EVE event: the fields portmatrix writes, in Suricata's order.
#[derive(Serialize)]
struct Record<'a> {
    timestamp: EveTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_iface: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pcap_filename: Option<&'a str>,
    event_type: &'static str,
    /// EVE lists every tag, outermost first; portmatrix keeps the outermost.
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<[u16; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    community_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<Alert<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<EveFlow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<stats::EveStats>,
    host: &'a str,
}

#[derive(Serialize)]
struct Alert<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: String,
    category: &'static str,
    severity: u8,
    metadata: AlertMetadata<'a>,
}

/// portmatrix's facts about an alert, each an array of strings.
#[derive(Serialize)]
#[serde(untagged)]
enum AlertMetadata<'a> {
    Flow(FlowFacts<'a>),
    Summary(SummaryFacts<'a>),
}

/// What the native events say about a flow beyond EVE's own fields.
#[derive(Serialize)]
struct FlowFacts<'a> {
    verdict: [&'static str; 1],
    severity: [&'static str; 1],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    rule_ids: &'a [&'a str],
    /// The rules' text ("2.2.2#19: …"); alerts only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<&'a str>,
    direction: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    src_roles: Option<&'a [&'static str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_roles: Option<&'a [&'static str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encap: Option<EncapNames<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vni: Option<[String; 1]>,
}

impl<'a> FlowFacts<'a> {
    fn of(e: &'a FlowEventJson<'a>, rules: Vec<&'a str>) -> Self {
        FlowFacts {
            verdict: [e.verdict.as_str()],
            severity: [e.severity.as_str()],
            rule_ids: &e.rule_ids,
            rules,
            direction: [e.direction.as_str()],
            src_roles: e.src_roles.as_deref(),
            dest_roles: e.dest_roles.as_deref(),
            encap: (!e.encap.is_empty()).then_some(EncapNames(e)),
            vni: e.vni.map(|v| [v.to_string()]),
        }
    }
}

/// The tunnels' names, written straight from the flow's layers.
struct EncapNames<'a>(&'a FlowEventJson<'a>);

impl Serialize for EncapNames<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.encap.layers().iter().map(|k| k.as_str()))
    }
}

/// An alert summary's figures: `"undocumented=300"`, `"tcp/41=1"`, `"10.10.1.10=300"`.
#[derive(Serialize)]
struct SummaryFacts<'a> {
    count: [String; 1],
    severity: [&'static str; 1],
    window_start: [String; 1],
    window_end: [String; 1],
    last_alert: [String; 1],
    #[serde(serialize_with = "counts")]
    verdicts: &'a AlertSummaryJson,
    #[serde(serialize_with = "ports")]
    ports: &'a AlertSummaryJson,
    #[serde(serialize_with = "targets")]
    targets: &'a AlertSummaryJson,
}

fn counts<S: Serializer>(s: &&AlertSummaryJson, ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_seq(s.verdicts.iter().map(|(v, n)| format!("{v}={n}")))
}

fn ports<S: Serializer>(s: &&AlertSummaryJson, ser: S) -> Result<S::Ok, S::Error> {
    let mut seq = ser.serialize_seq(Some(s.ports.len()))?;
    for p in &s.ports {
        seq.serialize_element(&format!(
            "{}/{}={}",
            p.proto.to_ascii_lowercase(),
            p.port,
            p.count
        ))?;
    }
    seq.end()
}

fn targets<S: Serializer>(s: &&AlertSummaryJson, ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_seq(s.targets.iter().map(|t| format!("{}={}", t.ip, t.count)))
}

/// EVE's `flow` object of a `flow` event.
#[derive(Serialize)]
struct EveFlow {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: EveTime,
    end: EveTime,
    age: i64,
    state: &'static str,
    reason: &'static str,
    alerted: bool,
}

impl EveFlow {
    fn of(f: &FlowFields, alerted: bool) -> Self {
        let state = match f.tcp_state {
            Some("closed") => "closed",
            Some("established" | "closing") => "established",
            Some(_) => "new",
            // UDP: established once both sides spoke.
            None if f.pkts_toclient > 0 => "established",
            None => "new",
        };
        EveFlow {
            pkts_toserver: f.pkts_toserver,
            pkts_toclient: f.pkts_toclient,
            bytes_toserver: f.bytes_toserver,
            bytes_toclient: f.bytes_toclient,
            start: EveTime(f.start),
            end: EveTime(f.end),
            age: f.end.secs() - f.start.secs(),
            state,
            reason: eve_reason(f.reason),
            alerted,
        }
    }
}

/// Suricata's reasons: `timeout` (a closed TCP flow too ends by timing
/// out there), `forced` (pushed out of a full table), `shutdown` (the end
/// of the input or of the run).
fn eve_reason(r: EndReason) -> &'static str {
    match r {
        EndReason::Closed | EndReason::Timeout => "timeout",
        EndReason::Evicted => "forced",
        EndReason::EndOfInput | EndReason::Shutdown => "shutdown",
    }
}

/// EVE's top-level `metadata`: a flow event's facts as `flowvars`.
#[derive(Serialize)]
struct Metadata<'a> {
    flowvars: Vec<FlowVar<'a>>,
}

#[derive(Serialize)]
struct FlowVar<'a> {
    key: &'static str,
    value: std::borrow::Cow<'a, str>,
}

impl<'a> Metadata<'a> {
    /// The native flow event's own fields, one flowvar each (lists joined with `,`).
    fn of(e: &'a FlowEventJson<'a>, f: &'a FlowFields) -> Self {
        let mut vars = Vec::with_capacity(8);
        let mut var = |key, value: std::borrow::Cow<'a, str>| vars.push(FlowVar { key, value });
        var("verdict", e.verdict.as_str().into());
        var("severity", e.severity.as_str().into());
        if !e.rule_ids.is_empty() {
            var("rule_ids", e.rule_ids.join(",").into());
        }
        var("direction", e.direction.as_str().into());
        if let Some(roles) = &e.src_roles {
            var("src_roles", roles.join(",").into());
        }
        if let Some(roles) = &e.dest_roles {
            var("dest_roles", roles.join(",").into());
        }
        if let Some(state) = f.tcp_state {
            var("tcp_state", state.into());
        }
        var("reason", f.reason.as_str().into());
        if f.one_sided {
            var("one_sided", "true".into());
        }
        if f.resumed {
            var("resumed", "true".into());
        }
        if !e.encap.is_empty() {
            let names: Vec<&str> = e.encap.layers().iter().map(|k| k.as_str()).collect();
            var("encap", names.join(",").into());
        }
        if let Some(vni) = e.vni {
            var("vni", vni.to_string().into());
        }
        if let Some(id) = e.exception {
            var("suppressed", "true".into());
            var("exception", id.into());
        }
        if let Some(path) = e.evidence {
            var("evidence", path.into());
        }
        Metadata { flowvars: vars }
    }
}

impl<W: Write + Send> Printer<W> for Eve<W> {
    fn prints_alerts(&self) -> bool {
        true
    }

    fn alert(&mut self, e: &FlowEventJson<'_>) -> io::Result<()> {
        let rules = e
            .rule_ids
            .iter()
            .filter_map(|id| self.names.rules.get(*id).map(String::as_str))
            .collect();
        let alert = Alert {
            action: "allowed",
            gid: 1,
            signature_id: signature_id(e.verdict, e.rule_ids.first().copied()),
            rev: 1,
            signature: self.names.signature(e),
            category: e.verdict.as_str(),
            severity: eve_severity(e.severity),
            metadata: AlertMetadata::Flow(FlowFacts::of(e, rules)),
        };
        let event = Record {
            alert: Some(alert),
            ..self.names.flow_record(e)
        };
        line(&mut self.out, &event)
    }

    fn flow(&mut self, e: &FlowEventJson<'_>) -> io::Result<()> {
        let Some(fields) = &e.flow else {
            return Ok(());
        };
        // Flagged and not accepted by an exception: its alert was written
        // (or folded into an alert summary) when it was classified.
        let alerted = e.verdict != Verdict::Documented && e.exception.is_none();
        let event = Record {
            flow: Some(EveFlow::of(fields, alerted)),
            metadata: Some(Metadata::of(e, fields)),
            ..self.names.flow_record(e)
        };
        line(&mut self.out, &event)
    }

    fn alert_summary(&mut self, s: &AlertSummaryJson) -> io::Result<()> {
        let alert = Alert {
            action: "allowed",
            gid: 1,
            signature_id: SID_ALERT_SUMMARY,
            rev: 1,
            signature: format!(
                "{}: alert storm from {}, {} alerts folded",
                self.names.matrix, s.src_ip, s.count
            ),
            category: "alert_summary",
            severity: eve_severity(s.severity),
            metadata: AlertMetadata::Summary(SummaryFacts {
                count: [s.count.to_string()],
                severity: [s.severity.as_str()],
                window_start: [EveTime(s.window_start).to_string()],
                window_end: [EveTime(s.window_end).to_string()],
                last_alert: [EveTime(s.last_alert).to_string()],
                verdicts: s,
                ports: s,
                targets: s,
            }),
        };
        // Alert consoles group alerts by (signature, source, destination)
        // and EveBox needs the destination: the most alerted target.
        let event = Record {
            src_ip: Some(s.src_ip),
            dest_ip: s.targets.first().map(|t| t.ip),
            alert: Some(alert),
            ..self.names.record(EveTime(s.timestamp), "alert")
        };
        line(&mut self.out, &event)
    }

    fn stats(&mut self, s: &StatsEventJson) -> io::Result<()> {
        let event = Record {
            stats: Some(stats::EveStats::of(&s.stats)),
            ..self.names.record(EveTime(s.timestamp), "stats")
        };
        line(&mut self.out, &event)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn into_inner(self: Box<Self>) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::PortMatrix;
    use crate::output::event::{InterfaceStats, Stats};
    use crate::timestamp::Timestamp;

    /// Live: the interface is named on every event and the kernel's
    /// counters are EVE's `capture` counters.
    #[test]
    fn live_stats_name_the_interface_and_the_kernels_counters() {
        let classifier = Classifier::new(
            Arc::new(PortMatrix::builtin().expect("the built-in matrix")),
            Product::Aacc,
        );
        let sensor = Arc::new(Sensor {
            host: "span-dc1".into(),
            in_iface: Some("eth1".into()),
            pcap_filename: None,
            host_in_json: false,
        });
        let mut eve = Eve::new(Vec::new(), &classifier, sensor);
        let stats = Stats {
            packets: 10,
            bytes: 1000,
            active_flows: Some(2),
            interfaces: vec![InterfaceStats {
                name: "eth1".into(),
                packets: 10,
                bytes: 1000,
                queue_dropped: 0,
                kernel_received: 12,
                kernel_dropped: 2,
                interface_dropped: 1,
                error: None,
            }],
            ..Stats::default()
        };
        let event = StatsEventJson {
            timestamp: Timestamp::from_nanos(1_627_894_800_000_000_000),
            event_type: "stats",
            stats,
        };
        eve.stats(&event).expect("written to memory");
        let v: serde_json::Value = serde_json::from_slice(&eve.out).expect("one JSON line");
        assert_eq!(v["timestamp"], "2021-08-02T09:00:00.000000+0000");
        assert_eq!(v["host"], "span-dc1");
        assert_eq!(v["in_iface"], "eth1");
        let capture = &v["stats"]["capture"];
        assert_eq!(capture["kernel_packets"], 12);
        assert_eq!(capture["kernel_drops"], 2);
        assert_eq!(capture["kernel_ifdrops"], 1);
        assert_eq!(capture["errors"], 0);
        assert_eq!(v["stats"]["decoder"]["avg_pkt_size"], 100);
        assert_eq!(v["stats"]["flow"]["active"], 2);
    }
}

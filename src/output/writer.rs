//! Writes events as JSON lines or text, and keeps the run's summary.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::Arc;

use crate::capture::Timestamp;
use crate::classify::{Classifier, Verdict};
use crate::flow::{EndReason, Flow};
use crate::transport::Transport;

use super::event::{FlowEventJson, Stats, StatsEventJson};

/// How events are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line a person reads.
    Text,
    /// One JSON object per line (the EVE-style contract).
    Json,
}

/// Receives every alert and every ended flow, writes what was asked for, and
/// tallies what the summary needs.
pub struct EventWriter<W: Write> {
    out: W,
    format: Format,
    /// Write `flow` events too (`--flows`); the summary counts flows either way.
    flows: bool,
    classifier: Arc<Classifier>,
    summary: Summary,
    /// The first write that failed; nothing is written after it.
    error: Option<io::Error>,
}

/// What the end-of-run summary reports, gathered from ended flows.
#[derive(Debug, Default)]
pub struct Summary {
    pub undocumented_ports: HashMap<(Transport, u16), u64>,
    pub undocumented_hosts: HashMap<IpAddr, u64>,
    /// Flows per rule (every rule that matched a flow).
    pub flows_per_rule: Vec<u64>,
    pub alerts: u64,
}

impl<W: Write> EventWriter<W> {
    pub fn new(out: W, format: Format, flows: bool, classifier: Arc<Classifier>) -> Self {
        let rules = classifier.matrix().rules().len();
        EventWriter {
            out,
            format,
            flows,
            classifier,
            summary: Summary {
                flows_per_rule: vec![0; rules],
                ..Summary::default()
            },
            error: None,
        }
    }

    /// Keeps the first write error, so that the command can tell a closed
    /// pipe (a normal end) from a full disk (an error) once the run is over.
    pub fn record_error(&mut self, e: io::Error) {
        self.error.get_or_insert(e);
    }

    /// The first write error recorded, taken out.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn alert(&mut self, flow: &Flow) -> io::Result<()> {
        self.summary.alerts += 1;
        let event = FlowEventJson::alert(flow, &self.classifier);
        write_event(&mut self.out, self.format, &event)
    }

    pub fn flow_ended(&mut self, flow: &Flow, reason: EndReason) -> io::Result<()> {
        for &i in self.classifier.rule_ids(flow.decision) {
            if let Some(n) = self.summary.flows_per_rule.get_mut(usize::from(i)) {
                *n += 1;
            }
        }
        if flow.verdict == Verdict::Undocumented {
            *self
                .summary
                .undocumented_ports
                .entry((flow.transport, flow.server.port))
                .or_default() += 1;
            *self
                .summary
                .undocumented_hosts
                .entry(flow.server.ip)
                .or_default() += 1;
        }
        if !self.flows {
            return Ok(());
        }
        let event = FlowEventJson::ended(flow, reason, &self.classifier);
        write_event(&mut self.out, self.format, &event)
    }

    pub fn stats(&mut self, timestamp: Timestamp, stats: &Stats) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let event = StatsEventJson {
                    timestamp,
                    event_type: "stats",
                    stats: stats.clone(),
                };
                serde_json::to_writer(&mut self.out, &event)?;
                self.out.write_all(b"\n")
            }
            // People get the summary on stderr instead.
            Format::Text => Ok(()),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn write_event(out: &mut impl Write, format: Format, e: &FlowEventJson<'_>) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *out, e)?;
            out.write_all(b"\n")
        }
        Format::Text => write_text(out, e),
    }
}

fn write_text(out: &mut impl Write, e: &FlowEventJson<'_>) -> io::Result<()> {
    write!(
        out,
        "{} {:<5} {:<17} {:<6} {} {} -> {}",
        e.timestamp,
        e.event_type,
        e.verdict.as_str(),
        e.severity.as_str(),
        e.proto,
        SocketText(e.src_ip, e.src_port),
        SocketText(e.dest_ip, e.dest_port),
    )?;
    if let Some(vlan) = e.vlan {
        write!(out, " vlan {vlan}")?;
    }
    for (i, kind) in e.encap.layers().iter().enumerate() {
        write!(out, "{}{kind}", if i == 0 { " in " } else { "/" })?;
    }
    if let Some(vni) = e.vni {
        write!(out, " vni {vni}")?;
    }
    if let Some(f) = &e.flow {
        write!(
            out,
            " pkts {}/{} bytes {}/{} {}",
            f.pkts_toserver,
            f.pkts_toclient,
            f.bytes_toserver,
            f.bytes_toclient,
            f.reason.as_str()
        )?;
    }
    if e.rule_ids.is_empty() {
        write!(out, " ({})", e.direction.as_str())?;
    } else {
        write!(
            out,
            " rules {} ({})",
            e.rule_ids.join(","),
            e.direction.as_str()
        )?;
    }
    writeln!(out)
}

/// `10.0.0.1:443` or `[fe80::1]:443`.
struct SocketText(IpAddr, u16);

impl std::fmt::Display for SocketText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.1),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.1),
        }
    }
}

/// The human summary written to stderr at the end of a run.
pub fn write_summary(
    out: &mut impl Write,
    stats: &Stats,
    summary: &Summary,
    classifier: &Classifier,
    elapsed: std::time::Duration,
) -> io::Result<()> {
    let source = if stats.interfaces.is_empty() {
        format!("{} file(s)", stats.files.len())
    } else {
        format!("{} interface(s)", stats.interfaces.len())
    };
    writeln!(
        out,
        "portmatrix: {source}, {} packets ({} bytes), {} TCP/UDP flows in {:.2} s",
        stats.packets,
        stats.bytes,
        stats.flows,
        elapsed.as_secs_f64()
    )?;
    let verdicts: Vec<String> = Verdict::ALL
        .iter()
        .filter_map(|v| {
            let n = stats
                .flows_per_verdict
                .get(v.as_str())
                .copied()
                .unwrap_or(0);
            (n > 0).then(|| format!("{v} {n}"))
        })
        .collect();
    writeln!(
        out,
        "  flows per verdict: {}",
        or_none(&verdicts.join(", "))
    )?;
    let ports = top(&summary.undocumented_ports, |(t, p)| format!("{t}/{p}"));
    writeln!(out, "  top undocumented destination ports: {ports}")?;
    let hosts = top(&summary.undocumented_hosts, |ip| ip.to_string());
    writeln!(out, "  top undocumented destination hosts: {hosts}")?;
    let rules = classifier.matrix().rules();
    let seen = summary.flows_per_rule.iter().filter(|&&n| n > 0).count();
    let unseen: Vec<&str> = rules
        .iter()
        .zip(&summary.flows_per_rule)
        .filter(|(r, &n)| n == 0 && !r.deprecated && !r.needs_roles)
        .map(|(r, _)| r.id.as_str())
        .collect();
    writeln!(
        out,
        "  matrix coverage: {seen} of {} rules saw traffic; {} current rules saw none",
        rules.len(),
        unseen.len()
    )?;
    if !unseen.is_empty() {
        writeln!(out, "    never seen: {}", unseen.join(" "))?;
    }
    let failures: u64 = stats.decode_failures.values().sum();
    if failures > 0 || stats.evictions > 0 {
        writeln!(
            out,
            "  capture health: {failures} packets not decoded, {} flows evicted",
            stats.evictions
        )?;
    }
    for i in &stats.interfaces {
        writeln!(
            out,
            "  {}: {} packets read; kernel received {}, dropped {}; interface dropped {}",
            i.name, i.packets, i.kernel_received, i.kernel_dropped, i.interface_dropped
        )?;
        if let Some(err) = &i.error {
            writeln!(out, "    error: {err}")?;
        }
    }
    if let Some(drops) = &stats.queue_drops {
        let n: u64 = drops.values().sum();
        if n > 0 {
            writeln!(out, "  dropped by full worker queues: {n} packets")?;
        }
    }
    for f in &stats.files {
        if let Some(err) = &f.error {
            writeln!(out, "  incomplete: {err}")?;
        }
    }
    Ok(())
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "none"
    } else {
        s
    }
}

/// The ten largest counts, as `name (n), …`, or `none`.
fn top<K: Ord>(counts: &HashMap<K, u64>, name: impl Fn(&K) -> String) -> String {
    let mut sorted: Vec<(&K, &u64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = sorted
        .iter()
        .take(10)
        .map(|(k, n)| format!("{} ({n})", name(k)))
        .collect();
    or_none(&shown.join(", ")).to_string()
}

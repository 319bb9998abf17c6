//! Writes events as JSON lines, text or CSV, and keeps the run's summary.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::Arc;

use crate::classify::Classifier;
use crate::filter::VerdictSet;
use crate::flow::{EndReason, Flow};
use crate::printable::Printable;
use crate::site::ExceptionMatch;
use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::Verdict;

use super::csv::{write_row, CSV_HEADER};
use super::event::{
    ActiveFilters, AlertSummaryJson, FlowEventJson, Stats, StatsEventJson, SuppressedStats,
};
use super::latency::{LatencyHistogram, LatencySummary};
use super::storm::{Storm, StormOut};

/// Rules listed by name under "never seen" in the summary; the report lists all.
const NEVER_SEEN_SHOWN: usize = 20;

/// How events are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line a person reads.
    Text,
    /// One JSON object per line (the EVE-style contract).
    Json,
    /// A header row, then one row per `flow` event (alerts are not written:
    /// each flagged flow has its row when it ends).
    Csv,
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
    /// Live mode: how long alerts took from capture to here.
    latency: Option<LatencyHistogram>,
    /// `--alert-burst`: folds alert floods from one source (`None`: off).
    storm: Option<Storm>,
    /// What storm control handed back to write; kept to reuse its memory.
    pending: Vec<StormOut>,
    /// Per site exception: (flows accepted, flows named after it expired).
    exceptions: Vec<(u64, u64)>,
    /// The verdicts whose flows are written (`--verdict`); the summary and
    /// the tee see every flow.
    verdicts: VerdictSet,
    /// The CSV header is still to be written (before the first row).
    csv_header: bool,
    /// Every event as JSON, whatever the format and selection: what
    /// `analyze --report` builds its page from.
    tee: Option<Tee>,
    /// The first write that failed; nothing is written after it.
    error: Option<io::Error>,
}

/// A second, JSON-only destination; its first error is kept, not fatal to
/// the run (the events on stdout go on).
struct Tee {
    out: Box<dyn Write + Send>,
    error: Option<io::Error>,
}

impl Tee {
    fn write(&mut self, event: &impl serde::Serialize) {
        if self.error.is_some() {
            return;
        }
        let result = serde_json::to_writer(&mut self.out, event)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        if let Err(e) = result {
            self.error = Some(e);
        }
    }
}

/// What the end-of-run summary reports, gathered from ended flows.
#[derive(Debug, Default)]
pub struct Summary {
    pub undocumented_ports: HashMap<(Transport, u16), u64>,
    pub undocumented_hosts: HashMap<IpAddr, u64>,
    /// Flows per rule (every rule that matched a flow).
    pub flows_per_rule: Vec<u64>,
    pub alerts: u64,
    /// TCP flows seen in one direction only (see `Flow::one_sided`).
    pub one_sided: u64,
}

impl<W: Write> EventWriter<W> {
    pub fn new(out: W, format: Format, flows: bool, classifier: Arc<Classifier>) -> Self {
        let rules = classifier.matrix().rules().len();
        let exceptions = classifier.site().map_or(0, |s| s.exceptions.len());
        EventWriter {
            out,
            format,
            flows,
            classifier,
            summary: Summary {
                flows_per_rule: vec![0; rules],
                ..Summary::default()
            },
            latency: None,
            storm: None,
            pending: Vec::new(),
            exceptions: vec![(0, 0); exceptions],
            verdicts: VerdictSet::ALL,
            csv_header: format == Format::Csv,
            tee: None,
            error: None,
        }
    }

    /// Fold the alerts of any source beyond `burst` a minute into
    /// `alert_summary` events (0: never). `workers` report their clocks;
    /// `ordered` decides alerts in packet-time order (offline), so the
    /// folded alerts do not depend on the number of workers.
    pub fn storm_control(&mut self, burst: usize, workers: usize, ordered: bool) {
        self.storm = (burst > 0).then(|| Storm::new(burst, workers, ordered));
    }

    /// Alert latency so far, if measured.
    pub fn latency(&self) -> Option<LatencySummary> {
        self.latency.as_ref().map(LatencyHistogram::summary)
    }

    /// Measure alert latency against the wall clock (live capture, where
    /// packet time is the wall clock) and report it in stats events.
    pub fn measure_latency(&mut self) {
        self.latency = Some(LatencyHistogram::default());
    }

    /// Write only the flows with these verdicts (`--verdict`).
    pub fn select(mut self, verdicts: VerdictSet) -> Self {
        self.verdicts = verdicts;
        self
    }

    /// Do not write the CSV header: the destination writes it itself (an
    /// events file writes it whenever it starts a new, empty file).
    pub fn without_csv_header(mut self) -> Self {
        self.csv_header = false;
        self
    }

    /// Also write every alert, flow and stats event as JSON to `out`.
    pub fn tee(mut self, out: Box<dyn Write + Send>) -> Self {
        self.tee = Some(Tee { out, error: None });
        self
    }

    /// Flush and hand back the tee, with its first error if any.
    pub fn take_tee(&mut self) -> Option<io::Result<Box<dyn Write + Send>>> {
        let mut tee = self.tee.take()?;
        if tee.error.is_none() {
            tee.error = tee.out.flush().err();
        }
        Some(match tee.error {
            Some(e) => Err(e),
            None => Ok(tee.out),
        })
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

    /// A flow just classified as flagged, that no site exception accepts:
    /// alerted, unless storm control folds it.
    pub fn alert(&mut self, flow: &Flow) -> io::Result<()> {
        match &mut self.storm {
            None => self.write_alert(flow),
            Some(storm) => {
                storm.alert(*flow, &mut self.pending);
                self.write_pending()
            }
        }
    }

    /// A flow ended; `evidence` names the capture of its packets, if one was written.
    pub fn flow_ended(
        &mut self,
        flow: &Flow,
        reason: EndReason,
        evidence: Option<String>,
    ) -> io::Result<()> {
        let same_host = flow.client.ip == flow.server.ip;
        let counts = &mut self.summary.flows_per_rule;
        self.classifier
            .visit_rules(flow.decision, same_host, |i, _| {
                if let Some(n) = counts.get_mut(usize::from(i)) {
                    *n += 1;
                }
            });
        if flow.one_sided() {
            self.summary.one_sided += 1;
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
        match flow.exception {
            ExceptionMatch::Suppressed(i) => self.exceptions[usize::from(i)].0 += 1,
            ExceptionMatch::Expired(i) => self.exceptions[usize::from(i)].1 += 1,
            ExceptionMatch::None => {}
        }
        if !self.flows && self.tee.is_none() {
            return Ok(());
        }
        match &mut self.storm {
            None => self.write_flow(flow, reason, evidence.as_deref()),
            Some(storm) => {
                storm.flow_ended(*flow, reason, evidence, &mut self.pending);
                self.write_pending()
            }
        }
    }

    /// Worker `worker` has sent every event before `ts` (packet time): lets
    /// storm control release held alerts and close its windows.
    pub fn clock(&mut self, worker: usize, ts: Timestamp) -> io::Result<()> {
        match &mut self.storm {
            None => Ok(()),
            Some(storm) => {
                storm.clock(worker, ts, &mut self.pending);
                self.write_pending()
            }
        }
    }

    /// The events are over: write what storm control still holds.
    pub fn finish(&mut self) -> io::Result<()> {
        match &mut self.storm {
            None => Ok(()),
            Some(storm) => {
                storm.finish(&mut self.pending);
                self.write_pending()
            }
        }
    }

    fn write_alert(&mut self, flow: &Flow) -> io::Result<()> {
        self.summary.alerts += 1;
        let event = FlowEventJson::alert(flow, &self.classifier);
        if let Some(tee) = &mut self.tee {
            tee.write(&event);
        }
        if self.format == Format::Csv || !self.verdicts.contains(flow.verdict) {
            return Ok(());
        }
        write_event(&mut self.out, self.format, &event)?;
        if let Some(h) = &mut self.latency {
            h.record(flow.start, Timestamp::now());
        }
        Ok(())
    }

    fn write_flow(
        &mut self,
        flow: &Flow,
        reason: EndReason,
        evidence: Option<&str>,
    ) -> io::Result<()> {
        let mut event = FlowEventJson::ended(flow, reason, &self.classifier, evidence);
        if let ExceptionMatch::Suppressed(i) = flow.exception {
            event.suppressed = Some(true);
            event.exception = self
                .classifier
                .site()
                .and_then(|s| s.exceptions.get(usize::from(i)))
                .map(|e| e.id.as_str());
        }
        if let Some(tee) = &mut self.tee {
            tee.write(&event);
        }
        if !self.flows || !self.verdicts.contains(flow.verdict) {
            return Ok(());
        }
        csv_header(&mut self.out, &mut self.csv_header)?;
        write_event(&mut self.out, self.format, &event)
    }

    /// Write what storm control handed back, in its order.
    fn write_pending(&mut self) -> io::Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        let mut result = Ok(());
        for item in pending.drain(..) {
            if result.is_err() {
                continue;
            }
            result = match item {
                StormOut::Alert(f) => self.write_alert(&f),
                StormOut::End(f, r, evidence) => self.write_flow(&f, r, evidence.as_deref()),
                StormOut::Summary(s) => {
                    if let Some(tee) = &mut self.tee {
                        tee.write(&*s);
                    }
                    write_alert_summary(&mut self.out, self.format, &s)
                }
            };
        }
        self.pending = pending;
        result
    }

    /// `stats` with what the writer counted: alert latency, one-sided flows,
    /// storm control, exceptions, and with a site the `role_mismatch`
    /// counter even when it is zero.
    pub fn complete_stats(&self, stats: &Stats) -> Stats {
        let mut stats = Stats {
            alert_latency: self.latency(),
            one_sided_flows: self.summary.one_sided,
            alert_storms: self.storm.as_ref().and_then(Storm::stats),
            ..stats.clone()
        };
        if let Some(site) = self.classifier.site() {
            for v in Verdict::ALL.iter().filter(|v| v.needs_site()) {
                stats.flows_per_verdict.entry(v.as_str()).or_insert(0);
            }
            if !site.exceptions.is_empty() {
                let per: BTreeMap<String, SuppressedStats> = site
                    .exceptions
                    .iter()
                    .zip(&self.exceptions)
                    .map(|(e, &(flows, expired_flows))| {
                        (
                            e.id.clone(),
                            SuppressedStats {
                                flows,
                                expired_flows,
                                why: e.why.clone(),
                                until: e.until_text.clone(),
                            },
                        )
                    })
                    .collect();
                stats.suppressed = Some(per);
            }
        }
        stats
    }

    pub fn stats(&mut self, timestamp: Timestamp, stats: &Stats) -> io::Result<()> {
        let event = StatsEventJson {
            timestamp,
            event_type: "stats",
            stats: self.complete_stats(stats),
        };
        if let Some(tee) = &mut self.tee {
            tee.write(&event);
        }
        match self.format {
            Format::Json => {
                serde_json::to_writer(&mut self.out, &event)?;
                self.out.write_all(b"\n")
            }
            // People get the summary on stderr instead; a CSV holds flows only.
            Format::Text => Ok(()),
            Format::Csv => csv_header(&mut self.out, &mut self.csv_header),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(tee) = &mut self.tee {
            if tee.error.is_none() {
                tee.error = tee.out.flush().err();
            }
        }
        self.out.flush()
    }
}

/// The CSV header if still `pending`: before the first row (or at the end,
/// so that a run without flows still gives a valid, empty table).
fn csv_header(out: &mut impl Write, pending: &mut bool) -> io::Result<()> {
    if std::mem::take(pending) {
        out.write_all(CSV_HEADER.as_bytes())?;
    }
    Ok(())
}

fn write_event(out: &mut impl Write, format: Format, e: &FlowEventJson<'_>) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *out, e)?;
            out.write_all(b"\n")
        }
        Format::Text => write_text(out, e),
        Format::Csv => write_row(out, e),
    }
}

fn write_alert_summary(
    out: &mut impl Write,
    format: Format,
    s: &AlertSummaryJson,
) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *out, s)?;
            out.write_all(b"\n")
        }
        // A CSV holds flows only.
        Format::Csv => Ok(()),
        Format::Text => {
            let ports: Vec<String> = s
                .ports
                .iter()
                .map(|p| format!("{}/{} ({})", p.proto.to_ascii_lowercase(), p.port, p.count))
                .collect();
            let targets: Vec<String> = s
                .targets
                .iter()
                .map(|t| format!("{} ({})", t.ip, t.count))
                .collect();
            writeln!(
                out,
                "{} alert_summary {:<6} {} folded {} alerts until {}: ports {}; targets {}",
                s.timestamp,
                s.severity.as_str(),
                s.src_ip,
                s.count,
                s.window_end,
                ports.join(", "),
                targets.join(", ")
            )
        }
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
    // Paths and ids come from the user's folders and rules files: printable.
    if let Some(path) = e.evidence {
        write!(out, " evidence {}", Printable(path))?;
    }
    if let (Some(src), Some(dst)) = (&e.src_roles, &e.dest_roles) {
        write!(out, " roles {} -> {}", src.join(","), dst.join(","))?;
    }
    if let Some(id) = e.exception {
        write!(out, " suppressed by {}", Printable(id))?;
    }
    for (i, id) in e.rule_ids.iter().enumerate() {
        let sep = if i == 0 { " rules " } else { "," };
        write!(out, "{sep}{}", Printable(id))?;
    }
    writeln!(out, " ({})", e.direction.as_str())
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
    if let Some(signal) = stats.interrupted {
        writeln!(
            out,
            "  interrupted by {signal}: the input was read no further; everything above is what was read"
        )?;
    }
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
        // A short list reads at a glance; the report and `--json` have all of them.
        let shown = &unseen[..unseen.len().min(NEVER_SEEN_SHOWN)];
        let more = unseen.len() - shown.len();
        let rest = if more > 0 {
            format!(" … and {more} more (all of them: portmatrix report)")
        } else {
            String::new()
        };
        write!(out, "    never seen:")?;
        for id in shown {
            write!(out, " {}", Printable(id))?;
        }
        writeln!(out, "{rest}")?;
    }
    if let Some(storms) = &stats.alert_storms {
        writeln!(
            out,
            "  alert storms: {} alerts folded into {} alert_summary events (flow events keep every verdict)",
            storms.alerts_folded, storms.summaries
        )?;
    }
    // In file order; "expired" by the wall clock, as at the start of the run.
    let now = Timestamp::now();
    let exceptions = classifier.site().map_or(&[][..], |s| &s.exceptions[..]);
    for x in exceptions {
        let Some(e) = stats.suppressed.as_ref().and_then(|m| m.get(&x.id)) else {
            continue;
        };
        let until = match (&e.until, x.expired_at(now)) {
            (Some(u), true) => format!(", expired {u}"),
            (Some(u), false) => format!(", until {u}"),
            (None, _) => String::new(),
        };
        write!(
            out,
            "  exception {} ({}{}): {} flows suppressed",
            Printable(&x.id),
            Printable(&e.why),
            Printable(&until),
            e.flows
        )?;
        if e.expired_flows > 0 {
            write!(
                out,
                "; {} flows after it expired were alerted",
                e.expired_flows
            )?;
        }
        writeln!(out)?;
    }
    let failures: u64 = stats.decode_failures.values().sum();
    if failures > 0 || stats.evictions > 0 {
        writeln!(
            out,
            "  capture health: {failures} packets not decoded, {} flows evicted{}",
            stats.evictions,
            match stats.resumed_flows {
                Some(n) => format!(" ({n} came back and kept their ends)"),
                None => String::new(),
            }
        )?;
    }
    if summary.one_sided > 0 {
        writeln!(
            out,
            "  one-sided: {} TCP flows were seen in one direction only (is the SPAN mirroring both directions?)",
            summary.one_sided
        )?;
    }
    if let Some(n) = stats.duplicates {
        writeln!(out, "  dedup: {n} mirrored copies dropped")?;
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
    if let Some(filters) = &stats.filters {
        writeln!(
            out,
            "  filters: {}; {} packets outside them",
            describe_filters(filters),
            stats.filtered.unwrap_or(0)
        )?;
    }
    if let Some(x) = &stats.extract {
        writeln!(
            out,
            "  evidence: {} files, {} packets, {} bytes written; capped: {} packets of {} flows{}",
            x.files,
            x.packets,
            x.bytes,
            x.capped_packets,
            x.capped_flows,
            if x.errors > 0 {
                format!("; {} packets could not be written", x.errors)
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}

/// `since 2021-…Z, host 10.10.1.0/24 10.10.2.7, port 1972, verdict undocumented`.
fn describe_filters(f: &ActiveFilters) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &f.since {
        parts.push(format!("since {t}"));
    }
    if let Some(t) = &f.until {
        parts.push(format!("until {t}"));
    }
    if !f.host.is_empty() {
        parts.push(format!("host {}", f.host.join(" ")));
    }
    if !f.port.is_empty() {
        let ports: Vec<String> = f.port.iter().map(u16::to_string).collect();
        parts.push(format!("port {}", ports.join(" ")));
    }
    if let Some(e) = &f.bpf {
        parts.push(format!("bpf `{e}`"));
    }
    if !f.verdict.is_empty() {
        parts.push(format!(
            "verdict {} (reported; all counted)",
            f.verdict.join(",")
        ));
    }
    parts.join(", ")
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

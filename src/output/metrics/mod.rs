//! Prometheus metrics of a live run (`--metrics`, `--metrics-file`), in the
//! text exposition format 0.0.4.
//!
//! Nothing is counted twice for them: the supervisor gathers the counters
//! the stats events are made of once a second ([`REFRESH`]), the writer
//! completes them with its own (alerts, storm control, latency, syslog) and
//! leaves the result here as a [`Snapshot`]; the HTTP thread ([`http`]) and
//! the file thread ([`file`]) render the last one when asked. The capture
//! path does not know metrics exist.

pub mod file;
pub mod http;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::event::Stats;
use super::latency::LatencyHistogram;
use super::syslog::SyslogStats;

/// How often the supervisor refreshes the counters behind the metrics.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The counters as of the last refresh.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// As a stats event would have them ([`crate::output::EventWriter::complete_stats`]).
    pub stats: Stats,
    /// Alerts written (after storm control), per verdict.
    pub alerts: Vec<(&'static str, u64)>,
    pub latency: Option<LatencyHistogram>,
    pub syslog: Option<SyslogStats>,
    /// The events' destination failed (capture then stops).
    pub events_failed: bool,
}

/// Where the writer leaves the latest [`Snapshot`] for the metrics threads.
#[derive(Debug, Default)]
pub struct Board {
    latest: Mutex<Option<Arc<Snapshot>>>,
}

impl Board {
    pub fn publish(&self, snapshot: Snapshot) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(snapshot));
    }

    /// The exposition text of the latest snapshot (no samples before the first).
    pub fn render(&self) -> String {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        latest.map(|s| render(&s)).unwrap_or_default()
    }
}

/// One metric family: its HELP and TYPE lines, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, label: Option<(&str, &str)>, value: impl std::fmt::Display) {
        let name = self.name;
        match label {
            None => {
                let _ = writeln!(self.out, "{name} {value}");
            }
            Some((key, v)) => {
                let _ = writeln!(self.out, "{name}{{{key}=\"{}\"}} {value}", escape(v));
            }
        }
    }
}

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

/// One counter of an interface.
type PerInterface = fn(&super::InterfaceStats) -> u64;

/// The exposition text of `s`.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    let stats = &s.stats;
    let per_interface: [(&str, &str, PerInterface); 5] = [
        (
            "portmatrix_packets_total",
            "Packets read from the interface.",
            |i| i.packets,
        ),
        (
            "portmatrix_bytes_total",
            "Bytes of the packets read from the interface (as on the wire).",
            |i| i.bytes,
        ),
        (
            "portmatrix_kernel_dropped_total",
            "Packets the kernel dropped because the capture buffer was full.",
            |i| i.kernel_dropped,
        ),
        (
            "portmatrix_interface_dropped_total",
            "Packets the interface or its driver dropped.",
            |i| i.interface_dropped,
        ),
        (
            "portmatrix_queue_dropped_total",
            "Packets portmatrix dropped because a worker's queue was full.",
            |i| i.queue_dropped,
        ),
    ];
    for (name, help, value) in per_interface {
        let mut f = Family::new(&mut out, name, "counter", help);
        for i in &stats.interfaces {
            f.sample(Some(("interface", &i.name)), value(i));
        }
    }
    let mut f = Family::new(
        &mut out,
        "portmatrix_capture_up",
        "gauge",
        "1 while the interface is captured, 0 after it failed.",
    );
    for i in &stats.interfaces {
        f.sample(Some(("interface", &i.name)), u8::from(i.error.is_none()));
    }
    let mut f = Family::new(
        &mut out,
        "portmatrix_flows_total",
        "counter",
        "Flows ended, per verdict.",
    );
    for (verdict, n) in &stats.flows_per_verdict {
        f.sample(Some(("verdict", verdict)), n);
    }
    Family::new(
        &mut out,
        "portmatrix_active_flows",
        "gauge",
        "Flows open now.",
    )
    .sample(None, stats.active_flows.unwrap_or(0));
    Family::new(
        &mut out,
        "portmatrix_evictions_total",
        "counter",
        "Flows evicted from a full flow table.",
    )
    .sample(None, stats.evictions);
    let mut f = Family::new(
        &mut out,
        "portmatrix_alerts_total",
        "counter",
        "Alerts written (after storm control), per verdict.",
    );
    for (verdict, n) in &s.alerts {
        f.sample(Some(("verdict", verdict)), n);
    }
    let folded = stats.alert_storms.as_ref().map_or(0, |a| a.alerts_folded);
    Family::new(
        &mut out,
        "portmatrix_alerts_folded_total",
        "counter",
        "Alerts folded into alert_summary events by storm control.",
    )
    .sample(None, folded);
    let mut f = Family::new(&mut out, "portmatrix_output_errors_total", "counter", "Events an output could not deliver (syslog: messages dropped; kafka: messages dropped or failed; events: 1 once the events destination failed).");
    f.sample(Some(("output", "events")), u8::from(s.events_failed));
    if let Some(syslog) = s.syslog {
        f.sample(Some(("output", "syslog")), syslog.dropped);
    }
    if let Some(kafka) = stats.kafka {
        f.sample(Some(("output", "kafka")), kafka.failed + kafka.dropped);
        Family::new(
            &mut out,
            "portmatrix_kafka_delivered_total",
            "counter",
            "Events the Kafka broker acknowledged.",
        )
        .sample(None, kafka.delivered);
        Family::new(
            &mut out,
            "portmatrix_kafka_queued",
            "gauge",
            "Events waiting in the Kafka client's queue for the broker.",
        )
        .sample(None, kafka.queued);
    }
    if let Some(syslog) = s.syslog {
        Family::new(
            &mut out,
            "portmatrix_syslog_sent_total",
            "counter",
            "Messages handed to the syslog receiver.",
        )
        .sample(None, syslog.sent);
    }
    if let Some(h) = &s.latency {
        latency(&mut out, h);
    }
    out
}

/// The alert latency histogram, in seconds, with the power-of-two buckets
/// the stats events' percentiles come from.
fn latency(out: &mut String, h: &LatencyHistogram) {
    let name = "portmatrix_alert_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from a flagged flow's first packet to its alert's output.\n# TYPE {name} histogram"
    );
    let mut cumulative = 0;
    for (upper_micros, n) in h.finite_buckets() {
        cumulative += n;
        let le = upper_micros as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count());
    let _ = writeln!(out, "{name}_sum {}", h.sum_micros() as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {}", h.count());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::InterfaceStats;
    use crate::timestamp::Timestamp;

    #[test]
    fn the_exposition_names_each_family_once_with_its_samples() {
        let mut stats = Stats::default();
        stats.interfaces.push(InterfaceStats {
            name: "eth\"1".into(),
            packets: 7,
            bytes: 700,
            ..InterfaceStats::default()
        });
        stats.flows_per_verdict.insert("undocumented", 2);
        let mut h = LatencyHistogram::default();
        h.record(Timestamp::from_nanos(0), Timestamp::from_nanos(3_000_000));
        let text = render(&Snapshot {
            stats,
            alerts: vec![("undocumented", 2)],
            latency: Some(h),
            syslog: Some(SyslogStats {
                sent: 2,
                dropped: 1,
                reconnects: 0,
            }),
            events_failed: false,
        });
        assert!(
            text.contains("portmatrix_packets_total{interface=\"eth\\\"1\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("portmatrix_flows_total{verdict=\"undocumented\"} 2\n"));
        assert!(text.contains("portmatrix_output_errors_total{output=\"syslog\"} 1\n"));
        assert!(
            text.contains("portmatrix_alert_latency_seconds_bucket{le=\"0.004096\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("portmatrix_alert_latency_seconds_bucket{le=\"0.002048\"} 0\n"));
        assert!(text.contains("portmatrix_alert_latency_seconds_count 1\n"));
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split(' ').nth(2).unwrap_or_default();
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
        }
    }
}

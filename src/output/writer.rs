//! The events of a run, from the flow tables to the printers, in one line:
//!
//! ```text
//! alert / flow end -> storm control -> tally -> event, built once -> stdout's printer (--format, --verdict, --flows)
//!                     (--alert-burst)  (summary,                   -> the --report copy (JSON, everything)
//!                                       coverage, exceptions)
//! ```
//!
//! Nothing here decides what a flow is: its verdict, its rules and the site
//! exception that accepts it were decided where it was classified, and the
//! flow table writes no alert for a flow an exception accepts. What is
//! decided here is presentation: which alerts storm control folds, which
//! printers want an event, and what a failing destination means for the run.

use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::classify::Classifier;
use crate::filter::VerdictSet;
use crate::flow::{EndReason, Flow};
use crate::matrix::RuleIdx;
use crate::timestamp::Timestamp;
use crate::verdict::Verdict;

use super::event::{AlertSummaryJson, FlowEventJson, Stats, StatsEventJson};
use super::kafka::KafkaCounters;
use super::latency::{LatencyHistogram, LatencySummary};
use super::metrics::{Board, Snapshot};
use super::print::{Format, Json, Names, Printer, Sensor};
use super::storm::{Storm, StormOut};
use super::syslog::{SyslogCounters, SyslogLines};
use super::tally::Summary;

/// Receives every alert and every ended flow, writes what was asked for, and
/// tallies what the summary needs.
pub struct EventWriter<W> {
    /// stdout (or `live -o`'s file) in the chosen format.
    out: Box<dyn Printer<W>>,
    format: Format,
    /// What the printer names besides the events (EVE's sensor fields).
    names: Names,
    /// `out` starts with the CSV header.
    header: bool,
    /// Write `flow` events to `out` too (`--flows`); the summary counts flows either way.
    flows: bool,
    /// The verdicts whose flows `out` is given (`--verdict`); the tally and
    /// the report copy see every flow.
    verdicts: VerdictSet,
    /// `analyze --report`: every event, whatever the format and selection.
    copy: Option<ReportCopy>,
    classifier: Arc<Classifier>,
    /// `--alert-burst`: folds alert floods from one source (`None`: off).
    storm: Option<Storm>,
    /// What storm control handed back to write; kept to reuse its memory.
    pending: Vec<StormOut>,
    summary: Summary,
    /// Live mode: how long alerts took from capture to here.
    latency: Option<LatencyHistogram>,
    /// The rules of the flow whose event is being built, gathered once per
    /// event into memory kept for the next.
    rules: Vec<RuleIdx>,
    /// The first write to `out` that failed; nothing is written after it.
    error: Option<io::Error>,
    /// Sees every ended flow (`site suggest` takes its evidence from them).
    watch: Option<FlowWatch>,
    /// `--syslog`: the events `out` is given, as JSON lines (or the run's
    /// format, if it is a JSON one), each sent as one message.
    syslog: Option<(Box<dyn Printer<SyslogLines>>, Arc<SyslogCounters>)>,
    /// `--kafka`: the counters of the producer `out` writes to.
    kafka: Option<Arc<KafkaCounters>>,
    /// `--metrics`: where [`EventWriter::publish_metrics`] leaves the counters.
    metrics: Option<Arc<Board>>,
    /// Alerts written, per verdict (for the metrics).
    alerts: [u64; Verdict::ALL.len()],
}

/// What [`EventWriter::watch_flows`] hands every ended flow to.
pub type FlowWatch = Box<dyn FnMut(&Flow) + Send>;

/// The `--report` copy: JSON to a second destination, whose first error is
/// kept, not fatal to the run (the events on stdout go on).
struct ReportCopy {
    json: Json<Box<dyn Write + Send>>,
    error: Option<io::Error>,
}

impl ReportCopy {
    fn print(&mut self, print: impl FnOnce(&mut Json<Box<dyn Write + Send>>) -> io::Result<()>) {
        if self.error.is_none() {
            self.error = print(&mut self.json).err();
        }
    }
}

impl<W: Write + Send + 'static> EventWriter<W> {
    pub fn new(out: W, format: Format, flows: bool, classifier: Arc<Classifier>) -> Self {
        let names = Names {
            classifier: Arc::clone(&classifier),
            sensor: Arc::new(Sensor::default()),
        };
        EventWriter {
            out: format.printer(out, true, &names),
            format,
            names,
            header: true,
            flows,
            verdicts: VerdictSet::ALL,
            copy: None,
            summary: Summary::new(&classifier),
            classifier,
            storm: None,
            pending: Vec::new(),
            latency: None,
            rules: Vec::new(),
            error: None,
            watch: None,
            syslog: None,
            kafka: None,
            metrics: None,
            alerts: [0; Verdict::ALL.len()],
        }
    }

    /// Also send what `out` is given to syslog (`--syslog`): in the run's
    /// format if it writes JSON lines, else as JSON lines (text and CSV
    /// rows are not what a SIEM parses, and CSV has no alerts).
    pub fn syslog(&mut self, lines: SyslogLines, counters: Arc<SyslogCounters>) {
        let format = match self.format {
            Format::Text | Format::Csv => Format::Json,
            other => other,
        };
        self.syslog = Some((format.printer(lines, false, &self.names), counters));
    }

    /// Also hand every ended flow to `watch`, whatever is written: a
    /// command that needs the flows themselves (`site suggest`) takes them
    /// from the pipeline `analyze` runs, rather than from a loop of its own.
    pub fn watch_flows(mut self, watch: FlowWatch) -> Self {
        self.watch = Some(watch);
        self
    }

    /// Do not write the CSV header: the destination writes it itself (an
    /// events file writes it whenever it starts a new, empty file). Before
    /// anything is written.
    pub fn without_csv_header(mut self) -> Self {
        self.header = false;
        self.out = self
            .format
            .printer(self.out.into_inner(), false, &self.names);
        self
    }

    /// Name the sensor in EVE events (`host`, `in_iface`, `pcap_filename`).
    /// Before anything is written.
    pub fn sensor(mut self, sensor: Sensor) -> Self {
        self.names.sensor = Arc::new(sensor);
        self.out = (self.format).printer(self.out.into_inner(), self.header, &self.names);
        if let Some((printer, counters)) = self.syslog.take() {
            self.syslog(printer.into_inner(), counters);
        }
        self
    }
}

impl<W> EventWriter<W> {
    /// Fold the alerts of any source beyond `burst` a minute into
    /// `alert_summary` events (0: never). `workers` report their clocks;
    /// `ordered` decides alerts in packet-time order (offline), so the
    /// folded alerts do not depend on the number of workers.
    pub fn storm_control(&mut self, burst: usize, workers: NonZeroUsize, ordered: bool) {
        self.storm = (burst > 0).then(|| Storm::new(burst, workers, ordered));
    }

    /// Measure alert latency against the wall clock (live capture, where
    /// packet time is the wall clock) and report it in stats events.
    pub fn measure_latency(&mut self) {
        self.latency = Some(LatencyHistogram::default());
    }

    /// Alert latency so far, if measured.
    pub fn latency(&self) -> Option<LatencySummary> {
        self.latency.as_ref().map(LatencyHistogram::summary)
    }

    /// `out` is a Kafka producer: its counters go into the stats (`stats.kafka`).
    pub fn kafka(&mut self, counters: Arc<KafkaCounters>) {
        self.kafka = Some(counters);
    }

    /// Leave the counters in `board` at each [`EventWriter::publish_metrics`].
    pub fn metrics(&mut self, board: Arc<Board>) {
        self.metrics = Some(board);
    }

    /// Stop sending to syslog: its queue is closed once this returns, so
    /// its thread can finish.
    pub fn close_syslog(&mut self) {
        self.syslog = None;
    }

    /// With `--metrics`: complete `stats` with the writer's counters and
    /// leave them for the metrics threads.
    pub fn publish_metrics(&self, stats: &Stats) {
        let Some(board) = &self.metrics else { return };
        board.publish(Snapshot {
            stats: self.complete_stats(stats),
            alerts: Verdict::ALL
                .iter()
                .map(|v| (v.as_str(), self.alerts[v.index()]))
                .filter(|&(_, n)| n > 0)
                .collect(),
            latency: self.latency.clone(),
            syslog: self.syslog.as_ref().map(|(_, c)| c.get()),
            events_failed: self.error.is_some(),
        });
    }

    /// Write only the flows with these verdicts (`--verdict`).
    pub fn select(mut self, verdicts: VerdictSet) -> Self {
        self.verdicts = verdicts;
        self
    }

    /// Also write every alert, flow and stats event as JSON to `out`.
    pub fn tee(mut self, out: Box<dyn Write + Send>) -> Self {
        self.copy = Some(ReportCopy {
            json: Json::new(out),
            error: None,
        });
        self
    }

    /// Flush and hand back the report copy's destination, with its first error if any.
    pub fn take_tee(&mut self) -> Option<io::Result<Box<dyn Write + Send>>> {
        let mut copy = self.copy.take()?;
        copy.print(|p| p.flush());
        Some(match copy.error {
            Some(e) => Err(e),
            None => Ok(copy.json.into_inner()),
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

    /// stdout's destination back, as it is (not flushed).
    pub fn into_inner(self) -> W {
        self.out.into_inner()
    }

    /// A flagged flow's alert is due (the flow table wrote none for a flow
    /// a site exception accepts): written, unless storm control folds it.
    pub fn alert(&mut self, flow: &Flow) -> io::Result<()> {
        match &mut self.storm {
            None => self.write_alert(flow),
            Some(storm) => {
                storm.alert(*flow, &mut self.pending);
                self.write_pending()
            }
        }
    }

    /// A flow ended; `evidence` names the capture of its packets, if one was
    /// written. Through storm control (its event comes after its alert,
    /// which may be held), then counted, then written.
    pub fn flow_ended(
        &mut self,
        flow: &Flow,
        reason: EndReason,
        evidence: Option<String>,
    ) -> io::Result<()> {
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
                StormOut::Summary(s) => self.write_alert_summary(&s),
            };
        }
        self.pending = pending;
        result
    }

    /// Gather the rules `flow`'s events name into `self.rules`.
    fn gather_rules(&mut self, flow: &Flow) {
        let rules = &mut self.rules;
        rules.clear();
        let same_host = flow.client.ip == flow.server.ip;
        self.classifier
            .visit_rules(flow.decision, same_host, |i, _| rules.push(i));
    }

    fn write_alert(&mut self, flow: &Flow) -> io::Result<()> {
        let selected = self.verdicts.contains(flow.verdict);
        if selected {
            self.alerts[flow.verdict.index()] += 1;
        }
        let to_out = self.out.prints_alerts() && selected;
        let to_syslog = self.syslog.is_some() && selected;
        if !to_out && !to_syslog && self.copy.is_none() {
            return Ok(());
        }
        self.gather_rules(flow);
        let event = FlowEventJson::alert(flow, &self.rules, &self.classifier);
        if let Some(copy) = &mut self.copy {
            copy.print(|p| p.alert(&event));
        }
        if let (Some((syslog, _)), true) = (&mut self.syslog, to_syslog) {
            let _ = syslog.alert(&event);
        }
        if !to_out && !to_syslog {
            return Ok(());
        }
        if to_out {
            self.out.alert(&event)?;
        }
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
        if let Some(watch) = &mut self.watch {
            watch(flow);
        }
        self.gather_rules(flow);
        self.summary.flow_ended(flow, &self.rules);
        let to_out = self.flows && self.verdicts.contains(flow.verdict);
        if !to_out && self.copy.is_none() {
            return Ok(());
        }
        let event = FlowEventJson::ended(flow, reason, &self.rules, &self.classifier, evidence);
        if let Some(copy) = &mut self.copy {
            copy.print(|p| p.flow(&event));
        }
        if let (Some((syslog, _)), true) = (&mut self.syslog, to_out) {
            let _ = syslog.flow(&event);
        }
        if to_out {
            self.out.flow(&event)?;
        }
        Ok(())
    }

    fn write_alert_summary(&mut self, s: &AlertSummaryJson) -> io::Result<()> {
        if let Some(copy) = &mut self.copy {
            copy.print(|p| p.alert_summary(s));
        }
        if let Some((syslog, _)) = &mut self.syslog {
            let _ = syslog.alert_summary(s);
        }
        self.out.alert_summary(s)
    }

    /// `stats` with what the writer counted: alert latency, one-sided flows,
    /// storm control, exceptions, and with a site the `role_mismatch`
    /// counter even when it is zero.
    pub fn complete_stats(&self, stats: &Stats) -> Stats {
        let mut stats = Stats {
            alert_latency: self.latency(),
            one_sided_flows: self.summary.one_sided,
            alert_storms: self.storm.as_ref().and_then(Storm::stats),
            syslog: self.syslog.as_ref().map(|(_, c)| c.get()),
            kafka: self.kafka.as_ref().map(|c| c.get()),
            ..stats.clone()
        };
        if let Some(site) = self.classifier.site() {
            for v in Verdict::ALL.iter().filter(|v| v.needs_site()) {
                stats.flows_per_verdict.entry(v.as_str()).or_insert(0);
            }
            if let Some(per) = self.summary.suppressed(site) {
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
        if let Some(copy) = &mut self.copy {
            copy.print(|p| p.stats(&event));
        }
        if let Some((syslog, _)) = &mut self.syslog {
            let _ = syslog.stats(&event);
        }
        self.out.stats(&event)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(copy) = &mut self.copy {
            copy.print(|p| p.flush());
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::flow::ep;
    use crate::matrix::{PortMatrix, Product};
    use crate::output::syslog::SyslogQueue;
    use crate::transport::Transport;

    fn classifier() -> Arc<Classifier> {
        let matrix = PortMatrix::builtin().expect("the built-in matrix");
        Arc::new(Classifier::new(Arc::new(matrix), Product::Aacc))
    }

    fn flow(id: u64, port: u16, verdict: Verdict) -> Flow {
        let start = Timestamp::from_nanos(1_700_000_000_000_000_000 + id as i64);
        Flow::for_tests(
            id,
            Transport::Tcp,
            ep("10.0.0.9", 50000),
            ep("10.0.0.1", port),
            start,
            verdict,
        )
    }

    /// A destination whose bytes the test still has after handing it over.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().expect("lock");
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    fn lines(bytes: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn syslog_gets_what_stdout_gets_as_json_lines_whatever_the_format() {
        for format in [Format::Json, Format::Text, Format::Csv] {
            let (tx, rx) = std::sync::mpsc::sync_channel(16);
            let counters = Arc::new(SyslogCounters::default());
            let lines = SyslogQueue::into_queue(tx, Arc::clone(&counters));
            let mut w = EventWriter::new(Vec::new(), format, false, classifier());
            w.syslog(lines, counters);
            let flagged = flow(1, 4444, Verdict::Undocumented);
            w.alert(&flagged).expect("alert");
            // Not written with --flows off: not sent either.
            w.flow_ended(&flagged, EndReason::Closed, None)
                .expect("flow");
            w.stats(Timestamp::EPOCH, &Stats::default()).expect("stats");
            let types: Vec<String> = rx
                .try_iter()
                .map(|m| {
                    let m = String::from_utf8(m).expect("utf-8");
                    let json = &m[m.find(" - - ").expect("header") + 5..];
                    let v: serde_json::Value = serde_json::from_str(json).expect("JSON");
                    v["event_type"].as_str().unwrap_or_default().to_string()
                })
                .collect();
            assert_eq!(types, ["alert", "stats"], "{format:?}");
            let stats = w.complete_stats(&Stats::default());
            assert_eq!(stats.syslog.map(|s| s.dropped), Some(0));
        }
    }

    #[test]
    fn a_csv_holds_its_header_once_and_the_flows_alone() {
        let c = classifier();
        let mut w = EventWriter::new(Vec::new(), Format::Csv, true, Arc::clone(&c));
        let flagged = flow(1, 4444, Verdict::Undocumented);
        w.alert(&flagged).expect("alert");
        w.flow_ended(&flagged, EndReason::Closed, None)
            .expect("flow");
        w.flow_ended(&flow(2, 443, Verdict::Documented), EndReason::Timeout, None)
            .expect("flow");
        w.stats(Timestamp::EPOCH, &Stats::default()).expect("stats");
        let out = lines(&w.into_inner());
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(format!("{}\r\n", out[0]), crate::output::CSV_HEADER);
        assert!(out[1].contains(",undocumented,") && out[2].contains(",documented,"));

        // Without flows, the header alone at the end: a valid, empty table.
        let mut w = EventWriter::new(Vec::new(), Format::Csv, true, Arc::clone(&c));
        w.stats(Timestamp::EPOCH, &Stats::default()).expect("stats");
        assert_eq!(lines(&w.into_inner()).len(), 1);
        // A destination that writes its own header gets none.
        let mut w = EventWriter::new(Vec::new(), Format::Csv, true, c).without_csv_header();
        w.flow_ended(&flagged, EndReason::Closed, None)
            .expect("flow");
        w.stats(Timestamp::EPOCH, &Stats::default()).expect("stats");
        assert_eq!(lines(&w.into_inner()).len(), 1);
    }

    #[test]
    fn the_report_copy_gets_every_event_and_stdout_what_was_selected() {
        let copy = Shared::default();
        let mut only = VerdictSet::EMPTY;
        only.insert(Verdict::Undocumented);
        let mut w = EventWriter::new(Vec::new(), Format::Text, false, classifier())
            .select(only)
            .tee(Box::new(copy.clone()));
        let undocumented = flow(1, 4444, Verdict::Undocumented);
        let deprecated = flow(2, 4445, Verdict::Deprecated);
        for f in [&undocumented, &deprecated] {
            w.alert(f).expect("alert");
            w.flow_ended(f, EndReason::Closed, None).expect("flow");
        }
        w.stats(Timestamp::EPOCH, &Stats::default()).expect("stats");
        assert!(w.take_tee().expect("a copy").is_ok());
        assert_eq!(w.summary().undocumented_ports.len(), 1);
        let out = lines(&w.into_inner());
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].contains(" alert ") && out[0].contains(" undocumented "));
        let types: Vec<String> = copy
            .lines()
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
                format!("{} {}", v["event_type"], v["flow_id"])
            })
            .collect();
        assert_eq!(
            types,
            [
                "\"alert\" 1",
                "\"flow\" 1",
                "\"alert\" 2",
                "\"flow\" 2",
                "\"stats\" null"
            ]
        );
    }
}

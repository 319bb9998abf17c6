//! Storm control: when one source produces more than `--alert-burst` alerts
//! within a minute of packet time (a port scan), its further alerts are folded
//! into one `alert_summary` event per minute while the storm lasts, except
//! the source's first alert of each verdict, which is always written: a scan
//! of undocumented ports must not hide the one `wrong_transport` flow among
//! them. `flow` events still carry every flow's verdict: nothing is lost, and
//! the console stays readable.
//!
//! Which alerts are folded depends only on the alerts themselves, not on the
//! order the workers deliver them in: an alert is folded when the same source
//! had at least `burst` alerts in the minute before it (by first-packet time,
//! ties broken by flow id). Offline, the writer restores that order exactly:
//! it holds alerts until every worker's clock has passed them (workers report
//! their clock after each tick, see `pipeline::OutputMsg::Clock`) and takes
//! them oldest first, so the same capture folds the same alerts with 1 or 32
//! workers. Two limits, both stated in docs/guide.md: a capture whose timestamps
//! go backwards delivers some alerts after the clock passed them, and more
//! than [`MAX_HELD`] alerts waiting at once are released early; either can
//! shift which alert of a storm is the first folded. Live, alerts are decided
//! as they arrive (latency comes first), so the first folded alert of a storm
//! may differ between runs; the counts per minute do not, except at the edge.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroUsize;

use crate::flow::{EndReason, Flow};
use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::Severity;
use crate::verdict::Verdict;

use super::event::{AlertSummaryJson, PortCount, StormStats, TargetCount};

/// The storm window: "more than N alerts within a minute".
pub const WINDOW_NANOS: i64 = 60 * 1_000_000_000;
/// Alerts held for ordering at most; beyond, the oldest are decided at once.
pub const MAX_HELD: usize = 65_536;
/// Ports and targets listed in a summary.
const TOP: usize = 10;
/// Distinct ports or targets counted per window (memory bound under a flood).
const MAX_DISTINCT: usize = 65_536;
/// Sources remembered at once. A flood from a million spoofed addresses
/// would otherwise keep a million histories; beyond this, the sources with
/// the fewest recent alerts are forgotten first (see [`Storm::forget_quiet`]).
pub const MAX_SOURCES: usize = 131_072;

/// What the writer should write, in this order.
#[derive(Debug)]
pub enum StormOut {
    Alert(Flow),
    Summary(Box<AlertSummaryJson>),
    /// A flow event that waited for its alert to be decided, with its
    /// evidence file if one was written.
    End(Flow, EndReason, Option<String>),
}

/// Storm control's state: per source, the recent alerts and the open window.
pub struct Storm {
    burst: usize,
    /// Offline: alerts held until every worker's clock passed them.
    order: Option<Order>,
    /// Each worker's clock; their minimum is the time every alert before it
    /// has been delivered.
    clocks: Vec<Option<Timestamp>>,
    watermark: Option<Timestamp>,
    sources: HashMap<IpAddr, Source>,
    /// Open windows by (end, source), to close them as time passes.
    due: BinaryHeap<Reverse<(Timestamp, IpAddr)>>,
    last_prune: Timestamp,
    stats: StormStats,
}

/// A flow event waiting for its alert: the flow, why it ended, its evidence file.
type Ended = (Flow, EndReason, Option<String>);

#[derive(Default)]
struct Order {
    held: BinaryHeap<Reverse<Held>>,
    /// Held flow ids, with the flow event that arrived while the alert waited.
    waiting: HashMap<u64, Option<Ended>>,
}

/// A held alert, ordered by first packet, then flow id.
struct Held(Flow);

impl Held {
    fn key(&self) -> (Timestamp, u64) {
        (self.0.start, self.0.id)
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

#[derive(Default)]
struct Source {
    /// First-packet times of the source's last `burst` alerts, folded or not.
    recent: VecDeque<Timestamp>,
    /// The verdicts (bit [`Verdict::index`]) this source had an alert
    /// written for since it was last forgotten: the first alert of each
    /// verdict is written even in a storm, so a scan cannot hide a rarer one.
    written: u16,
    /// Boxed: most sources never storm, and a source costs 48 bytes this way.
    window: Option<Box<Window>>,
}

/// The alerts folded for one source during one minute.
struct Window {
    start: Timestamp,
    end: Timestamp,
    last: Timestamp,
    count: u64,
    severity: Severity,
    verdicts: [u64; Verdict::ALL.len()],
    ports: HashMap<(Transport, u16), u64>,
    targets: HashMap<IpAddr, u64>,
}

impl Window {
    fn new(start: Timestamp) -> Window {
        Window {
            start,
            end: Timestamp::from_nanos(start.as_nanos().saturating_add(WINDOW_NANOS)),
            last: start,
            count: 0,
            severity: Severity::Info,
            verdicts: [0; Verdict::ALL.len()],
            ports: HashMap::new(),
            targets: HashMap::new(),
        }
    }

    fn add(&mut self, flow: &Flow) {
        self.count += 1;
        self.last = self.last.max(flow.start);
        self.severity = self.severity.max(flow.severity);
        self.verdicts[flow.verdict.index()] += 1;
        count_capped(&mut self.ports, (flow.transport, flow.server.port));
        count_capped(&mut self.targets, flow.server.ip);
    }

    fn summary(self, src: IpAddr) -> AlertSummaryJson {
        let mut ports: Vec<PortCount> = self
            .ports
            .into_iter()
            .map(|((t, port), count)| PortCount {
                proto: t.eve_name(),
                port,
                count,
            })
            .collect();
        ports.sort_by(|a, b| (b.count, a.proto, a.port).cmp(&(a.count, b.proto, b.port)));
        ports.truncate(TOP);
        let mut targets: Vec<TargetCount> = self
            .targets
            .into_iter()
            .map(|(ip, count)| TargetCount { ip, count })
            .collect();
        targets.sort_by(|a, b| (b.count, a.ip).cmp(&(a.count, b.ip)));
        targets.truncate(TOP);
        AlertSummaryJson {
            timestamp: self.start,
            event_type: "alert_summary",
            src_ip: src,
            severity: self.severity,
            count: self.count,
            window_start: self.start,
            window_end: self.end,
            last_alert: self.last,
            verdicts: Verdict::ALL
                .iter()
                .filter(|v| self.verdicts[v.index()] > 0)
                .map(|v| (v.as_str(), self.verdicts[v.index()]))
                .collect::<BTreeMap<_, _>>(),
            ports,
            targets,
        }
    }
}

fn count_capped<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u64>, key: K) {
    if map.len() < MAX_DISTINCT {
        *map.entry(key).or_default() += 1;
    } else if let Some(n) = map.get_mut(&key) {
        *n += 1;
    }
}

impl Storm {
    /// `burst`: alerts a source may produce in a minute before folding (at
    /// least 1). `workers`: how many report their clocks. `ordered`: hold
    /// alerts to decide them in packet-time order (offline).
    pub fn new(burst: usize, workers: NonZeroUsize, ordered: bool) -> Storm {
        Storm {
            burst: burst.max(1),
            order: ordered.then(Order::default),
            clocks: vec![None; workers.get()],
            watermark: None,
            sources: HashMap::new(),
            due: BinaryHeap::new(),
            last_prune: Timestamp::EPOCH,
            stats: StormStats::default(),
        }
    }

    /// What was folded, once something was.
    pub fn stats(&self) -> Option<StormStats> {
        (self.stats.alerts_folded > 0).then(|| self.stats.clone())
    }

    /// A new alert: written, held for ordering, or folded.
    pub fn alert(&mut self, flow: Flow, out: &mut Vec<StormOut>) {
        let late = self.watermark.is_some_and(|w| flow.start < w);
        let Some(order) = self.order.as_mut().filter(|_| !late) else {
            self.decide(flow, out);
            return;
        };
        order.waiting.insert(flow.id, None);
        order.held.push(Reverse(Held(flow)));
        if order.held.len() > MAX_HELD {
            if let Some(Reverse(Held(oldest))) = order.held.pop() {
                self.decide(oldest, out);
            }
        }
    }

    /// A flow ended: its event is written now, or after its alert if that
    /// alert is still held (an alert always comes before its flow's event).
    pub fn flow_ended(
        &mut self,
        flow: Flow,
        reason: EndReason,
        evidence: Option<String>,
        out: &mut Vec<StormOut>,
    ) {
        match self
            .order
            .as_mut()
            .and_then(|o| o.waiting.get_mut(&flow.id))
        {
            Some(slot) => *slot = Some((flow, reason, evidence)),
            None => out.push(StormOut::End(flow, reason, evidence)),
        }
    }

    /// Worker `worker` has delivered everything before `ts`.
    pub fn clock(&mut self, worker: usize, ts: Timestamp, out: &mut Vec<StormOut>) {
        if let Some(c) = self.clocks.get_mut(worker) {
            *c = Some(c.map_or(ts, |c| c.max(ts)));
        }
        let Some(watermark) = self.clocks.iter().copied().min().flatten() else {
            return;
        };
        self.watermark = Some(watermark);
        self.release(Some(watermark), out);
        self.close_due(Some(watermark), out);
        if watermark.nanos_since(self.last_prune) >= WINDOW_NANOS {
            self.last_prune = watermark;
            self.sources.retain(|_, s| {
                s.window.is_some()
                    || s.recent
                        .back()
                        .is_some_and(|&t| watermark.nanos_since(t) < WINDOW_NANOS)
            });
        }
    }

    /// The input ended: decide every held alert, then close every window.
    pub fn finish(&mut self, out: &mut Vec<StormOut>) {
        self.release(None, out);
        if let Some(order) = &mut self.order {
            // Flow events whose alert was never seen (cannot happen, but
            // nothing may be lost).
            let mut left: Vec<Ended> = order.waiting.drain().filter_map(|(_, end)| end).collect();
            left.sort_by_key(|(f, _, _)| (f.start, f.id));
            out.extend(left.into_iter().map(|(f, r, e)| StormOut::End(f, r, e)));
        }
        self.close_due(None, out);
    }

    /// Decide held alerts older than `before` (all for `None`), oldest first.
    fn release(&mut self, before: Option<Timestamp>, out: &mut Vec<StormOut>) {
        loop {
            let Some(order) = &mut self.order else {
                return;
            };
            let ready = order
                .held
                .peek()
                .is_some_and(|Reverse(h)| before.is_none_or(|b| h.0.start < b));
            if !ready {
                return;
            }
            let Some(Reverse(Held(flow))) = order.held.pop() else {
                return;
            };
            let end = order.waiting.remove(&flow.id).flatten();
            self.decide(flow, out);
            if let Some((f, r, e)) = end {
                out.push(StormOut::End(f, r, e));
            }
        }
    }

    /// Write or fold one alert, in (near) packet-time order.
    fn decide(&mut self, flow: Flow, out: &mut Vec<StormOut>) {
        let t = flow.start;
        let src = flow.client.ip;
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&src) {
            self.forget_quiet();
        }
        let s = self.sources.entry(src).or_default();
        if let Some(w) = s.window.take_if(|w| t >= w.end) {
            self.stats.summaries += 1;
            out.push(StormOut::Summary(Box::new(w.summary(src))));
        }
        let over = s.recent.len() >= self.burst
            && s.recent
                .front()
                .is_some_and(|&first| t.nanos_since(first) < WINDOW_NANOS);
        s.recent.push_back(t);
        if s.recent.len() > self.burst {
            s.recent.pop_front();
        }
        let bit = 1u16 << flow.verdict.index();
        if !over || s.written & bit == 0 {
            s.written |= bit;
            out.push(StormOut::Alert(flow));
            return;
        }
        let window = s.window.get_or_insert_with(|| {
            let w = Window::new(t);
            self.due.push(Reverse((w.end, src)));
            Box::new(w)
        });
        window.add(&flow);
        self.stats.alerts_folded += 1;
    }

    /// Bound the sources remembered: forget those with fewer than k alerts
    /// in their history (k = 2, 4, 8…) and no open window, until at most
    /// half of [`MAX_SOURCES`] are left. A source forgotten with a few
    /// alerts starts counting afresh, so a storm it begins later is folded
    /// that many alerts later; sources already storming are kept. It depends
    /// only on the alerts decided so far, so it is the same for any
    /// `--workers`.
    fn forget_quiet(&mut self) {
        let mut k = 1;
        while self.sources.len() > MAX_SOURCES / 2 && k <= self.burst {
            k *= 2;
            self.sources
                .retain(|_, s| s.window.is_some() || s.recent.len() >= k);
        }
        self.sources.shrink_to(MAX_SOURCES);
    }

    /// Write the summaries of windows that ended by `now` (all for `None`).
    fn close_due(&mut self, now: Option<Timestamp>, out: &mut Vec<StormOut>) {
        while let Some(&Reverse((end, src))) = self.due.peek() {
            if now.is_some_and(|n| end > n) {
                return;
            }
            self.due.pop();
            let Some(s) = self.sources.get_mut(&src) else {
                continue;
            };
            // A window the source's own next alert already closed is gone.
            if let Some(w) = s.window.take_if(|w| w.end == end) {
                self.stats.summaries += 1;
                out.push(StormOut::Summary(Box::new(w.summary(src))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Endpoint;

    fn alert(id: u64, src: &str, port: u16, ms: i64) -> Flow {
        let ep = |ip: &str, port| Endpoint {
            ip: ip.parse().expect("ip"),
            port,
        };
        Flow::for_tests(
            id,
            Transport::Tcp,
            ep(src, 40000),
            ep("10.0.0.1", port),
            Timestamp::from_nanos(ms * 1_000_000),
            Verdict::Undocumented,
        )
    }

    /// Run alerts through storm control: (alerts written, summaries).
    fn run(storm: &mut Storm, alerts: &[Flow]) -> (Vec<u64>, Vec<AlertSummaryJson>) {
        let mut out = Vec::new();
        for a in alerts {
            storm.alert(*a, &mut out);
        }
        storm.finish(&mut out);
        let mut written = Vec::new();
        let mut summaries = Vec::new();
        for o in out {
            match o {
                StormOut::Alert(f) => written.push(f.id),
                StormOut::Summary(s) => summaries.push(*s),
                StormOut::End(..) => {}
            }
        }
        (written, summaries)
    }

    #[test]
    fn a_burst_is_written_and_the_rest_folded_per_minute() {
        // 25 alerts 1 s apart, burst 10: 10 written, then folded.
        let alerts: Vec<Flow> = (0..25)
            .map(|i| alert(i, "10.9.9.9", 1000 + i as u16, i as i64 * 1000))
            .collect();
        let (written, summaries) = run(&mut Storm::new(10, NonZeroUsize::MIN, false), &alerts);
        assert_eq!(written, (0..10).collect::<Vec<u64>>());
        assert_eq!(summaries.len(), 1);
        let s = &summaries[0];
        assert_eq!(s.count, 15);
        assert_eq!(s.window_start, Timestamp::from_nanos(10_000_000_000));
        assert_eq!(s.last_alert, Timestamp::from_nanos(24_000_000_000));
        assert_eq!(s.ports.len(), TOP);
        assert_eq!(s.targets[0].count, 15);
        assert_eq!(s.verdicts.get("undocumented"), Some(&15));
    }

    #[test]
    fn a_scans_first_alert_of_each_verdict_is_written() {
        // 40 undocumented probes, burst 10; the 30th probe is the scan's only
        // wrong_transport flow, the 35th its second one.
        let mut alerts: Vec<Flow> = (0..40)
            .map(|i| alert(i, "10.9.9.9", 1000 + i as u16, i as i64 * 10))
            .collect();
        alerts[30].verdict = Verdict::WrongTransport;
        alerts[35].verdict = Verdict::WrongTransport;
        let (written, summaries) = run(&mut Storm::new(10, NonZeroUsize::MIN, false), &alerts);
        let mut expected: Vec<u64> = (0..10).collect();
        expected.push(30);
        assert_eq!(written, expected, "the rarer verdict is alerted once");
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].count, 40 - 11);
        assert_eq!(summaries[0].verdicts.get("wrong_transport"), Some(&1));
        assert_eq!(summaries[0].verdicts.get("undocumented"), Some(&28));
    }

    #[test]
    fn a_flood_of_sources_is_forgotten_quietest_first() {
        let mut storm = Storm::new(10, NonZeroUsize::MIN, false);
        let mut out = Vec::new();
        // A storm under way: 20 alerts in 2 s, 10 of them folded.
        for i in 0..20 {
            storm.alert(alert(i, "10.9.9.9", 1000, i as i64 * 100), &mut out);
        }
        // Then a spoofed flood: one alert from each of 2.5 × MAX_SOURCES addresses.
        let flood = MAX_SOURCES * 5 / 2;
        for i in 0..flood {
            let ip = format!("10.{}.{}.{}", 64 + i / 65_536, (i / 256) % 256, i % 256);
            let ms = 2_000 + (i as i64) / 100;
            storm.alert(alert(1_000 + i as u64, &ip, 23, ms), &mut out);
            assert!(storm.sources.len() <= MAX_SOURCES);
        }
        // The storming source was kept: its next alerts are still folded.
        for i in 0..5 {
            storm.alert(alert(10_000_000 + i, "10.9.9.9", 1000, 9_000), &mut out);
        }
        storm.finish(&mut out);
        let written = out
            .iter()
            .filter(|o| matches!(o, StormOut::Alert(_)))
            .count();
        assert_eq!(written, 10 + flood);
        assert_eq!(storm.stats.alerts_folded, 10 + 5);
    }

    #[test]
    fn a_slow_source_and_other_sources_are_never_folded() {
        // One alert every 7 s: at most 9 in any minute, under a burst of 10.
        let mut alerts: Vec<Flow> = (0..40)
            .map(|i| alert(i, "10.9.9.9", 80, i as i64 * 7000))
            .collect();
        alerts.extend((100..110).map(|i| alert(i, "10.8.8.8", 80, 1)));
        let (written, summaries) = run(&mut Storm::new(10, NonZeroUsize::MIN, false), &alerts);
        assert_eq!(written.len(), 50);
        assert!(summaries.is_empty());
    }

    #[test]
    fn a_long_storm_gives_one_summary_a_minute() {
        // 10 alerts a second for 150 s, burst 100.
        let alerts: Vec<Flow> = (0..1500)
            .map(|i| alert(i, "10.9.9.9", (i % 3000) as u16, i as i64 * 100))
            .collect();
        let (written, summaries) = run(&mut Storm::new(100, NonZeroUsize::MIN, false), &alerts);
        assert_eq!(written.len(), 100);
        assert_eq!(
            summaries.len(),
            3,
            "{:?}",
            summaries.iter().map(|s| s.count).collect::<Vec<_>>()
        );
        assert_eq!(summaries.iter().map(|s| s.count).sum::<u64>(), 1400);
        for w in summaries.windows(2) {
            assert_eq!(w[0].window_end, w[1].window_start);
        }
    }

    #[test]
    fn held_alerts_are_decided_in_packet_time_order_whatever_the_arrival() {
        // Two workers deliver interleaved, each in its own order: the same
        // alerts are folded as when they come sorted.
        let alerts: Vec<Flow> = (0..30)
            .map(|i| alert(i, "10.9.9.9", 2000 + i as u16, i as i64 * 10))
            .collect();
        let sorted = run(&mut Storm::new(10, NonZeroUsize::MIN, true), &alerts).0;
        let mut storm = Storm::new(10, NonZeroUsize::new(2).expect("non-zero"), true);
        let mut out = Vec::new();
        let (even, odd): (Vec<Flow>, Vec<Flow>) = alerts.iter().partition(|f| f.id % 2 == 0);
        // Worker 1 runs ahead of worker 0.
        for f in &odd {
            storm.alert(*f, &mut out);
        }
        storm.clock(1, Timestamp::from_nanos(1_000_000_000), &mut out);
        assert!(out.is_empty(), "nothing released before worker 0's clock");
        for f in &even {
            storm.alert(*f, &mut out);
        }
        storm.clock(0, Timestamp::from_nanos(1_000_000_000), &mut out);
        storm.finish(&mut out);
        let written: Vec<u64> = out
            .iter()
            .filter_map(|o| match o {
                StormOut::Alert(f) => Some(f.id),
                _ => None,
            })
            .collect();
        assert_eq!(written, sorted);
        assert_eq!(written, (0..10).collect::<Vec<u64>>());
    }

    #[test]
    fn a_flow_event_waits_for_its_held_alert() {
        let mut storm = Storm::new(10, NonZeroUsize::MIN, true);
        let mut out = Vec::new();
        let a = alert(7, "10.9.9.9", 80, 5);
        storm.alert(a, &mut out);
        storm.flow_ended(a, EndReason::Closed, None, &mut out);
        let other = alert(8, "10.9.9.8", 80, 5);
        storm.flow_ended(other, EndReason::Closed, None, &mut out);
        assert!(matches!(out.as_slice(), [StormOut::End(f, _, _)] if f.id == 8));
        out.clear();
        storm.clock(0, Timestamp::from_nanos(1_000_000_000), &mut out);
        assert!(
            matches!(out.as_slice(), [StormOut::Alert(x), StormOut::End(y, _, _)] if x.id == 7 && y.id == 7)
        );
    }
}

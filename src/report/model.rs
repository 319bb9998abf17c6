//! Events files -> one [`Model`] of the traffic: flows per verdict, who talked
//! to whom, which rules saw traffic, the flagged flows, and how complete the
//! capture was. Reading is line by line and never stops at a bad line.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::Verdict;

use super::edges::{edge_key, edge_mut, fold_hosts};
use super::events::{Event, FlowRecord};
use super::fleet::{merge_copies, Fleet, SensorSeen, Sight, DEFAULT_DEDUP_WINDOW};
use super::servers::Servers;
use super::stats::StatsTotals;
use super::{LineError, ReportError};

/// A line longer than this is refused (and skipped) instead of being buffered
/// whole: events are well under 1 KiB; a stats event with thousands of input
/// files is the largest honest line.
pub const MAX_LINE_BYTES: usize = 4 << 20;
/// Flagged flows kept for the table and the timeline, the most severe first;
/// the rest are counted. Bounds memory and the page's size on a port scan.
pub const MAX_FLAGGED: usize = 10_000;
/// Malformed lines kept with their message; the rest are counted.
pub const MAX_LINE_ERRORS: usize = 100;
/// Pairs of hosts (with service and verdict) counted one by one. Beyond it
/// the quietest hosts are folded into "other hosts" (see [`fold_hosts`]), so
/// a flood from millions of spoofed sources costs a bounded few megabytes.
pub const MAX_EDGES: usize = 100_000;
/// Hosts per side kept exact when the others are folded.
pub const KEEP_HOSTS: usize = 1_000;
/// A malformed line's message is cut to this many characters.
const MAX_MESSAGE_CHARS: usize = 240;

/// What the report knows once every input is read.
#[derive(Debug, Default)]
pub struct Model {
    pub inputs: Vec<InputSummary>,
    /// The first [`MAX_LINE_ERRORS`] malformed lines.
    pub line_errors: Vec<LineError>,
    pub bad_lines: u64,
    pub alert_events: u64,
    pub flow_events: u64,
    pub stats_events: u64,
    /// Events of a type this version does not know.
    pub other_events: u64,
    /// Flags that had an alert but no `flow` event (no `--flows`, or still open).
    pub alerts_without_flow: u64,
    /// The last stats event of each input without `host`, and the latest of
    /// each named sensor, added up; `None` if there was none.
    pub stats: Option<StatsTotals>,
    /// Per sensor named by the events (`host`), what it saw.
    pub sensors: BTreeMap<String, SensorSeen>,
    /// Flows seen by more than one sensor (each counted once).
    pub multi_sensor_flows: u64,
    /// Events naming a sensor beyond [`super::fleet::MAX_SENSORS`], read as unnamed.
    pub sensors_over_limit: u64,
    /// How far apart two sensors' first packets of one flow may be.
    pub dedup_window: Duration,
    /// `report --since/--until`: only flows that overlap it count.
    pub window: (Option<Timestamp>, Option<Timestamp>),
    /// Flows left out by `window`.
    pub outside_window: u64,
    /// Flows per verdict, counted from the events.
    pub verdicts: BTreeMap<Verdict, u64>,
    pub flows: u64,
    /// The kept flagged flows (see [`MAX_FLAGGED`]), most severe first, then by time.
    pub flagged: Vec<FlowRecord>,
    pub flagged_total: u64,
    /// Verdict and first packet of every flagged flow (16 bytes each), so the
    /// timeline shows them all when the table cannot list them all.
    pub flagged_starts: Vec<(Verdict, Timestamp)>,
    /// Traffic per client, server, service and verdict (at most about
    /// [`MAX_EDGES`]: see [`fold_hosts`]).
    pub edges: BTreeMap<EdgeKey, Usage>,
    /// Traffic per rule id named in the events.
    pub rules: BTreeMap<String, Usage>,
    /// First packet to last packet over every flow.
    pub span: Option<(Timestamp, Timestamp)>,
    /// The hosts that accepted documented flows, and on which ports.
    pub servers: Servers,
}

/// One input file (or stdin) and what was read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSummary {
    pub name: String,
    pub lines: u64,
    pub events: u64,
    pub bad_lines: u64,
    /// The read error that ended this input early.
    pub error: Option<String>,
}

/// Who talked to whom, on what, with which verdict. A side is `None` when
/// its host was folded into "other hosts".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EdgeKey {
    pub client: Option<IpAddr>,
    pub server: Option<IpAddr>,
    pub transport: Transport,
    pub port: u16,
    pub verdict: Verdict,
}

/// How much traffic a rule, a pair of hosts or a service saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub flows: u64,
    /// Flows whose verdict is not `documented`.
    pub flagged: u64,
    /// Packets and bytes of the flows that had a `flow` event.
    pub packets: u64,
    pub bytes: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

impl Usage {
    /// Add `other`'s counts (two edges folded into one).
    /// Another sensor's copy of a counted flow: only what it has more.
    fn widen(&mut self, extra_packets: u64, extra_bytes: u64, r: &FlowRecord) {
        self.packets = self.packets.saturating_add(extra_packets);
        self.bytes = self.bytes.saturating_add(extra_bytes);
        self.first = Some(self.first.map_or(r.first, |t| t.min(r.first)));
        self.last = Some(self.last.map_or(r.last, |t| t.max(r.last)));
    }

    pub(super) fn merge(&mut self, other: &Usage) {
        self.flows += other.flows;
        self.flagged += other.flagged;
        self.packets = self.packets.saturating_add(other.packets);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.first = self.first.min(other.first).or(self.first).or(other.first);
        self.last = self.last.max(other.last);
    }

    pub fn add(&mut self, r: &FlowRecord) {
        self.flows += 1;
        if r.verdict != Verdict::Documented {
            self.flagged += 1;
        }
        self.packets = self.packets.saturating_add(r.packets.unwrap_or(0));
        self.bytes = self.bytes.saturating_add(r.bytes.unwrap_or(0));
        self.first = Some(self.first.map_or(r.first, |t| t.min(r.first)));
        self.last = Some(self.last.map_or(r.last, |t| t.max(r.last)));
    }
}

/// What [`ModelBuilder::on_flow`] calls with each flow.
type FlowVisitor = Box<dyn FnMut(&FlowRecord)>;

/// An alert's flow: its sensor, flow id and first packet.
type PendingKey = (Option<Arc<str>>, u64, Timestamp);

/// Reads events into a [`Model`].
#[derive(Default)]
pub struct ModelBuilder {
    model: Model,
    /// Alerts waiting for their flow's `flow` event.
    pending: HashMap<PendingKey, FlowRecord>,
    /// The sensors named, and the flows two of them may both have seen.
    fleet: Fleet,
    /// Sees every flow as it is counted (see [`ModelBuilder::on_flow`]).
    visitor: Option<FlowVisitor>,
}

impl std::fmt::Debug for ModelBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelBuilder")
            .field("model", &self.model)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl ModelBuilder {
    pub fn new() -> Self {
        Self::default().dedup_window(DEFAULT_DEDUP_WINDOW)
    }

    /// Two sensors' flows with the same Community ID whose first packets are
    /// at most `window` apart are one flow (`report --dedup-window`).
    pub fn dedup_window(mut self, window: Duration) -> Self {
        self.fleet = Fleet::new(window);
        self.model.dedup_window = window;
        self
    }

    /// Also hand every flow to `visit` as it is counted (an alert without its
    /// `flow` event at [`ModelBuilder::finish`]): `portmatrix policy` reads
    /// events this way, with the model's lenient reading and its line errors,
    /// without keeping every flow.
    pub fn on_flow(mut self, visit: impl FnMut(&FlowRecord) + 'static) -> Self {
        self.visitor = Some(Box::new(visit));
        self
    }

    /// Read one events file to its end. Malformed lines are recorded and
    /// skipped; a read error ends this input (what came before it counts).
    pub fn read(&mut self, name: &str, mut reader: impl BufRead) -> Result<(), ReportError> {
        self.model.inputs.push(InputSummary {
            name: name.to_string(),
            lines: 0,
            events: 0,
            bad_lines: 0,
            error: None,
        });
        let mut last_stats: Option<Map<String, Value>> = None;
        let result = self.read_lines(name, &mut reader, &mut last_stats);
        if let Some(stats) = last_stats {
            self.model
                .stats
                .get_or_insert_with(StatsTotals::default)
                .add(&stats);
        }
        if let (Err(e), Some(input)) = (&result, self.model.inputs.last_mut()) {
            input.error = Some(e.to_string());
        }
        result
    }

    fn read_lines(
        &mut self,
        name: &str,
        reader: &mut impl BufRead,
        last_stats: &mut Option<Map<String, Value>>,
    ) -> Result<(), ReportError> {
        let read_err = |source| ReportError::Read {
            name: name.to_string(),
            source,
        };
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            // `&mut R` is itself a reader: take from it, not from (a move of) `R`.
            let n = Read::take(&mut *reader, MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(read_err)?;
            if n == 0 {
                return Ok(());
            }
            line_no += 1;
            if let Some(input) = self.model.inputs.last_mut() {
                input.lines = line_no;
            }
            if buf.len() > MAX_LINE_BYTES {
                skip_line(reader).map_err(read_err)?;
                self.bad_line(
                    name,
                    line_no,
                    format!("line longer than {MAX_LINE_BYTES} bytes"),
                );
                continue;
            }
            let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    let message = format!(
                        "not UTF-8 text (bad byte at column {})",
                        e.valid_up_to() + 1
                    );
                    self.bad_line(name, line_no, message);
                    continue;
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            match self.event(text, last_stats) {
                Ok(()) => {
                    if let Some(input) = self.model.inputs.last_mut() {
                        input.events += 1;
                    }
                }
                Err(message) => self.bad_line(name, line_no, message),
            }
        }
    }

    fn bad_line(&mut self, name: &str, line: u64, message: String) {
        // Parser messages quote the bad value: keep them short and free of
        // control characters (a hostile file must not write to the terminal).
        let clipped = message.chars().nth(MAX_MESSAGE_CHARS).is_some();
        let mut message: String = message
            .chars()
            .take(MAX_MESSAGE_CHARS)
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect();
        if clipped {
            message.push('…');
        }
        self.model.bad_lines += 1;
        if let Some(input) = self.model.inputs.last_mut() {
            input.bad_lines += 1;
        }
        if self.model.line_errors.len() < MAX_LINE_ERRORS {
            self.model.line_errors.push(LineError {
                source: name.to_string(),
                line,
                message,
            });
        }
    }

    fn event(
        &mut self,
        text: &str,
        last_stats: &mut Option<Map<String, Value>>,
    ) -> Result<(), String> {
        match Event::parse(text)? {
            Event::Alert(line) => {
                let mut record = line.into_record(false)?;
                self.intern(&mut record);
                self.model.alert_events += 1;
                let key = (record.sensor.clone(), record.flow_id, record.first);
                self.pending.insert(key, record);
            }
            Event::Flow(mut line) => {
                let roles = line.dest_roles.take();
                let mut record = line.into_record(true)?;
                self.intern(&mut record);
                self.model.flow_events += 1;
                let key = (record.sensor.clone(), record.flow_id, record.first);
                if let Some(alert) = self.pending.remove(&key) {
                    if record.evidence.is_none() {
                        record.evidence = alert.evidence;
                    }
                }
                self.fold(record, roles);
            }
            Event::Stats {
                stats,
                timestamp,
                host,
            } => {
                let named = match host.filter(|h| !h.is_empty()) {
                    Some(h) => {
                        let at = timestamp
                            .as_deref()
                            .ok_or("a stats event with `host` needs `timestamp`")?
                            .parse::<Timestamp>()
                            .map_err(|e| format!("field `timestamp`: {e}"))?;
                        self.sensor(&h).map(|(i, _)| (i, h, at))
                    }
                    None => None,
                };
                self.model.stats_events += 1;
                match named {
                    Some((i, h, at)) => {
                        if let Some(s) = self.model.sensors.get_mut(&h) {
                            s.saw(at);
                        }
                        self.fleet.stats(i, at, stats);
                    }
                    // Stats are cumulative: the last one of an input counts.
                    None => *last_stats = Some(stats),
                }
            }
            Event::Other => self.model.other_events += 1,
        }
        Ok(())
    }

    /// Sensor `name`'s index and shared name, its row made on first sight;
    /// `None` (and counted) beyond [`super::fleet::MAX_SENSORS`].
    fn sensor(&mut self, name: &str) -> Option<(u32, Arc<str>)> {
        let found = self.fleet.sensor(name);
        match found {
            Some(_) if !self.model.sensors.contains_key(name) => {
                self.model
                    .sensors
                    .insert(name.to_string(), SensorSeen::default());
            }
            Some(_) => {}
            None => self.model.sensors_over_limit += 1,
        }
        found
    }

    /// The record's sensor name replaced by the one shared copy (a pending
    /// alert then costs no allocation for it).
    fn intern(&mut self, r: &mut FlowRecord) {
        if let Some(name) = r.sensor.take() {
            r.sensor = Some(self.sensor(&name).map_or(name, |(_, shared)| shared));
        }
    }

    /// Only flows that overlap `[since, until)` count (`report --since/--until`).
    pub fn time_window(mut self, since: Option<Timestamp>, until: Option<Timestamp>) -> Self {
        self.model.window = (since, until);
        self
    }

    /// Count one flow; `false` when it was another sensor's copy of a
    /// counted flow (only what it adds is counted) or outside the window.
    fn fold(&mut self, mut r: FlowRecord, roles: Option<Vec<String>>) -> bool {
        let (since, until) = self.model.window;
        if since.is_some_and(|t| r.last < t) || until.is_some_and(|t| r.first >= t) {
            self.model.outside_window += 1;
            return false;
        }
        let flagged = r.verdict != Verdict::Documented;
        let host = r.sensor.as_deref().and_then(|name| {
            let s = self.model.sensors.get_mut(name)?;
            s.flows += 1;
            s.flagged += u64::from(flagged);
            *s.verdicts.entry(r.verdict).or_default() += 1;
            s.saw(r.first);
            s.saw(r.last);
            self.fleet.index_of(name)
        });
        if let Some(h) = host {
            let slot = u32::try_from(self.model.flagged_starts.len()).ok();
            match self.fleet.sight(&r, h, slot.filter(|_| flagged)) {
                Sight::New(copies) => r.copies = copies,
                Sight::Copy {
                    id,
                    extra_packets,
                    extra_bytes,
                    moved_start,
                    second_sensor,
                } => {
                    let m = &mut self.model;
                    m.multi_sensor_flows += u64::from(second_sensor);
                    widen_span(&mut m.span, &r);
                    if let Some(u) = edge_mut(&mut m.edges, edge_key(&r)) {
                        u.widen(extra_packets, extra_bytes, &r);
                    }
                    for rule in &r.rule_ids {
                        if let Some(u) = m.rules.get_mut(rule.as_str()) {
                            u.widen(extra_packets, extra_bytes, &r);
                        }
                    }
                    if !flagged {
                        m.servers.note_roles(r.server.0, roles);
                    }
                    if let Some((slot, t)) = moved_start {
                        if let Some(s) = m.flagged_starts.get_mut(slot as usize) {
                            s.1 = t;
                        }
                    }
                    if flagged {
                        r.copies = Some(id);
                        m.flagged.push(r);
                        if m.flagged.len() >= 2 * MAX_FLAGGED {
                            keep_most_severe(&mut m.flagged);
                        }
                    }
                    return false;
                }
            }
        }
        if let Some(visit) = &mut self.visitor {
            visit(&r);
        }
        let m = &mut self.model;
        if !flagged {
            m.servers
                .add(r.server.0, (r.transport, r.server.1), &r.rule_ids, roles);
        }
        m.flows += 1;
        *m.verdicts.entry(r.verdict).or_default() += 1;
        widen_span(&mut m.span, &r);
        m.edges.entry(edge_key(&r)).or_default().add(&r);
        if m.edges.len() > MAX_EDGES {
            fold_hosts(&mut m.edges);
        }
        for id in &r.rule_ids {
            if let Some(u) = m.rules.get_mut(id.as_str()) {
                u.add(&r);
            } else {
                m.rules.entry(id.clone()).or_default().add(&r);
            }
        }
        if r.verdict != Verdict::Documented {
            m.flagged_total += 1;
            m.flagged_starts.push((r.verdict, r.first));
            m.flagged.push(r);
            if m.flagged.len() >= 2 * MAX_FLAGGED {
                keep_most_severe(&mut m.flagged);
            }
        }
        true
    }

    /// Alerts that never got their `flow` event become flows of their own;
    /// each named sensor's latest stats are added up; the copies of flagged
    /// flows seen by several sensors become one record each.
    pub fn finish(mut self) -> Model {
        let mut left: Vec<FlowRecord> = self.pending.drain().map(|(_, r)| r).collect();
        // In a total order: which copy of a flow is folded first must not
        // depend on the order the alerts came in.
        left.sort_by(|a, b| (a.first, rank(a)).cmp(&(b.first, rank(b))));
        for r in left {
            if self.fold(r, None) {
                self.model.alerts_without_flow += 1;
            }
        }
        let mut named = self.fleet.take_stats();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, stats) in named {
            let mut own = StatsTotals::default();
            own.add(&stats);
            self.model
                .stats
                .get_or_insert_with(StatsTotals::default)
                .add(&stats);
            self.model.sensors.entry(name).or_default().stats = Some(own);
        }
        let m = &mut self.model;
        keep_most_severe(&mut m.flagged);
        m.flagged = merge_copies(std::mem::take(&mut m.flagged));
        keep_most_severe(&mut m.flagged);
        self.model
    }
}

fn widen_span(span: &mut Option<(Timestamp, Timestamp)>, r: &FlowRecord) {
    *span = Some(match *span {
        None => (r.first, r.last),
        Some((a, b)) => (a.min(r.first), b.max(r.last)),
    });
}

/// Flagged flows most severe first, then by time; every field takes part,
/// so two records never tie (two sensors' flows share flow ids).
fn rank(r: &FlowRecord) -> impl Ord + '_ {
    (
        (Reverse(r.severity), r.first, r.flow_id, r.last, &r.sensor),
        (r.client, r.server, r.transport, r.verdict, &r.rule_ids),
        (
            r.vlan,
            r.packets,
            r.bytes,
            &r.evidence,
            &r.community_id,
            &r.also_seen_by,
        ),
    )
}

/// Sort flagged flows by [`rank`] and keep [`MAX_FLAGGED`]. A total order,
/// so the kept set does not depend on the order of the input.
fn keep_most_severe(flagged: &mut Vec<FlowRecord>) {
    flagged.sort_by(|a, b| rank(a).cmp(&rank(b)));
    flagged.truncate(MAX_FLAGGED);
}

/// Consume the rest of an over-long line.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        reader.consume(n);
    }
}

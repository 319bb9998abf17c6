//! The lines of an events file, read back with serde. These types are local to
//! the report on purpose: they accept the output contract of `analyze --json`
//! (see `crate::output`) and ignore fields they do not know, because the
//! contract grows only by adding fields (live mode will add some).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::Severity;
use crate::verdict::Verdict;

/// One line of an events file.
#[derive(Debug, Deserialize)]
#[serde(tag = "event_type", rename_all = "lowercase")]
pub enum Event {
    /// A flow classified as anything but `documented`, at its first packet.
    Alert(FlowLine),
    /// A flow that ended (`--flows`), with its counters.
    Flow(FlowLine),
    /// The run's counters; its fields are read generically so new counters
    /// (drops, queue overflows) show up in the report without a code change.
    /// `host` names the sensor (`--sensor-name`): of a sensor's stats events
    /// the latest counts, by `timestamp`, whatever order they arrive in.
    Stats {
        stats: Map<String, Value>,
        timestamp: Option<String>,
        host: Option<String>,
    },
    /// An event type this version does not know: counted, not an error.
    #[serde(other)]
    Other,
}

/// The fields of an `alert` or `flow` event that the report uses.
#[derive(Debug, Deserialize)]
pub struct FlowLine {
    pub timestamp: String,
    pub flow_id: u64,
    pub proto: String,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub verdict: Verdict,
    pub severity: Severity,
    #[serde(default)]
    pub rule_ids: Vec<String>,
    pub vlan: Option<u16>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub pkts_toserver: Option<u64>,
    pub pkts_toclient: Option<u64>,
    pub bytes_toserver: Option<u64>,
    pub bytes_toclient: Option<u64>,
    /// A capture file holding the flow's packets (a path), when the writer kept one.
    pub evidence: Option<String>,
    /// With `--site`: the listening side's systems (`["unknown"]` outside the inventory).
    pub dest_roles: Option<Vec<String>>,
    /// The sensor that wrote the event (`--sensor-name`, EVE's `host`).
    pub host: Option<String>,
    /// The flow's Community ID: with `host`, how two sensors' copies of one
    /// flow are recognised.
    pub community_id: Option<String>,
}

/// The longest sensor name or Community ID accepted: names are short; a
/// longer one is a damaged or hostile line.
pub const MAX_NAME_BYTES: usize = 255;

/// A flow as the report sees it, from a `flow` event or, when none came, its alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    pub flow_id: u64,
    pub transport: Transport,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub verdict: Verdict,
    pub severity: Severity,
    pub rule_ids: Vec<String>,
    pub vlan: Option<u16>,
    pub first: Timestamp,
    pub last: Timestamp,
    /// Packets and bytes both ways; `None` for an alert with no `flow` event.
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    pub evidence: Option<String>,
    /// The sensor that saw the flow (`host`), shared by its records; of a
    /// flow several sensors saw, the smallest name.
    pub sensor: Option<Arc<str>>,
    /// The other sensors that saw it (empty, no allocation, for most flows).
    pub also_seen_by: Vec<Arc<str>>,
    /// A hash of the Community ID (8 bytes, where the text would be 60 with
    /// its allocation): only compared, never shown.
    pub community_id: Option<u64>,
    /// Which copies of one flow (seen by several sensors) this record is one
    /// of; merged into one record before the page is drawn.
    pub(crate) copies: Option<u32>,
}

impl Event {
    /// Parse one line. The message of an error has no location: the caller
    /// knows the file and line, serde's "line 1" would only confuse.
    pub fn parse(line: &str) -> Result<Event, String> {
        serde_json::from_str(line).map_err(|e| {
            if e.is_eof() {
                // A run killed mid-write leaves its last line cut; `live -o`
                // starts the next run on a new line, so only this one is lost.
                return format!(
                    "column {}: the line is cut short (was the run writing it killed?)",
                    e.column()
                );
            }
            let text = e.to_string();
            let message = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(m, _)| m);
            format!("column {}: {message}", e.column())
        })
    }
}

impl FlowLine {
    /// Check what serde could not (timestamps, transport, counters) and
    /// build the record. `flow` events must carry their counters.
    pub fn into_record(self, is_flow: bool) -> Result<FlowRecord, String> {
        let transport = match self.proto.to_ascii_uppercase().as_str() {
            "TCP" => Transport::Tcp,
            "UDP" => Transport::Udp,
            _ => {
                return Err(format!(
                    "proto `{}`: expected TCP or UDP",
                    clip(&self.proto)
                ))
            }
        };
        let parse = |field: &str, s: &str| {
            s.parse::<Timestamp>()
                .map_err(|e| format!("field `{field}`: {e}"))
        };
        let timestamp = parse("timestamp", &self.timestamp)?;
        for (field, value) in [("host", &self.host), ("community_id", &self.community_id)] {
            if value.as_ref().is_some_and(|v| v.len() > MAX_NAME_BYTES) {
                return Err(format!(
                    "field `{field}`: longer than {MAX_NAME_BYTES} bytes"
                ));
            }
        }
        let (first, last, packets, bytes) = if is_flow {
            let missing = |field: &str| format!("a flow event needs `{field}`");
            let start = self.start.as_deref().ok_or_else(|| missing("start"))?;
            let end = self.end.as_deref().ok_or_else(|| missing("end"))?;
            let count = |v: Option<u64>, field: &str| v.ok_or_else(|| missing(field));
            let packets = count(self.pkts_toserver, "pkts_toserver")?
                .saturating_add(count(self.pkts_toclient, "pkts_toclient")?);
            let bytes = count(self.bytes_toserver, "bytes_toserver")?
                .saturating_add(count(self.bytes_toclient, "bytes_toclient")?);
            let (first, last) = (parse("start", start)?, parse("end", end)?);
            if last < first {
                return Err("the flow's `end` is before its `start`".into());
            }
            (first, last, Some(packets), Some(bytes))
        } else {
            (timestamp, timestamp, None, None)
        };
        Ok(FlowRecord {
            flow_id: self.flow_id,
            transport,
            client: (self.src_ip, self.src_port),
            server: (self.dest_ip, self.dest_port),
            verdict: self.verdict,
            severity: self.severity,
            rule_ids: self.rule_ids,
            vlan: self.vlan,
            first,
            last,
            packets,
            bytes,
            evidence: self.evidence.filter(|e| !e.is_empty()),
            sensor: self.host.filter(|h| !h.is_empty()).map(Arc::from),
            also_seen_by: Vec::new(),
            community_id: self.community_id.filter(|c| !c.is_empty()).map(|c| {
                let mut h = DefaultHasher::new();
                c.hash(&mut h);
                h.finish()
            }),
            copies: None,
        })
    }
}

/// At most 64 characters of a hostile value, for an error message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = r#"{"timestamp":"2021-08-02T09:00:18.010000Z","event_type":"flow","flow_id":3785479965594515,"community_id":"1:x=","proto":"TCP","src_ip":"10.10.1.11","src_port":51234,"dest_ip":"10.10.1.10","dest_port":8100,"verdict":"internal_only","severity":"high","rule_ids":["2.2.2#19"],"direction":"handshake","start":"2021-08-02T09:00:18.000000Z","end":"2021-08-02T09:00:18.010000Z","pkts_toserver":6,"pkts_toclient":4,"bytes_toserver":367,"bytes_toclient":257,"tcp_state":"closed","reason":"closed","some_future_field":[1,2]}"#;

    #[test]
    fn a_flow_event_becomes_a_record_with_its_counters() {
        let Ok(Event::Flow(line)) = Event::parse(FLOW) else {
            panic!("not a flow event");
        };
        let r = line.into_record(true).expect("valid flow");
        assert_eq!(r.transport, Transport::Tcp);
        assert_eq!(r.verdict, Verdict::InternalOnly);
        assert_eq!(r.packets, Some(10));
        assert_eq!(r.bytes, Some(624));
        assert_eq!(r.last.nanos_since(r.first), 10_000_000);
        assert_eq!(r.rule_ids, ["2.2.2#19"]);
    }

    #[test]
    fn a_line_cut_short_says_so() {
        let Err(e) = Event::parse(r#"{"timestamp":"2021-08-02T09:00:00Z","event_ty"#) else {
            panic!("a torn line is an error");
        };
        assert!(e.contains("cut short"), "{e}");
    }

    #[test]
    fn unknown_event_types_are_not_errors() {
        assert!(matches!(
            Event::parse(r#"{"event_type":"heartbeat","x":1}"#),
            Ok(Event::Other)
        ));
    }

    #[test]
    fn errors_say_what_is_wrong_without_serde_line_numbers() {
        for (line, needle) in [
            ("{not json", "column"),
            (r#"{"event_type":"flow"}"#, "missing field"),
            (r#"[1,2]"#, "column"),
            (&FLOW.replace("internal_only", "bogus"), "unknown variant"),
            (&FLOW.replace("10.10.1.11", "10.10.1.999"), "invalid IP"),
        ] {
            let e = Event::parse(line).expect_err(line);
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains("at line"), "{e}");
        }
    }

    #[test]
    fn records_refuse_bad_timestamps_protocols_and_missing_counters() {
        for (line, needle) in [
            (FLOW.replace("\"TCP\"", "\"SCTP\""), "proto `SCTP`"),
            (
                FLOW.replace("2021-08-02T09:00:18.000000Z", "soon"),
                "field `start`",
            ),
            (FLOW.replace(",\"pkts_toclient\":4", ""), "pkts_toclient"),
            (
                FLOW.replace(
                    "\"start\":\"2021-08-02T09:00:18.000000Z\"",
                    "\"start\":\"2021-08-02T09:00:19.000000Z\"",
                ),
                "before its `start`",
            ),
        ] {
            let Ok(Event::Flow(l)) = Event::parse(&line) else {
                panic!("{line}");
            };
            let e = l.into_record(true).expect_err(&line);
            assert!(e.contains(needle), "{e}");
        }
    }
}

//! JSON lines: every event as one object on a line, the serde types of
//! `super::super::event` as they are. The contract of `--json`, and what
//! `analyze --report` keeps for its page.

use std::io::{self, Write};

use serde::Serialize;

use super::Printer;
use crate::output::event::{AlertSummaryJson, FlowEventJson, StatsEventJson};

/// Writes each event as one JSON object and a newline.
pub struct Json<W> {
    out: W,
    /// `{"host":"NAME",`, which starts every event when the sensor is named.
    host: Option<Vec<u8>>,
}

impl<W: Write> Json<W> {
    pub fn new(out: W) -> Json<W> {
        Json { out, host: None }
    }

    /// Start every event with `"host": name` (EVE's name for the sensor),
    /// so that events from a fleet of sensors tell where they were seen.
    pub fn host(mut self, name: &str) -> Json<W> {
        let mut prefix = b"{\"host\":".to_vec();
        // Serializing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut prefix, name);
        prefix.push(b',');
        self.host = Some(prefix);
        self
    }

    fn line(&mut self, event: &impl Serialize) -> io::Result<()> {
        match &self.host {
            None => serde_json::to_writer(&mut self.out, event)?,
            Some(prefix) => {
                // Every event is an object with fields: its `{` is replaced
                // by the prefix, which ends with the comma before them.
                self.out.write_all(prefix)?;
                let mut rest = SkipFirstByte {
                    out: &mut self.out,
                    skipped: false,
                };
                serde_json::to_writer(&mut rest, event)?;
            }
        }
        self.out.write_all(b"\n")
    }

    /// The destination back, as it is (not flushed).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Passes on everything but the first byte written.
struct SkipFirstByte<'a, W> {
    out: &'a mut W,
    skipped: bool,
}

impl<W: Write> Write for SkipFirstByte<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.skipped || buf.is_empty() {
            return self.out.write(buf);
        }
        self.skipped = true;
        Ok(1 + self.out.write(&buf[1..])?)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write + Send> Printer<W> for Json<W> {
    fn prints_alerts(&self) -> bool {
        true
    }

    fn alert(&mut self, e: &FlowEventJson<'_>) -> io::Result<()> {
        self.line(e)
    }

    fn flow(&mut self, e: &FlowEventJson<'_>) -> io::Result<()> {
        self.line(e)
    }

    fn alert_summary(&mut self, s: &AlertSummaryJson) -> io::Result<()> {
        self.line(s)
    }

    fn stats(&mut self, s: &StatsEventJson) -> io::Result<()> {
        self.line(s)
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
    use crate::output::event::Stats;
    use crate::timestamp::Timestamp;

    #[test]
    fn a_named_sensor_starts_every_event_with_its_host() {
        let stats = StatsEventJson {
            timestamp: Timestamp::from_nanos(0),
            event_type: "stats",
            stats: Stats::default(),
        };
        let mut plain = Json::new(Vec::new());
        plain.stats(&stats).expect("write");
        let mut named = Json::new(Vec::new()).host("dc1 \"span\"");
        named.stats(&stats).expect("write");
        let plain = String::from_utf8(plain.into_inner()).expect("utf-8");
        let named = String::from_utf8(named.into_inner()).expect("utf-8");
        assert_eq!(
            named,
            format!("{{\"host\":\"dc1 \\\"span\\\"\",{}", &plain[1..])
        );
        let value: serde_json::Value = serde_json::from_str(&named).expect("one JSON object");
        assert_eq!(value["host"], "dc1 \"span\"");
        assert_eq!(value["event_type"], "stats");
    }
}

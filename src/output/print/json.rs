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
}

impl<W: Write> Json<W> {
    pub fn new(out: W) -> Json<W> {
        Json { out }
    }

    fn line(&mut self, event: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")
    }

    /// The destination back, as it is (not flushed).
    pub fn into_inner(self) -> W {
        self.out
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

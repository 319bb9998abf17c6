//! One printer per output format, one file each (as ripgrep keeps
//! `crates/printer/src/{standard,json,summary}.rs`): JSON lines, text lines,
//! CSV rows, Suricata's EVE, and the summary for people at the end of a run. A printer only
//! writes: which flows have an event, which are alerted, folded or selected
//! was decided before it (see `super::writer`), and each event reaches it
//! built once, shared with the other printers of the run. A new format is a
//! new file here, a [`Format`] and a line of [`Format::printer`].

mod csv;
mod eve;
mod json;
mod summary;
mod text;

use std::io::{self, Write};
use std::sync::Arc;

pub use csv::{text as csv_text_cell, CSV_HEADER};
pub use eve::{eve_severity, rule_code, signature_id, Sensor, SID_ALERT_SUMMARY};
pub use json::Json;
pub use summary::write_summary;

use super::event::{AlertSummaryJson, FlowEventJson, StatsEventJson};
use crate::classify::Classifier;

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
    /// Suricata's EVE JSON, valid against its schema (`--format eve`).
    Eve,
}

impl Format {
    /// The printer of this format, writing to `out`. `header`: write the
    /// format's header row, if it has one (CSV), before the first row; a
    /// destination that starts each file with it itself says `false`.
    /// `names`: what EVE names besides the event.
    pub fn printer<W: Write + Send + 'static>(
        self,
        out: W,
        header: bool,
        names: &Names,
    ) -> Box<dyn Printer<W>> {
        match self {
            Format::Text => Box::new(text::Text::new(out)),
            Format::Json if names.sensor.host_in_json => {
                Box::new(Json::new(out).host(&names.sensor.host))
            }
            Format::Json => Box::new(Json::new(out)),
            Format::Csv => Box::new(csv::Csv::new(out, header)),
            Format::Eve => Box::new(eve::Eve::new(
                out,
                &names.classifier,
                Arc::clone(&names.sensor),
            )),
        }
    }
}

/// What a printer may name besides the event: the rules' text and the
/// sensor (EVE's `host`, `in_iface`, `pcap_filename`).
#[derive(Clone)]
pub struct Names {
    pub classifier: Arc<Classifier>,
    pub sensor: Arc<Sensor>,
}

/// Writes each kind of event in one format to one destination. What a format
/// leaves out is its own business: a CSV holds flows only; text leaves the
/// stats to the summary on stderr.
pub trait Printer<W>: Send {
    /// Whether [`Printer::alert`] writes anything: an alert no printer
    /// writes is not built, and its latency is not measured.
    fn prints_alerts(&self) -> bool;

    fn alert(&mut self, e: &FlowEventJson<'_>) -> io::Result<()>;

    fn flow(&mut self, e: &FlowEventJson<'_>) -> io::Result<()>;

    fn alert_summary(&mut self, s: &AlertSummaryJson) -> io::Result<()>;

    /// The final (offline) or a periodic (live) stats event.
    fn stats(&mut self, s: &StatsEventJson) -> io::Result<()>;

    fn flush(&mut self) -> io::Result<()>;

    /// The destination back, as it is (not flushed).
    fn into_inner(self: Box<Self>) -> W;
}

//! `portmatrix report`: the JSON Lines events of `analyze --json --flows` ->
//! one self-contained HTML file (inline style, script and SVG; no fetches).
//!
//! ```text
//! events files -> events (serde, lenient) -> model (aggregates) -> html (+ graph -> diagram, timeline)
//! ```
//!
//! - [`events`]: the lines as serde types local to the report; unknown fields
//!   and event types are accepted, so newer writers (live mode) still work.
//! - [`model`]: flows merged from alerts and flow events; traffic per host
//!   pair ([`edges`]), per rule and per verdict ([`coverage`]); the stats
//!   counters; malformed lines.
//! - [`fleet`]: events of several sensors (`host`): a flow two sensors saw
//!   counted once, whatever order the events come in; what each sensor saw.
//! - [`graph`]: who talked to whom, folded to what fits in a picture.
//! - [`drift`]: what changed between two runs' models (`portmatrix diff`),
//!   and `drift_html` its section of the page (`report --baseline`).
//! - [`html`], [`diagram`], [`timeline`]: the page. Every string from the
//!   events passes through [`escape::Esc`]: event files are untrusted input.

mod coverage;
mod diagram;
pub mod drift;
mod drift_html;
mod edges;
mod escape;
mod events;
mod fleet;
mod graph;
mod html;
mod model;
mod script;
mod servers;
mod stats;
mod theme;
mod timeline;
mod units;

#[cfg(test)]
mod tests;

use std::fmt;

pub use events::FlowRecord;
pub use html::{render, Page};
pub use model::{Model, ModelBuilder, MAX_FLAGGED, MAX_LINE_BYTES};

/// Errors of the report layer. A malformed line is not one of them: it is a
/// [`LineError`], recorded and skipped, and reading goes on.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read events from {name}: {source}; what was read before is reported")]
    Read {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the report page")]
    Render(#[from] fmt::Error),
}

/// A line of an events file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The events file's name as given (`stdin` for `-`).
    pub source: String,
    /// 1-based.
    pub line: u64,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.message)
    }
}

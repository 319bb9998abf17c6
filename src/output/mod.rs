//! Events out: the EVE-style JSON contract (`event.rs`), the writer that takes
//! each alert and ended flow through storm control and the tally to the
//! printers (`writer.rs`), one printer per format ([`print`]: JSON lines, text
//! lines for people, CSV rows for spreadsheets, and the summary on stderr).
//! The evidence files are `crate::evidence`'s.

mod community_id;
pub mod create;
mod event;
mod file;
pub mod kafka;
mod latency;
mod lines;
pub mod metrics;
pub mod print;
mod storm;
pub mod suggest;
pub mod syslog;
mod tally;
mod writer;

pub use community_id::community_id;
pub use event::{
    role_names, ActiveFilters, AlertSummaryJson, ExtractStats, FileStats, FlowEventJson,
    FlowFields, InterfaceStats, PortCount, Stats, StatsEventJson, StormStats, SuppressedStats,
    TargetCount,
};
pub use file::EventFile;
pub use latency::{LatencyHistogram, LatencySummary};
pub use print::csv_text_cell;
pub use print::{write_summary, Format, Sensor, CSV_HEADER};
pub use storm::{Storm, StormOut, MAX_HELD, WINDOW_NANOS};
pub use tally::Summary;
pub use writer::{EventWriter, FlowWatch};

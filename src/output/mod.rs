//! Events out: the EVE-style JSON contract, text lines for people, CSV rows
//! for spreadsheets, the final stats event and the summary on stderr; and the
//! pcapng evidence files' format, names and comments.

mod community_id;
pub mod create;
mod csv;
mod event;
pub mod evidence;
mod file;
mod latency;
pub mod pcapng;
mod storm;
pub mod suggest;
mod writer;

pub use community_id::community_id;
pub use csv::{text as csv_text_cell, CSV_HEADER};
pub use event::{
    role_names, ActiveFilters, AlertSummaryJson, ExtractStats, FileStats, FlowEventJson,
    FlowFields, InterfaceStats, PortCount, Stats, StatsEventJson, StormStats, SuppressedStats,
    TargetCount,
};
pub use file::EventFile;
pub use latency::{LatencyHistogram, LatencySummary};
pub use storm::{Storm, StormOut, MAX_HELD, WINDOW_NANOS};
pub use writer::{write_summary, EventWriter, Format, Summary};

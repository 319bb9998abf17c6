//! Events out: the EVE-style JSON contract, text lines for people, CSV rows
//! for spreadsheets, the final stats event and the summary on stderr; and the
//! pcapng evidence files' format, names and comments.

mod community_id;
mod csv;
mod event;
pub mod evidence;
mod file;
mod latency;
pub mod pcapng;
mod writer;

pub use community_id::community_id;
pub use csv::CSV_HEADER;
pub use event::{
    ActiveFilters, ExtractStats, FileStats, FlowEventJson, FlowFields, InterfaceStats, Stats,
    StatsEventJson,
};
pub use file::EventFile;
pub use latency::{LatencyHistogram, LatencySummary};
pub use writer::{write_summary, EventWriter, Format, Summary};

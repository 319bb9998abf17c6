//! Events out: the EVE-style JSON contract, text lines for people, the final
//! stats event and the summary on stderr.

mod community_id;
mod event;
mod file;
mod latency;
mod storm;
mod writer;

pub use community_id::community_id;
pub use event::{
    role_names, AlertSummaryJson, FileStats, FlowEventJson, FlowFields, InterfaceStats, PortCount,
    Stats, StatsEventJson, StormStats, SuppressedStats, TargetCount,
};
pub use file::EventFile;
pub use latency::{LatencyHistogram, LatencySummary};
pub use storm::{Storm, StormOut, MAX_HELD, WINDOW_NANOS};
pub use writer::{write_summary, EventWriter, Format, Summary};

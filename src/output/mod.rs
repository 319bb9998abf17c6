//! Events out: the EVE-style JSON contract, text lines for people, the final
//! stats event and the summary on stderr.

mod community_id;
mod event;
mod file;
mod latency;
mod writer;

pub use community_id::community_id;
pub use event::{FileStats, FlowEventJson, FlowFields, InterfaceStats, Stats, StatsEventJson};
pub use file::EventFile;
pub use latency::{LatencyHistogram, LatencySummary};
pub use writer::{write_summary, EventWriter, Format, Summary};

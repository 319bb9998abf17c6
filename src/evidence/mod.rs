//! Evidence, in one place: `--extract` writes the packets of flagged flows
//! to pcapng files, the evidence of each finding. Here: which packets a
//! worker keeps (`admit.rs`), the extract thread's files (`files.rs`), what a
//! file is called and what its comments say (`label.rs`), and the few pcapng
//! blocks it is made of ([`pcapng`], with the block numbers of the capture
//! reader's [`crate::capture::pcapng`]). Between `output` (whose
//! [`ExtractStats`] it fills) and `pipeline` (whose workers and threads run it).
//!
//! ```text
//! front ── records + frame bytes ──▶ worker ── Admission ──▶ extract thread ──▶ DIR/*.pcapng
//!                                      │ (caps, per flow)     (EvidenceFiles: LRU of open files)
//!                                      └── flow events name the file ──▶ writer
//! ```
//!
//! How the bytes travel: the front copies each TCP/UDP frame into its batch's
//! byte arena (one buffer per batch, no allocation per packet), because only
//! the worker learns the flow's verdict, and a flow is classified on its
//! first packet: so from the first packet on, the worker knows at once
//! whether a packet is evidence, and nothing waits for a verdict. The worker
//! copies the flagged ones into an evidence batch for the extract thread.
//! Without `--extract` the batches carry no arena and nothing is copied.
//!
//! Memory stays bounded in live mode: at most [`EXTRACT_QUEUE`] evidence
//! batches of about [`FLUSH_BYTES`], and [`MAX_IN_FLIGHT`] bytes, are in
//! flight (a frame larger than that goes alone), each worker holds one,
//! the extract thread keeps at most [`files::MAX_OPEN`] files open (others
//! are closed and reopened in append mode as their packets come) and a few
//! bytes per flagged flow that is still open. Nothing else is buffered.
//! When the extract thread falls behind, workers wait for it, and their full
//! queues then drop (and count) packets at the front, as for any slow stage.

mod admit;
mod files;
mod label;
pub mod pcapng;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::filter::VerdictSet;
use crate::flow::Flow;
use crate::output::ExtractStats;
use crate::timestamp::Timestamp;
use crate::verdict::Verdict;

pub(crate) use admit::Admission;
pub(crate) use files::EvidenceFiles;
pub use label::{file_name, flow_comment, verdict_comment, ExtractBy};

/// Evidence batches in flight to the extract thread (at most
/// [`MAX_IN_FLIGHT`] bytes of them).
pub(crate) const EXTRACT_QUEUE: usize = 16;
/// Bytes of evidence batches in flight to the extract thread: a worker
/// waits for room before it sends. One batch is always let through, so a
/// single frame larger than this still goes (alone).
const MAX_IN_FLIGHT: usize = 16 << 20;
/// A worker sends its evidence batch when it holds this many bytes (or at
/// the end of each batch of records, whichever comes first).
const FLUSH_BYTES: usize = 1 << 20;

/// What `--extract` asks for.
#[derive(Debug, Clone)]
pub struct ExtractConfig {
    /// Created if missing; files in it with the same names are replaced.
    pub dir: PathBuf,
    pub by: ExtractBy,
    /// Packets written per flow, from its first (`--extract-max-packets`).
    pub max_packets: u64,
    /// Captured bytes written in all (`--extract-max-mb`); pcapng block
    /// headers and comments come on top (about 32 bytes a packet and under
    /// 1 KiB a file).
    pub max_bytes: u64,
    /// The interfaces' snap length, for the files' interface blocks (0: not known).
    pub snaplen: u32,
    /// The flagged verdicts whose flows are extracted (`--verdict`).
    pub verdicts: VerdictSet,
}

/// A record's frame on its way to the evidence writer: `data` is empty when
/// the frame was left out (it could not fit the budget); `len` is always
/// its captured length, so the budget still sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameRef<'a> {
    pub data: &'a [u8],
    pub len: usize,
    pub link_type: u16,
}

/// Why extraction cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("cannot create the evidence folder {}: {source}; check the path and its permissions", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Extraction, ready to run: the folder exists, the budget is full.
#[derive(Debug)]
pub struct Extraction {
    shared: Arc<Shared>,
}

impl Extraction {
    pub fn new(config: ExtractConfig) -> Result<Extraction, ExtractError> {
        std::fs::create_dir_all(&config.dir).map_err(|source| ExtractError::Dir {
            path: config.dir.clone(),
            source,
        })?;
        let mut verdicts = config.verdicts;
        // Documented flows are never evidence.
        verdicts = verdicts
            .iter()
            .filter(|&v| v != Verdict::Documented)
            .collect();
        Ok(Extraction {
            shared: Arc::new(Shared {
                dir_text: config.dir.display().to_string(),
                budget: Budget {
                    max: config.max_bytes,
                    used: AtomicU64::new(0),
                    exhausted: AtomicBool::new(false),
                },
                counters: Counters::default(),
                outcomes: Outcomes::default(),
                in_flight: InFlight::default(),
                verdicts,
                config,
            }),
        })
    }

    /// What was written and cut so far.
    pub fn stats(&self) -> ExtractStats {
        self.shared.counters.snapshot()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// What the workers and the extract thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    config: ExtractConfig,
    /// Flagged verdicts to extract (`documented` never is).
    verdicts: VerdictSet,
    /// The folder as the user gave it, for the events' `evidence` paths.
    dir_text: String,
    budget: Budget,
    counters: Counters,
    /// What the files of ended flows became, for their flow events.
    outcomes: Outcomes,
    in_flight: InFlight,
}

impl Shared {
    /// The `evidence` path of flow `id`'s event, once its file is written:
    /// `path` as planned, `path.partial` when the file was cut short, or
    /// nothing when no packet of the flow reached the disk. Waits for the
    /// extract thread to get there (the worker sent the flow's end to it
    /// before its event to the writer).
    pub(crate) fn evidence_written(&self, id: u64, path: String) -> Option<String> {
        match self.outcomes.wait(id) {
            Outcome::Whole => Some(path),
            Outcome::Partial => Some(format!("{path}.partial")),
            Outcome::Missing => None,
        }
    }

    /// Whether a frame of `len` captured bytes could still be extracted: if
    /// not, the fronts need not copy it.
    pub(crate) fn may_keep(&self, len: usize) -> bool {
        let b = &self.budget;
        !b.exhausted.load(Ordering::Relaxed)
            && b.used.load(Ordering::Relaxed).saturating_add(len as u64) <= b.max
    }

    /// The `evidence` path of a flow's file: the folder as given, then the name.
    fn evidence_path(&self, flow: &Flow) -> String {
        let name = file_name(self.config.by, flow);
        if self.dir_text.is_empty() || self.dir_text.ends_with('/') {
            format!("{}{name}", self.dir_text)
        } else {
            format!("{}/{name}", self.dir_text)
        }
    }
}

/// `--extract-max-mb`, shared by the workers. Once a packet does not fit,
/// extraction stops for good: the files then hold everything up to a moment,
/// not a pattern of holes, and a flow has a file exactly when its first
/// packet came before that moment.
#[derive(Debug)]
struct Budget {
    max: u64,
    used: AtomicU64,
    exhausted: AtomicBool,
}

impl Budget {
    fn take(&self, bytes: u64) -> bool {
        if self.exhausted.load(Ordering::Relaxed) {
            return false;
        }
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.max {
            self.exhausted.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// What became of an ended flow's evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Every packet of the flow is in its file.
    Whole,
    /// The file was cut short by a write error and renamed `NAME.partial`;
    /// it holds the flow's first packets.
    Partial,
    /// No packet of the flow is on disk.
    Missing,
}

/// Outcomes posted by the extract thread, taken by the writer (so the map
/// holds only the flows between the two, a bounded few).
#[derive(Debug, Default)]
struct Outcomes {
    state: Mutex<OutcomeState>,
    posted: Condvar,
}

#[derive(Debug, Default)]
struct OutcomeState {
    ready: HashMap<u64, Outcome>,
    /// The extract thread has ended: nothing more will come.
    closed: bool,
}

impl Outcomes {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutcomeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn post(&self, id: u64, outcome: Outcome) {
        self.lock().ready.insert(id, outcome);
        self.posted.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.posted.notify_all();
    }

    fn wait(&self, id: u64) -> Outcome {
        let mut state = self.lock();
        loop {
            if let Some(o) = state.ready.remove(&id) {
                return o;
            }
            if state.closed {
                return Outcome::Missing;
            }
            state = self
                .posted
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Bytes of evidence batches sent and not yet written (see [`MAX_IN_FLIGHT`]).
#[derive(Debug, Default)]
struct InFlight {
    bytes: Mutex<usize>,
    freed: Condvar,
}

impl InFlight {
    /// Wait until `n` more bytes fit (or nothing is in flight), and take them.
    fn acquire(&self, n: usize) {
        let mut bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        while *bytes > 0 && *bytes + n > MAX_IN_FLIGHT {
            bytes = self
                .freed
                .wait(bytes)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *bytes += n;
    }

    fn release(&self, n: usize) {
        let mut bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        *bytes = bytes.saturating_sub(n);
        self.freed.notify_all();
    }
}

/// Cold counters (only flagged packets touch them), read for stats events.
#[derive(Debug, Default)]
struct Counters {
    files: AtomicU64,
    packets: AtomicU64,
    bytes: AtomicU64,
    capped_packets: AtomicU64,
    capped_flows: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ExtractStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ExtractStats {
            files: get(&self.files),
            packets: get(&self.packets),
            bytes: get(&self.bytes),
            capped_packets: get(&self.capped_packets),
            capped_flows: get(&self.capped_flows),
            errors: get(&self.errors),
        }
    }
}

/// Packets of flagged flows on their way to the extract thread, in the
/// order the worker counted them, with the end of each flow that has a file.
#[derive(Debug, Default)]
pub(crate) struct EvidenceBatch {
    bytes: Vec<u8>,
    items: Vec<Item>,
    /// The flows whose first packet is in this batch (for names and comments).
    flows: Vec<Flow>,
}

#[derive(Debug)]
enum Item {
    Packet(Packet),
    /// The flow ended: its file can be closed for good.
    End(u64),
}

#[derive(Debug)]
struct Packet {
    flow_id: u64,
    verdict: Verdict,
    ts: Timestamp,
    link_type: u16,
    /// The frame is `bytes[at..at + len]`.
    at: usize,
    len: usize,
    orig_len: u32,
    /// The flow's first packet: its index in `flows`.
    opens: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_stops_for_good_once_a_packet_does_not_fit() {
        let budget = Budget {
            max: 100,
            used: AtomicU64::new(0),
            exhausted: AtomicBool::new(false),
        };
        assert!(budget.take(60));
        assert!(budget.take(40));
        assert!(!budget.take(1));
        // Even what would have fit before is refused now.
        assert!(!budget.take(0));
    }
}

//! The worker's side of extraction: which packets of its flows are evidence,
//! under the caps, gathered into batches for the extract thread.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::flow::Flow;
use crate::timestamp::Timestamp;

use super::{Counters, EvidenceBatch, FrameRef, Item, Packet, Shared, FLUSH_BYTES};

/// What a worker remembers of a flagged flow that is still open: a few
/// bytes, gone when the flow ends.
#[derive(Debug, Clone, Copy, Default)]
struct Track {
    /// Its first packet was sent: it has a file.
    has_file: bool,
    /// Counted in `capped_flows` already.
    capped: bool,
}

pub(crate) struct Admission {
    shared: Arc<Shared>,
    tx: Sender<EvidenceBatch>,
    tracked: HashMap<u64, Track>,
    batch: EvidenceBatch,
}

impl Admission {
    pub fn new(shared: Arc<Shared>, tx: Sender<EvidenceBatch>) -> Admission {
        Admission {
            shared,
            tx,
            tracked: HashMap::new(),
            batch: EvidenceBatch::default(),
        }
    }

    /// The table just counted this frame on `flow`.
    pub fn packet(&mut self, flow: &Flow, ts: Timestamp, frame: FrameRef<'_>, orig_len: u32) {
        let (link_type, captured) = (frame.link_type, frame.len);
        let frame = frame.data;
        if !self.shared.verdicts.contains(flow.verdict) {
            return;
        }
        // The table has counted this packet: 1 means it opened the flow.
        let nth = flow.pkts_toserver + flow.pkts_toclient;
        let first = nth == 1;
        let track = self.tracked.entry(flow.id).or_default();
        let counters = &self.shared.counters;
        let fits = nth <= self.shared.config.max_packets
            && (first || track.has_file)
            && self.shared.budget.take(captured as u64)
            // Left out by the front: it could not have fit.
            && frame.len() == captured;
        if !fits {
            Counters::add(&counters.capped_packets, 1);
            if !track.capped {
                track.capped = true;
                Counters::add(&counters.capped_flows, 1);
            }
            return;
        }
        let opens = first.then(|| {
            track.has_file = true;
            self.batch.flows.push(*flow);
            self.batch.flows.len() - 1
        });
        let at = self.batch.bytes.len();
        self.batch.bytes.extend_from_slice(frame);
        self.batch.items.push(Item::Packet(Packet {
            flow_id: flow.id,
            verdict: flow.verdict,
            ts,
            link_type,
            at,
            len: frame.len(),
            orig_len,
            opens,
        }));
        if self.batch.bytes.len() >= FLUSH_BYTES {
            self.flush();
        }
    }

    /// `flow` ended: forget it, and return the `evidence` path for its flow
    /// event when it has a file.
    pub fn ended(&mut self, flow: &Flow) -> Option<String> {
        let track = self.tracked.remove(&flow.id)?;
        if !track.has_file {
            return None;
        }
        self.batch.items.push(Item::End(flow.id));
        Some(self.shared.evidence_path(flow))
    }

    /// Hand what was gathered to the extract thread (waiting for room).
    pub fn flush(&mut self) {
        if self.batch.items.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        // Bounded in bytes, not only in batches: 16 batches of 64 MiB frames
        // would be a gigabyte.
        self.shared.in_flight.acquire(batch.bytes.len());
        // The extract thread ends only after every worker: a failed send
        // cannot happen while it runs.
        let _ = self.tx.send(batch);
    }
}

//! What the file workers send each other (see `chunked`): a chunk's part for
//! each worker, with the fragments every worker's defragmenter needs.

use std::collections::VecDeque;

use crossbeam_channel::Sender;

use crate::decode::FragmentMeta;
use crate::pipeline::{FrameRef, Frames, Record};
use crate::timestamp::Timestamp;

/// Frame bytes a spare part keeps room for (`--extract`).
const SPARE_FRAME_BYTES: usize = 4 << 20;

/// A fragment of a TCP/UDP datagram, for every worker's defragmenter.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fragment {
    /// It came before record `at` of its part.
    pub at: u32,
    pub ts: Timestamp,
    pub meta: FragmentMeta,
    pub wire_len: u32,
}

/// What one chunk holds for one worker: the records of its flows, in capture
/// order, and every fragment; with `--extract`, their frames (record `i`'s
/// is span `i` of `frames`, fragment `j`'s span `j` of `fragment_frames`).
#[derive(Debug, Default)]
pub(super) struct Part {
    pub records: Vec<Record>,
    pub fragments: Vec<Fragment>,
    pub frames: Option<Frames>,
    pub fragment_frames: Option<Frames>,
    /// The chunk's newest packet time: the worker's clock once applied.
    pub clock: Timestamp,
    /// This worker decoded the chunk: it counts what the fragments turn out to be.
    pub decoded_here: bool,
}

/// What a worker sends a peer.
pub(super) enum Msg {
    /// The part of chunk `seq` for the receiving worker.
    Part(u64, Part),
    /// The input ended after this many chunks.
    End(u64),
    /// A peer panicked: stop waiting for it (the panic is passed on when
    /// the threads are joined).
    Abort,
}

/// Tells the peers when this worker's thread unwinds from a panic, so that
/// none of them waits for it for ever.
pub(super) struct AbortPeers(pub Vec<Sender<Msg>>);

impl Drop for AbortPeers {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for tx in &self.0 {
                let _ = tx.try_send(Msg::Abort);
            }
        }
    }
}

impl Part {
    /// Empty, its buffers kept for the next chunk.
    pub fn clear(&mut self) {
        self.records.clear();
        self.fragments.clear();
        for frames in [&mut self.frames, &mut self.fragment_frames]
            .into_iter()
            .flatten()
        {
            frames.bytes.clear();
            frames.spans.clear();
            // A spare part must not keep a huge frame's buffer for ever.
            frames.bytes.shrink_to(SPARE_FRAME_BYTES);
        }
    }

    /// The frame bytes it carries (`--extract`).
    pub fn frame_bytes(&self) -> usize {
        [&self.frames, &self.fragment_frames]
            .into_iter()
            .flatten()
            .map(|f| f.bytes.len())
            .sum()
    }

    /// Fragment `j`'s frame, with `--extract`.
    pub fn fragment_frame(&self, j: usize) -> Option<FrameRef<'_>> {
        self.fragment_frames.as_ref().and_then(|f| f.get(j))
    }
}

/// Puts the part of chunk `seq` where the reorder buffer (starting at chunk
/// `next`) keeps it.
pub(super) fn place(pending: &mut VecDeque<Option<Part>>, next: u64, seq: u64, part: Part) {
    let at = (seq - next) as usize;
    if pending.len() <= at {
        pending.resize_with(at + 1, || None);
    }
    pending[at] = Some(part);
}

//! Stopping a run from outside (the binary's signal handling): a clean stop
//! the fronts see between reads, and a forced exit that still keeps what
//! was written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Shared between whoever asks a run to stop and the run's threads.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// Why the stop was asked (a signal's name), once it was.
    requested: Arc<OnceLock<&'static str>>,
    gate: WriteGate,
}

impl Stop {
    /// Stop reading: live captures halt, files are read no further (checked
    /// between chunks, never per packet); flows still open close with
    /// `shutdown`, the final stats are written. `why` (e.g. `SIGTERM`) is
    /// what an interrupted analysis reports; only the first request counts.
    /// `true` for the first.
    pub fn request(&self, why: &'static str) -> bool {
        self.requested.set(why).is_ok()
    }

    /// Why the stop was asked, if it was.
    pub fn requested(&self) -> Option<&'static str> {
        self.requested.get().copied()
    }

    pub fn is_requested(&self) -> bool {
        self.requested.get().is_some()
    }

    /// The output's side of a forced exit.
    pub fn gate(&self) -> &WriteGate {
        &self.gate
    }
}

/// Lets a forced exit keep the events already written, as whole lines: once
/// the gate is shut, the writer flushes at the next event boundary and writes
/// nothing more; [`WriteGate::is_flushed`] tells the exiting side when nothing
/// written is left in a buffer.
///
/// The writer calls [`WriteGate::enter`] before each batch of events and
/// [`WriteGate::flushed`] after each flush. Both sides store before they
/// load, sequentially consistent, so either the writer sees the gate shut
/// or the exiting side sees the batch in progress: never both miss.
#[derive(Debug, Clone)]
pub struct WriteGate {
    shut: Arc<AtomicBool>,
    flushed: Arc<AtomicBool>,
}

impl Default for WriteGate {
    /// Open, and nothing written yet: nothing to flush.
    fn default() -> Self {
        WriteGate {
            shut: Arc::new(AtomicBool::new(false)),
            flushed: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl WriteGate {
    /// No more events: flush what was written, then write nothing.
    pub fn shut(&self) {
        self.shut.store(true, Ordering::SeqCst);
    }

    /// Nothing written is waiting in a buffer (and, once shut, nothing more will be).
    pub fn is_flushed(&self) -> bool {
        self.flushed.load(Ordering::SeqCst)
    }

    /// Before writing: `false` once the gate is shut (flush, then write no more).
    pub fn enter(&self) -> bool {
        self.flushed.store(false, Ordering::SeqCst);
        !self.shut.load(Ordering::SeqCst)
    }

    /// After a flush at an event boundary.
    pub fn flushed(&self) {
        self.flushed.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shut_gate_turns_the_writer_away_and_waits_for_its_flush() {
        let stop = Stop::default();
        let gate = stop.gate().clone();
        assert!(gate.is_flushed(), "nothing written yet");
        assert!(gate.enter());
        assert!(!gate.is_flushed(), "a batch in progress");
        gate.flushed();
        stop.gate().shut();
        assert!(gate.is_flushed());
        assert!(!gate.enter(), "shut: write no more");
        assert!(!gate.is_flushed(), "until the writer flushed what it had");
        gate.flushed();
        assert!(stop.gate().is_flushed());
        assert!(!stop.is_requested());
        assert!(stop.request("SIGTERM"));
        assert!(!stop.request("SIGINT"), "the first request counts");
        assert!(stop.is_requested());
        assert_eq!(stop.requested(), Some("SIGTERM"));
    }
}

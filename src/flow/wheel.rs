//! Coarse timers on packet time: one bucket per second, a ring of
//! [`WHEEL_SECS`]. A flow is scheduled once, when its timeout would run out
//! if no other packet came; packets do not touch the wheel (except the one
//! that closes a TCP flow, which shortens its timeout). When a bucket comes
//! up, each flow in it has either timed out, or it saw packets since and is
//! put back where its timeout now runs out. So expiry costs nothing per
//! packet and amortized constant time per flow, instead of a sweep over the
//! whole table. (The table decides which; the wheel only keeps the times.)

use std::ops::Range;

use crate::timestamp::Timestamp;

pub(super) const NANOS: i64 = 1_000_000_000;

/// Seconds of packet time the timer wheel looks ahead; a flow due later
/// waits in the last bucket and is put back when it comes up.
const WHEEL_SECS: i64 = 512;

/// An entry: a flow's slab position and the ticket it had when scheduled.
pub(super) type Entry = (u32, u32);

#[derive(Debug)]
pub(super) struct Wheel {
    buckets: Vec<Vec<Entry>>,
    /// The first second not yet looked at; buckets before it are done.
    next: Option<i64>,
    /// Packet time (nanoseconds) from which a second has gone by since the
    /// last look: before it, `advance` has nothing to do.
    wake: i64,
}

impl Wheel {
    pub(super) fn new() -> Wheel {
        Wheel {
            buckets: (0..WHEEL_SECS).map(|_| Vec::new()).collect(),
            next: None,
            wake: i64::MIN,
        }
    }

    /// Whether a second went by since the last look at `now`.
    #[inline]
    pub(super) fn due_at(&self, now: Timestamp) -> bool {
        now.as_nanos() >= self.wake
    }

    /// Moves the wheel to `now`: the seconds whose buckets are to be looked
    /// at (empty on the first call, and when no second went by).
    pub(super) fn turn_to(&mut self, now: Timestamp) -> Range<i64> {
        let current = now.secs();
        self.wake = current
            .saturating_add(1)
            .saturating_mul(NANOS)
            .max(self.wake);
        let Some(next) = self.next else {
            self.next = Some(current);
            return 0..0;
        };
        if current <= next {
            return 0..0;
        }
        // Re-scheduled flows land at or after `current`.
        self.next = Some(current);
        next..current.min(next + WHEEL_SECS)
    }

    /// Takes the entries of `second`'s bucket, to look at each.
    pub(super) fn take(&mut self, second: i64) -> Vec<Entry> {
        std::mem::take(&mut self.buckets[bucket(second)])
    }

    /// Gives the bucket of `second` its emptied allocation back, for its
    /// next turn, unless entries were put back in it meanwhile.
    pub(super) fn give_back(&mut self, second: i64, taken: Vec<Entry>) {
        let b = bucket(second);
        if self.buckets[b].is_empty() {
            self.buckets[b] = taken;
        }
    }

    /// Puts an entry back in the bucket of `second` as it was: scheduled a
    /// whole turn of the wheel later.
    pub(super) fn keep(&mut self, second: i64, entry: Entry) {
        self.buckets[bucket(second)].push(entry);
    }

    /// The second a flow whose timeout runs out at `deadline` (nanoseconds)
    /// is looked at: never behind the wheel, never more than a turn ahead.
    pub(super) fn due(&self, deadline: i64) -> i64 {
        let due = Timestamp::from_nanos(deadline).secs();
        match self.next {
            Some(next) => due.clamp(next, next + WHEEL_SECS - 1),
            None => due,
        }
    }

    /// Schedules `entry` for the second `due` (from [`Wheel::due`]).
    pub(super) fn schedule(&mut self, due: i64, entry: Entry) {
        self.buckets[bucket(due)].push(entry);
    }

    /// Forgets every entry.
    pub(super) fn clear(&mut self) {
        for b in &mut self.buckets {
            b.clear();
        }
    }
}

/// The wheel bucket of a packet-time second.
fn bucket(second: i64) -> usize {
    second.rem_euclid(WHEEL_SECS) as usize
}

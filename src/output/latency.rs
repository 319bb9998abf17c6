//! How long alerts take from capture to output, in live mode: a fixed
//! histogram (no allocation per alert) read as percentiles in stats events.

use serde::Serialize;

use crate::timestamp::Timestamp;

/// Bucket `i` holds latencies below `2^i` microseconds (bucket 0: under 1 µs);
/// the last one holds everything from about 9 minutes up.
const BUCKETS: usize = 30;

/// Alert latencies seen so far.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    counts: [u64; BUCKETS],
    count: u64,
    max_micros: u64,
    /// For the metrics' histogram (`_sum`).
    sum_micros: u64,
}

/// Percentiles for the stats event, in milliseconds. A percentile is the
/// upper bound of its power-of-two bucket, so it errs on the slow side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: [0; BUCKETS],
            count: 0,
            max_micros: 0,
            sum_micros: 0,
        }
    }
}

impl LatencyHistogram {
    /// Record the time from `captured` to `now` (a clock step backwards counts as 0).
    pub fn record(&mut self, captured: Timestamp, now: Timestamp) {
        let micros = u64::try_from(now.nanos_since(captured) / 1_000).unwrap_or(0);
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.counts[bucket.min(BUCKETS - 1)] += 1;
        self.count += 1;
        self.max_micros = self.max_micros.max(micros);
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    /// Each bucket but the open-ended last one: its upper bound in
    /// microseconds (exclusive) and its count, fastest first.
    pub fn finite_buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts[..BUCKETS - 1]
            .iter()
            .enumerate()
            .map(|(i, &n)| (1u64 << i, n))
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum_micros(&self) -> u64 {
        self.sum_micros
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count,
            p50_ms: self.percentile(0.50),
            p99_ms: self.percentile(0.99),
            max_ms: self.max_micros as f64 / 1_000.0,
        }
    }

    fn percentile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = (1u64 << i) as f64 / 1_000.0;
                return upper.min(self.max_micros as f64 / 1_000.0);
            }
        }
        self.max_micros as f64 / 1_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: i64) -> Timestamp {
        Timestamp::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn percentiles_bound_the_recorded_latencies_from_above() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.summary(), LatencySummary::default());
        for ms in 1..=100 {
            h.record(at_ms(0), at_ms(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.max_ms, 100.0);
        // 50 ms lies in the bucket below 2^16 µs = 65.536 ms.
        assert!((50.0..=65.536).contains(&s.p50_ms), "{s:?}");
        assert!((99.0..=100.0).contains(&s.p99_ms), "{s:?}");
    }

    #[test]
    fn a_clock_step_backwards_counts_as_no_delay() {
        let mut h = LatencyHistogram::default();
        h.record(at_ms(10), at_ms(5));
        assert_eq!(h.summary().max_ms, 0.0);
        assert_eq!(h.summary().count, 1);
    }
}

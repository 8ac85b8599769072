//! Timeout arithmetic: per-DSP latency histograms, the adaptive timeout
//! `T_dsp = min(P95(H_dsp) + margin, T_global, DSP timeout)` (seed Part 3, Strategy 2) and the
//! two cutoffs of one request (operational and absolute), shortened to fit the request's tmax.
//!
//! Owns: the math only. Must not know: I/O, clocks beyond the `Instant`s it is given.

use std::time::{Duration, Instant};

/// Histogram buckets: 1 ms wide from 0 to 254 ms, the last one holds everything slower.
pub const LATENCY_BUCKETS: usize = 256;

/// Fixed-bucket latency histogram (1 ms resolution): cheap to record, merge and ship between
/// shards, which an HDR histogram per DSP per window bucket would not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHist {
    counts: Box<[u32; LATENCY_BUCKETS]>,
    total: u64,
}

impl Default for LatencyHist {
    fn default() -> Self {
        LatencyHist {
            counts: Box::new([0; LATENCY_BUCKETS]),
            total: 0,
        }
    }
}

impl LatencyHist {
    pub fn record(&mut self, d: Duration) {
        let ms = (d.as_millis() as usize).min(LATENCY_BUCKETS - 1);
        self.counts[ms] = self.counts[ms].saturating_add(1);
        self.total += 1;
    }

    /// Records `n` samples of `ms` at once.
    pub fn record_n_ms(&mut self, ms: u64, n: u64) {
        let i = (ms as usize).min(LATENCY_BUCKETS - 1);
        self.counts[i] = self.counts[i].saturating_add(n.min(u64::from(u32::MAX)) as u32);
        self.total += n;
    }

    pub fn merge(&mut self, other: &LatencyHist) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
    }

    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Upper bound (ms) of the bucket holding quantile `q` (0..=1); 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (ms, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return ms as u64 + 1;
            }
        }
        LATENCY_BUCKETS as u64
    }

    /// Requests answered within `ms` (bucket resolution).
    pub fn count_within(&self, ms: u64) -> u64 {
        let end = (ms as usize).min(LATENCY_BUCKETS);
        self.counts[..end].iter().map(|&c| u64::from(c)).sum()
    }
}

/// The adaptive timeout of one DSP in ms. `hist` must hold timeouts as samples at the timeout
/// value, so the P95 of a censored histogram is min(true P95, last timeout); the margin lets it
/// climb back when a DSP slows down and then recovers.
pub fn adaptive_timeout_ms(
    hist: &LatencyHist,
    min_samples: u64,
    margin_ms: u64,
    global_ms: u64,
    dsp_ms: u64,
) -> u64 {
    let cap = global_ms.min(dsp_ms);
    if hist.count() < min_samples.max(1) {
        return cap;
    }
    (hist.quantile_ms(0.95) + margin_ms).min(cap).max(1)
}

/// The cutoffs of one request, as instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// After it, collection closes once one valid bid is in.
    pub operational: Instant,
    /// At it, every pending DSP request is cancelled.
    pub absolute: Instant,
}

/// Cutoffs from receipt: `absolute = received + min(absolute_ms, tmax - reserve)`, operational
/// no later than absolute. `None` when the request leaves no time for DSPs at all.
pub fn cutoffs(
    received: Instant,
    tmax_ms: u64,
    operational_ms: u64,
    absolute_ms: u64,
    reserve_ms: u64,
) -> Option<Cutoffs> {
    let budget = tmax_ms.saturating_sub(reserve_ms).min(absolute_ms);
    if budget == 0 {
        return None;
    }
    Some(Cutoffs {
        operational: received + Duration::from_millis(operational_ms.min(budget)),
        absolute: received + Duration::from_millis(budget),
    })
}

/// A DSP's own deadline: start + its adaptive timeout, never after the absolute cutoff.
pub fn dsp_deadline(start: Instant, timeout_ms: u64, cut: &Cutoffs) -> Instant {
    (start + Duration::from_millis(timeout_ms)).min(cut.absolute)
}

/// `tmax` told to a DSP: whole ms left until its deadline, at least 1.
pub fn tmax_for(now: Instant, deadline: Instant) -> u64 {
    (deadline.saturating_duration_since(now).as_millis() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(ms: &[u64]) -> LatencyHist {
        let mut h = LatencyHist::default();
        for &m in ms {
            h.record(Duration::from_micros(m * 1000 + 300));
        }
        h
    }

    #[test]
    fn quantiles_have_one_ms_resolution() {
        let h = hist(&(1..=100).collect::<Vec<_>>());
        assert_eq!(h.quantile_ms(0.95), 96);
        assert_eq!(h.quantile_ms(0.5), 51);
        assert_eq!(h.count_within(50), 49);
        assert_eq!(LatencyHist::default().quantile_ms(0.95), 0);
        let slow = hist(&[10_000]);
        assert_eq!(slow.quantile_ms(0.95), LATENCY_BUCKETS as u64);
    }

    #[test]
    fn adaptive_timeout_is_min_of_p95_and_caps() {
        let h = hist(&(1..=100).map(|i| i / 2).collect::<Vec<_>>());
        // P95 of 0..50 ms is 48 (bucket upper bound); + 5 ms margin.
        assert_eq!(adaptive_timeout_ms(&h, 50, 5, 100, 100), 53);
        assert_eq!(adaptive_timeout_ms(&h, 50, 5, 40, 100), 40);
        assert_eq!(adaptive_timeout_ms(&h, 50, 5, 100, 30), 30);
        // Too few samples: the caps.
        assert_eq!(adaptive_timeout_ms(&h, 500, 5, 100, 90), 90);
    }

    #[test]
    fn merged_histograms_add_up() {
        let mut a = hist(&[1, 2, 3]);
        a.merge(&hist(&[4, 5]));
        assert_eq!(a.count(), 5);
        assert_eq!(a.quantile_ms(1.0), 6);
        a.clear();
        assert_eq!(a.count(), 0);
    }

    #[test]
    fn cutoffs_fit_the_request_tmax() {
        let t0 = Instant::now();
        let c = cutoffs(t0, 1000, 70, 120, 5).unwrap();
        assert_eq!(c.operational - t0, Duration::from_millis(70));
        assert_eq!(c.absolute - t0, Duration::from_millis(120));
        let c = cutoffs(t0, 60, 70, 120, 5).unwrap();
        assert_eq!(c.absolute - t0, Duration::from_millis(55));
        assert_eq!(c.operational, c.absolute);
        assert!(cutoffs(t0, 5, 70, 120, 5).is_none());
        let d = dsp_deadline(t0 + Duration::from_millis(2), 200, &c);
        assert_eq!(d, c.absolute);
        assert_eq!(tmax_for(t0, t0 + Duration::from_micros(30_900)), 30);
        assert_eq!(tmax_for(t0 + Duration::from_secs(1), t0), 1);
    }
}

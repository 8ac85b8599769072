//! Per-thread run statistics: corrected latency and service-time histograms
//! (microseconds, 3 significant figures) and outcome counters. One `Stats` per
//! thread, merged after the threads join. Knows nothing of sockets or output formats.

use hdrhistogram::Histogram;

/// Largest value the histograms hold exactly (one hour, in microseconds);
/// larger values saturate to it.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Status codes are counted exactly below this bound (responses outside
/// 200..600 are parse errors before reaching the counters).
pub const STATUS_CODES: usize = 600;

/// Failures by where they happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    pub connect: u64,
    pub write: u64,
    pub read: u64,
    pub parse: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.connect + self.write + self.read + self.parse
    }

    fn add(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.write += other.write;
        self.read += other.read;
        self.parse += other.parse;
    }
}

/// Everything one run (or one thread of it) observed in the measured window.
#[derive(Debug, Clone)]
pub struct Stats {
    /// From intended send time to response end (coordinated omission corrected).
    pub latency_us: Histogram<u64>,
    /// From actual send time to response end (uncorrected).
    pub service_us: Histogram<u64>,
    /// How late each send started after its intended time (timer slop plus backlog).
    pub send_lag_us: Histogram<u64>,
    /// Requests whose write began.
    pub sent: u64,
    /// Requests answered with a parsed response (any status).
    pub completed: u64,
    /// Completed responses by exact status code.
    pub status: Vec<u64>,
    pub errors: ErrorCounts,
    /// Requests (sent or connecting) cut by `--timeout`.
    pub timeouts: u64,
    /// Requests scheduled inside the window but never sent because the run ended
    /// while the connection was behind schedule.
    pub unsent: u64,
    /// Requests sent during the warm-up (not in any other counter).
    pub warmup_sent: u64,
    /// Measured requests sent by bot clients (also counted in `sent`).
    pub bots_sent: u64,
    /// Per measured phase of the rate profile (one entry for a constant run).
    pub phases: Vec<PhaseStats>,
}

/// What one phase of the run observed.
#[derive(Debug, Clone)]
pub struct PhaseStats {
    pub sent: u64,
    pub completed: u64,
    /// Errors of every kind plus timeouts.
    pub failed: u64,
    /// Corrected latency, as in [`Stats::latency_us`].
    pub latency_us: Histogram<u64>,
}

impl PhaseStats {
    pub fn new() -> PhaseStats {
        PhaseStats {
            sent: 0,
            completed: 0,
            failed: 0,
            latency_us: new_histogram(),
        }
    }

    fn merge(&mut self, other: &PhaseStats) {
        self.sent += other.sent;
        self.completed += other.completed;
        self.failed += other.failed;
        merge_histogram(&mut self.latency_us, &other.latency_us);
    }
}

impl Default for PhaseStats {
    fn default() -> Self {
        PhaseStats::new()
    }
}

fn merge_histogram(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Same bounds on both sides, so `add` cannot fail; saturate defensively.
    for v in from.iter_recorded() {
        into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            latency_us: new_histogram(),
            service_us: new_histogram(),
            send_lag_us: new_histogram(),
            sent: 0,
            completed: 0,
            status: vec![0; STATUS_CODES],
            errors: ErrorCounts::default(),
            timeouts: 0,
            unsent: 0,
            warmup_sent: 0,
            bots_sent: 0,
            phases: Vec::new(),
        }
    }

    /// Empty statistics with room for `phases` measured phases.
    pub fn with_phases(phases: usize) -> Stats {
        let mut s = Stats::new();
        s.phases = (0..phases).map(|_| PhaseStats::new()).collect();
        s
    }

    /// Records one completed response.
    pub fn record_response(&mut self, status: u16, latency_us: u64, service_us: u64) {
        self.completed += 1;
        if let Some(slot) = self.status.get_mut(usize::from(status)) {
            *slot += 1;
        }
        self.latency_us.saturating_record(latency_us.max(1));
        self.service_us.saturating_record(service_us.max(1));
        self.send_lag_us
            .saturating_record(latency_us.saturating_sub(service_us));
    }

    /// Adds another thread's statistics into this one.
    pub fn merge(&mut self, other: &Stats) {
        merge_histogram(&mut self.latency_us, &other.latency_us);
        merge_histogram(&mut self.service_us, &other.service_us);
        merge_histogram(&mut self.send_lag_us, &other.send_lag_us);
        if self.phases.len() < other.phases.len() {
            self.phases.resize_with(other.phases.len(), PhaseStats::new);
        }
        for (mine, theirs) in self.phases.iter_mut().zip(&other.phases) {
            mine.merge(theirs);
        }
        self.bots_sent += other.bots_sent;
        self.sent += other.sent;
        self.completed += other.completed;
        for (mine, theirs) in self.status.iter_mut().zip(&other.status) {
            *mine += theirs;
        }
        self.errors.add(&other.errors);
        self.timeouts += other.timeouts;
        self.unsent += other.unsent;
        self.warmup_sent += other.warmup_sent;
    }

    /// Completed responses whose status lies in `lo..hi`.
    pub fn status_in(&self, lo: usize, hi: usize) -> u64 {
        self.status[lo.min(STATUS_CODES)..hi.min(STATUS_CODES)]
            .iter()
            .sum()
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

fn new_histogram() -> Histogram<u64> {
    // Bounds are constants known to be valid: 1 <= low, high >= 2 * low, sigfig <= 5.
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("constant histogram bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = Stats::new();
        a.sent = 2;
        a.record_response(200, 1000, 900);
        a.record_response(204, 3000, 100);
        let mut b = Stats::new();
        b.sent = 1;
        b.errors.read = 1;
        b.record_response(200, 5_000_000_000, 7);
        a.merge(&b);
        assert_eq!(a.sent, 3);
        assert_eq!(a.completed, 3);
        assert_eq!(a.status[200], 2);
        assert_eq!(a.status[204], 1);
        assert_eq!(a.status_in(200, 300), 3);
        assert_eq!(a.errors.total(), 1);
        assert_eq!(a.latency_us.len(), 3);
        assert_eq!(a.send_lag_us.len(), 3);
        assert_eq!(a.send_lag_us.min(), 100);
        assert!(a.latency_us.max() >= LATENCY_US_MAX - LATENCY_US_MAX / 1000);
    }
}

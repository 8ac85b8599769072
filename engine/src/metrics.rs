//! Per-shard metrics: each shard records into its own counters and HDR histograms (plain `Cell`s
//! and `RefCell`s, no atomics, no sharing); a scrape asks every shard for a [`ShardSnapshot`] over
//! the mesh and merges them.
//!
//! The Prometheus text exposition is written by hand from the merged snapshots: the crates for it
//! (`prometheus`, `prometheus-client`) are built around shared atomic metric registries, which is
//! exactly what shard-local recording avoids, and the text format itself is a few lines.

use std::cell::{Cell, RefCell};
use std::fmt::Write;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Pipeline stages with a latency histogram each. Label values (`name`) of the stages:
/// parse, integrity, profile, selection, scoring, rtb, auction, budget, respond; plus validate,
/// hop (the round trip to the owner shard) and total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Parse,
    Validate,
    /// Fraud tier 1 (`integrity.rs`), on the receiving shard.
    Integrity,
    /// DSP fan-out and collection (`rtb/fanout.rs`), on the receiving shard.
    Rtb,
    Hop,
    /// Profile lookup and cold-start tier for scoring (`learning.rs`), on the owner shard.
    Profile,
    Select,
    Score,
    Auction,
    Budget,
    Respond,
    /// Internal processing of an auction request, from the first byte handled to the response written.
    Total,
}

impl Stage {
    pub const COUNT: usize = 12;
    pub const ALL: [Stage; Stage::COUNT] = [
        Stage::Parse,
        Stage::Validate,
        Stage::Integrity,
        Stage::Rtb,
        Stage::Hop,
        Stage::Profile,
        Stage::Select,
        Stage::Score,
        Stage::Auction,
        Stage::Budget,
        Stage::Respond,
        Stage::Total,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Validate => "validate",
            Stage::Integrity => "integrity",
            Stage::Rtb => "rtb",
            Stage::Hop => "hop",
            Stage::Profile => "profile",
            Stage::Select => "selection",
            Stage::Score => "scoring",
            Stage::Auction => "auction",
            Stage::Budget => "budget",
            Stage::Respond => "respond",
            Stage::Total => "total",
        }
    }
}

/// How an auction request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A paid ad won at least one impression.
    Filled,
    /// Only house ads filled.
    House,
    /// HTTP 204.
    NoBid,
    /// HTTP 400 (invalid OpenRTB).
    Invalid,
    /// HTTP 415 (wrong content type).
    UnsupportedMedia,
    /// HTTP 5xx / internal failure.
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Filled,
        Outcome::House,
        Outcome::NoBid,
        Outcome::Invalid,
        Outcome::UnsupportedMedia,
        Outcome::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Filled => "filled",
            Outcome::House => "house",
            Outcome::NoBid => "nobid",
            Outcome::Invalid => "invalid",
            Outcome::UnsupportedMedia => "unsupported_media_type",
            Outcome::Error => "error",
        }
    }
}

/// Why no paid ad and no house ad served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoBidReason {
    /// No campaign's targeting, flight and creatives fit.
    NoEligibleCampaign,
    /// Candidates existed but all were below the floor or reserve.
    BelowFloor,
    /// Candidates above the floor existed but their budgets were exhausted.
    BudgetExhausted,
    /// The deadline had passed before the auction ran.
    DeadlineExceeded,
    /// Flagged by the integrity check (fraud tier 1); the 204 carries the rule's OpenRTB code.
    InvalidTraffic,
}

impl NoBidReason {
    pub const ALL: [NoBidReason; 5] = [
        NoBidReason::NoEligibleCampaign,
        NoBidReason::BelowFloor,
        NoBidReason::BudgetExhausted,
        NoBidReason::DeadlineExceeded,
        NoBidReason::InvalidTraffic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NoBidReason::NoEligibleCampaign => "no_eligible_campaign",
            NoBidReason::BelowFloor => "below_floor",
            NoBidReason::BudgetExhausted => "budget_exhausted",
            NoBidReason::DeadlineExceeded => "deadline_exceeded",
            NoBidReason::InvalidTraffic => "invalid_traffic",
        }
    }

    /// The OpenRTB 2.6 no-bid reason code sent with the 204 (`X-OpenRTB-NBR`).
    pub fn nbr(self) -> u32 {
        match self {
            NoBidReason::DeadlineExceeded => 1,
            NoBidReason::InvalidTraffic => net::openrtb::nbr::SUSPECTED_NON_HUMAN_TRAFFIC,
            _ => 0,
        }
    }
}

/// Nanosecond histogram, 1 ns to 60 s, 2 significant digits (1 % error).
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 2).expect("static histogram bounds")
}

/// One shard's live metrics. Recording is a `Cell` add or a histogram increment.
pub struct ShardMetrics {
    stages: [RefCell<Histogram<u64>>; Stage::COUNT],
    outcomes: [Cell<u64>; 6],
    nobid: [Cell<u64>; 5],
    /// Requests flagged by the integrity check, per rule (indexed like `integrity::Rule::ALL`).
    integrity: [Cell<u64>; 3],
    pub hops_out: Cell<u64>,
    pub hops_in: Cell<u64>,
    /// The owner's ring was full; the request was served here without hopping.
    pub hop_fallback_local: Cell<u64>,
    pub revenue_micros: Cell<u64>,
    pub impressions_paid: Cell<u64>,
    pub impressions_house: Cell<u64>,
    pub below_floor_candidates: Cell<u64>,
    pub budget_refusals: Cell<u64>,
    pub candidates_cut: Cell<u64>,
    pub win_notices: Cell<u64>,
    pub billing_notices: Cell<u64>,
    /// Model path: tiers, exploration, clicks, model loads (`scoring.rs`).
    pub ml: crate::scoring::MlMetrics,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            stages: std::array::from_fn(|_| RefCell::new(new_histogram())),
            outcomes: Default::default(),
            nobid: Default::default(),
            integrity: Default::default(),
            hops_out: Cell::new(0),
            hops_in: Cell::new(0),
            hop_fallback_local: Cell::new(0),
            revenue_micros: Cell::new(0),
            impressions_paid: Cell::new(0),
            impressions_house: Cell::new(0),
            below_floor_candidates: Cell::new(0),
            budget_refusals: Cell::new(0),
            candidates_cut: Cell::new(0),
            win_notices: Cell::new(0),
            billing_notices: Cell::new(0),
            ml: Default::default(),
        }
    }
}

pub fn bump(c: &Cell<u64>, by: u64) {
    c.set(c.get().wrapping_add(by));
}

impl ShardMetrics {
    pub fn record(&self, stage: Stage, d: Duration) {
        let ns = (d.as_nanos() as u64).clamp(1, 60_000_000_000);
        // A saturated histogram cannot fail to record with these bounds; ignore the impossible error.
        let _ = self.stages[stage as usize].borrow_mut().record(ns);
    }

    pub fn outcome(&self, o: Outcome) {
        bump(&self.outcomes[o as usize], 1);
    }

    pub fn nobid(&self, r: NoBidReason) {
        bump(&self.nobid[r as usize], 1);
    }

    pub fn integrity_flagged(&self, rule: crate::integrity::Rule) {
        bump(&self.integrity[rule as usize], 1);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            stages: std::array::from_fn(|i| self.stages[i].borrow().clone()),
            outcomes: std::array::from_fn(|i| self.outcomes[i].get()),
            nobid: std::array::from_fn(|i| self.nobid[i].get()),
            integrity: std::array::from_fn(|i| self.integrity[i].get()),
            hops_out: self.hops_out.get(),
            hops_in: self.hops_in.get(),
            hop_fallback_local: self.hop_fallback_local.get(),
            revenue_micros: self.revenue_micros.get(),
            impressions_paid: self.impressions_paid.get(),
            impressions_house: self.impressions_house.get(),
            below_floor_candidates: self.below_floor_candidates.get(),
            budget_refusals: self.budget_refusals.get(),
            candidates_cut: self.candidates_cut.get(),
            win_notices: self.win_notices.get(),
            billing_notices: self.billing_notices.get(),
            ml: self.ml.snapshot(),
        }
    }
}

/// A copy of one shard's metrics, sent over the mesh to the shard answering a scrape.
#[derive(Clone)]
pub struct MetricsSnapshot {
    pub stages: [Histogram<u64>; Stage::COUNT],
    pub outcomes: [u64; 6],
    pub nobid: [u64; 5],
    pub integrity: [u64; 3],
    pub hops_out: u64,
    pub hops_in: u64,
    pub hop_fallback_local: u64,
    pub revenue_micros: u64,
    pub impressions_paid: u64,
    pub impressions_house: u64,
    pub below_floor_candidates: u64,
    pub budget_refusals: u64,
    pub candidates_cut: u64,
    pub win_notices: u64,
    pub billing_notices: u64,
    pub ml: crate::scoring::MlSnapshot,
}

impl MetricsSnapshot {
    pub fn outcome(&self, o: Outcome) -> u64 {
        self.outcomes[o as usize]
    }

    pub fn nobid(&self, r: NoBidReason) -> u64 {
        self.nobid[r as usize]
    }

    pub fn integrity(&self, rule: crate::integrity::Rule) -> u64 {
        self.integrity[rule as usize]
    }

    pub fn stage(&self, s: Stage) -> &Histogram<u64> {
        &self.stages[s as usize]
    }

    /// Auction requests answered (every outcome).
    pub fn requests(&self) -> u64 {
        self.outcomes.iter().sum()
    }
}

/// Latency percentiles of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p99_9_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let us = |ns: u64| ns as f64 / 1000.0;
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        p50_us: us(h.value_at_quantile(0.5)),
        p90_us: us(h.value_at_quantile(0.9)),
        p99_us: us(h.value_at_quantile(0.99)),
        p99_9_us: us(h.value_at_quantile(0.999)),
        max_us: us(h.max()),
        mean_us: h.mean() / 1000.0,
    }
}

/// Bucket bounds of the exported Prometheus histograms, in seconds.
const BUCKETS_S: [f64; 16] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Writes a Prometheus histogram from an HDR histogram of nanoseconds.
pub fn write_prom_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram<u64>) {
    for le in BUCKETS_S {
        let bound_ns = (le * 1e9) as u64;
        let count = h.count_between(0, bound_ns);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.len());
    let sum_s = h.mean() * h.len() as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum_s}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.len());
}

/// Writes `# HELP` and `# TYPE` lines.
pub fn write_prom_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prom_histogram_is_cumulative() {
        let m = ShardMetrics::default();
        m.record(Stage::Total, Duration::from_micros(3));
        m.record(Stage::Total, Duration::from_micros(30));
        m.record(Stage::Total, Duration::from_millis(3));
        let snap = m.snapshot();
        let mut out = String::new();
        write_prom_histogram(&mut out, "x", "shard=\"0\"", snap.stage(Stage::Total));
        assert!(
            out.contains("x_bucket{shard=\"0\",le=\"0.000005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{shard=\"0\",le=\"0.00005\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{shard=\"0\",le=\"0.005\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_count{shard=\"0\"} 3\n"), "{out}");
    }

    #[test]
    fn percentiles_of_empty_are_zero() {
        assert_eq!(percentiles(&new_histogram()), Percentiles::default());
    }
}

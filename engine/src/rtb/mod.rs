//! Real-time bidding: calling external DSPs over OpenRTB 2.6 and bringing their bids into the
//! unified auction.
//!
//! Owns: the DSP registry (`registry`), which DSPs a request goes to (`selection`: region, tier,
//! per-shard QPS token buckets), DSP health scores and tier reassignment (`health`), adaptive
//! per-DSP timeouts and the operational/absolute cutoffs (`timeouts`), the outbound request
//! (`outbound`), reused per-shard fan-out buffers (`recycle`), bid validation with OpenRTB loss codes (`validate`), notice macros and the notice
//! queue (`macros`, `notices`), the progressive fan-out on one shard (`fanout`) and per-DSP
//! metrics (`metrics`).
//!
//! Must not know: HTTP framing or connection handling (that is `net::http::client`), campaign
//! budgets or the internal ranking (that is `auction`).
//!
//! Where it runs: the shard that *received* the request runs the fan-out with its own pools (so
//! outbound load follows the kernel's spread of inbound connections and the inbound
//! `BidRequest` never crosses shards); the best external price per impression then travels with
//! the auction job to the user's owner shard, which runs the internal auction with that price as
//! the bar to beat and charges budget only for an internal win.

pub mod fanout;
pub mod health;
pub mod macros;
pub mod metrics;
pub mod notices;
pub mod outbound;
pub mod recycle;
pub mod registry;
pub mod selection;
pub mod timeouts;
pub mod validate;

use serde::{Deserialize, Serialize};

pub use registry::{DspSpec, Registry, RegistryError};

/// The `[rtb]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtbConfig {
    /// Region this server runs in; requests whose geo maps to no known region use it.
    pub home_region: String,
    /// A file with more `[[dsp]]` entries (same format as in this file); "" = none.
    pub dsp_file: String,
    /// After this many ms from receipt, collection closes as soon as one valid external bid is in.
    pub operational_cutoff_ms: u64,
    /// At this many ms from receipt every pending DSP request is cancelled (counted as a timeout).
    pub absolute_cutoff_ms: u64,
    /// Global per-DSP timeout: T_dsp = min(P95(DSP) + margin, this, the DSP's own timeout_ms).
    pub global_timeout_ms: u64,
    /// Margin added to a DSP's P95 so the estimate can rise again after it is censored by timeouts.
    pub adaptive_margin_ms: u64,
    /// Latency samples a DSP needs before its P95 replaces the global timeout.
    pub adaptive_min_samples: u64,
    /// Time kept for the internal auction and the response after collection, ms (the cutoffs are
    /// shortened so that receipt + cutoff + this <= the request's tmax).
    pub response_reserve_ms: u64,
    /// Inventory is premium (tier-3 DSPs are called) when a slot's floor is at least this, CPM
    /// micros, or the request carries a PMP deal.
    pub premium_floor_cpm_micros: u64,
    /// Bid currencies accepted from DSPs (no conversion: others are dropped with loss code 3).
    pub currencies: Vec<String>,
    /// Outbound connections per DSP endpoint per shard (pool bound; at the bound: PoolExhausted).
    pub pool_conns_max: usize,
    /// Connections opened per endpoint per shard at start.
    pub pool_warm: usize,
    /// TCP connect timeout to a DSP, ms.
    pub connect_timeout_ms: u64,
    /// Reconnect backoff bounds after failed connects, ms.
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Largest DSP response body accepted, bytes.
    pub response_bytes_max: usize,
    /// Token-bucket burst of a DSP's QPS cap, in seconds of its per-shard rate.
    pub qps_burst_s: f64,
    /// Health: length of one window bucket, ms, and number of buckets kept (sliding window).
    pub health_bucket_ms: u64,
    pub health_buckets: usize,
    /// Health: how often shard 0 merges every shard's window and republishes scores/tiers, ms.
    pub health_interval_ms: u64,
    /// Health: requests a DSP needs in the window before its score may change its tier.
    pub health_min_requests: u64,
    /// Health: hysteresis around each tier boundary (80/50/30), score points.
    pub health_hysteresis: f64,
    /// Health normalisers: latency P95 at or below this scores 100 (T_global scores 0), ms.
    pub health_fast_ms: u64,
    /// Bid rate (bids per request) scoring 100.
    pub health_bid_rate_good: f64,
    /// Win rate (wins per bid) scoring 100.
    pub health_win_rate_good: f64,
    /// Average bid scoring 100, CPM micros.
    pub health_value_good_cpm_micros: u64,
    /// A DSP its tier excludes from a request still gets every Nth such request (per shard) as a
    /// probe, so a demoted DSP can prove it recovered; 0 = never.
    pub health_probe_every: u32,
    /// Notices (win/billing/loss) waiting per shard; at the bound new notices are refused (counted).
    pub notice_queue_max: usize,
    /// Notices in flight per shard.
    pub notice_concurrency: usize,
    /// Attempts per notice (first try included) and the pause between attempts, ms.
    pub notice_attempts: u32,
    pub notice_retry_ms: u64,
    /// Deadline of one notice attempt, ms.
    pub notice_timeout_ms: u64,
    /// Fire loss notices (lurl) for bids that lost or were dropped.
    pub loss_notices: bool,
}

impl Default for RtbConfig {
    fn default() -> Self {
        RtbConfig {
            home_region: "us-east".into(),
            dsp_file: String::new(),
            operational_cutoff_ms: 70,
            absolute_cutoff_ms: 120,
            global_timeout_ms: 100,
            adaptive_margin_ms: 5,
            adaptive_min_samples: 50,
            response_reserve_ms: 5,
            premium_floor_cpm_micros: 2_000_000,
            currencies: vec!["USD".into()],
            pool_conns_max: 64,
            pool_warm: 2,
            connect_timeout_ms: 50,
            backoff_min_ms: 10,
            backoff_max_ms: 2_000,
            response_bytes_max: 262_144,
            qps_burst_s: 1.0,
            health_bucket_ms: 10_000,
            health_buckets: 6,
            health_interval_ms: 1_000,
            health_min_requests: 20,
            health_hysteresis: 5.0,
            health_fast_ms: 20,
            health_bid_rate_good: 0.5,
            health_win_rate_good: 0.2,
            health_value_good_cpm_micros: 2_000_000,
            health_probe_every: 20,
            notice_queue_max: 4096,
            notice_concurrency: 16,
            notice_attempts: 3,
            notice_retry_ms: 100,
            notice_timeout_ms: 1_000,
            loss_notices: true,
        }
    }
}

impl RtbConfig {
    /// Checks ranges; the error names the field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let bad = |f: &'static str, m: &str| Err((f, m.to_string()));
        if self.operational_cutoff_ms == 0 || self.operational_cutoff_ms > self.absolute_cutoff_ms {
            return bad(
                "rtb.operational_cutoff_ms",
                "must be > 0 and <= absolute_cutoff_ms",
            );
        }
        if self.global_timeout_ms == 0 || self.global_timeout_ms > self.absolute_cutoff_ms {
            return bad(
                "rtb.global_timeout_ms",
                "must be > 0 and <= absolute_cutoff_ms",
            );
        }
        if self.pool_conns_max == 0 || self.pool_warm > self.pool_conns_max {
            return bad("rtb.pool_conns_max", "must be > 0 and >= pool_warm");
        }
        if self.backoff_min_ms == 0 || self.backoff_min_ms > self.backoff_max_ms {
            return bad("rtb.backoff_min_ms", "must be > 0 and <= backoff_max_ms");
        }
        if !(self.qps_burst_s.is_finite() && self.qps_burst_s > 0.0) {
            return bad("rtb.qps_burst_s", "must be a positive number");
        }
        if self.health_bucket_ms == 0 || self.health_buckets == 0 || self.health_interval_ms == 0 {
            return bad(
                "rtb.health_bucket_ms",
                "health_bucket_ms, health_buckets and health_interval_ms must be > 0",
            );
        }
        if !(0.0..=20.0).contains(&self.health_hysteresis) {
            return bad("rtb.health_hysteresis", "must be within 0..=20");
        }
        if self.health_fast_ms >= self.global_timeout_ms {
            return bad("rtb.health_fast_ms", "must be < global_timeout_ms");
        }
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !positive(self.health_bid_rate_good)
            || !positive(self.health_win_rate_good)
            || self.health_value_good_cpm_micros == 0
        {
            return bad(
                "rtb.health_bid_rate_good",
                "health normalisers (bid rate, win rate, value) must be > 0",
            );
        }
        if self.currencies.is_empty() {
            return bad("rtb.currencies", "must name at least one currency");
        }
        if self.notice_queue_max == 0 || self.notice_concurrency == 0 || self.notice_attempts == 0 {
            return bad(
                "rtb.notice_queue_max",
                "notice_queue_max, notice_concurrency and notice_attempts must be > 0",
            );
        }
        if self.response_bytes_max < 64 {
            return bad("rtb.response_bytes_max", "must be >= 64");
        }
        Ok(())
    }
}

//! DSP health: per-shard sliding windows of what each DSP did, merged across shards on a timer,
//! turned into the seed's score
//! `Score = 0.3·S_latency + 0.25·S_bid_rate + 0.25·S_win_rate + 0.2·S_value` (each 0-100) and a
//! tier with hysteresis, plus the adaptive timeout of each DSP.
//!
//! Components (our definitions; the seed leaves them open):
//! - `S_latency = 100 · clamp((T_global − P95) / (T_global − fast_ms), 0, 1) · (1 − timeout share)`
//!   with the P95 of answers only (timeouts weigh through their share)
//! - `S_bid_rate = 100 · min(1, (bids / requests) / bid_rate_good)`
//! - `S_win_rate = 100 · min(1, (wins / bids) / win_rate_good)`
//! - `S_value = 100 · min(1, mean valid bid / value_good)`
//!
//! Tiers: > 80 premium, 50-80 regional, 30-50 opportunistic, < 30 suspended (not called). A tier
//! moves only when the score clears the boundary by `hysteresis` points, and only once the DSP has
//! `min_requests` in the window; until then the configured tier holds.
//!
//! Owns: windows, merging, scoring, tiers. Must not know: the mesh (the shard moves the data).

use std::time::{Duration, Instant};

use super::RtbConfig;
use super::registry::{Registry, Tier};
use super::timeouts::{LatencyHist, adaptive_timeout_ms};

/// What one DSP did during one window (or one bucket of it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DspTotals {
    pub requests: u64,
    pub bids: u64,
    pub wins: u64,
    pub timeouts: u64,
    pub errors: u64,
    /// Sum of valid bid prices, CPM micros.
    pub value_micros: u64,
    /// Latency of answers (timeouts are only counted in `timeouts`).
    pub latency: LatencyHist,
}

impl DspTotals {
    pub fn merge(&mut self, o: &DspTotals) {
        self.requests += o.requests;
        self.bids += o.bids;
        self.wins += o.wins;
        self.timeouts += o.timeouts;
        self.errors += o.errors;
        self.value_micros += o.value_micros;
        self.latency.merge(&o.latency);
    }

    fn clear(&mut self) {
        let mut latency = std::mem::take(&mut self.latency);
        latency.clear();
        *self = DspTotals {
            latency,
            ..DspTotals::default()
        };
    }
}

/// One shard's sliding window: `buckets` buckets of `bucket` length per DSP.
pub struct Window {
    start: Instant,
    bucket: Duration,
    /// Per DSP, per bucket: (bucket epoch, totals).
    dsps: Vec<Vec<(u64, DspTotals)>>,
}

impl Window {
    pub fn new(dsps: usize, buckets: usize, bucket: Duration, start: Instant) -> Window {
        Window {
            start,
            bucket,
            dsps: (0..dsps)
                .map(|_| {
                    (0..buckets)
                        .map(|_| (u64::MAX, DspTotals::default()))
                        .collect()
                })
                .collect(),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.start).as_millis() / self.bucket.as_millis().max(1))
            as u64
    }

    /// The current bucket of `dsp`, cleared first if it still holds an older epoch.
    pub fn at(&mut self, dsp: usize, now: Instant) -> &mut DspTotals {
        let epoch = self.epoch(now);
        let ring = &mut self.dsps[dsp];
        let n = ring.len() as u64;
        let slot = &mut ring[(epoch % n) as usize];
        if slot.0 != epoch {
            slot.0 = epoch;
            slot.1.clear();
        }
        &mut slot.1
    }

    /// Totals of every DSP over the buckets still inside the window.
    pub fn totals(&self, now: Instant) -> Vec<DspTotals> {
        let epoch = self.epoch(now);
        self.dsps
            .iter()
            .map(|ring| {
                let mut t = DspTotals::default();
                for (e, b) in ring {
                    if *e != u64::MAX && epoch - (*e).min(epoch) < ring.len() as u64 {
                        t.merge(b);
                    }
                }
                t
            })
            .collect()
    }
}

/// Per-DSP state every shard reads when selecting and timing DSPs.
#[derive(Debug, Clone, PartialEq)]
pub struct DspHealth {
    pub score: f64,
    pub tier: Tier,
    /// Adaptive timeout, ms.
    pub timeout_ms: u64,
    pub p95_ms: u64,
    /// Requests in the merged window the score came from.
    pub window_requests: u64,
}

/// The published health of every DSP, indexed like the registry. Immutable; replaced whole.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthTable {
    pub dsps: Vec<DspHealth>,
    /// How many merges produced it (0 = the initial table from configuration).
    pub generation: u64,
}

impl HealthTable {
    /// Configured tiers, global timeouts, no score yet (shown as -1).
    pub fn initial(reg: &Registry, cfg: &RtbConfig) -> HealthTable {
        HealthTable {
            dsps: reg
                .dsps
                .iter()
                .map(|d| DspHealth {
                    score: -1.0,
                    tier: d.tier,
                    timeout_ms: cfg.global_timeout_ms.min(d.timeout.as_millis() as u64),
                    p95_ms: 0,
                    window_requests: 0,
                })
                .collect(),
            generation: 0,
        }
    }

    /// The next table from the merged window totals and the previous table (for hysteresis).
    pub fn next(&self, reg: &Registry, cfg: &RtbConfig, merged: &[DspTotals]) -> HealthTable {
        let dsps = reg
            .dsps
            .iter()
            .zip(&self.dsps)
            .zip(merged)
            .map(|((d, prev), t)| {
                let dsp_ms = d.timeout.as_millis() as u64;
                // Timeouts enter the P95 at the cap they hit (censored samples).
                let mut censored = t.latency.clone();
                censored.record_n_ms(cfg.global_timeout_ms.min(dsp_ms), t.timeouts);
                let timeout_ms = adaptive_timeout_ms(
                    &censored,
                    cfg.adaptive_min_samples,
                    cfg.adaptive_margin_ms,
                    cfg.global_timeout_ms,
                    dsp_ms,
                );
                let enough = t.requests >= cfg.health_min_requests.max(1);
                let (score, tier) = if enough {
                    let s = score(t, cfg);
                    (s, next_tier(prev.tier, s, cfg.health_hysteresis))
                } else {
                    (prev.score, prev.tier)
                };
                DspHealth {
                    score,
                    tier,
                    timeout_ms,
                    p95_ms: t.latency.quantile_ms(0.95),
                    window_requests: t.requests,
                }
            })
            .collect();
        HealthTable {
            dsps,
            generation: self.generation + 1,
        }
    }
}

/// The seed's weighted score, 0-100, of one DSP's window.
pub fn score(t: &DspTotals, cfg: &RtbConfig) -> f64 {
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    let global = cfg.global_timeout_ms as f64;
    let fast = cfg.health_fast_ms as f64;
    let p95 = if t.latency.count() == 0 {
        global
    } else {
        t.latency.quantile_ms(0.95) as f64
    };
    let answered = 1.0 - ratio(t.timeouts, t.requests);
    let s_latency = 100.0 * ((global - p95) / (global - fast)).clamp(0.0, 1.0) * answered;
    let s_bid = 100.0 * (ratio(t.bids, t.requests) / cfg.health_bid_rate_good).min(1.0);
    let s_win = 100.0 * (ratio(t.wins, t.bids) / cfg.health_win_rate_good).min(1.0);
    let mean_bid = ratio(t.value_micros, t.bids);
    let s_value = 100.0 * (mean_bid / cfg.health_value_good_cpm_micros as f64).min(1.0);
    0.3 * s_latency + 0.25 * s_bid + 0.25 * s_win + 0.2 * s_value
}

/// Tier of a score without hysteresis: > 80 premium, > 50 regional, >= 30 opportunistic.
pub fn tier_for(score: f64) -> Tier {
    if score > 80.0 {
        Tier::Premium
    } else if score > 50.0 {
        Tier::Regional
    } else if score >= 30.0 {
        Tier::Opportunistic
    } else {
        Tier::Suspended
    }
}

/// The tier after a new score: moves up only if `score − h` still earns a better tier, down
/// only if `score + h` still earns a worse one; otherwise the current tier holds.
pub fn next_tier(current: Tier, score: f64, h: f64) -> Tier {
    let raw = tier_for(score);
    if raw < current {
        tier_for(score - h).min(current)
    } else if raw > current {
        tier_for(score + h).max(current)
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(
        requests: u64,
        bids: u64,
        wins: u64,
        timeouts: u64,
        mean: u64,
        lat_ms: u64,
    ) -> DspTotals {
        let mut t = DspTotals {
            requests,
            bids,
            wins,
            timeouts,
            value_micros: mean * bids,
            ..DspTotals::default()
        };
        t.latency.record_n_ms(lat_ms, requests - timeouts);
        t
    }

    #[test]
    fn score_weights_follow_the_seed() {
        let cfg = RtbConfig::default();
        // Perfect on every component.
        let best = totals(100, 50, 10, 0, 2_000_000, 10);
        assert!((score(&best, &cfg) - 100.0).abs() < 1e-9);
        // Latency only (no bids): 30 points.
        let fast_no_bids = totals(100, 0, 0, 0, 0, 10);
        assert!((score(&fast_no_bids, &cfg) - 30.0).abs() < 1e-9);
        // P95 = 61 ms (bucket bound) => latency (100-61)/80 = 0.4875; half bid rate; no wins;
        // half value: 0.3*48.75 + 0.25*50 + 0 + 0.2*50 = 37.125.
        let mid = totals(100, 25, 0, 0, 1_000_000, 60);
        assert!(
            (score(&mid, &cfg) - 37.125).abs() < 1e-9,
            "{}",
            score(&mid, &cfg)
        );
        // Every request timed out: zero.
        let dead = totals(100, 0, 0, 100, 0, 0);
        assert_eq!(score(&dead, &cfg), 0.0);
        // 10 % timeouts, fast answers: latency 90, everything else perfect.
        let mut some = totals(100, 50, 10, 10, 2_000_000, 10);
        some.latency.clear();
        some.latency.record_n_ms(10, 90);
        assert!(
            (score(&some, &cfg) - 97.0).abs() < 1e-9,
            "{}",
            score(&some, &cfg)
        );
    }

    #[test]
    fn tiers_have_hysteresis() {
        assert_eq!(tier_for(81.0), Tier::Premium);
        assert_eq!(tier_for(80.0), Tier::Regional);
        assert_eq!(tier_for(30.0), Tier::Opportunistic);
        assert_eq!(tier_for(29.9), Tier::Suspended);
        let h = 5.0;
        // Regional needs > 85 to become premium, premium needs < 75 to drop.
        assert_eq!(next_tier(Tier::Regional, 83.0, h), Tier::Regional);
        assert_eq!(next_tier(Tier::Regional, 86.0, h), Tier::Premium);
        assert_eq!(next_tier(Tier::Premium, 77.0, h), Tier::Premium);
        assert_eq!(next_tier(Tier::Premium, 74.0, h), Tier::Regional);
        // A collapse drops several tiers at once, a recovery climbs as far as it clears.
        assert_eq!(next_tier(Tier::Premium, 5.0, h), Tier::Suspended);
        assert_eq!(next_tier(Tier::Suspended, 95.0, h), Tier::Premium);
        assert_eq!(next_tier(Tier::Suspended, 33.0, h), Tier::Suspended);
        assert_eq!(next_tier(Tier::Suspended, 36.0, h), Tier::Opportunistic);
        // No flapping around a boundary.
        let mut t = Tier::Regional;
        for s in [79.0, 81.0, 79.5, 82.0, 78.0, 84.9] {
            t = next_tier(t, s, h);
            assert_eq!(t, Tier::Regional, "score {s}");
        }
    }

    #[test]
    fn windows_slide_and_merge() {
        let t0 = Instant::now();
        let mut w = Window::new(2, 3, Duration::from_secs(1), t0);
        w.at(0, t0).requests += 5;
        w.at(0, t0 + Duration::from_millis(1500)).requests += 7;
        w.at(1, t0 + Duration::from_millis(2100)).bids += 1;
        let now = t0 + Duration::from_millis(2500);
        assert_eq!(w.totals(now)[0].requests, 12);
        // Epoch 3: bucket 0 (epoch 0) fell out.
        let later = t0 + Duration::from_millis(3100);
        assert_eq!(w.totals(later)[0].requests, 7);
        // Writing into a reused bucket clears it first.
        w.at(0, later).requests += 1;
        assert_eq!(w.totals(later)[0].requests, 8);
        let mut merged = w.totals(later)[0].clone();
        merged.merge(&w.totals(later)[1]);
        assert_eq!((merged.requests, merged.bids), (8, 1));
    }

    #[test]
    fn table_demotes_after_enough_requests_and_keeps_tier_before() {
        use super::super::registry::DspSpec;
        let spec = DspSpec {
            id: "a".into(),
            tier: 1,
            enabled: true,
            qps_max: 10,
            timeout_ms: 100,
            formats: vec!["banner".into()],
            endpoints: [("us-east".to_string(), "http://127.0.0.1:1/".to_string())]
                .into_iter()
                .collect(),
        };
        let reg = Registry::build("t", &[spec], "", 120).unwrap();
        let cfg = RtbConfig::default();
        let t0 = HealthTable::initial(&reg, &cfg);
        assert_eq!(t0.dsps[0].tier, Tier::Premium);
        let few = t0.next(&reg, &cfg, &[totals(5, 0, 0, 5, 0, 100)]);
        assert_eq!(few.dsps[0].tier, Tier::Premium);
        let slow = few.next(&reg, &cfg, &[totals(100, 0, 0, 100, 0, 100)]);
        assert_eq!(slow.dsps[0].tier, Tier::Suspended);
        assert_eq!(slow.generation, 2);
        let good = slow.next(&reg, &cfg, &[totals(100, 50, 10, 0, 2_000_000, 15)]);
        assert_eq!(good.dsps[0].tier, Tier::Premium);
        // P95 of 15 ms samples is 16; + 5 ms margin.
        assert_eq!(good.dsps[0].timeout_ms, 21);
    }
}

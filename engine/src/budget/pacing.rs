//! Pacing: spread each campaign's daily spend over its local day along a target curve, by
//! throttling a share of its auctions.
//!
//! Target curve: even (a straight line from local midnight to midnight) or shaped by a 24-value
//! traffic profile (cumulative share of the day's traffic by local hour, linear within an hour).
//! Controller: every `update_ms` each campaign's throttle probability moves by
//! `gain * (actual - target) / budget` (integral action: it settles where spend tracks the
//! curve), clamped to `[0, throttle_max]`. A throttled auction skips the campaign (the next
//! candidate gets the slot). Per shard: a shard paces its own spend against its share of the
//! budget; gauges are summed (target, actual) or averaged (throttle) at scrape.
//!
//! Pure: time and the random draws come from the caller (a per-shard seeded xorshift).

use super::calendar::Calendar;

/// How the day's spend is spread.
#[derive(Debug, Clone, PartialEq)]
pub enum Curve {
    /// No pacing: campaigns spend as fast as traffic allows.
    Off,
    Even,
    /// Relative traffic per local hour (24 values, any scale).
    Profile([f64; 24]),
}

impl Curve {
    /// Share of the day's budget that should be spent by `frac` (0..=1) of the local day.
    pub fn target_share(&self, frac: f64) -> f64 {
        let frac = frac.clamp(0.0, 1.0);
        match self {
            Curve::Off => 1.0,
            Curve::Even => frac,
            Curve::Profile(w) => {
                let total: f64 = w.iter().sum();
                if total <= 0.0 {
                    return frac;
                }
                let pos = frac * 24.0;
                let hour = (pos.floor() as usize).min(23);
                let before: f64 = w[..hour].iter().sum();
                (before + w[hour] * (pos - hour as f64)) / total
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PacingConfig {
    pub curve: Curve,
    pub update_ms: i64,
    pub gain: f64,
    pub throttle_max: f64,
}

/// The gauges of one campaign on one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PaceLine {
    pub target_micros: u64,
    pub actual_micros: u64,
    pub throttle: f64,
}

#[derive(Debug, Clone)]
pub struct Pacer {
    cfg: PacingConfig,
    lines: Vec<PaceLine>,
    /// Per campaign, `ceil(throttle * 2^53)`: a draw `r` (53 bits) allows the campaign when
    /// `r >= threshold`, the same answer as `r / 2^53 >= throttle` without a float on the hot
    /// path (scaling by a power of two is exact). 0: no throttle, no draw.
    thresholds: Vec<u64>,
    /// Some threshold is not 0. While none is (pacing off, or every campaign at or behind its
    /// curve), [`Pacer::allow`] answers with this one flag, not a per-campaign lookup.
    throttling: bool,
    last_update_ms: i64,
    rng: u64,
}

impl Pacer {
    pub fn new(cfg: PacingConfig, campaigns: usize, seed: u64) -> Pacer {
        Pacer {
            cfg,
            lines: vec![PaceLine::default(); campaigns],
            thresholds: vec![0; campaigns],
            throttling: false,
            last_update_ms: i64::MIN,
            rng: seed | 1,
        }
    }

    pub fn line(&self, campaign: usize) -> PaceLine {
        self.lines[campaign]
    }

    /// Whether `campaign` takes part in this auction (a draw against its throttle).
    #[inline]
    pub fn allow(&mut self, campaign: usize) -> bool {
        if !self.throttling {
            return true;
        }
        let t = self.thresholds.get(campaign).copied().unwrap_or(0);
        if t == 0 {
            return true;
        }
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (r >> 11) >= t
    }

    /// `ceil(t * 2^53)` for a throttle `t` (0 for `t <= 0`, NaN included).
    fn threshold(t: f64) -> u64 {
        if t > 0.0 {
            (t * (1u64 << 53) as f64).ceil() as u64
        } else {
            0
        }
    }

    /// Runs the controller if `update_ms` passed. `budget(c)` is this shard's share of campaign
    /// c's daily budget, `spent(c)` its spend today.
    pub fn update(
        &mut self,
        now_ms: i64,
        calendar: &Calendar,
        budget: impl Fn(usize) -> u64,
        spent: impl Fn(usize) -> u64,
    ) {
        if now_ms.saturating_sub(self.last_update_ms) < self.cfg.update_ms {
            return;
        }
        self.last_update_ms = now_ms;
        for (c, (line, thr)) in self.lines.iter_mut().zip(&mut self.thresholds).enumerate() {
            let b = budget(c);
            let p = calendar.period(c, now_ms);
            let frac = (now_ms - p.start_ms) as f64 / (p.end_ms - p.start_ms).max(1) as f64;
            line.target_micros = (b as f64 * self.cfg.curve.target_share(frac)) as u64;
            line.actual_micros = spent(c);
            if self.cfg.curve == Curve::Off || b == 0 {
                line.throttle = 0.0;
                *thr = 0;
                continue;
            }
            let err = (line.actual_micros as f64 - line.target_micros as f64) / b as f64;
            line.throttle = (line.throttle + self.cfg.gain * err).clamp(0.0, self.cfg.throttle_max);
            *thr = Self::threshold(line.throttle);
        }
        self.throttling = self.thresholds.iter().any(|&t| t != 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves() {
        assert_eq!(Curve::Even.target_share(0.25), 0.25);
        let mut w = [0.0; 24];
        w[12] = 1.0;
        let p = Curve::Profile(w);
        assert_eq!(p.target_share(0.5), 0.0);
        assert!((p.target_share(12.5 / 24.0) - 0.5).abs() < 1e-9);
        assert_eq!(p.target_share(13.0 / 24.0), 1.0);
    }

    /// A campaign with far more traffic than budget: the controller throttles until spend
    /// follows the even curve, and never lets it run far ahead.
    #[test]
    fn controller_tracks_the_target() {
        let cal = Calendar::fixed(&[0]);
        let cfg = PacingConfig {
            curve: Curve::Even,
            update_ms: 60_000,
            gain: 2.0,
            throttle_max: 0.999,
        };
        let mut p = Pacer::new(cfg, 1, 7);
        let budget = 1_000_000u64;
        let mut spent = 0u64;
        let day0 = 10 * 86_400_000i64;
        let mut worst_ahead = 0.0f64;
        for minute in 0..1440i64 {
            let now = day0 + minute * 60_000;
            p.update(now, &cal, |_| budget, |_| spent);
            // 100 auctions a minute at 100 micros each: 14.4x the budget.
            for _ in 0..100 {
                if p.allow(0) && spent + 100 <= budget {
                    spent += 100;
                }
            }
            let target = budget as f64 * minute as f64 / 1440.0;
            worst_ahead = worst_ahead.max((spent as f64 - target) / budget as f64);
        }
        assert!(worst_ahead < 0.1, "ran {worst_ahead} of the budget ahead");
        assert!(spent > budget * 95 / 100, "under-delivered: {spent}");
    }
}

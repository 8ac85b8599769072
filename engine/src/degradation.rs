//! The degradation ladder (seed Part 2, "Resilience: Graceful Degradation"), per shard.
//!
//! Each shard runs its own [`Controller`] on its own signals, measured over one interval
//! (`[degradation] interval_ms`): the share of auction requests whose internal time (receipt to
//! response, minus the DSP wait, which has its own cutoffs) exceeded `slow_ms` (an internal p99
//! breach when above `slow_share_max`), the most auction requests in
//! progress at once (backlog) and requests served locally because an owner's ring was full.
//! `up_intervals` breaching intervals in a row raise the level by one; `down_intervals` calm ones
//! in a row (slow share under half the bound, no fallback, backlog under half) lower it by one.
//! Anything in between keeps the level (hysteresis). `force_level` pins it (operators, tests).
//!
//! Levels and what the shard does at each (the seed's ladder, ML and RTB columns merged):
//! - 0 normal: everything.
//! - 1 light: no tier-3 (opportunistic) DSPs ("top DSPs only").
//! - 2 moderate: premium (tier-1) DSPs only; candidates scored per slot capped at
//!   `candidates_max_degraded`.
//! - 3 severe: as 2, and the category CTR prior instead of the GBDT ("global average").
//! - 4 critical: as 3, and no RTB at all ("skip RTB entirely: direct inventory only").
//!
//! A level applies to the work the shard itself does: RTB on the receiving shard, scoring on the
//! owner shard. State is `Cell`s on one shard; nothing is shared.
//!
//! Owns: levels, their actions, the controller and its configuration. Must not know: HTTP, how
//! the actions are carried out.

use std::cell::Cell;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Highest level.
pub const LEVEL_MAX: u8 = 4;
pub const LEVELS: usize = LEVEL_MAX as usize + 1;

/// `[degradation]` in adserver.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DegradationConfig {
    /// Run the controller (false: always level 0 unless `force_level` is set).
    pub enabled: bool,
    /// -1: automatic; 0..=4 pins every shard at that level.
    pub force_level: i32,
    /// Length of one measurement interval.
    pub interval_ms: u64,
    /// An auction request whose internal time (DSP wait excluded) exceeds this is "slow".
    pub slow_ms: u64,
    /// An interval breaches when more than this share of its requests were slow (0.01 = p99).
    pub slow_share_max: f64,
    /// An interval breaches when more auction requests than this were in progress at once.
    pub backlog_max: u64,
    /// Breaching intervals in a row before the level goes up by one.
    pub up_intervals: u32,
    /// Calm intervals in a row before the level goes down by one.
    pub down_intervals: u32,
    /// Candidates scored per slot from level 2 (the normal bound is auction.candidates_max).
    pub candidates_max_degraded: usize,
}

impl Default for DegradationConfig {
    fn default() -> Self {
        DegradationConfig {
            enabled: true,
            force_level: -1,
            interval_ms: 1_000,
            slow_ms: 50,
            slow_share_max: 0.01,
            backlog_max: 512,
            up_intervals: 3,
            down_intervals: 10,
            candidates_max_degraded: 32,
        }
    }
}

impl DegradationConfig {
    /// Checks the section; `Err((field, message))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(-1..=i32::from(LEVEL_MAX)).contains(&self.force_level) {
            return Err((
                "degradation.force_level",
                "must be -1 (automatic) or 0..=4".into(),
            ));
        }
        if self.interval_ms == 0 || self.slow_ms == 0 {
            return Err((
                "degradation.interval_ms",
                "interval_ms and slow_ms must be > 0".into(),
            ));
        }
        if !(self.slow_share_max.is_finite() && (0.0..=1.0).contains(&self.slow_share_max)) {
            return Err(("degradation.slow_share_max", "must be in [0, 1]".into()));
        }
        if self.up_intervals == 0 || self.down_intervals == 0 {
            return Err((
                "degradation.up_intervals",
                "up_intervals and down_intervals must be > 0".into(),
            ));
        }
        if self.candidates_max_degraded == 0 {
            return Err(("degradation.candidates_max_degraded", "must be > 0".into()));
        }
        Ok(())
    }
}

/// The seed's name of a level.
pub fn level_name(level: u8) -> &'static str {
    match level {
        0 => "normal",
        1 => "light",
        2 => "moderate",
        3 => "severe",
        _ => "critical",
    }
}

/// What a level changes on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    /// Highest DSP tier called (4 = every tier the health table allows).
    pub dsp_tier_max: u8,
    /// Call DSPs at all.
    pub rtb: bool,
    /// Score with the category prior instead of the GBDT.
    pub prior_only: bool,
    /// Cap on candidates scored per slot (None: auction.candidates_max).
    pub candidates_max: Option<usize>,
}

pub fn actions(level: u8, cfg: &DegradationConfig) -> Actions {
    Actions {
        dsp_tier_max: match level {
            0 => 4,
            1 => 2,
            _ => 1,
        },
        rtb: level < 4,
        prior_only: level >= 3,
        candidates_max: (level >= 2).then_some(cfg.candidates_max_degraded),
    }
}

/// One interval's signals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Signals {
    pub requests: u64,
    pub slow: u64,
    pub backlog_max: u64,
    pub ring_fallbacks: u64,
}

/// Whether an interval breaches (`Some(true)`), is calm (`Some(false)`) or in between (`None`).
pub fn judge(s: &Signals, cfg: &DegradationConfig) -> Option<bool> {
    let share = if s.requests == 0 {
        0.0
    } else {
        s.slow as f64 / s.requests as f64
    };
    if share > cfg.slow_share_max || s.backlog_max > cfg.backlog_max || s.ring_fallbacks > 0 {
        return Some(true);
    }
    let calm = share <= cfg.slow_share_max / 2.0 && s.backlog_max <= cfg.backlog_max / 2;
    calm.then_some(false)
}

/// One shard's controller: the level, the signals of the running interval, the hysteresis
/// counters.
#[derive(Debug)]
pub struct Controller {
    cfg: DegradationConfig,
    level: Cell<u8>,
    transitions: Cell<u64>,
    /// Auction requests served at each level.
    served: [Cell<u64>; LEVELS],
    requests: Cell<u64>,
    slow: Cell<u64>,
    in_flight: Cell<u64>,
    in_flight_max: Cell<u64>,
    fallbacks_seen: Cell<u64>,
    breaching: Cell<u32>,
    calm: Cell<u32>,
}

/// A copy for a scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DegradationSnapshot {
    pub level: u8,
    pub transitions: u64,
    pub served: [u64; LEVELS],
    pub forced: bool,
}

/// Counts a request in progress until dropped (also when its future is dropped mid-way).
pub struct InFlight<'a>(&'a Controller);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let c = &self.0.in_flight;
        c.set(c.get().saturating_sub(1));
    }
}

impl Controller {
    pub fn new(cfg: &DegradationConfig) -> Controller {
        let level = u8::try_from(cfg.force_level).unwrap_or(0).min(LEVEL_MAX);
        Controller {
            cfg: cfg.clone(),
            level: Cell::new(level),
            transitions: Cell::new(0),
            served: Default::default(),
            requests: Cell::new(0),
            slow: Cell::new(0),
            in_flight: Cell::new(0),
            in_flight_max: Cell::new(0),
            fallbacks_seen: Cell::new(0),
            breaching: Cell::new(0),
            calm: Cell::new(0),
        }
    }

    pub fn level(&self) -> u8 {
        self.level.get()
    }

    pub fn actions(&self) -> Actions {
        actions(self.level.get(), &self.cfg)
    }

    /// Whether the periodic evaluation runs (enabled and not forced).
    pub fn automatic(&self) -> bool {
        self.cfg.enabled && self.cfg.force_level < 0
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.cfg.interval_ms)
    }

    /// An auction request starts on this shard: counted at the current level and as backlog.
    pub fn enter(&self) -> InFlight<'_> {
        let s = &self.served[self.level.get() as usize];
        s.set(s.get() + 1);
        let n = self.in_flight.get() + 1;
        self.in_flight.set(n);
        if n > self.in_flight_max.get() {
            self.in_flight_max.set(n);
        }
        InFlight(self)
    }

    /// An auction request finished after `internal` time on this shard.
    pub fn finish(&self, internal: Duration) {
        self.requests.set(self.requests.get() + 1);
        if internal > Duration::from_millis(self.cfg.slow_ms) {
            self.slow.set(self.slow.get() + 1);
        }
    }

    /// Closes the interval: `ring_fallbacks_total` is the shard's running count of ring-full
    /// fallbacks. Returns the level after the step.
    pub fn tick(&self, ring_fallbacks_total: u64) -> u8 {
        let s = Signals {
            requests: self.requests.replace(0),
            slow: self.slow.replace(0),
            backlog_max: self.in_flight_max.replace(self.in_flight.get()),
            ring_fallbacks: ring_fallbacks_total
                .saturating_sub(self.fallbacks_seen.replace(ring_fallbacks_total)),
        };
        if !self.automatic() {
            return self.level.get();
        }
        match judge(&s, &self.cfg) {
            Some(true) => {
                self.calm.set(0);
                self.breaching.set(self.breaching.get() + 1);
                if self.breaching.get() >= self.cfg.up_intervals {
                    self.breaching.set(0);
                    self.step(1);
                }
            }
            Some(false) => {
                self.breaching.set(0);
                self.calm.set(self.calm.get() + 1);
                if self.calm.get() >= self.cfg.down_intervals {
                    self.calm.set(0);
                    self.step(-1);
                }
            }
            None => {}
        }
        self.level.get()
    }

    fn step(&self, by: i8) {
        let cur = self.level.get();
        let next = cur.saturating_add_signed(by).min(LEVEL_MAX);
        if next != cur {
            self.level.set(next);
            self.transitions.set(self.transitions.get() + 1);
            tracing::warn!(
                from = cur,
                to = next,
                name = level_name(next),
                "degradation level changed"
            );
        }
    }

    pub fn snapshot(&self) -> DegradationSnapshot {
        DegradationSnapshot {
            level: self.level.get(),
            transitions: self.transitions.get(),
            served: std::array::from_fn(|i| self.served[i].get()),
            forced: self.cfg.force_level >= 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DegradationConfig {
        DegradationConfig {
            up_intervals: 2,
            down_intervals: 3,
            ..DegradationConfig::default()
        }
    }

    fn slow_interval(c: &Controller, requests: u64, slow: u64) -> u8 {
        for i in 0..requests {
            let _g = c.enter();
            c.finish(if i < slow {
                Duration::from_millis(80)
            } else {
                Duration::from_micros(300)
            });
        }
        c.tick(0)
    }

    #[test]
    fn climbs_after_up_intervals_and_falls_after_down_intervals() {
        let c = Controller::new(&cfg());
        assert_eq!(slow_interval(&c, 100, 5), 0, "one breach is not enough");
        assert_eq!(slow_interval(&c, 100, 5), 1);
        assert_eq!(slow_interval(&c, 100, 5), 1);
        assert_eq!(slow_interval(&c, 100, 5), 2);
        // In the hysteresis band (0.5 % < share <= 1 %): no change either way.
        for _ in 0..10 {
            assert_eq!(slow_interval(&c, 1000, 8), 2);
        }
        assert_eq!(slow_interval(&c, 100, 0), 2);
        assert_eq!(slow_interval(&c, 100, 0), 2);
        assert_eq!(slow_interval(&c, 100, 0), 1);
        for _ in 0..20 {
            slow_interval(&c, 100, 0);
        }
        assert_eq!(c.level(), 0);
        assert_eq!(c.snapshot().transitions, 4);
    }

    #[test]
    fn never_passes_the_top_level() {
        let c = Controller::new(&cfg());
        for _ in 0..40 {
            slow_interval(&c, 10, 10);
        }
        assert_eq!(c.level(), LEVEL_MAX);
        assert_eq!(c.snapshot().transitions, u64::from(LEVEL_MAX));
    }

    #[test]
    fn ring_fallbacks_and_backlog_breach() {
        let c = Controller::new(&cfg());
        c.tick(3);
        c.tick(5);
        assert_eq!(c.level(), 1, "fallbacks in two intervals");
        c.tick(5);
        let held: Vec<InFlight<'_>> = (0..600).map(|_| c.enter()).collect();
        c.tick(5);
        drop(held);
        assert_eq!(c.tick(5), 2, "backlog of 600 > 512 in two intervals");
    }

    #[test]
    fn forced_level_is_pinned_and_acts() {
        let c = Controller::new(&DegradationConfig {
            force_level: 4,
            ..cfg()
        });
        assert!(!c.automatic());
        for _ in 0..20 {
            slow_interval(&c, 100, 0);
        }
        assert_eq!(c.level(), 4);
        let a = c.actions();
        assert!(!a.rtb && a.prior_only && a.candidates_max == Some(32));
        assert_eq!(c.snapshot().served[4], 2000);
        assert_eq!(actions(0, &cfg()).dsp_tier_max, 4);
        assert_eq!(actions(1, &cfg()).dsp_tier_max, 2);
        assert!(!actions(2, &cfg()).prior_only);
    }

    #[test]
    fn bad_config_is_named() {
        let bad = |c: DegradationConfig| c.check().unwrap_err().0;
        assert_eq!(
            bad(DegradationConfig {
                force_level: 5,
                ..cfg()
            }),
            "degradation.force_level"
        );
        assert_eq!(
            bad(DegradationConfig {
                slow_share_max: 2.0,
                ..cfg()
            }),
            "degradation.slow_share_max"
        );
        DegradationConfig::default().check().unwrap();
    }
}

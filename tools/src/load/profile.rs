//! Rate over time: a sequence of phases, each holding a rate or ramping linearly from one rate to
//! another. A constant run is one phase; ramp, step and spike scenarios are several.
//!
//! Request `n` is intended at the time `t` where the cumulative count `N(t) = n` (request 0 at
//! t = 0), so an open-loop schedule follows any rate curve exactly, whatever the connection count.
//! Knows nothing of sockets or statistics.

use std::sync::Arc;
use std::time::Duration;

use super::config::{self, ConfigError};

/// Upper bound on phases in one run (each phase keeps its own statistics).
pub const PHASES_MAX: usize = 64;

/// One stretch of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub duration: Duration,
    /// Rate at the start of the phase, requests per second.
    pub from_rate: f64,
    /// Rate at the end of the phase (equal to `from_rate` for a constant phase).
    pub to_rate: f64,
}

impl Phase {
    /// Requests intended during the whole phase.
    fn count(&self) -> f64 {
        (self.from_rate + self.to_rate) / 2.0 * self.duration.as_secs_f64()
    }

    /// Requests intended in the first `t` seconds of the phase.
    fn count_until(&self, t: f64) -> f64 {
        let slope = self.slope();
        self.from_rate * t + slope * t * t / 2.0
    }

    /// Seconds into the phase at which the `m`-th of its requests is intended (`m` <= count).
    fn time_of(&self, m: f64) -> f64 {
        let slope = self.slope();
        if slope.abs() < 1e-12 {
            return m / self.from_rate;
        }
        let disc = (self.from_rate * self.from_rate + 2.0 * slope * m).max(0.0);
        ((disc.sqrt() - self.from_rate) / slope).clamp(0.0, self.duration.as_secs_f64())
    }

    fn slope(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs == 0.0 {
            0.0
        } else {
            (self.to_rate - self.from_rate) / secs
        }
    }
}

/// The whole run's rate curve (cheap to clone).
#[derive(Debug, Clone, PartialEq)]
pub struct RateProfile {
    phases: Arc<[Phase]>,
    /// Cumulative request count at the start of each phase.
    count_before: Arc<[f64]>,
    /// Start offset of each phase, seconds.
    start_s: Arc<[f64]>,
}

impl RateProfile {
    pub fn new(phases: Vec<Phase>) -> Result<RateProfile, ConfigError> {
        validate(&phases)?;
        let mut count_before = Vec::with_capacity(phases.len());
        let mut start_s = Vec::with_capacity(phases.len());
        let (mut count, mut start) = (0.0, 0.0);
        for p in &phases {
            count_before.push(count);
            start_s.push(start);
            count += p.count();
            start += p.duration.as_secs_f64();
        }
        Ok(RateProfile {
            phases: phases.into(),
            count_before: count_before.into(),
            start_s: start_s.into(),
        })
    }

    /// One phase at `rate` for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Result<RateProfile, ConfigError> {
        RateProfile::new(vec![constant_phase("constant", rate, duration)])
    }

    /// Named scenarios around a base rate over a total duration:
    /// - `ramp`: from 10 % of the rate up to the rate over the whole duration;
    /// - `step`: 25 %, 50 %, 75 %, 100 % of the rate, a quarter of the duration each;
    /// - `spike`: the rate, then 5x the rate for a tenth of the duration, then the rate again.
    pub fn preset(name: &str, rate: f64, duration: Duration) -> Result<RateProfile, ConfigError> {
        let phases = match name {
            "constant" => vec![constant_phase("constant", rate, duration)],
            "ramp" => vec![Phase {
                name: "ramp".into(),
                duration,
                from_rate: rate * 0.1,
                to_rate: rate,
            }],
            "step" => (1..=4)
                .map(|k| {
                    let share = k as f64 / 4.0;
                    constant_phase(&format!("step-{}%", k * 25), rate * share, duration / 4)
                })
                .collect(),
            "spike" => {
                let spike = duration / 10;
                let calm = (duration - spike) / 2;
                vec![
                    constant_phase("before", rate, calm),
                    constant_phase("spike", rate * 5.0, spike),
                    constant_phase("after", rate, duration - spike - calm),
                ]
            }
            other => {
                return Err(ConfigError::Invalid(format!(
                    "--scenario {other:?}: expected constant, ramp, step or spike"
                )));
            }
        };
        RateProfile::new(phases)
    }

    /// Parses `RATE@DURATION` or `FROM..TO@DURATION` phases separated by commas, e.g.
    /// `1000@10s,1000..8000@30s,20000@2s,1000@10s`.
    pub fn parse(spec: &str) -> Result<RateProfile, ConfigError> {
        let phases = spec
            .split(',')
            .enumerate()
            .map(|(i, part)| parse_phase(i, part.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        RateProfile::new(phases)
    }

    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The rate at the very start (used for the warm-up).
    pub fn first_rate(&self) -> f64 {
        self.phases[0].from_rate
    }

    pub fn peak_rate(&self) -> f64 {
        self.phases
            .iter()
            .map(|p| p.from_rate.max(p.to_rate))
            .fold(0.0, f64::max)
    }

    /// Requests intended over the whole profile.
    pub fn total_count(&self) -> f64 {
        let last = self.phases.len() - 1;
        self.count_before[last] + self.phases[last].count()
    }

    /// Offset at which request `n` is intended, or `None` past the end.
    pub fn offset(&self, n: u64) -> Option<Duration> {
        let n = n as f64;
        if n >= self.total_count() {
            return None;
        }
        let i = self
            .count_before
            .partition_point(|&c| c <= n)
            .saturating_sub(1);
        let t = self.start_s[i] + self.phases[i].time_of(n - self.count_before[i]);
        Some(Duration::from_secs_f64(t))
    }

    /// Index of the phase an offset falls in (the last phase for offsets past the end).
    pub fn phase_at(&self, offset: Duration) -> usize {
        let t = offset.as_secs_f64();
        self.start_s.partition_point(|&s| s <= t).saturating_sub(1)
    }

    /// Requests intended before `offset`.
    pub fn count_until(&self, offset: Duration) -> f64 {
        let i = self.phase_at(offset);
        let into =
            (offset.as_secs_f64() - self.start_s[i]).min(self.phases[i].duration.as_secs_f64());
        self.count_before[i] + self.phases[i].count_until(into)
    }
}

fn constant_phase(name: &str, rate: f64, duration: Duration) -> Phase {
    Phase {
        name: name.into(),
        duration,
        from_rate: rate,
        to_rate: rate,
    }
}

fn parse_phase(index: usize, part: &str) -> Result<Phase, ConfigError> {
    let bad =
        |why: &str| ConfigError::Invalid(format!("--phases item {} {part:?}: {why}", index + 1));
    let (rates, duration) = part
        .split_once('@')
        .ok_or_else(|| bad("expected RATE@DURATION or FROM..TO@DURATION"))?;
    let duration = config::parse_duration(duration).map_err(|e| bad(&e.to_string()))?;
    let rate = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| bad(&format!("{s:?} is not a rate")))
    };
    let (from_rate, to_rate) = match rates.split_once("..") {
        Some((a, b)) => (rate(a)?, rate(b)?),
        None => (rate(rates)?, rate(rates)?),
    };
    Ok(Phase {
        name: format!("phase-{}", index + 1),
        duration,
        from_rate,
        to_rate,
    })
}

fn validate(phases: &[Phase]) -> Result<(), ConfigError> {
    if phases.is_empty() || phases.len() > PHASES_MAX {
        return Err(ConfigError::Invalid(format!(
            "a run needs 1 to {PHASES_MAX} phases, not {}",
            phases.len()
        )));
    }
    for p in phases {
        let ok = |r: f64| r.is_finite() && (0.0..=config::RATE_MAX).contains(&r);
        if !ok(p.from_rate) || !ok(p.to_rate) || p.from_rate + p.to_rate <= 0.0 {
            return Err(ConfigError::Invalid(format!(
                "phase {}: rates must be in [0, {}] and not both 0 (got {}..{})",
                p.name,
                config::RATE_MAX,
                p.from_rate,
                p.to_rate
            )));
        }
        if p.duration.is_zero() {
            return Err(ConfigError::Invalid(format!(
                "phase {}: duration is 0",
                p.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn constant_profile_spaces_requests_evenly() {
        let p = RateProfile::constant(100.0, secs(2.0)).unwrap();
        assert_eq!(p.total_count(), 200.0);
        assert_eq!(p.offset(0), Some(secs(0.0)));
        assert!((p.offset(50).unwrap().as_secs_f64() - 0.5).abs() < 1e-9);
        assert_eq!(p.offset(200), None);
    }

    #[test]
    fn ramp_counts_follow_the_integral_and_offsets_invert_it() {
        let p = RateProfile::parse("0..100@10s").unwrap();
        assert!((p.total_count() - 500.0).abs() < 1e-9);
        for n in [1u64, 10, 100, 250, 499] {
            let t = p.offset(n).unwrap();
            assert!((p.count_until(t) - n as f64).abs() < 1e-6, "n {n} t {t:?}");
        }
        // Half the requests arrive in the last ~29 % of a linear ramp from 0.
        let half = p.offset(250).unwrap().as_secs_f64();
        assert!((half - 50f64.sqrt()).abs() < 1e-6, "{half}");
    }

    #[test]
    fn phases_chain_and_phase_at_finds_each() {
        let p = RateProfile::parse("10@1s,100..200@2s,50@1s").unwrap();
        assert_eq!(p.phases().len(), 3);
        assert!((p.total_count() - (10.0 + 300.0 + 50.0)).abs() < 1e-9);
        assert_eq!(p.phase_at(secs(0.5)), 0);
        assert_eq!(p.phase_at(secs(1.0)), 1);
        assert_eq!(p.phase_at(secs(2.9)), 1);
        assert_eq!(p.phase_at(secs(3.5)), 2);
        // Request 10 is the first of phase 2.
        assert!((p.offset(10).unwrap().as_secs_f64() - 1.0).abs() < 1e-9);
        let mut last = Duration::ZERO;
        for n in 0..360 {
            let t = p.offset(n).unwrap();
            assert!(t >= last, "offsets must not go back at {n}");
            last = t;
        }
    }

    #[test]
    fn presets_have_the_documented_shape() {
        let spike = RateProfile::preset("spike", 100.0, secs(10.0)).unwrap();
        assert_eq!(spike.peak_rate(), 500.0);
        assert_eq!(spike.duration(), secs(10.0));
        let step = RateProfile::preset("step", 100.0, secs(8.0)).unwrap();
        assert_eq!(step.phases().len(), 4);
        assert_eq!(step.phases()[0].from_rate, 25.0);
        let ramp = RateProfile::preset("ramp", 100.0, secs(10.0)).unwrap();
        assert_eq!(ramp.first_rate(), 10.0);
        assert!(RateProfile::preset("wave", 1.0, secs(1.0)).is_err());
    }

    #[test]
    fn bad_specs_name_the_item() {
        for (spec, needle) in [
            ("100", "item 1"),
            ("100@1s,abc@2s", "item 2"),
            ("100@1s,5..x@2s", "item 2"),
            ("0@1s", "not both 0"),
            ("100@0s", "duration is 0"),
            ("-5@1s", "rates must be"),
        ] {
            let e = RateProfile::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }
}

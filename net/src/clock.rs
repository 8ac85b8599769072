//! The request path's monotonic clock: connection timeouts, stage timings, a request's receipt
//! and its deadline.
//!
//! The CPU's time-stamp counter, read and calibrated (once per process, against the OS monotonic
//! clock) by `quanta`, which falls back to that clock itself where the counter is not invariant.
//! Why: a no-bid request reads the clock ~13 times (every stage boundary of the per-stage
//! histograms, and the connection's timeouts); through the vDSO (`std::time::Instant`,
//! clocksource `tsc` on our hosts) a read costs 17-29 ns here, the counter 10-14 ns. Deadlines
//! handed to the I/O runtime (monoio timers, DSP calls) stay `std::time::Instant`: [`to_std`]
//! converts at that boundary.
//!
//! Owns nothing else; wall-clock time (budgets, calendars) is the engine's.

use std::ops::Sub;
use std::sync::OnceLock;
use std::time::Duration;

/// A point on the request path's clock: nanoseconds since the clock's origin (its first use in
/// the process). Plain integers, so differences and offsets cost one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(u64);

/// The calibrated counter and its reading at the clock's origin.
struct Counter {
    clock: quanta::Clock,
    origin: u64,
}

/// Shared read-only by every shard after [`calibrate`].
fn counter() -> &'static Counter {
    static COUNTER: OnceLock<Counter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        Counter { clock, origin }
    })
}

/// Now, on the request path's clock.
#[inline]
pub fn now() -> Instant {
    let counter = counter();
    Instant(
        counter
            .clock
            .delta_as_nanos(counter.origin, counter.clock.raw()),
    )
}

/// Calibrates the counter (~10 ms the first time in a process), so that no request pays for it.
pub fn calibrate() {
    let _ = now();
}

impl Instant {
    /// Time from `earlier` to `self`; zero when `earlier` is later.
    #[inline]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Time since `self`.
    pub fn elapsed(self) -> Duration {
        now().saturating_duration_since(self)
    }

    /// `self` plus `ms` milliseconds (saturating).
    #[inline]
    pub fn plus_ms(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms.saturating_mul(1_000_000)))
    }

    /// `self` plus `d` (saturating).
    #[inline]
    pub fn plus(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// Saturating, like [`Instant::saturating_duration_since`].
    #[inline]
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// The `std` instant `at` corresponds to (for deadlines given to the I/O runtime). A future `at`
/// maps to a future `std` instant; one too far ahead to represent maps to now plus 30 years.
pub fn to_std(at: Instant) -> std::time::Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);
    let here = now();
    let std_now = std::time::Instant::now();
    if at >= here {
        let ahead = at - here;
        std_now
            .checked_add(ahead)
            .or_else(|| std_now.checked_add(FAR_FUTURE))
            .unwrap_or(std_now)
    } else {
        std_now.checked_sub(here - at).unwrap_or(std_now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_forward_in_step_with_the_os_clock() {
        calibrate();
        // The counter's interval lies inside the OS clock's: a descheduled thread between two
        // reads can only make the OS interval longer.
        let s0 = std::time::Instant::now();
        let q0 = now();
        std::thread::sleep(Duration::from_millis(30));
        let q = now() - q0;
        let s = s0.elapsed();
        assert!(q >= Duration::from_millis(30), "{q:?}");
        assert!(
            q <= s + Duration::from_millis(2) + s / 50,
            "counter {q:?} vs os {s:?}"
        );
    }

    #[test]
    fn differences_saturate_at_zero_and_offsets_add() {
        let a = now();
        assert_eq!(a - a.plus_ms(1), Duration::ZERO);
        assert_eq!(a.plus_ms(5) - a, Duration::from_millis(5));
        assert_eq!(
            a.plus(Duration::from_micros(7)) - a,
            Duration::from_micros(7)
        );
        assert_eq!(a.plus_ms(u64::MAX), Instant(u64::MAX));
    }

    #[test]
    fn converts_to_std_instants_in_the_past_and_the_future() {
        let at = now();
        std::thread::sleep(Duration::from_millis(20));
        let ago = to_std(at).elapsed();
        assert!(ago >= Duration::from_millis(20), "{ago:?}");
        let ahead = to_std(now().plus_ms(10_000)) - std::time::Instant::now();
        assert!(ahead > Duration::from_millis(9_000), "{ahead:?}");
        assert!(ahead <= Duration::from_millis(10_000), "{ahead:?}");
        let far = to_std(Instant(u64::MAX)) - std::time::Instant::now();
        assert!(far > Duration::from_secs(86_400 * 365), "{far:?}");
    }
}

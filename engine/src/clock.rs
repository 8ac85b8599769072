//! The request path's monotonic clock: stage timings, the request's receipt and its deadline.
//!
//! The CPU's time-stamp counter, read and calibrated (once, against the OS monotonic clock) by
//! `quanta`, which falls back to that clock itself where the TSC is not invariant. Why: a no-bid request
//! reads the clock ~13 times (every stage boundary of the per-stage histograms); through the vDSO
//! (`std::time::Instant`, clocksource `tsc` on our hosts) a read costs 17-29 ns here, the counter
//! 10-14 ns. Deadlines handed to the I/O runtime (DSP calls, timers) stay `std::time::Instant`:
//! [`to_std`] converts at that boundary.
//!
//! Owns nothing else; the wall clock for budgets and calendars is `ledger::now_ms*`.

use std::ops::Sub;
use std::sync::OnceLock;
use std::time::Duration;

/// A point on the request path's clock: a raw counter reading, scaled only when two are
/// subtracted (`quanta::Instant::now` scales every reading and checks for a thread-local mock
/// clock first: ~40 instructions a read, against ~5 here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(u64);

/// The calibrated counter, shared read-only by every shard after [`calibrate`].
fn counter() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Now, on the request path's clock.
#[inline]
pub fn now() -> Instant {
    Instant(counter().raw())
}

/// Calibrates the counter (~10 ms the first time), so that no request pays for it.
pub fn calibrate() {
    let _ = now();
}

impl Instant {
    /// Time from `earlier` to `self`; zero when `earlier` is later.
    #[inline]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        counter().delta(earlier.0, self.0)
    }

    /// Time since `self`.
    pub fn elapsed(self) -> Duration {
        now().saturating_duration_since(self)
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

/// The `std` instant `at` corresponds to (for deadlines given to the I/O runtime).
pub fn to_std(at: Instant) -> std::time::Instant {
    let ago = at.elapsed();
    std::time::Instant::now()
        .checked_sub(ago)
        .unwrap_or_else(std::time::Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_forward_in_step_with_the_os_clock() {
        calibrate();
        let (q0, s0) = (now(), std::time::Instant::now());
        std::thread::sleep(Duration::from_millis(30));
        let (q, s) = (now() - q0, s0.elapsed());
        assert!(q >= Duration::from_millis(30), "{q:?}");
        // Generous: a descheduled vCPU between the two reads must not fail the test.
        assert!(
            q.abs_diff(s) < Duration::from_millis(10) + s / 10,
            "counter {q:?} vs os {s:?}"
        );
    }

    #[test]
    fn differences_saturate_at_zero() {
        let (a, b) = (now(), now());
        assert_eq!(a - b.max(a), Duration::ZERO);
        assert_eq!(
            a.saturating_duration_since(Instant(a.0 + 1_000_000)),
            Duration::ZERO
        );
    }

    #[test]
    fn converts_to_a_std_instant_as_long_ago() {
        let at = now();
        std::thread::sleep(Duration::from_millis(20));
        let ago = to_std(at).elapsed();
        assert!(ago >= Duration::from_millis(20), "{ago:?}");
        assert!(ago < Duration::from_secs(2), "{ago:?}");
    }
}

//! The request path's monotonic clock: stage timings, the request's receipt and its deadline.
//!
//! The CPU's time-stamp counter through `quanta` (calibrated once against the OS monotonic clock;
//! `quanta` falls back to that clock itself where the TSC is not invariant). Why: a no-bid request
//! reads the clock ~13 times (every stage boundary of the per-stage histograms); through the vDSO
//! (`std::time::Instant`, clocksource `tsc` on our hosts) a read costs 17-29 ns here, the counter
//! 10-14 ns. Deadlines handed to the I/O runtime (DSP calls, timers) stay `std::time::Instant`:
//! [`to_std`] converts at that boundary.
//!
//! Owns nothing else; the wall clock for budgets and calendars is `ledger::now_ms*`.

use std::time::Duration;

/// A point on the request path's clock.
pub type Instant = quanta::Instant;

/// Now, on the request path's clock.
#[inline]
pub fn now() -> Instant {
    quanta::Instant::now()
}

/// Calibrates the counter (~10 ms the first time), so that no request pays for it.
pub fn calibrate() {
    let _ = now();
}

/// The `std` instant `at` corresponds to (for deadlines given to the I/O runtime).
pub fn to_std(at: Instant) -> std::time::Instant {
    let ago: Duration = now().saturating_duration_since(at);
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
    fn converts_to_a_std_instant_as_long_ago() {
        let at = now();
        std::thread::sleep(Duration::from_millis(20));
        let ago = to_std(at).elapsed();
        assert!(ago >= Duration::from_millis(20), "{ago:?}");
        assert!(ago < Duration::from_secs(2), "{ago:?}");
    }
}

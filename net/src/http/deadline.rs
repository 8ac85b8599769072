//! Connection deadlines: a cheap clock and timers that are re-armed lazily.
//!
//! Owns how the connection loop measures time and arms its idle, request and write timeouts.
//! Knows nothing of what happens when one expires.
//!
//! Why: a keep-alive connection waits for a read and (if the socket is full) a write on every
//! request. Arming a fresh monoio timer for each wait reads the OS clock, registers and
//! deregisters a timer-wheel entry and moves a large `Sleep` around: a few hundred instructions a
//! request. Instead each connection keeps one [`LazyTimer`] per purpose that stays registered
//! across requests, and the loop asks it to fire "no earlier than `deadline`". The timer is only
//! reset when its current expiry is before that deadline or more than its slack after it; a reset
//! sets the expiry to deadline + slack, so a busy connection resets each timer about once per
//! slack period. A timeout therefore fires at most [`slack`] late, never early (nginx does the
//! same with `NGX_TIMER_LAZY_DELAY`, 300 ms).
//!
//! The clock is the CPU's time-stamp counter, calibrated once against the OS monotonic clock by
//! `quanta` (which falls back to that clock itself where the counter is not invariant): ~10
//! instructions a read instead of a vDSO `clock_gettime`. The `std` clock is read only when a
//! timer is reset, to hand monoio its deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use monoio::time::{Instant, Sleep, sleep_until};

/// Largest slack of a lazy timer (nginx's `NGX_TIMER_LAZY_DELAY`).
pub(crate) const SLACK_MAX: Duration = Duration::from_millis(300);
/// A timer's slack is this fraction of its timeout when that is below [`SLACK_MAX`].
const SLACK_TIMEOUT_DIVISOR: u64 = 8;
/// Expiry used when a deadline cannot be represented (a timeout of centuries).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// A point on the connection clock: nanoseconds since the clock's origin (first use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Nanos(u64);

impl Nanos {
    /// `self` plus `ms` milliseconds (saturating).
    pub(crate) fn plus_ms(self, ms: u64) -> Nanos {
        Nanos(self.0.saturating_add(ms.saturating_mul(1_000_000)))
    }
}

/// The calibrated counter and its reading at the clock's origin.
struct Counter {
    clock: quanta::Clock,
    origin: u64,
}

fn counter() -> &'static Counter {
    static COUNTER: OnceLock<Counter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        Counter { clock, origin }
    })
}

/// Calibrates the clock (~10 ms the first time in a process), so that no request pays for it.
pub(crate) fn calibrate() {
    let _ = now();
}

/// Now, on the connection clock.
#[inline]
pub(crate) fn now() -> Nanos {
    let counter = counter();
    Nanos(
        counter
            .clock
            .delta_as_nanos(counter.origin, counter.clock.raw()),
    )
}

/// How late a timer with this timeout may fire: an eighth of the timeout, at most [`SLACK_MAX`].
pub(crate) fn slack(timeout_ms: u64) -> Duration {
    Duration::from_millis(timeout_ms / SLACK_TIMEOUT_DIVISOR).min(SLACK_MAX)
}

/// A monoio timer that stays registered across waits and fires no earlier than the deadline last
/// given to [`LazyTimer::arm`] and at most `slack` after it.
pub(crate) struct LazyTimer {
    /// Created on first use (a connection that never waits never registers a timer).
    sleep: Option<Pin<Box<Sleep>>>,
    /// The expiry `sleep` is set to, on the connection clock (the `std` deadline it was given is
    /// at or after this point).
    expiry: Nanos,
    slack_nanos: u64,
}

impl LazyTimer {
    /// A timer for a timeout of `timeout_ms` (which sets its slack, see [`slack`]).
    pub(crate) fn new(timeout_ms: u64) -> Self {
        Self {
            sleep: None,
            expiry: Nanos(0),
            slack_nanos: u64::try_from(slack(timeout_ms).as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Make the timer fire no earlier than `deadline` and at most the slack after it. Cheap when
    /// the current expiry already lies in that window (no clock read, no timer-wheel work).
    pub(crate) fn arm(&mut self, deadline: Nanos) {
        let in_window = self.expiry >= deadline && self.expiry.0 - deadline.0 <= self.slack_nanos;
        if self.sleep.is_none() || !in_window {
            self.reset(Nanos(deadline.0.saturating_add(self.slack_nanos)));
        }
    }

    /// Set the expiry to `expiry`: read both clocks (the connection clock first, so that the
    /// `std` deadline is never earlier than `expiry`) and reset the monoio timer.
    #[cold]
    fn reset(&mut self, expiry: Nanos) {
        let remaining = Duration::from_nanos(expiry.0.saturating_sub(now().0));
        let std_now = Instant::now();
        let std_deadline = std_now
            .checked_add(remaining)
            .or_else(|| std_now.checked_add(FAR_FUTURE))
            .unwrap_or(std_now);
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().reset(std_deadline),
            None => self.sleep = Some(Box::pin(sleep_until(std_deadline))),
        }
        self.expiry = expiry;
    }

    /// Ready once the armed expiry has passed (registers the task's waker until then).
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_is_an_eighth_of_short_timeouts_and_capped() {
        assert_eq!(slack(800), Duration::from_millis(100));
        assert_eq!(slack(30_000), SLACK_MAX);
        assert_eq!(slack(0), Duration::ZERO);
    }

    #[test]
    fn clock_counts_forward_in_step_with_the_os_clock() {
        calibrate();
        let (ours, os) = (now(), std::time::Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let ours = Duration::from_nanos(now().0 - ours.0);
        let os = os.elapsed();
        assert!(ours >= Duration::from_millis(20), "{ours:?}");
        assert!(ours <= os + Duration::from_millis(5), "{ours:?} vs {os:?}");
    }

    fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
    }

    async fn expired(timer: &mut LazyTimer) {
        std::future::poll_fn(|cx| timer.poll_expired(cx)).await
    }

    #[test]
    fn fires_after_the_deadline_within_the_slack() {
        runtime().block_on(async {
            let mut timer = LazyTimer::new(400);
            let start = std::time::Instant::now();
            timer.arm(now().plus_ms(100));
            expired(&mut timer).await;
            let waited = start.elapsed();
            assert!(waited >= Duration::from_millis(100), "{waited:?}");
            // Slack 50 ms, plus the timer wheel's millisecond and a loaded machine.
            assert!(waited < Duration::from_millis(400), "{waited:?}");
        });
    }

    #[test]
    fn later_deadline_within_slack_keeps_the_expiry_and_earlier_one_resets() {
        runtime().block_on(async {
            let mut timer = LazyTimer::new(8_000);
            let slack = 300_000_000;
            let deadline = now().plus_ms(5_000);
            timer.arm(deadline);
            let armed = timer.expiry;
            assert_eq!(armed, Nanos(deadline.0 + slack));
            timer.arm(deadline.plus_ms(200));
            assert_eq!(timer.expiry, armed, "within the slack: not reset");
            timer.arm(deadline.plus_ms(301));
            assert!(timer.expiry > armed, "past the expiry: reset later");
            let soon = now().plus_ms(10);
            timer.arm(soon);
            assert_eq!(
                timer.expiry,
                Nanos(soon.0 + slack),
                "too late: reset earlier"
            );
        });
    }
}

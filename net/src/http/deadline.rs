//! Connection deadlines: timeouts whose timers are re-armed lazily.
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
//! The clock is [`crate::clock`] (the CPU's time-stamp counter): the `std` clock is read only
//! when a timer is reset, to hand monoio its deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use monoio::time::{Sleep, sleep_until};

use crate::clock::{self, Instant};

/// Largest slack of a lazy timer (nginx's `NGX_TIMER_LAZY_DELAY`).
pub(crate) const SLACK_MAX: Duration = Duration::from_millis(300);
/// A timer's slack is this fraction of its timeout when that is below [`SLACK_MAX`].
const SLACK_TIMEOUT_DIVISOR: u64 = 8;
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
    expiry: Instant,
    timeout_ms: u64,
    slack: Duration,
}

impl LazyTimer {
    /// A timer for a timeout of `timeout_ms` (which sets its slack, see [`slack`]).
    pub(crate) fn new(timeout_ms: u64) -> Self {
        Self {
            sleep: None,
            expiry: clock::now(),
            timeout_ms,
            slack: slack(timeout_ms),
        }
    }

    /// Make the timer fire no earlier than the timeout after `start`, at most the slack after.
    pub(crate) fn arm_after(&mut self, start: Instant) {
        self.arm(start.plus_ms(self.timeout_ms));
    }

    /// Make the timer fire no earlier than `deadline` and at most the slack after it. Cheap when
    /// the current expiry already lies in that window (no clock read, no timer-wheel work).
    pub(crate) fn arm(&mut self, deadline: Instant) {
        let in_window = self.expiry >= deadline && self.expiry - deadline <= self.slack;
        if self.sleep.is_none() || !in_window {
            self.reset(deadline.plus(self.slack));
        }
    }

    /// Set the expiry to `expiry` and reset the monoio timer to the `std` instant it corresponds
    /// to (never earlier: see [`clock::to_std`]).
    #[cold]
    fn reset(&mut self, expiry: Instant) {
        let std_deadline = clock::to_std(expiry);
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().reset(std_deadline.into()),
            None => self.sleep = Some(Box::pin(sleep_until(std_deadline.into()))),
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
            timer.arm(clock::now().plus_ms(100));
            expired(&mut timer).await;
            let waited = start.elapsed();
            assert!(waited >= Duration::from_millis(100), "{waited:?}");
            // Slack 50 ms; the bound only catches a timer that never fires (a loaded machine
            // may deschedule the thread for a while).
            assert!(waited < Duration::from_secs(10), "{waited:?}");
        });
    }

    #[test]
    fn later_deadline_within_slack_keeps_the_expiry_and_earlier_one_resets() {
        runtime().block_on(async {
            let mut timer = LazyTimer::new(8_000);
            let slack = SLACK_MAX;
            let deadline = clock::now().plus_ms(5_000);
            timer.arm(deadline);
            let armed = timer.expiry;
            assert_eq!(armed, deadline.plus(slack));
            timer.arm(deadline.plus_ms(200));
            assert_eq!(timer.expiry, armed, "within the slack: not reset");
            timer.arm(deadline.plus_ms(301));
            assert!(timer.expiry > armed, "past the expiry: reset later");
            let soon = clock::now().plus_ms(10);
            timer.arm(soon);
            assert_eq!(timer.expiry, soon.plus(slack), "too late: reset earlier");
        });
    }
}

//! Running under a service manager: systemd's notify protocol (`sd_notify`) for readiness,
//! stopping and a watchdog that only pings while every shard is alive.
//!
//! Liveness: each shard stamps its slot in [`Heartbeats`] from a timer on its own executor, so a
//! stamp proves the shard's event loop is turning (a shard stuck in a long task or blocked in a
//! syscall stops stamping). A supervisor thread sends `WATCHDOG=1` only when every stamp is fresh;
//! otherwise it stays silent, names the stale shards in `STATUS=` and the log, and systemd restarts
//! the unit once `WatchdogSec` passes. The stamps are one relaxed store per shard every
//! `heartbeat_ms` (a timer, never the request path), read by one thread: no contention.
//!
//! Owns: the notify messages and the heartbeat table. Must not know: requests, auctions or money.
//! Without `NOTIFY_SOCKET` (not started by systemd) every call is a no-op.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// One liveness stamp per shard (milliseconds since the table was made; 0 = never stamped).
pub struct Heartbeats {
    epoch: Instant,
    stamps_ms: Box<[AtomicU64]>,
}

impl Heartbeats {
    pub fn new(shards: usize) -> Heartbeats {
        Heartbeats {
            epoch: Instant::now(),
            stamps_ms: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Called by shard `shard` from its own executor.
    pub fn stamp(&self, shard: usize) {
        self.stamp_at(shard, Instant::now());
    }

    fn stamp_at(&self, shard: usize, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        // +1 so that a stamp in the first millisecond is not mistaken for "never".
        self.stamps_ms[shard].store(ms + 1, Ordering::Relaxed);
    }

    /// Shards whose last stamp is older than `max_age` at `now` (or that never stamped).
    pub fn stale(&self, now: Instant, max_age: Duration) -> Vec<usize> {
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64 + 1;
        let max_ms = max_age.as_millis() as u64;
        self.stamps_ms
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                let stamp = s.load(Ordering::Relaxed);
                stamp == 0 || now_ms.saturating_sub(stamp) > max_ms
            })
            .map(|(i, _)| i)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.stamps_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stamps_ms.is_empty()
    }
}

/// Stamps `shard`'s heartbeat every `period` until the shard stops. Runs on the shard's executor.
pub async fn heartbeat_loop(shard: usize, beats: Arc<Heartbeats>, period: Duration) {
    loop {
        beats.stamp(shard);
        monoio::time::sleep(period).await;
    }
}

/// Longest `READY=1` waits for every shard's first budget grants; past it the service is
/// declared ready anyway (RTB and house ads need no budget) and `STATUS=` names the shards still
/// waiting.
pub const BUDGET_WARM_WAIT: Duration = Duration::from_secs(5);

/// One "budget warm" flag per shard: set by the shard (once its sub-ledger is registered and every
/// campaign's first refill was answered, `ledger::SubLedger::is_warm`), read by `READY=1` and
/// `/ready`. Written once per shard, read rarely: no contention.
pub struct Readiness {
    warm: Box<[AtomicBool]>,
    /// Set when draining starts: `/ready` answers 503 and no `READY=1` follows.
    draining: AtomicBool,
}

impl Readiness {
    pub fn new(shards: usize) -> Readiness {
        Readiness {
            warm: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            draining: AtomicBool::new(false),
        }
    }

    /// Called by shard `shard` when its ledger is warm (repeat calls only read).
    pub fn mark_warm(&self, shard: usize) {
        if !self.warm[shard].load(Ordering::Relaxed) {
            self.warm[shard].store(true, Ordering::Relaxed);
        }
    }

    /// Shards not warm yet.
    pub fn pending(&self) -> Vec<usize> {
        (0..self.warm.len())
            .filter(|&i| !self.warm[i].load(Ordering::Relaxed))
            .collect()
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Waits (polling) until every shard is warm, draining started or `limit` passed; returns
    /// the shards still pending.
    pub fn wait_warm(&self, limit: Duration) -> Vec<usize> {
        let deadline = Instant::now() + limit;
        loop {
            let pending = self.pending();
            if pending.is_empty() || self.is_draining() || Instant::now() >= deadline {
                return pending;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Sends one notification; a failure to reach the manager is logged, never fatal.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// `READY=1` with a status line: call once every shard is listening (and its budget warm, or
/// [`BUDGET_WARM_WAIT`] passed).
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Sends `READY=1` from its own thread once every shard's budget is warm or
/// [`BUDGET_WARM_WAIT`] passed (the caller goes on to install its signal handlers meanwhile);
/// nothing if draining started first (a stop during warm-up: `STOPPING=1` comes instead).
pub fn spawn_ready_notifier(
    readiness: Arc<Readiness>,
    serving: String,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ready".into())
        .spawn(move || {
            let pending = readiness.wait_warm(BUDGET_WARM_WAIT);
            if readiness.is_draining() {
                return;
            }
            let budget = if pending.is_empty() {
                "budget warm".to_string()
            } else {
                tracing::warn!(shards = ?pending, "ready before the first budget grants reached these shards");
                format!("budget grants pending on shards {pending:?}")
            };
            ready(&format!("{serving}; {budget}"));
        })
}

/// `STOPPING=1`: call when draining starts.
pub fn stopping(status: &str) {
    notify(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// The watchdog: pings at half the manager's interval while every shard's stamp is younger than
/// half that interval. Returns `None` (and starts nothing) when the manager asked for no watchdog.
pub fn spawn_watchdog(
    beats: Arc<Heartbeats>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return Ok(None);
    };
    let period = interval / 2;
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "systemd watchdog enabled"
    );
    let handle = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || watchdog_loop(&beats, &stop, period))?;
    Ok(Some(handle))
}

fn watchdog_loop(beats: &Heartbeats, stop: &AtomicBool, period: Duration) {
    let mut was_healthy = true;
    // The shards start stamping when their event loops start, just after READY: give them one
    // period before the first check.
    std::thread::sleep(period);
    while !stop.load(Ordering::Relaxed) {
        let stale = beats.stale(Instant::now(), period);
        if stale.is_empty() {
            notify(&[NotifyState::Watchdog]);
            if !was_healthy {
                tracing::info!("every shard is stamping again; watchdog pings resumed");
                notify(&[NotifyState::Status("serving")]);
            }
        } else {
            let status = format!("shards not responding: {stale:?}");
            tracing::error!(
                ?stale,
                "watchdog ping withheld: shard event loops are stalled"
            );
            notify(&[NotifyState::Status(&status)]);
        }
        was_healthy = stale.is_empty();
        std::thread::sleep(period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_stamped_shards_are_stale() {
        let beats = Heartbeats::new(3);
        beats.stamp(1);
        assert_eq!(
            beats.stale(Instant::now(), Duration::from_secs(10)),
            vec![0, 2]
        );
    }

    #[test]
    fn a_stamp_older_than_max_age_is_stale_and_a_fresh_one_is_not() {
        let beats = Heartbeats::new(2);
        let t0 = beats.epoch;
        beats.stamp_at(0, t0 + Duration::from_millis(100));
        beats.stamp_at(1, t0 + Duration::from_millis(900));
        let now = t0 + Duration::from_millis(1000);
        assert_eq!(beats.stale(now, Duration::from_millis(500)), vec![0]);
        assert!(beats.stale(now, Duration::from_millis(950)).is_empty());
    }
}

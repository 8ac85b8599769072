//! Per-pool counters: plain `Cell<u64>` (the pool is shard-local), read by the shard's exporter.

use std::cell::Cell;

/// Counters of one pool. Monotonic except `open` (a gauge).
#[derive(Debug, Default)]
pub struct PoolStats {
    /// `send` calls.
    pub requests: Cell<u64>,
    /// Complete responses received (any status).
    pub responses: Cell<u64>,
    /// Successful TCP connects.
    pub connects: Cell<u64>,
    /// Failed or timed-out TCP connects.
    pub connect_failures: Cell<u64>,
    /// Requests sent on an already-open connection.
    pub reuses: Cell<u64>,
    /// Connections closed after an error (reset, malformed, too large, I/O).
    pub broken: Cell<u64>,
    /// Connections closed because their request was abandoned (deadline or dropped future).
    pub abandoned: Cell<u64>,
    /// `send` refused because `max_conns` connections were busy.
    pub exhausted: Cell<u64>,
    /// `send` refused because connects are backing off.
    pub backoff_refusals: Cell<u64>,
    /// `send` calls that hit their deadline.
    pub timeouts: Cell<u64>,
    /// Idle connections found closed by the peer (or with unsolicited bytes) and discarded.
    pub stale: Cell<u64>,
    /// Idle connections closed because they sat idle longer than `idle_timeout`.
    pub idle_expired: Cell<u64>,
    /// Connections closed cleanly after a response (server asked, or body ran until close).
    pub closed_by_peer: Cell<u64>,
    /// Open connections now (idle + busy + connecting).
    pub open: Cell<u64>,
}

/// A copy of every counter at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatsSnapshot {
    pub requests: u64,
    pub responses: u64,
    pub connects: u64,
    pub connect_failures: u64,
    pub reuses: u64,
    pub broken: u64,
    pub abandoned: u64,
    pub exhausted: u64,
    pub backoff_refusals: u64,
    pub timeouts: u64,
    pub stale: u64,
    pub idle_expired: u64,
    pub closed_by_peer: u64,
    pub open: u64,
}

impl PoolStats {
    pub(crate) fn bump(counter: &Cell<u64>) {
        counter.set(counter.get() + 1);
    }

    pub(crate) fn drop_one(counter: &Cell<u64>) {
        counter.set(counter.get().saturating_sub(1));
    }

    /// Every counter now.
    pub fn snapshot(&self) -> PoolStatsSnapshot {
        PoolStatsSnapshot {
            requests: self.requests.get(),
            responses: self.responses.get(),
            connects: self.connects.get(),
            connect_failures: self.connect_failures.get(),
            reuses: self.reuses.get(),
            broken: self.broken.get(),
            abandoned: self.abandoned.get(),
            exhausted: self.exhausted.get(),
            backoff_refusals: self.backoff_refusals.get(),
            timeouts: self.timeouts.get(),
            stale: self.stale.get(),
            idle_expired: self.idle_expired.get(),
            closed_by_peer: self.closed_by_peer.get(),
            open: self.open.get(),
        }
    }

    /// Every counter as (name, value), in a fixed order, for a metrics exporter.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let s = self.snapshot();
        [
            ("requests", s.requests),
            ("responses", s.responses),
            ("connects", s.connects),
            ("connect_failures", s.connect_failures),
            ("reuses", s.reuses),
            ("broken", s.broken),
            ("abandoned", s.abandoned),
            ("exhausted", s.exhausted),
            ("backoff_refusals", s.backoff_refusals),
            ("timeouts", s.timeouts),
            ("stale", s.stale),
            ("idle_expired", s.idle_expired),
            ("closed_by_peer", s.closed_by_peer),
            ("open", s.open),
        ]
        .into_iter()
    }
}

//! Per-shard HTTP counters: plain `Cell<u64>`, no atomics, read by the shard's metrics exporter.
//!
//! Owns counting only; knows nothing of how metrics are exported.

use std::cell::Cell;

/// Counters of one shard's HTTP server. Monotonic except `connections_active` (a gauge).
#[derive(Debug, Default)]
pub struct HttpStats {
    pub connections_accepted: Cell<u64>,
    pub connections_active: Cell<u64>,
    /// Times accepting paused because `connections_max` connections were open.
    pub connections_limit_reached: Cell<u64>,
    /// Connections dropped at the drain deadline while still busy.
    pub connections_dropped_at_deadline: Cell<u64>,
    pub accept_errors: Cell<u64>,
    /// Requests handed to the handler.
    pub requests: Cell<u64>,
    pub responses_1xx: Cell<u64>,
    pub responses_2xx: Cell<u64>,
    pub responses_3xx: Cell<u64>,
    pub responses_4xx: Cell<u64>,
    pub responses_5xx: Cell<u64>,
    pub errors_400: Cell<u64>,
    pub errors_408: Cell<u64>,
    pub errors_411: Cell<u64>,
    pub errors_413: Cell<u64>,
    pub errors_431: Cell<u64>,
    pub errors_501: Cell<u64>,
    pub errors_505: Cell<u64>,
    /// Keep-alive connections closed by `idle_timeout_ms`.
    pub idle_closes: Cell<u64>,
    /// Connections dropped because a write did not finish within `write_timeout_ms`.
    pub write_timeouts: Cell<u64>,
}

impl HttpStats {
    /// All counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every counter as (name, value), in a fixed order, for a metrics exporter.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        [
            ("connections_accepted", &self.connections_accepted),
            ("connections_active", &self.connections_active),
            ("connections_limit_reached", &self.connections_limit_reached),
            (
                "connections_dropped_at_deadline",
                &self.connections_dropped_at_deadline,
            ),
            ("accept_errors", &self.accept_errors),
            ("requests", &self.requests),
            ("responses_1xx", &self.responses_1xx),
            ("responses_2xx", &self.responses_2xx),
            ("responses_3xx", &self.responses_3xx),
            ("responses_4xx", &self.responses_4xx),
            ("responses_5xx", &self.responses_5xx),
            ("errors_400", &self.errors_400),
            ("errors_408", &self.errors_408),
            ("errors_411", &self.errors_411),
            ("errors_413", &self.errors_413),
            ("errors_431", &self.errors_431),
            ("errors_501", &self.errors_501),
            ("errors_505", &self.errors_505),
            ("idle_closes", &self.idle_closes),
            ("write_timeouts", &self.write_timeouts),
        ]
        .into_iter()
        .map(|(name, cell)| (name, cell.get()))
    }

    /// Value of the counter called `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub(crate) fn bump(counter: &Cell<u64>) {
        counter.set(counter.get().saturating_add(1));
    }

    pub(crate) fn drop_one(counter: &Cell<u64>) {
        counter.set(counter.get().saturating_sub(1));
    }

    /// Count a response by status class.
    pub(crate) fn record_response(&self, status: u16) {
        let class = match status {
            100..=199 => &self.responses_1xx,
            200..=299 => &self.responses_2xx,
            300..=399 => &self.responses_3xx,
            400..=499 => &self.responses_4xx,
            _ => &self.responses_5xx,
        };
        Self::bump(class);
    }

    /// Count a protocol error response by its status.
    pub(crate) fn record_error(&self, status: u16) {
        let counter = match status {
            400 => &self.errors_400,
            408 => &self.errors_408,
            411 => &self.errors_411,
            413 => &self.errors_413,
            431 => &self.errors_431,
            501 => &self.errors_501,
            505 => &self.errors_505,
            _ => return,
        };
        Self::bump(counter);
        self.record_response(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_count_both_their_status_and_class() {
        let stats = HttpStats::new();
        stats.record_error(413);
        stats.record_error(505);
        stats.record_response(204);
        assert_eq!(stats.get("errors_413"), Some(1));
        assert_eq!(stats.get("responses_4xx"), Some(1));
        assert_eq!(stats.get("responses_5xx"), Some(1));
        assert_eq!(stats.get("responses_2xx"), Some(1));
        assert_eq!(stats.get("nope"), None);
        assert_eq!(stats.iter().count(), 20);
    }
}

//! Every bound the HTTP layer enforces, with documented defaults.
//!
//! Owns the numbers only; the parser and the connection loop decide what happens at each bound.

/// Hard cap on `headers_count_max`: the parser keeps its header scratch on the stack.
pub const HEADERS_COUNT_CAP: usize = 128;

/// Bytes of chunk framing (size lines, extensions, trailers) allowed on top of the body itself,
/// as a fixed allowance plus one eighth of `body_bytes_max` (see [`Limits::chunked_wire_bytes_max`]).
pub const CHUNKED_FRAMING_BYTES_MIN: usize = 1024;

/// Limits of one HTTP server (per shard). All sizes in bytes, all durations in milliseconds.
///
/// The three timeouts (idle, request, write) fire at most a slack late, never early: an eighth of
/// the timeout, at most 300 ms (timers stay armed across requests and are only re-armed when
/// their expiry would move by more than that, like nginx's `NGX_TIMER_LAZY_DELAY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus header section. Larger => 431, then close.
    pub header_bytes_max: usize,
    /// Number of header fields (clamped to [`HEADERS_COUNT_CAP`]). More => 431, then close.
    pub headers_count_max: usize,
    /// Body after de-chunking. Larger (declared or chunked) => 413 without reading it, then close.
    pub body_bytes_max: usize,
    /// A keep-alive connection with no request started is closed silently after this (plus at
    /// most the slack).
    pub idle_timeout_ms: u64,
    /// A started request must be fully received within this (plus at most the slack) from the
    /// first time the server waits for more of it, else 408 and close.
    pub request_timeout_ms: u64,
    /// A batch of responses must be fully written within this (plus at most the slack) from the
    /// first time the write has to wait, else the connection is dropped.
    pub write_timeout_ms: u64,
    /// Responses answered but not yet written: at this count the batch is written before the next
    /// pipelined request is handled.
    pub pipeline_depth_max: usize,
    /// Initial read buffer of a connection; it grows on demand up to [`Limits::read_buffer_bytes_max`]
    /// (a request must be contiguous) and is reused for the connection's life.
    pub read_buffer_bytes: usize,
    /// Open connections per server; at the bound accepting pauses (the kernel backlog holds new
    /// connections) until one closes.
    pub connections_max: usize,
    /// After an error response the write side is shut and the input drained for at most this long
    /// (and at most `body_bytes_max` bytes) so the client reads the error instead of a reset.
    pub linger_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_bytes_max: 8192,
            headers_count_max: 64,
            body_bytes_max: 65536,
            idle_timeout_ms: 30_000,
            request_timeout_ms: 5_000,
            write_timeout_ms: 5_000,
            pipeline_depth_max: 32,
            read_buffer_bytes: 16384,
            connections_max: 10_000,
            linger_ms: 500,
        }
    }
}

impl Limits {
    /// Largest chunked body as it travels on the wire (data plus framing).
    /// Beyond it the request is answered 413 even if the decoded body would fit.
    pub fn chunked_wire_bytes_max(&self) -> usize {
        self.body_bytes_max
            .saturating_add(self.body_bytes_max / 8)
            .saturating_add(CHUNKED_FRAMING_BYTES_MIN)
    }

    /// Largest read buffer a connection may grow to: one whole request, head and body.
    pub fn read_buffer_bytes_max(&self) -> usize {
        self.header_bytes_max
            .saturating_add(self.chunked_wire_bytes_max())
    }

    /// The same limits with every value forced into a workable range (no zero sizes, header count
    /// within [`HEADERS_COUNT_CAP`], initial buffer no larger than the maximum).
    pub fn sanitized(mut self) -> Self {
        self.header_bytes_max = self.header_bytes_max.max(64);
        self.headers_count_max = self.headers_count_max.clamp(1, HEADERS_COUNT_CAP);
        self.pipeline_depth_max = self.pipeline_depth_max.max(1);
        self.connections_max = self.connections_max.max(1);
        self.read_buffer_bytes = self
            .read_buffer_bytes
            .clamp(512, self.read_buffer_bytes_max());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_clamps_unworkable_values() {
        let limits = Limits {
            header_bytes_max: 0,
            headers_count_max: 10_000,
            pipeline_depth_max: 0,
            read_buffer_bytes: usize::MAX,
            connections_max: 0,
            ..Limits::default()
        }
        .sanitized();
        assert_eq!(limits.header_bytes_max, 64);
        assert_eq!(limits.headers_count_max, HEADERS_COUNT_CAP);
        assert_eq!(limits.pipeline_depth_max, 1);
        assert_eq!(limits.connections_max, 1);
        assert_eq!(limits.read_buffer_bytes, limits.read_buffer_bytes_max());
    }

    #[test]
    fn chunked_wire_allowance_exceeds_body() {
        let limits = Limits::default();
        assert!(limits.chunked_wire_bytes_max() > limits.body_bytes_max);
        assert!(limits.read_buffer_bytes_max() > limits.chunked_wire_bytes_max());
    }
}

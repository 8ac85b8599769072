//! RESP2 client for Redis/Valkey on monoio.
//!
//! Owns the connection (connect timeout, per-exchange I/O timeout, `TCP_NODELAY`), command
//! encoding and reply decoding with the `redis-protocol` crate's RESP2 codec, pipelining
//! (queue several commands, one write, read the replies in order), bounded buffers (a reply
//! larger than `max_reply_bytes` or a pipeline deeper than `max_pipeline` is an error, never an
//! unbounded allocation), and Lua scripts called with `EVALSHA`, loaded with `SCRIPT LOAD` on
//! first use and again when the server answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`).
//!
//! [`process`] starts a throwaway `redis-server` for tests and benchmarks.
//!
//! Knows nothing of budgets or auctions: callers bring their keys, arguments and scripts.

mod client;
pub mod process;

pub use client::{RespClient, Script};
pub use redis_protocol::resp2::types::OwnedFrame as Reply;

use std::net::SocketAddr;

/// Limits of one client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespConfig {
    /// Giving up on a TCP connect after this long.
    pub connect_timeout_ms: u64,
    /// Giving up on one exchange (write the queued commands, read every reply) after this long.
    pub io_timeout_ms: u64,
    /// Largest reply buffered; a larger one fails with [`RespError::ReplyTooLarge`].
    pub max_reply_bytes: usize,
    /// Most commands queued before a flush; one more fails with [`RespError::PipelineFull`].
    pub max_pipeline: usize,
}

impl Default for RespConfig {
    fn default() -> Self {
        RespConfig {
            connect_timeout_ms: 1_000,
            io_timeout_ms: 1_000,
            max_reply_bytes: 1 << 20,
            max_pipeline: 1024,
        }
    }
}

/// What went wrong talking to Redis. [`RespError::retryable`] says whether trying again (on a
/// new connection for connection-level errors) can help.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("redis {addr}: connect failed: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("redis {addr}: connect timed out after {ms} ms")]
    ConnectTimeout { addr: SocketAddr, ms: u64 },
    #[error("redis {addr}: I/O error: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("redis {addr}: no reply within {ms} ms")]
    Timeout { addr: SocketAddr, ms: u64 },
    #[error("redis {addr}: server closed the connection")]
    Closed { addr: SocketAddr },
    #[error("redis {addr}: malformed reply: {detail}")]
    Protocol { addr: SocketAddr, detail: String },
    #[error("redis {addr}: reply exceeds max_reply_bytes {limit}")]
    ReplyTooLarge { addr: SocketAddr, limit: usize },
    #[error("redis: pipeline already holds max_pipeline {limit} commands; flush first")]
    PipelineFull { limit: usize },
    #[error("redis {addr}: connection unusable after an earlier error; reconnect")]
    Broken { addr: SocketAddr },
    #[error("redis server error: {message}")]
    Server { message: String },
    #[error("redis: unexpected reply to {command}: {reply:?}")]
    Unexpected { command: &'static str, reply: Reply },
}

impl RespError {
    /// True when a retry (after reconnecting, for connection errors) may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            RespError::Connect { .. }
            | RespError::ConnectTimeout { .. }
            | RespError::Io { .. }
            | RespError::Timeout { .. }
            | RespError::Closed { .. }
            | RespError::Broken { .. } => true,
            RespError::Server { message } => {
                message.starts_with("LOADING") || message.starts_with("BUSY")
            }
            RespError::Protocol { .. }
            | RespError::ReplyTooLarge { .. }
            | RespError::PipelineFull { .. }
            | RespError::Unexpected { .. } => false,
        }
    }

    /// True when the connection must be replaced before the next command.
    pub fn breaks_connection(&self) -> bool {
        !matches!(
            self,
            RespError::Server { .. }
                | RespError::Unexpected { .. }
                | RespError::PipelineFull { .. }
        )
    }
}

//! Error types of the substrate: start-up failures, mesh call failures, shard panics.
//!
//! Owns only error shapes and their messages; must not know what the shards run.

use crate::config::{Driver, ShardId};

/// An unknown driver name in configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown I/O driver {given:?}: expected \"auto\", \"uring\" or \"legacy\"")]
pub struct ParseDriverError {
    /// The rejected text (first 64 characters).
    pub given: String,
}

/// Why `start()` failed. No shard keeps running after any of these.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configuration value is out of its bounds.
    #[error("invalid shards configuration: {reason}")]
    InvalidConfig {
        /// Which bound was violated.
        reason: String,
    },
    /// `DriverChoice::Uring` was forced but io_uring cannot be used here.
    #[error(
        "io_uring was required but is unavailable: {reason} (use driver \"auto\" or \"legacy\")"
    )]
    UringUnavailable {
        /// The OS error or missing capability.
        reason: String,
    },
    /// The OS refused to create a shard thread.
    #[error("could not spawn the thread of {shard}: {source}")]
    Spawn {
        /// The shard whose thread failed.
        shard: ShardId,
        /// The OS error.
        source: std::io::Error,
    },
    /// The monoio runtime of a shard could not be built.
    #[error("could not build the {driver} runtime of {shard}: {source}")]
    Runtime {
        /// The shard whose runtime failed.
        shard: ShardId,
        /// The driver that was tried.
        driver: Driver,
        /// The OS error.
        source: std::io::Error,
    },
    /// A shard's service factory returned an error.
    #[error("the service factory of {shard} failed: {source}")]
    Factory {
        /// The shard whose factory failed.
        shard: ShardId,
        /// The factory's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A shard panicked while starting (in its factory or runtime set-up).
    #[error("{shard} panicked while starting: {message}")]
    Panicked {
        /// The shard that panicked.
        shard: ShardId,
        /// The panic message.
        message: String,
    },
}

/// Why an `invoke_on` did not produce a reply. Retrying `RingFull` later can help; `Stopped` cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// As many requests as the ring holds are already in flight to `target`; nothing was sent.
    #[error(
        "mesh ring to {target} is full (ring_capacity requests already in flight); request not sent"
    )]
    RingFull {
        /// The busy shard.
        target: ShardId,
    },
    /// The target (or this) shard stopped serving its mesh before replying.
    #[error("shard stopped before the request was answered")]
    Stopped,
    /// The target index is not a shard of this process.
    #[error("no such shard: {target} (this process has {count} shards)")]
    NoSuchShard {
        /// The requested shard.
        target: ShardId,
        /// How many shards exist.
        count: usize,
    },
}

/// A shard thread panicked after start-up; every other shard was told to stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{shard} panicked: {message}")]
pub struct ShardPanic {
    /// The first shard (in shard order) that panicked.
    pub shard: ShardId,
    /// Its panic message.
    pub message: String,
}

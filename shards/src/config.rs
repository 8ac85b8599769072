//! Start-up configuration of the substrate and the choice of I/O driver.
//!
//! Owns: `Config` (with its documented defaults and validation), `DriverChoice`, `Driver`, `ShardId`,
//! and the one-time io_uring detection. Must not know what the shards will run.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{ParseDriverError, StartError};

/// Most shards one process may start (the mesh holds two rings per ordered pair, so it grows with the square).
pub const SHARDS_MAX: usize = 256;
/// Largest accepted `Config::ring_capacity` (requests in flight per directed pair of shards).
pub const RING_CAPACITY_MAX: usize = 1 << 16;
/// Smallest accepted `Config::stall_threshold` (the monitor wakes every threshold / 2).
pub const STALL_THRESHOLD_MIN: Duration = Duration::from_millis(1);

/// Which I/O driver the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverChoice {
    /// io_uring when the kernel (and seccomp profile) allows it, else the legacy epoll driver.
    #[default]
    Auto,
    /// io_uring or fail start-up.
    Uring,
    /// The legacy epoll driver.
    Legacy,
}

impl FromStr for DriverChoice {
    type Err = ParseDriverError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "uring" => Ok(Self::Uring),
            "legacy" => Ok(Self::Legacy),
            other => Err(ParseDriverError {
                given: other.chars().take(64).collect(),
            }),
        }
    }
}

impl fmt::Display for DriverChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Uring => "uring",
            Self::Legacy => "legacy",
        })
    }
}

/// The I/O driver the shards actually run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// Linux io_uring.
    Uring,
    /// epoll (monoio's "legacy" driver).
    Legacy,
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uring => "uring",
            Self::Legacy => "legacy",
        })
    }
}

/// Index of a shard, `0..shard_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub usize);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard-{}", self.0)
    }
}

/// How to start the shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Number of shards; 0 = one per available core.
    pub shards: usize,
    /// Requested I/O driver.
    pub driver: DriverChoice,
    /// Requests in flight per directed pair of shards (and so the size of each ring); `1..=RING_CAPACITY_MAX`.
    pub ring_capacity: usize,
    /// A task that holds a shard longer than this is reported as a stall; at least `STALL_THRESHOLD_MIN`.
    pub stall_threshold: Duration,
    /// Pin shard i to core i (wrapping around when there are more shards than cores).
    pub pin_cores: bool,
    /// io_uring submission queue entries (monoio raises anything below 256 to 256).
    pub uring_entries: u32,
    /// After a stop: how long a shard's `run` may take to return, and then how long its mesh may take to
    /// finish handling the messages already received, before each is abandoned (logged). Bounds `wait()`.
    pub stop_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            shards: 0,
            driver: DriverChoice::Auto,
            ring_capacity: 1024,
            stall_threshold: Duration::from_millis(10),
            pin_cores: true,
            uring_entries: 1024,
            stop_timeout: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Checks every bound; returns the first violated one.
    pub fn validate(&self) -> Result<(), StartError> {
        let invalid = |reason: String| Err(StartError::InvalidConfig { reason });
        if self.shards > SHARDS_MAX {
            return invalid(format!(
                "shards = {} exceeds the maximum {SHARDS_MAX}",
                self.shards
            ));
        }
        if self.ring_capacity == 0 || self.ring_capacity > RING_CAPACITY_MAX {
            return invalid(format!(
                "ring_capacity = {} must be in 1..={RING_CAPACITY_MAX}",
                self.ring_capacity
            ));
        }
        if self.stall_threshold < STALL_THRESHOLD_MIN {
            return invalid(format!(
                "stall_threshold = {:?} is below the minimum {STALL_THRESHOLD_MIN:?}",
                self.stall_threshold
            ));
        }
        if self.uring_entries == 0 {
            return invalid("uring_entries must be > 0".to_owned());
        }
        Ok(())
    }

    /// The shard count to start: `shards`, or one per available core when it is 0 (capped at `SHARDS_MAX`).
    pub fn resolved_shard_count(&self) -> usize {
        if self.shards > 0 {
            return self.shards;
        }
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(SHARDS_MAX)
    }
}

/// Whether io_uring with the operations monoio needs is usable here (detected once per process).
pub fn uring_available() -> bool {
    monoio::utils::detect_uring()
}

/// Turns the operator's choice into the driver to run, or explains why io_uring cannot be used.
pub fn resolve_driver(choice: DriverChoice) -> Result<Driver, StartError> {
    match choice {
        DriverChoice::Legacy => Ok(Driver::Legacy),
        DriverChoice::Auto if uring_available() => Ok(Driver::Uring),
        DriverChoice::Auto => Ok(Driver::Legacy),
        DriverChoice::Uring if uring_available() => Ok(Driver::Uring),
        DriverChoice::Uring => Err(StartError::UringUnavailable {
            reason: uring_failure_reason(),
        }),
    }
}

/// Why io_uring is not usable: the OS error from creating a ring, or missing opcodes.
fn uring_failure_reason() -> String {
    match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().build() {
        Err(error) => format!("creating an io_uring failed: {error}"),
        Ok(_) => "the kernel's io_uring lacks operations monoio needs".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_choice_round_trips_through_text() {
        for choice in [
            DriverChoice::Auto,
            DriverChoice::Uring,
            DriverChoice::Legacy,
        ] {
            assert_eq!(choice.to_string().parse::<DriverChoice>(), Ok(choice));
        }
        let error = "epoll".parse::<DriverChoice>().unwrap_err();
        assert!(error.to_string().contains("epoll"), "{error}");
    }

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let cfg = Config::default();
        assert_eq!(cfg.shards, 0);
        assert_eq!(cfg.driver, DriverChoice::Auto);
        assert_eq!(cfg.ring_capacity, 1024);
        assert_eq!(cfg.stall_threshold, Duration::from_millis(10));
        assert!(cfg.pin_cores);
        assert_eq!(cfg.uring_entries, 1024);
        assert!(cfg.validate().is_ok());
        assert!(cfg.resolved_shard_count() >= 1);
    }

    #[test]
    fn out_of_bound_configs_are_rejected_with_a_reason() {
        let cases = [
            Config {
                ring_capacity: 0,
                ..Config::default()
            },
            Config {
                ring_capacity: RING_CAPACITY_MAX + 1,
                ..Config::default()
            },
            Config {
                shards: SHARDS_MAX + 1,
                ..Config::default()
            },
            Config {
                stall_threshold: Duration::ZERO,
                ..Config::default()
            },
            Config {
                uring_entries: 0,
                ..Config::default()
            },
        ];
        for cfg in cases {
            let error = cfg.validate().unwrap_err();
            assert!(matches!(error, StartError::InvalidConfig { .. }), "{error}");
        }
    }

    #[test]
    fn legacy_is_always_available_and_auto_follows_detection() {
        assert_eq!(
            resolve_driver(DriverChoice::Legacy).ok(),
            Some(Driver::Legacy)
        );
        let auto = resolve_driver(DriverChoice::Auto).ok();
        let expected = if uring_available() {
            Driver::Uring
        } else {
            Driver::Legacy
        };
        assert_eq!(auto, Some(expected));
    }
}

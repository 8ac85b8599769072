//! Helpers shared by the integration tests: driver list, a test config, bounded waits.
#![allow(dead_code)]

use std::sync::mpsc::Receiver;
use std::time::Duration;

use shards::{Config, DriverChoice, Sharded, uring_available};

/// Upper bound for any single wait in a test: generous (shared, slow machine) but finite.
pub const WAIT_MAX: Duration = Duration::from_secs(30);

/// Every driver to test here; io_uring is skipped (with a note) only if this kernel cannot run it.
pub fn drivers() -> Vec<DriverChoice> {
    if uring_available() {
        vec![DriverChoice::Uring, DriverChoice::Legacy]
    } else {
        eprintln!("note: io_uring unavailable here; testing the legacy driver only");
        vec![DriverChoice::Legacy]
    }
}

pub fn test_config(driver: DriverChoice, shards: usize) -> Config {
    Config {
        shards,
        driver,
        pin_cores: false,
        stop_timeout: Duration::from_secs(3),
        ..Config::default()
    }
}

/// Receives one value or fails the test (after stopping the shards so nothing is left running).
pub fn recv<T>(rx: &Receiver<T>, sharded: &Sharded, what: &str) -> T {
    match rx.recv_timeout(WAIT_MAX) {
        Ok(value) => value,
        Err(error) => {
            sharded.stop_handle().stop();
            panic!("no {what} within {WAIT_MAX:?}: {error}");
        }
    }
}

/// Stops and joins on a helper thread so a hang fails the test instead of blocking it forever.
pub fn stop_and_wait(sharded: Sharded) -> Result<(), shards::ShardPanic> {
    sharded.stop_handle().stop();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(sharded.wait());
    });
    rx.recv_timeout(WAIT_MAX)
        .expect("shards did not stop within the bound")
}

//! The deterministic budget simulation (`engine::budget::sim`) in CI mode, its canary, and the
//! replay of a single seed.
//!
//! CI mode: `ADCORE_SIM_SEEDS` seeds (default 64) x `ADCORE_SIM_STEPS` steps (default 20_000).
//! Long mode: raise both, e.g. `ADCORE_SIM_SEEDS=100000 cargo test -p engine --test budget_sim`.
//! Replay: `ADCORE_SIM_SEED=<seed>` runs that one seed (a failure prints the line to use).

use engine::budget::sim::{SimConfig, run_many, run_seed};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn invariants_hold_under_faults() {
    let steps = env("ADCORE_SIM_STEPS", 20_000);
    if let Ok(seed) = std::env::var("ADCORE_SIM_SEED") {
        let seed: u64 = seed.parse().expect("ADCORE_SIM_SEED is a number");
        let cfg = SimConfig {
            steps,
            canary_overdraft_micros: 0,
        };
        match run_seed(seed, cfg) {
            Ok(s) => println!("seed {seed}: {s:?}"),
            Err(f) => panic!("{f}"),
        }
        return;
    }
    let seeds = env("ADCORE_SIM_SEEDS", 64);
    let first = env("ADCORE_SIM_FIRST_SEED", 1);
    let started = std::time::Instant::now();
    let stats = run_many(first, seeds, steps, 0).unwrap_or_else(|f| panic!("{f}"));
    println!(
        "budget sim: {seeds} seeds, {} steps in {:.1} s: {stats:?}",
        stats.steps,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stats.steps, seeds * steps);
    // The faults were exercised, not just declared.
    assert!(stats.charges_ok > stats.steps / 100, "{stats:?}");
    assert!(
        stats.duplicates_refused > 0 && stats.shard_crashes > 0,
        "{stats:?}"
    );
    // Replays reached the older idempotency-key generation too, not only the current one.
    assert!(stats.old_generation_replays > 0, "{stats:?}");
    assert!(
        stats.allocator_crashes > 0 && stats.torn_records > 0,
        "{stats:?}"
    );
    assert!(stats.midnights > 0 && stats.reclaims > 0, "{stats:?}");
    // Lots stranded short of a charge went back mid-day, through the checker too.
    assert!(stats.stranded_returns > 0, "{stats:?}");
    assert!(stats.compactions > 0, "{stats:?}");
    // Budgets were driven into the bound region, where an overspend would show.
    assert!(stats.days_nearly_spent > 0, "{stats:?}");
}

/// A deliberately wrong bound (every shard may overdraw its lot) must be caught by the checker.
#[test]
fn canary_with_a_wrong_bound_is_caught() {
    let mut caught = 0;
    for seed in 1..=8 {
        let cfg = SimConfig {
            steps: 20_000,
            canary_overdraft_micros: 200_000,
        };
        if let Err(f) = run_seed(seed, cfg) {
            assert!(
                f.message.contains("> budget") || f.message.contains("lifetime served"),
                "caught for the wrong reason: {f}"
            );
            assert!(
                f.to_string()
                    .starts_with(&format!("ADCORE_SIM_SEED={seed} "))
            );
            caught += 1;
        }
    }
    assert!(caught >= 6, "canary caught in only {caught} of 8 seeds");
}

/// The same seed replays the same run exactly.
#[test]
fn a_seed_replays_exactly() {
    let cfg = SimConfig {
        steps: 5_000,
        canary_overdraft_micros: 0,
    };
    let a = run_seed(42, cfg).unwrap();
    let b = run_seed(42, cfg).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

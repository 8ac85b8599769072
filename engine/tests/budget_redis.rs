//! The Redis-backed global budget source against a real `redis-server` (started per test on a
//! free loopback port, no persistence, killed at the end). Fails, not skips, without one.

use std::cell::RefCell;
use std::rc::Rc;

use engine::budget::redis_source::{
    Grant, GrantRequest, Period, RedisBudget, RedisBudgetConfig, Seed,
};
use net::resp::process::RedisProcess;

fn block_on<F: Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn redis() -> (tempfile::TempDir, RedisProcess) {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisProcess::start(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, server)
}

const BUDGET: u64 = 10_000_000; // $10
const BOUND: u64 = 100_000; // 1 %

fn req(want: u64) -> GrantRequest {
    GrantRequest {
        campaign: 7,
        period: Period::Day(20_000),
        budget_micros: BUDGET,
        bound_micros: BOUND,
        want_micros: want,
    }
}

fn cfg(server: &RedisProcess, consumers: u32) -> RedisBudgetConfig {
    RedisBudgetConfig {
        consumers,
        min_chunk_micros: 500,
        ..RedisBudgetConfig::new(server.addr())
    }
}

/// Deterministic pseudo-random wants (xorshift), 1..=max.
fn wants(seed: u64, max: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        1 + x % max
    }
}

#[test]
fn concurrent_grants_never_exceed_budget_plus_bound() {
    let (_dir, server) = redis();
    let consumers = 8u32;
    let granted: Rc<RefCell<Vec<u64>>> = Rc::default();
    let total = block_on({
        let granted = granted.clone();
        let cfg = cfg(&server, consumers);
        async move {
            let mut admin = RedisBudget::connect(cfg.clone()).await.unwrap();
            assert_eq!(
                admin.grant(req(1)).await.unwrap(),
                Grant::CountersLost,
                "no epoch yet"
            );
            admin.bootstrap(&[]).await.unwrap();
            let mut tasks = Vec::new();
            for c in 0..consumers {
                let (cfg, granted) = (cfg.clone(), granted.clone());
                tasks.push(monoio::spawn(async move {
                    let mut rb = RedisBudget::connect(cfg).await.unwrap();
                    let mut want = wants(u64::from(c) + 1, 400_000);
                    loop {
                        match rb.grant(req(want())).await.unwrap() {
                            Grant::Granted {
                                micros,
                                total_micros,
                            } => {
                                assert!(total_micros <= BUDGET + BOUND);
                                granted.borrow_mut().push(micros);
                            }
                            Grant::Exhausted { total_micros } => break total_micros,
                            Grant::CountersLost => panic!("epoch lost"),
                        }
                    }
                }));
            }
            for t in tasks {
                assert!(t.await <= BUDGET + BOUND);
            }
            admin
                .total_granted(7, Period::Day(20_000))
                .await
                .unwrap()
                .unwrap()
        }
    });
    let grants = granted.borrow();
    let sum: u64 = grants.iter().sum();
    assert_eq!(sum, total, "every grant is counted once");
    assert!(sum <= BUDGET + BOUND, "granted {sum} > budget + bound");
    assert!(sum >= BUDGET, "stopped early at {sum}");
    // Chunks shrank near exhaustion: the last grants are small.
    let tail_max = grants.iter().rev().take(5).max().copied().unwrap();
    assert!(
        tail_max <= BUDGET / 10 / (u64::from(consumers) * 10) + 500,
        "tail chunk {tail_max}"
    );
}

#[test]
fn shrinking_chunk_rule() {
    let (_dir, server) = redis();
    block_on({
        let cfg = cfg(&server, 4);
        async move {
            let mut rb = RedisBudget::connect(cfg).await.unwrap();
            rb.bootstrap(&[]).await.unwrap();
            // Above 10 % remaining: the full want.
            let g = rb.grant(req(9_000_000)).await.unwrap();
            assert_eq!(
                g,
                Grant::Granted {
                    micros: 9_000_000,
                    total_micros: 9_000_000
                }
            );
            // Remaining 1_000_000 is not below 10 %: still the want.
            let g = rb.grant(req(100_000)).await.unwrap();
            assert_eq!(
                g,
                Grant::Granted {
                    micros: 100_000,
                    total_micros: 9_100_000
                }
            );
            // Remaining 900_000 < 10 %: A = 900_000 / (4 * 10) = 22_500.
            let g = rb.grant(req(500_000)).await.unwrap();
            assert_eq!(
                g,
                Grant::Granted {
                    micros: 22_500,
                    total_micros: 9_122_500
                }
            );
            // Drain to the budget, then only the bound is left, in min chunks, then nothing.
            let mut total = 9_122_500;
            loop {
                match rb.grant(req(1_000_000)).await.unwrap() {
                    Grant::Granted { total_micros, .. } => total = total_micros,
                    Grant::Exhausted { total_micros } => {
                        assert_eq!(total_micros, total);
                        break;
                    }
                    Grant::CountersLost => panic!("lost"),
                }
            }
            assert_eq!(total, BUDGET + BOUND, "the bound is usable, not exceeded");
            // Giving back makes budget available again, never below zero.
            assert_eq!(
                rb.give_back(7, Period::Day(20_000), 60_000).await.unwrap(),
                Some(10_040_000)
            );
            let g = rb.grant(req(1_000_000)).await.unwrap();
            assert_eq!(
                g,
                Grant::Granted {
                    micros: 500,
                    total_micros: 10_040_500
                }
            );
            assert_eq!(
                rb.give_back(7, Period::Day(20_000), u64::MAX >> 11)
                    .await
                    .unwrap(),
                Some(0)
            );
            // Other periods and campaigns are separate counters.
            let other = GrantRequest {
                period: Period::Lifetime,
                ..req(1_000)
            };
            assert_eq!(
                rb.grant(other).await.unwrap(),
                Grant::Granted {
                    micros: 1_000,
                    total_micros: 1_000
                }
            );
        }
    });
}

#[test]
fn redis_restart_loses_counters_and_only_under_delivers() {
    let (_dir, mut server) = redis();
    let cfg = cfg(&server, 2);
    // What the hosts' ledgers recorded as granted (the test plays both hosts).
    let mut ledger_total = 0u64;
    let mut a = block_on(async {
        let mut a = RedisBudget::connect(cfg.clone()).await.unwrap();
        a.bootstrap(&[]).await.unwrap();
        for _ in 0..6 {
            if let Grant::Granted { micros, .. } = a.grant(req(1_000_000)).await.unwrap() {
                ledger_total += micros;
            }
        }
        a
    });
    assert_eq!(ledger_total, 6_000_000);
    server.restart().unwrap(); // every counter and the epoch are gone
    block_on(async {
        a.reconnect().await.unwrap();
        // A blind restart must not grant the budget again.
        assert_eq!(a.grant(req(1_000_000)).await.unwrap(), Grant::CountersLost);
        assert_eq!(a.give_back(7, Period::Day(20_000), 5).await.unwrap(), None);
        let mut b = RedisBudget::connect(cfg.clone()).await.unwrap();
        assert_eq!(b.epoch(), None);
        assert_eq!(b.grant(req(1_000_000)).await.unwrap(), Grant::CountersLost);
        // Re-bootstrap from the ledgers' granted totals; a second bootstrapper adopts the epoch
        // and its (stale, lower) seed does not lower the counter.
        let seed = Seed {
            campaign: 7,
            period: Period::Day(20_000),
            granted_micros: ledger_total,
        };
        let e1 = b.bootstrap(&[seed]).await.unwrap();
        let stale = Seed {
            granted_micros: 1_000,
            ..seed
        };
        let e2 = a.bootstrap(&[stale]).await.unwrap();
        assert_eq!(e1, e2);
        loop {
            match a.grant(req(700_000)).await.unwrap() {
                Grant::Granted { micros, .. } => ledger_total += micros,
                Grant::Exhausted { .. } => break,
                Grant::CountersLost => panic!("lost after bootstrap"),
            }
        }
    });
    assert!(
        ledger_total <= BUDGET + BOUND,
        "granted {ledger_total} across a restart"
    );
    assert!(ledger_total >= BUDGET);
}

#[test]
fn amounts_beyond_lua_precision_are_refused() {
    let (_dir, server) = redis();
    block_on({
        let cfg = cfg(&server, 1);
        async move {
            let mut rb = RedisBudget::connect(cfg).await.unwrap();
            rb.bootstrap(&[]).await.unwrap();
            let r = GrantRequest {
                budget_micros: u64::MAX / 2,
                ..req(1)
            };
            let err = rb.grant(r).await.unwrap_err();
            assert!(err.to_string().contains("exceeds"), "{err}");
        }
    });
}

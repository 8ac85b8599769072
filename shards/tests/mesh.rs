//! Behaviour of the mesh under every driver: round trips, ordering, the ring bound, stalls.

mod common;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

use common::{drivers, recv, stop_and_wait, test_config};
use shards::{Driver, DriverChoice, MeshError, Service, ShardCtx, ShardId, start};

// ---------- ping-pong: many round trips, exact sum ----------

const CALLS_PER_SHARD: u64 = 50_000;
const CALLERS_PER_SHARD: u64 = 16;

struct PingPong {
    report: Sender<(ShardId, u64, u64)>,
}

impl Service for PingPong {
    type Msg = u64;
    type Reply = u64;

    async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
        let peer = ShardId((ctx.id().0 + 1) % ctx.count());
        let first = ctx.id().0 as u64 * CALLS_PER_SHARD;
        let per_caller = CALLS_PER_SHARD / CALLERS_PER_SHARD;
        let callers: Vec<_> = (0..CALLERS_PER_SHARD)
            .map(|c| {
                let ctx = ctx.clone();
                monoio::spawn(async move {
                    let (mut sum, mut errors) = (0u64, 0u64);
                    let start = first + c * per_caller;
                    for value in start..start + per_caller {
                        match ctx.invoke_on(peer, value).await {
                            Ok(reply) => sum += reply,
                            Err(_) => errors += 1,
                        }
                    }
                    (sum, errors)
                })
            })
            .collect();
        let (mut sum, mut errors) = (0, 0);
        for caller in callers {
            let (s, e) = caller.await;
            sum += s;
            errors += e;
        }
        let _ = self.report.send((ctx.id(), sum, errors));
        ctx.stopping().await;
    }

    async fn handle(self: Rc<Self>, _ctx: ShardCtx<Self>, _from: ShardId, msg: u64) -> u64 {
        msg + 1
    }
}

#[test]
fn hundred_thousand_round_trips_sum_exactly_under_every_driver() {
    for driver in drivers() {
        let (tx, rx) = channel();
        let sharded = start(test_config(driver, 2), move |_ctx: &ShardCtx<PingPong>| {
            Ok(PingPong { report: tx.clone() })
        })
        .expect("start");
        let mut total = 0u64;
        for _ in 0..2 {
            let (shard, sum, errors) = recv(&rx, &sharded, "ping-pong report");
            assert_eq!(errors, 0, "{driver}: {shard} saw mesh errors");
            total += sum;
        }
        let calls = 2 * CALLS_PER_SHARD;
        // replies are value + 1 for every value in 0..calls
        let expected = calls * (calls - 1) / 2 + calls;
        assert_eq!(total, expected, "{driver}");
        stop_and_wait(sharded).expect("clean stop");
    }
}

// ---------- invoke_on_all: every shard, in shard order; identity; thread names ----------

/// (answering shard, caller, message) as the handler saw them.
type EchoReply = (ShardId, ShardId, u64);

struct Echo {
    report: Sender<Vec<Result<EchoReply, MeshError>>>,
}

impl Service for Echo {
    type Msg = u64;
    type Reply = EchoReply;

    async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
        if ctx.id() == ShardId(2) {
            let mut results = ctx.invoke_on_all(|shard| shard.0 as u64 * 10).await;
            results.push(ctx.invoke_on(ShardId(ctx.count()), 0).await);
            let _ = self.report.send(results);
        }
        ctx.stopping().await;
    }

    async fn handle(self: Rc<Self>, ctx: ShardCtx<Self>, from: ShardId, msg: u64) -> Self::Reply {
        (ctx.id(), from, msg)
    }
}

#[test]
fn invoke_on_all_answers_from_every_shard_in_order() {
    for driver in drivers() {
        let (tx, rx) = channel();
        let sharded = start(test_config(driver, 4), move |ctx: &ShardCtx<Echo>| {
            let name = std::thread::current().name().map(str::to_owned);
            if name.as_deref() != Some(&format!("shard-{}", ctx.id().0)) {
                return Err(format!("factory ran on thread {name:?}").into());
            }
            Ok(Echo { report: tx.clone() })
        })
        .expect("start");
        assert_eq!(sharded.shard_count(), 4);
        let results = recv(&rx, &sharded, "invoke_on_all results");
        assert_eq!(results.len(), 5);
        for (i, result) in results[..4].iter().enumerate() {
            assert_eq!(
                *result,
                Ok((ShardId(i), ShardId(2), i as u64 * 10)),
                "{driver}"
            );
        }
        assert_eq!(
            results[4],
            Err(MeshError::NoSuchShard {
                target: ShardId(4),
                count: 4
            })
        );
        stop_and_wait(sharded).expect("clean stop");
    }
}

struct Solo {
    report: Sender<Vec<Result<EchoReply, MeshError>>>,
}

impl Service for Solo {
    type Msg = u64;
    type Reply = EchoReply;

    async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
        let mut results = ctx.invoke_on_all(|_| 5).await;
        results.push(ctx.invoke_on(ShardId(1), 6).await);
        let _ = self.report.send(results);
        ctx.stopping().await;
    }

    async fn handle(self: Rc<Self>, ctx: ShardCtx<Self>, from: ShardId, msg: u64) -> EchoReply {
        (ctx.id(), from, msg)
    }
}

#[test]
fn a_single_shard_calls_itself_without_a_mesh() {
    for driver in drivers() {
        let (tx, rx) = channel();
        let sharded = start(test_config(driver, 1), move |_ctx: &ShardCtx<Solo>| {
            Ok(Solo { report: tx.clone() })
        })
        .expect("start");
        let results = recv(&rx, &sharded, "solo results");
        assert_eq!(
            results,
            vec![
                Ok((ShardId(0), ShardId(0), 5)),
                Err(MeshError::NoSuchShard {
                    target: ShardId(1),
                    count: 1
                })
            ],
            "{driver}"
        );
        stop_and_wait(sharded).expect("clean stop");
    }
}

#[test]
fn forced_drivers_are_the_ones_running() {
    for driver in drivers() {
        let (tx, rx) = channel();
        let sharded = start(test_config(driver, 2), move |ctx: &ShardCtx<Echo>| {
            let _ = tx.send(ctx.driver());
            Ok(Echo {
                report: channel().0,
            })
        })
        .expect("start");
        let expected = match driver {
            DriverChoice::Uring => Driver::Uring,
            _ => Driver::Legacy,
        };
        assert_eq!(sharded.driver(), expected);
        for _ in 0..2 {
            assert_eq!(recv(&rx, &sharded, "driver"), expected);
        }
        stop_and_wait(sharded).expect("clean stop");
    }
}

// ---------- the ring bound: RingFull, counted, then recovery ----------

const RING_CAPACITY: usize = 4;

#[derive(Debug, Default)]
struct RingFullFacts {
    in_flight_when_full: usize,
    extra_call: Option<Result<u64, MeshError>>,
    ring_full_counter: u64,
    gated_replies: Vec<Result<u64, MeshError>>,
    after_recovery: Option<Result<u64, MeshError>>,
    in_flight_after: usize,
    hops_sent: u64,
}

struct Gated {
    gate: Arc<AtomicBool>,
    report: Sender<RingFullFacts>,
}

impl Service for Gated {
    type Msg = u64;
    type Reply = u64;

    async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
        if ctx.id() == ShardId(0) {
            let facts = fill_ring_then_recover(&self, &ctx).await;
            let _ = self.report.send(facts);
        }
        ctx.stopping().await;
    }

    async fn handle(self: Rc<Self>, _ctx: ShardCtx<Self>, _from: ShardId, msg: u64) -> u64 {
        let give_up = Instant::now() + Duration::from_secs(20);
        while !self.gate.load(Ordering::Acquire) && Instant::now() < give_up {
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
        msg * 3
    }
}

async fn fill_ring_then_recover(service: &Gated, ctx: &ShardCtx<Gated>) -> RingFullFacts {
    let target = ShardId(1);
    let calls: Vec<_> = (0..RING_CAPACITY as u64)
        .map(|i| {
            let ctx = ctx.clone();
            monoio::spawn(async move { ctx.invoke_on(target, i).await })
        })
        .collect();
    for _ in 0..5_000 {
        if ctx.stats().in_flight[1] == RING_CAPACITY {
            break;
        }
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut facts = RingFullFacts {
        in_flight_when_full: ctx.stats().in_flight[1],
        extra_call: Some(ctx.invoke_on(target, 99).await),
        ring_full_counter: ctx.stats().ring_full,
        ..RingFullFacts::default()
    };
    service.gate.store(true, Ordering::Release);
    for call in calls {
        facts.gated_replies.push(call.await);
    }
    facts.after_recovery = Some(ctx.invoke_on(target, 7).await);
    facts.in_flight_after = ctx.stats().in_flight[1];
    facts.hops_sent = ctx.stats().hops_sent;
    facts
}

#[test]
fn a_full_ring_rejects_at_once_counts_it_and_recovers() {
    for driver in drivers() {
        let (tx, rx) = channel();
        let gate = Arc::new(AtomicBool::new(false));
        let cfg = shards::Config {
            ring_capacity: RING_CAPACITY,
            ..test_config(driver, 2)
        };
        let sharded = start(cfg, move |_ctx: &ShardCtx<Gated>| {
            Ok(Gated {
                gate: Arc::clone(&gate),
                report: tx.clone(),
            })
        })
        .expect("start");
        let facts = recv(&rx, &sharded, "ring-full facts");
        assert_eq!(facts.in_flight_when_full, RING_CAPACITY, "{driver}");
        assert_eq!(
            facts.extra_call,
            Some(Err(MeshError::RingFull { target: ShardId(1) }))
        );
        assert_eq!(facts.ring_full_counter, 1);
        let expected: Vec<_> = (0..RING_CAPACITY as u64).map(|i| Ok(i * 3)).collect();
        assert_eq!(facts.gated_replies, expected);
        assert_eq!(facts.after_recovery, Some(Ok(21)));
        assert_eq!(facts.in_flight_after, 0);
        assert_eq!(
            facts.hops_sent,
            RING_CAPACITY as u64 + 1,
            "the rejected call was not sent"
        );
        stop_and_wait(sharded).expect("clean stop");
    }
}

// ---------- stall detection ----------

struct Staller {
    threshold: Duration,
    report: Sender<shards::MeshStats>,
}

impl Service for Staller {
    type Msg = ();
    type Reply = ();

    async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
        if ctx.id() == ShardId(0) {
            monoio::time::sleep(self.threshold * 2).await; // the monitor is running
            let busy_until = Instant::now() + self.threshold * 3;
            while Instant::now() < busy_until {
                std::hint::spin_loop();
            }
            monoio::time::sleep(self.threshold * 2).await; // the monitor woke and measured
            let _ = self.report.send(ctx.stats());
        }
        ctx.stopping().await;
    }

    async fn handle(self: Rc<Self>, _ctx: ShardCtx<Self>, _from: ShardId, _msg: ()) {}
}

#[test]
fn a_task_holding_the_shard_is_counted_as_a_stall() {
    let threshold = Duration::from_millis(10);
    for driver in drivers() {
        let (tx, rx) = channel();
        let cfg = shards::Config {
            stall_threshold: threshold,
            ..test_config(driver, 2)
        };
        let sharded = start(cfg, move |_ctx: &ShardCtx<Staller>| {
            Ok(Staller {
                threshold,
                report: tx.clone(),
            })
        })
        .expect("start");
        let stats = recv(&rx, &sharded, "stall stats");
        assert!(stats.stalls >= 1, "{driver}: {stats:?}");
        // busy 3x threshold while the monitor slept threshold/2: it woke at least 2.5x threshold late
        let min_us = (threshold * 5 / 2).as_micros() as u64;
        assert!(stats.stall_us_max >= min_us, "{driver}: {stats:?}");
        assert!(stats.stall_us_total >= stats.stall_us_max);
        stop_and_wait(sharded).expect("clean stop");
    }
}

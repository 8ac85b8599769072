//! Start-up and stop behaviour under every driver: orderly stop with work in flight, bounded stop when
//! services misbehave, panic containment, and all-or-nothing start-up.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use common::{drivers, recv, stop_and_wait, test_config};
use shards::{MeshError, Service, ShardCtx, ShardId, StartError, start};

// ---------- orderly stop: calls in flight when the stop arrives still complete ----------

const IN_FLIGHT_CALLS: u64 = 8;

enum Event {
    InFlight,
    Results(Vec<Result<u64, MeshError>>),
}

struct Slow {
    events: Sender<Event>,
}

impl Service for Slow {
    type Msg = u64;
    type Reply = u64;

    async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
        if ctx.id() != ShardId(0) {
            ctx.stopping().await;
            return;
        }
        let results = Rc::new(RefCell::new(Vec::new()));
        let calls: Vec<_> = (0..IN_FLIGHT_CALLS)
            .map(|i| {
                let (ctx, results) = (ctx.clone(), Rc::clone(&results));
                monoio::spawn(async move {
                    let reply = ctx.invoke_on(ShardId(1), i).await;
                    results.borrow_mut().push((i, reply));
                })
            })
            .collect();
        while ctx.stats().in_flight[1] < IN_FLIGHT_CALLS as usize {
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = self.events.send(Event::InFlight);
        ctx.stopping().await;
        for call in calls {
            call.await; // drain our own work before returning
        }
        let mut results = results.take();
        results.sort_by_key(|(i, _)| *i);
        let _ = self.events.send(Event::Results(
            results.into_iter().map(|(_, r)| r).collect(),
        ));
    }

    async fn handle(self: Rc<Self>, _ctx: ShardCtx<Self>, _from: ShardId, msg: u64) -> u64 {
        monoio::time::sleep(Duration::from_millis(100)).await;
        msg + 1000
    }
}

#[test]
fn stop_lets_calls_already_in_flight_complete() {
    for driver in drivers() {
        let (tx, rx) = channel();
        let sharded = start(test_config(driver, 2), move |_ctx: &ShardCtx<Slow>| {
            Ok(Slow { events: tx.clone() })
        })
        .expect("start");
        assert!(matches!(
            recv(&rx, &sharded, "in-flight signal"),
            Event::InFlight
        ));
        sharded.stop_handle().stop();
        let Event::Results(results) = recv(&rx, &sharded, "results") else {
            panic!("unexpected event");
        };
        let expected: Vec<_> = (0..IN_FLIGHT_CALLS).map(|i| Ok(i + 1000)).collect();
        assert_eq!(results, expected, "{driver}");
        stop_and_wait(sharded).expect("clean stop");
    }
}

// ---------- a stop is bounded even when run ignores it and a handler never finishes ----------

struct Stubborn {
    report: Sender<Result<(), MeshError>>,
}

impl Service for Stubborn {
    type Msg = ();
    type Reply = ();

    async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
        if ctx.id() == ShardId(0) {
            let caller = ctx.clone();
            let report = self.report.clone();
            monoio::spawn(async move {
                let _ = report.send(caller.invoke_on(ShardId(1), ()).await);
            });
            std::future::pending::<()>().await; // ignores stopping()
        }
        ctx.stopping().await;
    }

    async fn handle(self: Rc<Self>, _ctx: ShardCtx<Self>, _from: ShardId, _msg: ()) {
        std::future::pending::<()>().await;
    }
}

#[test]
fn stop_is_bounded_and_unanswered_calls_resolve_stopped() {
    for driver in drivers() {
        let cfg = shards::Config {
            stop_timeout: Duration::from_millis(200),
            ..test_config(driver, 2)
        };
        let (tx, rx) = channel();
        let sharded = start(cfg, move |_ctx: &ShardCtx<Stubborn>| {
            Ok(Stubborn { report: tx.clone() })
        })
        .expect("start");
        std::thread::sleep(Duration::from_millis(50)); // the call reaches the hung handler
        stop_and_wait(sharded).expect("stop completes without a panic");
        let outcome = rx.recv_timeout(Duration::from_secs(1));
        assert_eq!(
            outcome,
            Ok(Err(MeshError::Stopped)),
            "{driver}: the hung call resolved"
        );
    }
}

// ---------- a panicking shard: peers' calls resolve Stopped, everyone stops, wait() reports it ----------

const BOOM: u64 = 666;

struct Fragile {
    report: Sender<Result<u64, MeshError>>,
}

impl Service for Fragile {
    type Msg = u64;
    type Reply = u64;

    async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
        if ctx.id() == ShardId(0) {
            let _ = self.report.send(ctx.invoke_on(ShardId(1), 1).await);
            let _ = self.report.send(ctx.invoke_on(ShardId(1), BOOM).await);
            let _ = self.report.send(ctx.invoke_on(ShardId(1), 2).await);
        }
        ctx.stopping().await; // the panic requested the stop: nobody calls stop() in this test
    }

    async fn handle(self: Rc<Self>, _ctx: ShardCtx<Self>, _from: ShardId, msg: u64) -> u64 {
        assert_ne!(msg, BOOM, "boom: handler asked to explode");
        msg
    }
}

#[test]
fn a_shard_panic_stops_everyone_and_is_reported_by_wait() {
    for driver in drivers() {
        let (tx, rx) = channel();
        let sharded = start(test_config(driver, 3), move |_ctx: &ShardCtx<Fragile>| {
            Ok(Fragile { report: tx.clone() })
        })
        .expect("start");
        assert_eq!(recv(&rx, &sharded, "first reply"), Ok(1), "{driver}");
        assert_eq!(
            recv(&rx, &sharded, "reply from the panicking shard"),
            Err(MeshError::Stopped)
        );
        assert_eq!(
            recv(&rx, &sharded, "call to a dead shard"),
            Err(MeshError::Stopped)
        );
        let (done_tx, done_rx) = channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(sharded.wait()); // no stop() call: the panic must stop every shard
        });
        let panic = done_rx
            .recv_timeout(common::WAIT_MAX)
            .expect("shards stopped after the panic")
            .expect_err("wait reports the panic");
        assert_eq!(panic.shard, ShardId(1), "{driver}");
        assert!(panic.message.contains("boom"), "{panic}");
    }
}

// ---------- all-or-nothing start-up ----------

struct Counted {
    dropped: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl Service for Counted {
    type Msg = ();
    type Reply = ();

    async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
        ctx.stopping().await;
    }

    async fn handle(self: Rc<Self>, _ctx: ShardCtx<Self>, _from: ShardId, _msg: ()) {}
}

#[test]
fn one_failing_factory_aborts_every_shard() {
    for driver in drivers() {
        let built = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (b, d) = (Arc::clone(&built), Arc::clone(&dropped));
        let outcome = start(test_config(driver, 3), move |ctx: &ShardCtx<Counted>| {
            if ctx.id() == ShardId(2) {
                return Err("port 8080 already in use".into());
            }
            b.fetch_add(1, Ordering::SeqCst);
            Ok(Counted {
                dropped: Arc::clone(&d),
            })
        });
        let Err(error) = outcome else {
            panic!("{driver}: start succeeded despite a failing factory");
        };
        assert!(
            matches!(
                error,
                StartError::Factory {
                    shard: ShardId(2),
                    ..
                }
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("port 8080 already in use"),
            "{error}"
        );
        // start() returned only after the other shards' threads ended and dropped their services
        assert_eq!(built.load(Ordering::SeqCst), 2);
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn a_panicking_factory_aborts_start_with_its_message() {
    for driver in drivers() {
        let outcome = start(test_config(driver, 2), |ctx: &ShardCtx<Counted>| {
            assert_ne!(ctx.id(), ShardId(1), "factory exploded");
            Ok(Counted {
                dropped: Arc::new(AtomicUsize::new(0)),
            })
        });
        let Err(error) = outcome else {
            panic!("{driver}: start succeeded despite a panicking factory");
        };
        assert!(
            matches!(
                error,
                StartError::Panicked {
                    shard: ShardId(1),
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("factory exploded"), "{error}");
    }
}

#[test]
fn invalid_configs_fail_before_any_thread_starts() {
    let cfg = shards::Config {
        ring_capacity: 0,
        ..test_config(shards::DriverChoice::Legacy, 2)
    };
    let error = start(cfg, |_ctx: &ShardCtx<Counted>| {
        panic!("factory must not run for an invalid config")
    })
    .err()
    .expect("rejected");
    assert!(matches!(error, StartError::InvalidConfig { .. }), "{error}");
}

#[test]
fn stop_from_another_thread_ends_idle_shards_and_pins_when_asked() {
    for driver in drivers() {
        let cfg = shards::Config {
            pin_cores: true,
            ..test_config(driver, 3) // more shards than some machines' cores: pinning wraps around
        };
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = Arc::clone(&dropped);
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let sharded = start(cfg, move |ctx: &ShardCtx<Counted>| {
            // On Linux the core list of a thread is its affinity mask: a pinned shard sees one core.
            let pinned_to = core_affinity::get_core_ids().unwrap_or_default();
            let expected = cores.get(ctx.id().0 % cores.len().max(1)).copied();
            if !cores.is_empty() && pinned_to != expected.into_iter().collect::<Vec<_>>() {
                return Err(format!(
                    "{} pinned to {pinned_to:?}, expected {expected:?}",
                    ctx.id()
                )
                .into());
            }
            Ok(Counted {
                dropped: Arc::clone(&d),
            })
        })
        .expect("start");
        let stop = sharded.stop_handle();
        std::thread::spawn(move || stop.stop())
            .join()
            .expect("stopper thread");
        stop_and_wait(sharded).expect("clean stop");
        assert_eq!(dropped.load(Ordering::SeqCst), 3, "{driver}");
    }
}

//! Starting and stopping the shard threads: validation, driver choice, the mesh, pinned `shard-<i>`
//! threads each running its own monoio runtime, the all-or-nothing start-up handshake, orderly stop, and
//! panic containment. Must not know what the services do.

use std::any::Any;
use std::error::Error;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use futures_util::future::{Either, select};

use crate::config::{Config, Driver, ShardId, resolve_driver};
use crate::ctx::{Service, ShardCtx, ShardSettings};
use crate::error::{ShardPanic, StartError};
use crate::mesh::{ShardRings, Shared, build_mesh};
use crate::serve::{serve_mesh, watch_stalls};

/// What a factory may fail with.
pub type FactoryError = Box<dyn Error + Send + Sync>;

/// Stops every shard; cheap to clone, callable from any thread (including a signal-handling thread).
#[derive(Clone)]
pub struct StopHandle {
    pub(crate) shared: Arc<Shared>,
}

impl StopHandle {
    /// Requests an orderly stop: every shard's `stopping()` resolves. Idempotent; returns at once.
    pub fn stop(&self) {
        self.shared.request_stop();
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle").finish_non_exhaustive()
    }
}

/// The running shards, owned by the main thread. Dropping it stops and joins them.
pub struct Sharded {
    threads: Vec<JoinHandle<Result<(), String>>>,
    shared: Arc<Shared>,
    driver: Driver,
    count: usize,
}

impl Sharded {
    /// How many shards run.
    pub fn shard_count(&self) -> usize {
        self.count
    }

    /// The I/O driver every shard runs on.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// A handle that stops every shard.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Joins every shard thread; blocks until a stop (`StopHandle::stop`, or a shard panic). Reports the
    /// first shard, in shard order, that panicked.
    pub fn wait(mut self) -> Result<(), ShardPanic> {
        join_all(std::mem::take(&mut self.threads))
    }
}

impl Drop for Sharded {
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        self.shared.request_stop();
        let _ = join_all(std::mem::take(&mut self.threads));
    }
}

fn join_all(threads: Vec<JoinHandle<Result<(), String>>>) -> Result<(), ShardPanic> {
    let mut first_panic = None;
    for (i, thread) in threads.into_iter().enumerate() {
        let outcome = thread
            .join()
            .unwrap_or_else(|payload| Err(panic_message(payload.as_ref())));
        if let Err(message) = outcome {
            first_panic.get_or_insert(ShardPanic {
                shard: ShardId(i),
                message,
            });
        }
    }
    first_panic.map_or(Ok(()), Err)
}

/// Spawns the shard threads; `factory` runs ON each shard thread, inside its monoio runtime, and builds that
/// shard's service (it may bind sockets). An `Err` (or panic) from any factory aborts start-up of every
/// shard and is returned. Returns only after every shard's factory succeeded ("ready" == all shards built).
pub fn start<S, F>(cfg: Config, factory: F) -> Result<Sharded, StartError>
where
    S: Service,
    F: Fn(&ShardCtx<S>) -> Result<S, FactoryError> + Send + Sync + 'static,
{
    cfg.validate()?;
    let count = cfg.resolved_shard_count();
    let driver = resolve_driver(cfg.driver)?;
    tracing::info!(%driver, shards = count, ring_capacity = cfg.ring_capacity, "starting shards");
    let shared = Arc::new(Shared::new(count));
    let factory = Arc::new(factory);
    let cores = if cfg.pin_cores {
        core_ids()
    } else {
        Vec::new()
    };
    let (ready_tx, ready_rx) = channel();
    let mut threads = Vec::with_capacity(count);
    let mut go_senders = Vec::with_capacity(count);
    for (i, rings) in build_mesh::<S::Msg, S::Reply>(count, cfg.ring_capacity)
        .into_iter()
        .enumerate()
    {
        let (go_tx, go_rx) = channel();
        let boot = ShardBoot {
            settings: settings_for(&cfg, ShardId(i), count, driver),
            uring_entries: cfg.uring_entries,
            core: (!cores.is_empty()).then(|| cores[i % cores.len()]),
            shared: Arc::clone(&shared),
            rings,
        };
        let factory = Arc::clone(&factory);
        let ready = ReadyReporter::new(ShardId(i), ready_tx.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("shard-{i}"))
            .spawn(move || shard_thread(boot, factory, ready, go_rx));
        match spawned {
            Ok(thread) => {
                threads.push(thread);
                go_senders.push(go_tx);
            }
            Err(source) => {
                abort_start(&shared, go_senders, threads);
                return Err(StartError::Spawn {
                    shard: ShardId(i),
                    source,
                });
            }
        }
    }
    drop(ready_tx);
    if let Some(error) = first_start_failure(&ready_rx, count) {
        abort_start(&shared, go_senders, threads);
        return Err(error);
    }
    for go in &go_senders {
        let _ = go.send(true);
    }
    Ok(Sharded {
        threads,
        shared,
        driver,
        count,
    })
}

fn settings_for(cfg: &Config, id: ShardId, count: usize, driver: Driver) -> ShardSettings {
    ShardSettings {
        id,
        count,
        driver,
        ring_capacity: cfg.ring_capacity,
        stall_threshold: cfg.stall_threshold,
        stop_timeout: cfg.stop_timeout,
    }
}

fn core_ids() -> Vec<core_affinity::CoreId> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if cores.is_empty() {
        tracing::warn!(
            "pin_cores requested but the core list is unavailable; shards are not pinned"
        );
    }
    cores
}

/// Waits for every shard's start-up report; the failure of the lowest shard id, if any.
fn first_start_failure(
    ready: &Receiver<(ShardId, Result<(), StartError>)>,
    count: usize,
) -> Option<StartError> {
    let mut failures: Vec<(ShardId, StartError)> = Vec::new();
    for _ in 0..count {
        match ready.recv() {
            Ok((_, Ok(()))) => {}
            Ok((shard, Err(error))) => failures.push((shard, error)),
            Err(_) => break, // every reporter sends before dropping, so this means all reported
        }
    }
    failures.sort_by_key(|(shard, _)| *shard);
    failures.into_iter().next().map(|(_, error)| error)
}

fn abort_start(
    shared: &Shared,
    go_senders: Vec<Sender<bool>>,
    threads: Vec<JoinHandle<Result<(), String>>>,
) {
    shared.request_stop();
    for go in &go_senders {
        let _ = go.send(false);
    }
    drop(go_senders);
    let _ = join_all(threads);
}

/// What one shard thread needs to start.
struct ShardBoot<S: Service> {
    settings: ShardSettings,
    uring_entries: u32,
    core: Option<core_affinity::CoreId>,
    shared: Arc<Shared>,
    rings: ShardRings<S::Msg, S::Reply>,
}

/// Sends exactly one start-up report per shard, even when the shard panics before it could.
struct ReadyReporter {
    shard: ShardId,
    tx: Option<Sender<(ShardId, Result<(), StartError>)>>,
}

impl ReadyReporter {
    fn new(shard: ShardId, tx: Sender<(ShardId, Result<(), StartError>)>) -> Self {
        Self {
            shard,
            tx: Some(tx),
        }
    }

    fn report(&mut self, outcome: Result<(), StartError>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send((self.shard, outcome));
        }
    }

    fn has_reported(&self) -> bool {
        self.tx.is_none()
    }
}

/// Body of thread `shard-<i>`: pin, build the runtime, run the shard; contain a panic so it stops the others.
fn shard_thread<S, F>(
    boot: ShardBoot<S>,
    factory: Arc<F>,
    mut ready: ReadyReporter,
    go: Receiver<bool>,
) -> Result<(), String>
where
    S: Service,
    F: Fn(&ShardCtx<S>) -> Result<S, FactoryError> + Send + Sync + 'static,
{
    let id = boot.settings.id;
    let driver = boot.settings.driver;
    let shared = Arc::clone(&boot.shared);
    if let Some(core) = boot.core
        && !core_affinity::set_for_current(core)
    {
        tracing::warn!(shard = %id, core = core.id, "could not pin shard to its core");
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        block_on_driver(
            driver,
            boot.uring_entries,
            shard_main(boot, factory, &mut ready, go),
        )
    }));
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => {
            ready.report(Err(StartError::Runtime {
                shard: id,
                driver,
                source,
            }));
            shared.mark_closed(id.0);
            Ok(())
        }
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            shared.mark_closed(id.0);
            shared.request_stop();
            if ready.has_reported() {
                tracing::error!(shard = %id, %message, "shard panicked; stopping every shard");
                Err(message)
            } else {
                ready.report(Err(StartError::Panicked { shard: id, message }));
                Ok(())
            }
        }
    }
}

fn block_on_driver<Fut: Future>(
    driver: Driver,
    entries: u32,
    fut: Fut,
) -> std::io::Result<Fut::Output> {
    match driver {
        Driver::Uring => {
            let mut runtime = crate::ring::with_cooperative_ring(|setup| {
                monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                    .with_entries(entries)
                    .uring_builder(setup)
                    .enable_timer()
                    .build()
            })?;
            Ok(runtime.block_on(fut))
        }
        Driver::Legacy => {
            let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .with_entries(entries)
                .enable_timer()
                .build()?;
            Ok(runtime.block_on(fut))
        }
    }
}

/// Inside the shard's runtime: build the service, wait for every other shard, then serve until stopped.
async fn shard_main<S, F>(
    boot: ShardBoot<S>,
    factory: Arc<F>,
    ready: &mut ReadyReporter,
    go: Receiver<bool>,
) where
    S: Service,
    F: Fn(&ShardCtx<S>) -> Result<S, FactoryError> + Send + Sync + 'static,
{
    let ShardBoot {
        settings,
        shared,
        rings,
        ..
    } = boot;
    let id = settings.id;
    let ctx = ShardCtx::<S>::new(settings, Arc::clone(&shared), rings.outbound);
    match factory(&ctx) {
        Ok(service) => {
            ctx.set_service(Rc::new(service));
            ready.report(Ok(()));
        }
        Err(source) => {
            ready.report(Err(StartError::Factory { shard: id, source }));
            return;
        }
    }
    drop(factory);
    // Start-up handshake: every shard built its service, or all abort. Blocking here is fine: nothing runs yet.
    if go.recv() != Ok(true) {
        return;
    }
    let mesh = monoio::spawn(serve_mesh(ctx.clone(), rings.inbound));
    let monitor = monoio::spawn(watch_stalls(Rc::clone(&ctx.local)));
    run_bounded(&ctx).await;
    shared.mark_run_returned(id.0);
    mesh.await;
    monitor.await; // ends within stall_threshold / 2 of the mesh closing
    // Let tasks woken by the mesh closing (their calls resolved `Stopped`) observe it before teardown.
    for _ in 0..TEARDOWN_YIELDS {
        crate::serve::yield_now().await;
    }
    // monoio leaks tasks still pending when its runtime drops; whatever they hold must not keep the
    // service alive, so its Drop runs here, on its own shard.
    drop(ctx.take_service());
}

/// Scheduler rounds given to woken tasks after the mesh closed, before the runtime is dropped.
const TEARDOWN_YIELDS: usize = 4;

/// Runs the service's main task; once a stop is requested it gets `stop_timeout` to return, then is dropped.
async fn run_bounded<S: Service>(ctx: &ShardCtx<S>) {
    let run = Box::pin(S::run(ctx.service(), ctx.clone()));
    let stop_timeout = ctx.local.settings.stop_timeout;
    let deadline = Box::pin(stop_deadline(ctx.stopping(), stop_timeout));
    if let Either::Right(_) = select(run, deadline).await {
        tracing::warn!(shard = %ctx.id(), ?stop_timeout, "run did not return within stop_timeout; dropped");
    }
}

async fn stop_deadline(stopping: impl Future<Output = ()>, timeout: Duration) {
    stopping.await;
    monoio::time::sleep(timeout).await;
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

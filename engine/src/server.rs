//! Starting and stopping the engine: load the catalog, start a shard per core, wire SIGTERM/SIGINT
//! to an orderly drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use shards::{Driver, Sharded, StopHandle};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::shard::{EngineShard, Shared};
use crate::supervise::{self, Heartbeats};

/// Opens and replays the budget's write-ahead logs (`[budget] wal_dir`; "" = in memory only).
fn open_budget_logs(
    config: &Config,
    catalog: &Catalog,
    shards: usize,
) -> anyhow::Result<crate::ledger::DurableBoot> {
    let Some(dir) = config.budget.wal_dir_resolved() else {
        tracing::warn!("budget.wal_dir is empty: the budget is in memory only (lost on restart)");
        return Ok(Default::default());
    };
    let setup = crate::ledger::BudgetSetup::new(config, catalog, shards)?;
    let now = crate::ledger::now_ms();
    let boot = setup
        .open_durable(&dir, config.budget.wal_compact_bytes, now)
        .context("recovering the budget write-ahead logs (refusing to start)")?;
    tracing::info!(dir = %dir.display(), "budget write-ahead logs open");
    Ok(boot)
}

/// A running engine.
pub struct Engine {
    sharded: Sharded,
    shared: Arc<Shared>,
    /// Tells the watchdog thread to stop pinging once every shard has stopped. While draining, the
    /// shards still stamp their heartbeats, so the watchdog keeps pinging until they exit.
    stopped: Arc<AtomicBool>,
}

impl Engine {
    /// Loads the catalog named by the config and starts every shard; returns once all listen.
    pub fn start(config: Config) -> anyhow::Result<Engine> {
        let catalog = Catalog::load(&config.catalog.path)?;
        Self::start_with_catalog(config, catalog)
    }

    pub fn start_with_catalog(config: Config, catalog: Catalog) -> anyhow::Result<Engine> {
        let listen = config.server.listen;
        crate::clock::calibrate();
        let model =
            crate::model_store::load(&config.model.path).context("loading the CTR model")?;
        let users = crate::profile::load_users(&config.profiles.path)?;
        match &users {
            Some(u) => {
                tracing::info!(users = u.users.len(), path = %config.profiles.path.display(), "profiles read")
            }
            None => {
                tracing::info!(path = %config.profiles.path.display(), "no users file: every user is scored by the category prior")
            }
        }
        tracing::info!(version = %model.version, source = %model.source, "CTR model loaded");
        let registry = config
            .dsp_registry("config")
            .context("building the DSP registry")?;
        let shards_config = config.shards_config();
        let shard_count = shards_config.resolved_shard_count();
        let heartbeats = Arc::new(Heartbeats::new(shard_count));
        let budget_boot = open_budget_logs(&config, &catalog, shard_count)?;
        let shared = Arc::new(Shared {
            config: config.clone(),
            catalog: Arc::new(catalog),
            registry: Arc::new(registry),
            heartbeats: heartbeats.clone(),
            readiness: Arc::new(supervise::Readiness::new(shard_count)),
            budget_boot,
            model: Arc::new(model),
            users: std::sync::Mutex::new(users.map(Arc::new)),
            reload_requests: std::sync::atomic::AtomicU64::new(0),
        });
        let factory_shared = shared.clone();
        let sharded = shards::start(shards_config, move |ctx| {
            let shared = &factory_shared;
            EngineShard::new(shared.clone(), ctx).map_err(|e| {
                Box::<dyn std::error::Error + Send + Sync>::from(format!("listen on {listen}: {e}"))
            })
        })
        .context("starting shards")?;
        // Every shard has copied its users: free the file.
        if let Ok(mut u) = shared.users.lock() {
            *u = None;
        }
        tracing::info!(
            shards = sharded.shard_count(),
            driver = %sharded.driver(),
            %listen,
            "adserver listening"
        );
        let stopped = Arc::new(AtomicBool::new(false));
        supervise::spawn_watchdog(heartbeats, stopped.clone()).context("starting the watchdog")?;
        let serving = format!(
            "serving on {listen}: {} shards, driver {}",
            sharded.shard_count(),
            sharded.driver()
        );
        supervise::spawn_ready_notifier(shared.readiness.clone(), serving)
            .context("starting the readiness notifier")?;
        Ok(Engine {
            sharded,
            stopped,
            shared,
        })
    }

    pub fn shard_count(&self) -> usize {
        self.sharded.shard_count()
    }

    pub fn driver(&self) -> Driver {
        self.sharded.driver()
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.sharded.stop_handle()
    }

    /// Stops on SIGTERM or SIGINT; reloads the model on SIGHUP (from a dedicated signal thread).
    pub fn stop_on_signals(&self) -> anyhow::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
            .context("installing signal handlers")?;
        let stop = self.stop_handle();
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if sig == SIGHUP {
                        tracing::info!("SIGHUP: reloading the model");
                        shared
                            .reload_requests
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    tracing::info!(signal = sig, "draining in-flight requests, then exiting");
                    shared.readiness.set_draining();
                    supervise::stopping("draining in-flight requests");
                    stop.stop();
                    break;
                }
            })
            .context("spawning the signal thread")?;
        Ok(())
    }

    /// Waits until every shard has stopped.
    pub fn wait(self) -> anyhow::Result<()> {
        let result = self
            .sharded
            .wait()
            .map_err(|e| anyhow::anyhow!("a shard failed: {e}"));
        self.stopped.store(true, Ordering::Relaxed);
        result
    }
}

//! Starting and stopping the engine: load the catalog, start a shard per core, wire SIGTERM/SIGINT
//! to an orderly drain.

use std::sync::Arc;

use anyhow::Context as _;
use shards::{Driver, Sharded, StopHandle};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::shard::{EngineShard, Shared};

/// A running engine.
pub struct Engine {
    sharded: Sharded,
}

impl Engine {
    /// Loads the catalog named by the config and starts every shard; returns once all listen.
    pub fn start(config: Config) -> anyhow::Result<Engine> {
        let catalog = Catalog::load(&config.catalog.path)?;
        Self::start_with_catalog(config, catalog)
    }

    pub fn start_with_catalog(config: Config, catalog: Catalog) -> anyhow::Result<Engine> {
        let listen = config.server.listen;
        let registry = config
            .dsp_registry("config")
            .context("building the DSP registry")?;
        let shared = Arc::new(Shared {
            config: config.clone(),
            catalog: Arc::new(catalog),
            registry: Arc::new(registry),
        });
        let sharded = shards::start(config.shards_config(), move |ctx| {
            EngineShard::new(shared.clone(), ctx).map_err(|e| {
                Box::<dyn std::error::Error + Send + Sync>::from(format!("listen on {listen}: {e}"))
            })
        })
        .context("starting shards")?;
        tracing::info!(
            shards = sharded.shard_count(),
            driver = %sharded.driver(),
            %listen,
            "adserver listening"
        );
        Ok(Engine { sharded })
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

    /// Stops on SIGTERM or SIGINT (from a dedicated signal thread).
    pub fn stop_on_signals(&self) -> anyhow::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
            .context("installing signal handlers")?;
        let stop = self.stop_handle();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    tracing::info!(signal = sig, "draining in-flight requests, then exiting");
                    stop.stop();
                }
            })
            .context("spawning the signal thread")?;
        Ok(())
    }

    /// Waits until every shard has stopped.
    pub fn wait(self) -> anyhow::Result<()> {
        self.sharded
            .wait()
            .map_err(|e| anyhow::anyhow!("a shard failed: {e}"))
    }
}

//! `adserver`: serve OpenRTB auctions on every core, or run the demo.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use engine::config::Config;
use engine::demo::{self, DemoOptions};
use engine::server::Engine;

/// Every shard allocates and frees per request (request strings, response buffers); glibc's
/// malloc spends ~1 us of a 10 us no-bid request there (free-list consolidation included).
/// mimalloc's thread-local free lists fit a thread-per-core server (see `shards::alloc`).
#[global_allocator]
static ALLOCATOR: shards::alloc::ShardAllocator = shards::alloc::ShardAllocator;

#[derive(Parser, Debug)]
#[command(
    name = "adserver",
    version,
    about = "Real-time ad server, thread-per-core"
)]
struct Cli {
    /// Configuration file (TOML); every setting has a documented default.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Number of shards (0 = one per core); overrides server.shards.
    #[arg(long, global = true)]
    shards: Option<usize>,
    /// I/O driver: auto, uring or legacy; overrides server.driver.
    #[arg(long, global = true)]
    driver: Option<String>,
    /// Listen address; overrides server.listen.
    #[arg(long, global = true)]
    listen: Option<std::net::SocketAddr>,
    /// Catalog file; overrides catalog.path.
    #[arg(long, global = true)]
    catalog: Option<PathBuf>,
    /// Budget write-ahead log directory ("" = in memory only); overrides budget.wal_dir.
    #[arg(long, global = true)]
    wal_dir: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long, global = true)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve until SIGTERM/SIGINT (the default).
    Serve,
    /// Generate demo data if missing, serve it under rtb-load, print a summary.
    Demo {
        /// How long rtb-load drives the engine, e.g. 20s or 1m.
        #[arg(long, default_value = "20s", value_parser = parse_duration)]
        duration: Duration,
        /// Requests per second rtb-load sends. Each request fans out to ~10-30 of the simulated
        /// DSPs, which run on the same host: 500/s keeps a 2-core machine (engine, dsp-sim and
        /// rtb-load together) inside its deadlines; raise it on bigger hosts.
        #[arg(long, default_value_t = 500)]
        rate: u64,
        /// Keep-alive connections rtb-load opens. Each request may wait for DSPs up to the
        /// absolute cutoff (120 ms), so rate x 0.12 s of them can be in flight: keep this above
        /// that (128 covers the default rate twice over).
        #[arg(long, default_value_t = 128)]
        connections: u32,
        /// Folder for the demo catalog and user population.
        #[arg(long, default_value = "demo-data")]
        data_dir: PathBuf,
        /// Seed of the demo data and the load.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Keep serving after the run.
        #[arg(long)]
        serve: bool,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 20s"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?}: unit must be ms, s or m")),
    }
}

fn effective_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut cfg = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(n) = cli.shards {
        cfg.server.shards = n;
    }
    if let Some(d) = &cli.driver {
        cfg.server.driver = d.clone();
        cfg.driver_choice()
            .map_err(|e| anyhow::anyhow!("--driver: {e}"))?;
    }
    if let Some(addr) = cli.listen {
        cfg.server.listen = addr;
    }
    if let Some(c) = &cli.catalog {
        cfg.catalog.path = c.clone();
    }
    if let Some(w) = &cli.wal_dir {
        cfg.budget.wal_dir = w.clone();
    }
    Ok(cfg)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let cfg = effective_config(&cli)?;
    if cli.print_config {
        print!("{}", cfg.to_toml());
        return Ok(());
    }
    match cli.command.unwrap_or(Cmd::Serve) {
        Cmd::Serve => {
            let engine = Engine::start(cfg).context("starting adserver")?;
            engine.stop_on_signals()?;
            engine.wait()
        }
        Cmd::Demo {
            duration,
            rate,
            connections,
            data_dir,
            seed,
            serve,
        } => demo::run(
            cfg,
            &DemoOptions {
                data_dir,
                duration,
                rate,
                connections,
                seed,
                serve,
            },
        ),
    }
}

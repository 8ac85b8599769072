//! `dsp-sim`: many simulated OpenRTB DSPs in one process (see `tools::dspsim`).
//! Prints one line per listener (`control ADDR`, `dsp ID ADDR tier=T region=R`), then `ready`;
//! `--ports-file` writes the same as JSON (atomically, once everything is bound).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tools::dspsim::config::{self, SimConfig};
use tools::dspsim::server;

#[derive(Debug, Parser)]
#[command(
    name = "dsp-sim",
    about = "Simulate many OpenRTB 2.6 DSPs on loopback ports"
)]
struct Args {
    /// TOML config (format documented in tools/src/dspsim/config.rs).
    #[arg(long, conflicts_with = "population")]
    config: Option<PathBuf>,
    /// A built-in population instead of a file: `seed` (the seed design's 50 DSPs).
    #[arg(long)]
    population: Option<String>,
    /// RNG seed (overrides the file's [sim].seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Draw every answer from (seed, DSP, request id) alone (sets [sim].per_request): the same
    /// request ids get the same answers in every run, whatever the order or concurrency.
    #[arg(long)]
    per_request: bool,
    /// Control port (overrides [sim].control_port).
    #[arg(long)]
    control_port: Option<u16>,
    /// Write the listing (control and DSP addresses) as JSON here.
    #[arg(long)]
    ports_file: Option<PathBuf>,
    /// Print the effective config as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = effective_config(&args)?;
    if args.print_config {
        print!("{}", toml::to_string(&config)?);
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook_consts::SIGTERM, signal_hook_consts::SIGINT] {
        register(signal, &stop)?;
    }
    let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .context("monoio runtime")?;
    runtime.block_on(run(config, args.ports_file, stop))
}

fn effective_config(args: &Args) -> anyhow::Result<SimConfig> {
    let mut config = match (&args.config, args.population.as_deref()) {
        (Some(path), None) => config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        (None, Some("seed")) => config::seed_population(args.seed.unwrap_or(1)),
        (None, Some(other)) => bail!("unknown --population {other:?} (known: seed)"),
        _ => bail!("give --config FILE or --population seed"),
    };
    if let Some(seed) = args.seed {
        config.sim.seed = seed;
    }
    config.sim.per_request |= args.per_request;
    if let Some(port) = args.control_port {
        config.sim.control_port = port;
    }
    Ok(config)
}

async fn run(
    config: SimConfig,
    ports_file: Option<PathBuf>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let (sim, listeners, control) = server::bind(&config).context("binding listeners")?;
    let listing = sim.listing();
    if let Some(path) = &ports_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&listing)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("control {}", listing.control);
    for dsp in &listing.dsps {
        println!(
            "dsp {} {} tier={} region={}",
            dsp.id, dsp.addr, dsp.tier, dsp.region
        );
    }
    println!("ready");
    let shutdown = net::http::Shutdown::new();
    let trigger = shutdown.clone();
    monoio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            monoio::time::sleep(Duration::from_millis(50)).await;
        }
        trigger.trigger(Instant::now() + Duration::from_millis(200));
    });
    server::run(sim, listeners, control, shutdown).await;
    Ok(())
}

/// SIGTERM/SIGINT set `stop` (async-signal-safe store).
fn register(signal: i32, stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
    signal_hook::flag::register(signal, Arc::clone(stop)).context("installing signal handler")?;
    Ok(())
}

mod signal_hook_consts {
    pub const SIGTERM: i32 = libc::SIGTERM;
    pub const SIGINT: i32 = libc::SIGINT;
}

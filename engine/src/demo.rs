//! `adserver demo`: the main job on the embedded default.
//!
//! Generates demo data with `adgen` if it is missing, starts the engine on every core, drives it
//! with `rtb-load` (a separate open-loop process) for a bounded time, and prints a per-shard and
//! total summary from the engine's own `/stats`. The tools are sibling binaries; when they are
//! missing and the demo runs under `cargo run`, it builds them with the same cargo.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::config::Config;
use crate::exposition::Stats;
use crate::server::Engine;

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub data_dir: PathBuf,
    pub duration: Duration,
    pub rate: u64,
    pub connections: u32,
    pub seed: u64,
    /// Keep serving after the run (until SIGTERM/SIGINT).
    pub serve: bool,
}

pub fn run(mut config: Config, opts: &DemoOptions) -> anyhow::Result<()> {
    let tools = ToolPaths::locate()?;
    ensure_demo_data(&tools, &opts.data_dir, opts.seed)?;
    config.catalog.path = opts.data_dir.join("catalog.json");
    config.profiles.path = opts.data_dir.join("users.csv");
    let _dsp_sim = start_dsp_sim(&mut config, &opts.data_dir, opts.seed);
    let addr = config.server.listen;
    let engine = Engine::start(config)?;
    engine.stop_on_signals()?;
    println!(
        "adserver: {} shards on {addr} ({} driver); driving it with rtb-load at {} req/s for {:?}",
        engine.shard_count(),
        engine.driver(),
        opts.rate,
        opts.duration
    );
    let started = Instant::now();
    let load = run_load(&tools, addr, opts);
    let elapsed = started.elapsed();
    let stats = fetch_stats(addr);
    match (&load, &stats) {
        (Ok(()), Ok(s)) => print_summary(s, elapsed),
        (Err(e), _) => eprintln!("rtb-load failed: {e:#}"),
        (_, Err(e)) => eprintln!("could not read /stats: {e:#}"),
    }
    if opts.serve {
        println!("serving on {addr} until SIGTERM/SIGINT (dashboard data: /stats, /metrics)");
    } else {
        engine.stop_handle().stop();
    }
    engine.wait()?;
    load.and(stats.map(|_| ()))
}

/// A `dsp-sim` child process, killed when dropped.
struct DspSim(std::process::Child);

impl Drop for DspSim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `--ports-file` listing `dsp-sim` writes.
#[derive(serde::Deserialize)]
struct SimListing {
    dsps: Vec<SimDsp>,
}

#[derive(serde::Deserialize)]
struct SimDsp {
    id: String,
    addr: SocketAddr,
    tier: u8,
    region: String,
}

/// Starts `dsp-sim --population seed` (the seed's 50 DSPs) and registers its DSPs, unless the
/// configuration already names DSPs. Without a `dsp-sim` binary the demo runs internal-only.
fn start_dsp_sim(config: &mut Config, dir: &Path, seed: u64) -> Option<DspSim> {
    if !config.dsp.is_empty() || !config.rtb.dsp_file.is_empty() {
        return None;
    }
    let exe = std::env::current_exe().ok()?.parent()?.join("dsp-sim");
    if !exe.exists() {
        println!("demo: no dsp-sim binary next to adserver; running without external DSPs");
        return None;
    }
    let ports = dir.join("dsp-sim-ports.json");
    let _ = std::fs::remove_file(&ports);
    let child = Command::new(&exe)
        .args(["--population", "seed", "--seed", &seed.to_string()])
        .arg("--ports-file")
        .arg(&ports)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| println!("demo: cannot start {}: {e}", exe.display()))
        .ok()?;
    let sim = DspSim(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ports.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let listing: SimListing = std::fs::read(&ports)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .or_else(|| {
            println!("demo: dsp-sim wrote no usable {}", ports.display());
            None
        })?;
    let home = config.rtb.home_region.clone();
    config.dsp = listing
        .dsps
        .into_iter()
        .map(|d| crate::rtb::DspSpec {
            id: d.id,
            tier: d.tier.clamp(1, 3),
            enabled: true,
            qps_max: 100_000,
            timeout_ms: config.rtb.global_timeout_ms,
            formats: vec!["banner".into(), "video".into(), "native".into()],
            endpoints: [(
                if d.region == "global" {
                    home.clone()
                } else {
                    d.region
                },
                format!("http://{}/openrtb2/auction", d.addr),
            )]
            .into_iter()
            .collect(),
        })
        .collect();
    println!(
        "demo: dsp-sim runs {} DSPs (seed population)",
        config.dsp.len()
    );
    Some(sim)
}

/// Paths of the sibling tool binaries.
struct ToolPaths {
    adgen: PathBuf,
    rtb_load: PathBuf,
}

impl ToolPaths {
    fn locate() -> anyhow::Result<ToolPaths> {
        let exe = std::env::current_exe().context("locating the adserver binary")?;
        let dir = exe
            .parent()
            .context("adserver binary has no parent folder")?;
        let paths = ToolPaths {
            adgen: dir.join("adgen"),
            rtb_load: dir.join("rtb-load"),
        };
        build_tools(dir)?;
        for p in [&paths.adgen, &paths.rtb_load] {
            if !p.exists() {
                bail!(
                    "{} is missing: build it with `cargo build --release -p tools`",
                    p.display()
                );
            }
        }
        Ok(paths)
    }
}

/// Builds `adgen`, `rtb-load` and `dsp-sim` with the cargo that runs us (set by `cargo run`),
/// every time: cargo does nothing when they are current, and a stale sibling binary (an older
/// `adgen` writing an older users.csv) would otherwise be run silently. Without cargo (an
/// installed binary) the siblings next to us are used as they are.
fn build_tools(bin_dir: &Path) -> anyhow::Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let release = bin_dir.file_name().is_some_and(|n| n == "release");
    println!("demo: building the tools (adgen, rtb-load, dsp-sim) if they are not current...");
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build", "-q", "-p", "tools", "--bin", "adgen", "--bin", "rtb-load", "--bin", "dsp-sim",
    ])
    .arg("--manifest-path")
    .arg(&manifest);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build for the tools")?;
    if !status.success() {
        bail!("building the tools failed ({status})");
    }
    Ok(())
}

fn ensure_demo_data(tools: &ToolPaths, dir: &Path, seed: u64) -> anyhow::Result<()> {
    if dir.join("catalog.json").exists() && users_file_is_current(&dir.join("users.csv")) {
        return Ok(());
    }
    println!(
        "demo: generating demo data in {} (seed {seed})",
        dir.display()
    );
    let status = Command::new(&tools.adgen)
        .arg("--out")
        .arg(dir)
        .arg("--seed")
        .arg(seed.to_string())
        .status()
        .with_context(|| format!("running {}", tools.adgen.display()))?;
    if !status.success() {
        bail!("adgen failed ({status})");
    }
    Ok(())
}

/// Whether `users.csv` exists with the profile columns the engine reads (older adgen output lacks
/// them and is regenerated).
fn users_file_is_current(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let header = text.lines().next().unwrap_or("");
    crate::profile::COLUMNS
        .iter()
        .all(|c| header.split(',').any(|h| h.trim() == *c))
}

fn run_load(tools: &ToolPaths, addr: SocketAddr, opts: &DemoOptions) -> anyhow::Result<()> {
    let status = Command::new(&tools.rtb_load)
        .arg("--target")
        .arg(format!("http://{addr}/openrtb2/auction"))
        .arg("--rate")
        .arg(opts.rate.to_string())
        .arg("--duration")
        .arg(format!("{}s", opts.duration.as_secs().max(1)))
        .arg("--connections")
        .arg(opts.connections.to_string())
        .arg("--users")
        .arg(opts.data_dir.join("users.csv"))
        .arg("--seed")
        .arg(opts.seed.to_string())
        .status()
        .with_context(|| format!("running {}", tools.rtb_load.display()))?;
    if !status.success() {
        bail!("rtb-load exited with {status}");
    }
    Ok(())
}

/// GET /stats over plain HTTP/1.1 and parse it.
pub fn fetch_stats(addr: SocketAddr) -> anyhow::Result<Stats> {
    let body = http_get(addr, "/stats")?;
    serde_json::from_slice(&body).context("parsing /stats")
}

/// A minimal blocking GET for the demo and tests (Connection: close, whole body read).
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(&raw)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => bail!("incomplete response from {addr}{path}"),
    };
    if resp.code != Some(200) {
        bail!("{addr}{path} answered {:?}", resp.code);
    }
    Ok(raw[head..].to_vec())
}

fn usd(micros: u64) -> String {
    format!("${:.2}", micros as f64 / 1e6)
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn outcome(s: &crate::exposition::ShardStats, name: &str) -> u64 {
    s.outcomes
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or(0)
}

/// Prints the per-shard and total table, no-bid reasons and campaign spend.
pub fn print_summary(stats: &Stats, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "\n== adserver demo summary ({:.1} s, internal processing latency) ==",
        secs
    );
    println!(
        "{:>6} {:>9} {:>8} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7} {:>8} {:>11}",
        "shard",
        "requests",
        "qps",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "fill%",
        "house%",
        "nobid%",
        "hops",
        "revenue"
    );
    for s in stats.shards.iter().chain(std::iter::once(&stats.total)) {
        let name = s
            .shard
            .map(|i| i.to_string())
            .unwrap_or_else(|| "total".into());
        let l = &s.latency_total;
        println!(
            "{:>6} {:>9} {:>8.0} {:>9.1} {:>9.1} {:>9.1} {:>7.1} {:>7.1} {:>7.1} {:>8} {:>11}",
            name,
            s.requests,
            s.requests as f64 / secs,
            l.p50_us,
            l.p99_us,
            l.p99_9_us,
            share(outcome(s, "filled"), s.requests),
            share(outcome(s, "house"), s.requests),
            share(outcome(s, "nobid"), s.requests),
            s.hops_out,
            usd(s.revenue_micros),
        );
    }
    let t = &stats.total;
    println!(
        "invalid: {}  errors: {}  ring-full fallbacks: {}  stalls: {}",
        outcome(t, "invalid") + outcome(t, "unsupported_media_type"),
        outcome(t, "error"),
        t.hop_fallback_local,
        t.stalls
    );
    let reasons: Vec<String> = t
        .nobid_reasons
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let tiers: Vec<String> = t.tiers.iter().map(|(n, v)| format!("{n}={v}")).collect();
    println!(
        "model {}: auctions by tier: {}; explorations: {}; thompson draws: {}; profiles: {}",
        t.model_version,
        tiers.join(", "),
        t.explorations,
        t.thompson_draws,
        t.profiles
    );
    println!(
        "no-bid reasons: {}",
        if reasons.is_empty() {
            "none".into()
        } else {
            reasons.join(", ")
        }
    );
    print_campaigns(stats);
    print_rtb(&stats.rtb);
}

/// External demand: per DSP requests, bids, wins, timeouts, errors, tier and latency.
fn print_rtb(r: &crate::rtb::metrics::RtbStats) {
    if r.dsps.is_empty() {
        return;
    }
    println!(
        "
RTB: {} fan-outs, {} impressions won by DSPs; closed: {} all answered, {} at operational \
         cutoff, {} at absolute cutoff; slowest collection {} ms; notices sent {} failed {} refused {}",
        r.auctions,
        r.external_wins,
        r.closed_all_answered,
        r.closed_operational,
        r.closed_absolute,
        r.collect_max_ms,
        r.notices_sent,
        r.notices_failed,
        r.notices_refused
    );
    println!(
        "{:<14} {:>4} {:>6} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>6} {:>6} {:>10}",
        "dsp",
        "tier",
        "score",
        "requests",
        "answers",
        "bids",
        "wins",
        "timeouts",
        "errors",
        "dropped",
        "p50ms",
        "p95ms",
        "won"
    );
    for d in &r.dsps {
        println!(
            "{:<14} {:>4} {:>6.1} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>6} {:>6} {:>10}",
            truncate(&d.id, 14),
            d.tier,
            d.score,
            d.requests,
            d.responses,
            d.bids,
            d.wins,
            d.timeouts,
            d.errors,
            d.dropped_bids,
            d.latency_p50_ms,
            d.latency_p95_ms,
            usd(d.won_cpm_micros / 1000),
        );
    }
}

/// The campaign whose spend today exceeds its daily budget the most, as parts per million of
/// that budget (`None` when no campaign is over).
pub fn largest_overspend(stats: &Stats) -> (Option<u32>, u64) {
    stats
        .campaigns
        .iter()
        .filter(|c| c.spent_today_micros > c.budget_daily_micros && c.budget_daily_micros > 0)
        .map(|c| {
            let over = c.spent_today_micros - c.budget_daily_micros;
            (
                Some(c.id),
                (u128::from(over) * 1_000_000 / u128::from(c.budget_daily_micros)) as u64,
            )
        })
        .max_by_key(|&(_, ppm)| ppm)
        .unwrap_or((None, 0))
}

fn print_campaigns(stats: &Stats) {
    let mut rows: Vec<_> = stats
        .campaigns
        .iter()
        .filter(|c| c.impressions > 0)
        .collect();
    rows.sort_by_key(|c| std::cmp::Reverse(c.spent_today_micros));
    let over = stats
        .campaigns
        .iter()
        .filter(|c| c.spent_today_micros > c.budget_daily_micros)
        .count();
    println!(
        "\ncampaigns served: {} of {}; over daily budget: {over}",
        rows.len(),
        stats.campaigns.len()
    );
    let (worst, worst_ppm) = largest_overspend(stats);
    match worst {
        Some(id) => println!(
            "largest overspend: campaign {id}, {:.4}% of its daily budget (bound: 1%)",
            worst_ppm as f64 / 10_000.0
        ),
        None => println!("largest overspend: none (every campaign within its daily budget)"),
    }
    println!(
        "{:>6} {:<28} {:>12} {:>12} {:>12} {:>7} {:>9}",
        "id", "campaign", "kind", "spend", "daily budget", "used%", "imps"
    );
    for c in rows.iter().take(15) {
        println!(
            "{:>6} {:<28} {:>12} {:>12} {:>12} {:>7.2} {:>9}",
            c.id,
            truncate(&c.name, 28),
            truncate(&c.kind, 12),
            usd(c.spent_today_micros),
            usd(c.budget_daily_micros),
            share(c.spent_today_micros, c.budget_daily_micros),
            c.impressions
        );
    }
    if rows.len() > 15 {
        println!("   ... {} more (GET /stats for all)", rows.len() - 15);
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

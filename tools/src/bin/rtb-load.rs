//! `rtb-load`: open-loop, constant-rate OpenRTB load generator (wrk2-style).
//! A thin command-line wrapper over `tools::load`; all logic lives there.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use tools::load::config::{self, BODY_FILE_BYTES_MAX};
use tools::load::profile::RateProfile;
use tools::load::{BodySource, Driver, LoadConfig, RequestMix, Target, UserSource};
use tools::load::{compare, hgrm};

#[derive(Debug, Parser)]
#[command(
    name = "rtb-load",
    about = "Open-loop OpenRTB 2.6 load generator; latency is corrected for coordinated omission"
)]
struct Args {
    /// Target URL, e.g. http://127.0.0.1:8080/openrtb2/auction
    #[arg(long)]
    target: String,
    /// Requests per second over all connections.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Measured duration (after the warm-up), e.g. 20s, 500ms, 2m.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// Un-measured warm-up before the measured window.
    #[arg(long, default_value = "0s")]
    warmup: String,
    /// Keep-alive connections, split across threads.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Threads, each with its own monoio runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Per-request timeout (also bounds each connect).
    #[arg(long, default_value = "2s")]
    timeout: String,
    /// adgen population CSV; without it a Zipf population is synthesized.
    #[arg(long)]
    users: Option<PathBuf>,
    /// Users to synthesize when --users is absent.
    #[arg(long, default_value_t = 100_000)]
    user_count: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of requests with `site` (the rest have `app`).
    #[arg(long, default_value_t = 0.6)]
    site_share: f64,
    /// Share of impressions that are video (the rest banner).
    #[arg(long, default_value_t = 0.2)]
    video_share: f64,
    /// `tmax` written into each request, in milliseconds.
    #[arg(long, default_value_t = 120)]
    tmax: u32,
    /// Pre-generated request bodies cycled through.
    #[arg(long, default_value_t = 20_000)]
    pool: usize,
    /// Send this exact body instead of generated requests.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// monoio I/O driver: auto (io_uring if allowed, else epoll), uring or legacy.
    #[arg(long, default_value = "auto")]
    driver: String,
    /// Yield-spin this long before each send instead of trusting the 1 ms timer.
    /// 0 (default) saves CPU but adds 0-2 ms timer slop to the corrected latency;
    /// ~1100us removes it where the load generator has a core to spare.
    #[arg(long, default_value = "0")]
    timer_spin: String,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write PREFIX.hgrm (the HdrHistogram percentile distribution of the corrected latency, in
    /// wrk2's format, milliseconds) and PREFIX.json (the summary).
    #[arg(long, value_name = "PREFIX")]
    report: Option<PathBuf>,
    /// Print this run's figures as ratios against an earlier --json/--report summary.
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
    /// Rate over time around --rate and --duration: constant, ramp (10 % -> 100 % of --rate),
    /// step (25/50/75/100 %), spike (5x --rate for a tenth of the run).
    #[arg(long, default_value = "constant", conflicts_with = "phases")]
    scenario: String,
    /// Explicit phases instead of --rate/--duration/--scenario: RATE@DUR or FROM..TO@DUR, comma
    /// separated, e.g. 1000@10s,1000..8000@30s,20000@2s,1000@10s.
    #[arg(long)]
    phases: Option<String>,
    /// Share of requests sent by bot clients (datacenter IPs, scripted or headless agents).
    #[arg(long, default_value_t = 0.0)]
    bot_share: f64,
    /// Log every impression served (each bid of a complete 200 response: request id, imp id,
    /// seat, cid, crid, price) to this file as JSON lines, for `ledger reconcile`.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Request ids are this plus the request number (so two runs never reuse an id: the server
    /// refuses to charge an impression id twice).
    #[arg(long, default_value_t = 0)]
    id_base: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = to_config(&args)?;
    // Read the baseline first so a bad --compare file fails before the run, not after.
    let baseline = match &args.compare {
        Some(path) => Some(compare::load_report(path)?),
        None => None,
    };
    let outcome = tools::load::run(&config).context("load run failed")?;
    print!("{}", outcome.report.to_table(&outcome.stats));
    if let Some(path) = &args.json {
        write_file(path, &outcome.report.to_json())?;
    }
    if let Some(prefix) = &args.report {
        write_file(
            &with_suffix(prefix, "hgrm"),
            &hgrm::percentile_distribution(&outcome.stats.latency_us),
        )?;
        write_file(&with_suffix(prefix, "json"), &outcome.report.to_json())?;
    }
    if let (Some(before), Some(path)) = (&baseline, &args.compare) {
        print!(
            "{}",
            compare::compare_table(before, &outcome.report, &path.display().to_string())
        );
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `out/run1` -> `out/run1.hgrm`; keeps dots already in the name (`run-1.5k` -> `run-1.5k.hgrm`).
fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// The measured rate curve: --phases, or --scenario around --rate over --duration.
fn rate_profile(args: &Args) -> anyhow::Result<Option<RateProfile>> {
    if let Some(spec) = &args.phases {
        return Ok(Some(RateProfile::parse(spec)?));
    }
    if args.scenario == "constant" {
        return Ok(None);
    }
    let duration = config::parse_duration(&args.duration)?;
    Ok(Some(RateProfile::preset(
        &args.scenario,
        args.rate,
        duration,
    )?))
}

fn to_config(args: &Args) -> anyhow::Result<LoadConfig> {
    let phases = rate_profile(args)?;
    let (rate_per_s, duration) = match &phases {
        Some(p) => (p.peak_rate(), p.duration()),
        None => (args.rate, config::parse_duration(&args.duration)?),
    };
    let config = LoadConfig {
        target: Target::parse(&args.target)?,
        rate_per_s,
        duration,
        warmup: config::parse_duration(&args.warmup)?,
        connections: args.connections,
        threads: args.threads,
        timeout: config::parse_duration(&args.timeout)?,
        seed: args.seed,
        body: body_source(args)?,
        driver: Driver::parse(&args.driver)?,
        timer_spin: config::parse_duration(&args.timer_spin)?,
        phases,
        events: args.events.clone(),
        id_base: args.id_base,
    };
    config.validate()?;
    Ok(config)
}

fn body_source(args: &Args) -> anyhow::Result<BodySource> {
    if let Some(path) = &args.body_file {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read body file {}", path.display()))?
            .len();
        anyhow::ensure!(
            size <= BODY_FILE_BYTES_MAX,
            "body file {} is {size} bytes, more than the {BODY_FILE_BYTES_MAX} allowed",
            path.display()
        );
        let body = std::fs::read(path)
            .with_context(|| format!("cannot read body file {}", path.display()))?;
        return Ok(BodySource::Fixed(body));
    }
    let users = match &args.users {
        Some(path) => UserSource::Csv(path.clone()),
        None => UserSource::Synthetic {
            user_count: args.user_count,
        },
    };
    Ok(BodySource::Generated {
        users,
        pool_size: args.pool,
        mix: RequestMix {
            site_share: args.site_share,
            video_share: args.video_share,
            tmax_ms: args.tmax,
            bot_share: args.bot_share,
        },
    })
}

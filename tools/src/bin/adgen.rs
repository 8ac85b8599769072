//! `adgen`: write deterministic demo data (catalog.json, users.csv) into a folder.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use tools::adgen::{AdgenOptions, catalog, users_csv};

#[derive(Parser, Debug)]
#[command(
    name = "adgen",
    about = "Generate the demo catalog and user population"
)]
struct Cli {
    /// Output folder (created if missing).
    #[arg(long, default_value = "demo-data")]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 50)]
    advertisers: usize,
    #[arg(long, default_value_t = 200)]
    campaigns: usize,
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Day the campaign flights are placed around (YYYY-MM-DD, default: today, UTC).
    #[arg(long)]
    today: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.advertisers == 0 || cli.campaigns < 4 || cli.users == 0 {
        bail!("--advertisers and --users must be > 0 and --campaigns >= 4");
    }
    let today = match &cli.today {
        Some(s) => engine::catalog::parse_date(s)
            .with_context(|| format!("--today {s:?} is not a YYYY-MM-DD date"))?,
        None => engine::intake::now_unix_s().div_euclid(86_400),
    };
    let opts = AdgenOptions {
        seed: cli.seed,
        advertisers: cli.advertisers,
        campaigns: cli.campaigns,
        users: cli.users,
        today,
    };
    std::fs::create_dir_all(&cli.out).with_context(|| format!("creating {}", cli.out.display()))?;
    let cat = catalog(&opts);
    let cat_path = cli.out.join("catalog.json");
    let json = serde_json::to_vec_pretty(&cat)?;
    std::fs::write(&cat_path, json).with_context(|| format!("writing {}", cat_path.display()))?;
    let users_path = cli.out.join("users.csv");
    std::fs::write(&users_path, users_csv(&opts))
        .with_context(|| format!("writing {}", users_path.display()))?;
    println!(
        "adgen: {} advertisers, {} campaigns, {} creatives -> {}; {} users -> {}",
        cat.advertisers.len(),
        cat.campaigns.len(),
        cat.creatives.len(),
        cat_path.display(),
        opts.users,
        users_path.display()
    );
    Ok(())
}

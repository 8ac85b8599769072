//! `adgen`: write deterministic demo data (catalog.json, users.csv) into a folder.

use std::path::PathBuf;

use std::io::Write as _;

use anyhow::{Context, bail};
use clap::Parser;
use tools::adgen::{AdgenOptions, catalog, population, users_csv_of};
use tools::clicklog::{World, impressions, write_csv};

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
    /// Also write impressions.csv: this many impressions with schema v1 features and a click
    /// label drawn from the hidden ground truth (training data for tools/train/train_demo.py).
    #[arg(long, default_value_t = 0)]
    logs: usize,
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
    std::fs::write(&cat_path, &json).with_context(|| format!("writing {}", cat_path.display()))?;
    let users_path = cli.out.join("users.csv");
    let people = population(&opts);
    let users_text = users_csv_of(&people);
    std::fs::write(&users_path, &users_text)
        .with_context(|| format!("writing {}", users_path.display()))?;
    if cli.logs > 0 {
        write_log(&cli, &opts, &json, &people, &users_text)?;
    }
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

fn write_log(
    cli: &Cli,
    opts: &AdgenOptions,
    catalog_json: &[u8],
    people: &[tools::adgen::SimUser],
    users_text: &str,
) -> anyhow::Result<()> {
    let cat = engine::catalog::Catalog::from_slice("catalog.json", catalog_json)?;
    let file = engine::profile::parse_users("users.csv", users_text)?;
    let world = World {
        catalog: &cat,
        users: people,
        file: &file,
        today: opts.today,
    };
    let log = impressions(&world, cli.logs, opts.seed);
    let path = cli.out.join("impressions.csv");
    let f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    write_csv(&world, &log, &mut w).with_context(|| format!("writing {}", path.display()))?;
    w.flush()?;
    let clicks = log.iter().filter(|i| i.click).count();
    println!(
        "adgen: {} impressions ({} clicks, CTR {:.4}) -> {}",
        log.len(),
        clicks,
        clicks as f64 / log.len().max(1) as f64,
        path.display()
    );
    Ok(())
}

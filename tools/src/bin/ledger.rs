//! `ledger`: offline audit of the budget's write-ahead logs (verify, spend, export, reconcile).
//! A thin command-line wrapper over `tools::ledger`; exit code 1 when a check fails, 2 on bad
//! input (missing file, not a WAL, bad catalog or event log).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use engine::catalog::Catalog;
use tools::ledger::account::Accounts;
use tools::ledger::spend::{BOUND_PPM_DEFAULT, SpendReport, budgets_of};
use tools::ledger::{export, read, reconcile, verify};
use tools::load::events::read_events;

#[derive(Debug, Parser)]
#[command(
    name = "ledger",
    about = "Audit adcore budget WAL files (a file, or every *.wal in a directory)"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Checksums, contiguous sequence numbers, decodable records; torn tail (ok) vs corrupt middle.
    Verify { path: PathBuf },
    /// Per campaign and day: granted, returned, reclaimed, spent, outstanding vs budget + bound.
    Spend {
        path: PathBuf,
        /// Catalog JSON with the budgets (campaign numbers in the ledger are catalog indexes).
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Inaccuracy bound, parts per million of each budget (`[budget] bound_ppm`).
        #[arg(long, default_value_t = BOUND_PPM_DEFAULT)]
        bound_ppm: u64,
    },
    /// Every record as CSV.
    Export {
        path: PathBuf,
        /// Output file ("-" = stdout).
        #[arg(long)]
        csv: PathBuf,
    },
    /// Compare the ledger with an `rtb-load --events` log of served impressions.
    Reconcile {
        path: PathBuf,
        #[arg(long)]
        events: PathBuf,
        #[arg(long)]
        catalog: PathBuf,
        /// The engine's `[auction] seat` (only its bids are charged).
        #[arg(long, default_value = "adcore")]
        seat: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args.cmd) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ledger: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Ok(true): all checks passed; Ok(false): a check failed (reported); Err: bad input.
fn run(cmd: Cmd) -> anyhow::Result<bool> {
    match cmd {
        Cmd::Verify { path } => {
            let report = verify::verify(&path)?;
            print!("{}", report.to_text());
            Ok(report.ok())
        }
        Cmd::Spend {
            path,
            catalog,
            bound_ppm,
        } => {
            anyhow::ensure!(
                bound_ppm <= 1_000_000,
                "--bound-ppm {bound_ppm} is above 1000000"
            );
            let files = read::read_all(&path)?;
            let budgets = match &catalog {
                Some(p) => Some(budgets_of(&load_catalog(p)?)),
                None => None,
            };
            let report =
                SpendReport::build(&Accounts::from_files(&files), budgets.as_deref(), bound_ppm);
            print!("{}", report.to_table());
            Ok(report.ok())
        }
        Cmd::Export { path, csv } => {
            let files = read::read_all(&path)?;
            let rows = if csv.as_os_str() == "-" {
                export::write_csv(&files, &mut std::io::stdout().lock())?
            } else {
                let f = std::fs::File::create(&csv)
                    .with_context(|| format!("cannot create {}", csv.display()))?;
                let mut w = std::io::BufWriter::new(f);
                let rows = export::write_csv(&files, &mut w)?;
                w.flush()
                    .with_context(|| format!("cannot write {}", csv.display()))?;
                eprintln!("{rows} records written to {}", csv.display());
                rows
            };
            let _ = rows;
            Ok(true)
        }
        Cmd::Reconcile {
            path,
            events,
            catalog,
            seat,
        } => {
            let files = read::read_all(&path)?;
            let catalog = load_catalog(&catalog)?;
            let events = read_events(&events)?;
            let report =
                reconcile::reconcile(&Accounts::from_files(&files), &events, &catalog, &seat)?;
            print!("{}", report.to_text());
            Ok(report.ok())
        }
    }
}

fn load_catalog(path: &Path) -> anyhow::Result<Catalog> {
    Catalog::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

//! `gbdt`: inspect a GBDT model and score a CSV file with it (model-runtime's CLI).
//!
//! `gbdt info --model FILE` prints trees, depth, nodes, features and objective.
//! `gbdt predict --model FILE --input CSV [--raw]` prints one prediction per input row. The
//! CSV header names the columns; each model feature is taken from the column of the same name
//! (extra columns are ignored). An empty cell is a missing value (NaN); any other cell that is
//! not a number is an error naming the file, line and column.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use model_runtime::{Model, Scratch};

/// Rows scored per call.
const BATCH_ROWS: usize = 256;
/// Longest CSV line accepted, so a file without newlines cannot exhaust memory.
const LINE_BYTES_MAX: usize = 1 << 20;

#[derive(Parser)]
#[command(name = "gbdt", about = "Inspect and score LightGBM / XGBoost models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print trees, depth, features and objective of a model.
    Info {
        #[arg(long)]
        model: PathBuf,
    },
    /// Print one prediction per CSV row (probability, or raw score with --raw).
    Predict {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        input: PathBuf,
        /// Print raw scores (margins) instead of transformed predictions.
        #[arg(long)]
        raw: bool,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Info { model } => info(&model),
        Command::Predict { model, input, raw } => {
            let stdout = std::io::stdout();
            let mut writer = BufWriter::new(stdout.lock());
            predict(&model, &input, raw, &mut writer).and_then(|()| Ok(writer.flush()?))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gbdt: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn info(path: &Path) -> Result<()> {
    let model = Model::load(path)?;
    let info = model.info();
    println!("format: {}", info.format);
    println!("trees: {}", info.trees);
    println!("max_depth: {}", info.depth_max);
    println!("nodes: {}", info.nodes);
    println!("features: {}", info.features);
    println!("objective: {}", info.objective.name());
    println!("kernel: {}", info.kernel);
    println!("feature_names: {}", model.feature_names().join(" "));
    Ok(())
}

/// For each model feature, the CSV column holding it.
fn map_columns(model: &Model, header: &str, file: &str) -> Result<Vec<usize>> {
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    model
        .feature_names()
        .iter()
        .map(|feature| {
            names
                .iter()
                .position(|name| name == feature)
                .with_context(|| format!("{file}: line 1: no column named {feature:?}"))
        })
        .collect()
}

fn parse_cell(cell: &str, file: &str, line: usize, column: &str) -> Result<f64> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Ok(f64::NAN);
    }
    match cell.parse::<f64>() {
        Ok(value) => Ok(value),
        Err(_) => bail!("{file}: line {line}, column {column:?}: not a number: {cell:?}"),
    }
}

/// Appends one CSV data line's features, in model order, to `row_values`.
fn parse_row(
    text: &str,
    columns: &[usize],
    header: &[String],
    file: &str,
    line: usize,
    row_values: &mut Vec<f64>,
) -> Result<()> {
    let cells: Vec<&str> = text.split(',').collect();
    if cells.len() != header.len() {
        bail!(
            "{file}: line {line}: {} cells, the header has {}",
            cells.len(),
            header.len()
        );
    }
    for &column in columns {
        row_values.push(parse_cell(cells[column], file, line, &header[column])?);
    }
    Ok(())
}

fn read_line_bounded<R: BufRead>(
    reader: &mut R,
    buffer: &mut String,
    file: &str,
    line: usize,
) -> Result<bool> {
    buffer.clear();
    let read = Read::by_ref(reader)
        .take(LINE_BYTES_MAX as u64 + 1)
        .read_line(buffer)
        .with_context(|| format!("{file}: line {line}: cannot read"))?;
    if read > LINE_BYTES_MAX {
        bail!("{file}: line {line}: longer than {LINE_BYTES_MAX} bytes");
    }
    Ok(read > 0)
}

/// Scores every data row of `input`, writing one prediction per line to `writer`.
fn predict(model_path: &Path, input: &Path, raw: bool, writer: &mut impl Write) -> Result<()> {
    let model = Model::load(model_path)?;
    let file = input.display().to_string();
    let mut reader =
        BufReader::new(File::open(input).with_context(|| format!("{file}: cannot open"))?);
    let mut text = String::new();
    if !read_line_bounded(&mut reader, &mut text, &file, 1)? {
        bail!("{file}: empty file, expected a header line");
    }
    let header_line = text.trim_end_matches(['\n', '\r']).to_string();
    let columns = map_columns(&model, &header_line, &file)?;
    let header: Vec<String> = header_line
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let width = model.num_features();
    let mut rows = Vec::with_capacity(BATCH_ROWS * width);
    let mut out = vec![0.0; BATCH_ROWS];
    let mut scratch = Scratch::new();
    let mut line = 1;
    loop {
        line += 1;
        let more = read_line_bounded(&mut reader, &mut text, &file, line)?;
        let data = text.trim_end_matches(['\n', '\r']);
        if more && !data.is_empty() {
            parse_row(data, &columns, &header, &file, line, &mut rows)?;
        }
        let full = rows.len() == BATCH_ROWS * width.max(1);
        if (full || !more) && !rows.is_empty() {
            let count = rows.len() / width.max(1);
            let out = &mut out[..count];
            if raw {
                model.predict_raw_batch(&rows, width, &mut scratch, out)?;
            } else {
                model.predict_batch(&rows, width, &mut scratch, out)?;
            }
            for value in out.iter() {
                writeln!(writer, "{value}")?;
            }
            rows.clear();
        }
        if !more {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../model-runtime/tests/fixtures")
            .join(name)
    }

    fn run(model: &str, input: &Path, raw: bool) -> Result<Vec<f64>> {
        let mut out = Vec::new();
        predict(&fixture(model), input, raw, &mut out)?;
        let text = String::from_utf8(out)?;
        Ok(text.lines().map(|l| l.parse().expect("float")).collect())
    }

    fn expected(name: &str, column: usize) -> Vec<f64> {
        let text = std::fs::read_to_string(fixture(name)).expect("expected");
        text.lines()
            .skip(1)
            .map(|l| {
                l.split(',')
                    .nth(column)
                    .expect("cell")
                    .parse()
                    .expect("float")
            })
            .collect()
    }

    #[test]
    fn predicts_every_fixture_row_like_the_library() {
        for (model, want) in [
            ("criteo_lgb.txt", "criteo_lgb_expected.csv"),
            ("criteo_xgb.json", "criteo_xgb_expected.csv"),
        ] {
            let rows = fixture("criteo_rows.csv");
            for (raw, column) in [(false, 0), (true, 1)] {
                let got = run(model, &rows, raw).expect("predict");
                let want = expected(want, column);
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-6, "{model}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn columns_are_matched_by_name_and_bad_cells_are_located() {
        let dir = std::env::temp_dir().join(format!("gbdt-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let source = std::fs::read_to_string(fixture("criteo_rows.csv")).expect("rows");
        let mut lines = source.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let first: Vec<&str> = lines.next().expect("row").split(',').collect();
        // Reverse the columns and add an unused one: same prediction.
        let reversed = dir.join("reversed.csv");
        let mut h: Vec<&str> = header.iter().rev().copied().collect();
        let mut r: Vec<&str> = first.iter().rev().copied().collect();
        h.push("unused");
        r.push("zzz");
        std::fs::write(&reversed, format!("{}\n{}\n", h.join(","), r.join(","))).expect("write");
        let want = expected("criteo_lgb_expected.csv", 0)[0];
        let got = run("criteo_lgb.txt", &reversed, false).expect("reversed");
        assert!((got[0] - want).abs() <= 1e-6);
        // A bad number names file, line and column.
        let bad = dir.join("bad.csv");
        let mut cells = first.clone();
        cells[2] = "1.2.3";
        std::fs::write(
            &bad,
            format!(
                "{}\n{}\n{}\n",
                header.join(","),
                first.join(","),
                cells.join(",")
            ),
        )
        .expect("write");
        let message = format!(
            "{:#}",
            run("criteo_lgb.txt", &bad, false).expect_err("bad cell")
        );
        assert!(
            message.contains("bad.csv: line 3, column \"I3\""),
            "{message}"
        );
        // A missing feature column is named.
        let short = dir.join("short.csv");
        std::fs::write(&short, "I1,I2\n1,2\n").expect("write");
        let message = format!(
            "{:#}",
            run("criteo_lgb.txt", &short, false).expect_err("missing")
        );
        assert!(message.contains("no column named \"I3\""), "{message}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}

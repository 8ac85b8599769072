//! Parity with the libraries that wrote the models: every fixture row, probability and raw,
//! within 1e-6 of LightGBM's / XGBoost's own predictions (written by tools/train/train_ctr.py).

use std::path::PathBuf;

use model_runtime::{Model, Scratch};

const TOLERANCE: f64 = 1e-6;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Rows of a fixture CSV, columns reordered to the model's feature order (empty = NaN).
fn load_rows(model: &Model, name: &str) -> (Vec<f64>, usize) {
    let text = std::fs::read_to_string(fixture(name)).expect("rows fixture");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let columns: Vec<usize> = model
        .feature_names()
        .iter()
        .map(|f| {
            header
                .iter()
                .position(|h| h == f)
                .expect("feature in header")
        })
        .collect();
    let mut rows = Vec::new();
    let mut count = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        for &c in &columns {
            let cell = cells[c];
            rows.push(if cell.is_empty() {
                f64::NAN
            } else {
                cell.parse().expect("number")
            });
        }
        count += 1;
    }
    (rows, count)
}

fn load_expected(name: &str) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(fixture(name)).expect("expected fixture");
    text.lines()
        .skip(1)
        .map(|line| {
            let (prob, raw) = line.split_once(',').expect("prob,raw");
            (prob.parse().expect("prob"), raw.parse().expect("raw"))
        })
        .collect()
}

fn assert_parity(model_file: &str, rows_file: &str, expected_file: &str) {
    let model = Model::load(fixture(model_file)).expect("model loads");
    let (rows, count) = load_rows(&model, rows_file);
    let expected = load_expected(expected_file);
    assert_eq!(count, expected.len(), "{rows_file} vs {expected_file}");
    let width = model.num_features();
    let mut scratch = Scratch::new();
    let mut raw = vec![0.0; count];
    let mut prob = vec![0.0; count];
    model
        .predict_raw_batch(&rows, width, &mut scratch, &mut raw)
        .expect("raw");
    model
        .predict_batch(&rows, width, &mut scratch, &mut prob)
        .expect("prob");
    let mut worst = 0.0f64;
    for (i, (&(want_prob, want_raw), (&got_prob, &got_raw))) in
        expected.iter().zip(prob.iter().zip(&raw)).enumerate()
    {
        let row = &rows[i * width..(i + 1) * width];
        assert!(
            (got_raw - want_raw).abs() <= TOLERANCE,
            "{model_file} row {i}: raw {got_raw} vs {want_raw}; row {row:?}"
        );
        assert!(
            (got_prob - want_prob).abs() <= TOLERANCE,
            "{model_file} row {i}: prob {got_prob} vs {want_prob}"
        );
        worst = worst.max((got_raw - want_raw).abs());
    }
    eprintln!("{model_file}: {count} rows, worst raw difference {worst:e}");
    // Row by row (batch size 1) must agree with the batch.
    let mut one = [0.0];
    for (i, row) in rows.chunks(width).enumerate().step_by(7) {
        model
            .predict_raw_batch(row, width, &mut scratch, &mut one)
            .expect("one row");
        assert_eq!(
            one[0].to_bits(),
            raw[i].to_bits(),
            "{model_file} row {i}: single vs batch"
        );
    }
}

#[test]
fn lightgbm_avazu_binary_with_categorical_splits() {
    assert_parity("avazu_lgb.txt", "avazu_rows.csv", "avazu_lgb_expected.csv");
}

#[test]
fn lightgbm_criteo_binary_with_nan_missing() {
    assert_parity(
        "criteo_lgb.txt",
        "criteo_rows.csv",
        "criteo_lgb_expected.csv",
    );
}

#[test]
fn lightgbm_criteo_regression_with_zero_missing() {
    assert_parity(
        "criteo_lgb_reg.txt",
        "criteo_rows.csv",
        "criteo_lgb_reg_expected.csv",
    );
}

#[test]
fn xgboost_avazu_binary_logistic() {
    assert_parity("avazu_xgb.json", "avazu_rows.csv", "avazu_xgb_expected.csv");
}

#[test]
fn xgboost_criteo_binary_logistic_with_missing() {
    assert_parity(
        "criteo_xgb.json",
        "criteo_rows.csv",
        "criteo_xgb_expected.csv",
    );
}

#[test]
fn f32_rows_score_like_f64_rows_for_xgboost() {
    let model = Model::load(fixture("criteo_xgb.json")).expect("model");
    let (rows, count) = load_rows(&model, "criteo_rows.csv");
    let rows32: Vec<f32> = rows.iter().map(|&v| v as f32).collect();
    let width = model.num_features();
    let mut scratch = Scratch::new();
    let (mut a, mut b) = (vec![0.0; count], vec![0.0; count]);
    model
        .predict_batch(&rows, width, &mut scratch, &mut a)
        .expect("f64");
    model
        .predict_batch(&rows32, width, &mut scratch, &mut b)
        .expect("f32");
    assert_eq!(a, b);
}

/// The fixtures above are scored by the padded-tree kernel, so their exact parity covers it
/// (the fast and general kernels are covered by `random_trees.rs`).
#[test]
fn fixture_models_use_the_perfect_kernel() {
    for name in [
        "avazu_lgb.txt",
        "criteo_lgb.txt",
        "criteo_lgb_reg.txt",
        "avazu_xgb.json",
        "criteo_xgb.json",
    ] {
        let model = Model::load(fixture(name)).expect("model");
        let info = model.info();
        assert_eq!(info.kernel, "perfect", "{name}: {info:?}");
    }
}

/// Every batch size gives the same scores as one row at a time (8-row chunks, tails, one and
/// several blocks of `BLOCK_ROWS`).
#[test]
fn batch_sizes_agree_with_single_rows() {
    let model = Model::load(fixture("avazu_lgb.txt")).expect("model");
    let (rows, count) = load_rows(&model, "avazu_rows.csv");
    let width = model.num_features();
    let mut scratch = Scratch::new();
    let mut single = vec![0.0; count];
    for (row, out) in rows.chunks(width).zip(single.chunks_mut(1)) {
        model
            .predict_raw_batch(row, width, &mut scratch, out)
            .expect("one row");
    }
    for batch in [2, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 63, 64, 65, 100] {
        let mut scores = vec![0.0; count];
        for (chunk, out) in rows.chunks(batch * width).zip(scores.chunks_mut(batch)) {
            model
                .predict_raw_batch(chunk, width, &mut scratch, out)
                .expect("batch");
        }
        assert_eq!(scores, single, "batch {batch}");
    }
}

//! Bad model files and bad shapes: a clear error, never a panic.

use std::path::PathBuf;

use model_runtime::{LoadError, Model, ScoreError, Scratch};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("fixture")
}

fn error_text(result: Result<Model, LoadError>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_lightgbm_text_is_refused_at_every_cut() {
    let text = read("criteo_lgb.txt");
    let end = text.find("end of trees").expect("marker");
    for cut in (0..end).step_by(97) {
        let message = error_text(Model::from_lightgbm_str("cut.txt", &text[..cut]));
        assert!(message.starts_with("cut.txt: "), "{message}");
    }
}

#[test]
fn truncated_xgboost_json_is_refused_at_every_cut() {
    let json = read("criteo_xgb.json");
    for cut in (0..json.len() - 1).step_by(1009) {
        let message = error_text(Model::from_xgboost_json(
            "cut.json",
            &json.as_bytes()[..cut],
        ));
        assert!(message.starts_with("cut.json: "), "{message}");
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let text = read("avazu_lgb.txt");
    let json = read("avazu_xgb.json");
    let mut seed = 0x9e3779b97f4a7c15u64;
    for _ in 0..300 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut bytes = text.clone().into_bytes();
        let at = (seed as usize) % bytes.len();
        bytes[at] = b"0-9 =\n.e"[(seed >> 40) as usize % 8];
        if let Ok(corrupt) = std::str::from_utf8(&bytes) {
            let _ = Model::from_lightgbm_str("corrupt.txt", corrupt);
        }
        let mut bytes = json.clone().into_bytes();
        let at = (seed as usize) % bytes.len();
        bytes[at] = b"0-9,[]{}\""[(seed >> 40) as usize % 9];
        let _ = Model::from_xgboost_json("corrupt.json", &bytes);
    }
}

#[test]
fn a_bad_number_names_its_line() {
    let text = read("criteo_lgb.txt").replacen("leaf_value=", "leaf_value=abc ", 1);
    let message = error_text(Model::from_lightgbm_str("m.txt", &text));
    let line = text
        .lines()
        .position(|l| l.starts_with("leaf_value=abc"))
        .expect("line")
        + 1;
    assert!(message.contains(&format!("line {line}")), "{message}");
    assert!(message.contains("leaf_value"), "{message}");
}

#[test]
fn child_pointers_that_do_not_form_a_tree_are_refused() {
    let text = read("criteo_lgb.txt");
    let start = text.find("\nleft_child=").expect("left_child") + 1;
    let end = start + text[start..].find('\n').expect("eol");
    let mut children: Vec<String> = text[start + 11..end].split(' ').map(String::from).collect();
    children[1] = "0".to_string(); // a cycle back to the root
    let broken = format!(
        "{}left_child={}{}",
        &text[..start],
        children.join(" "),
        &text[end..]
    );
    let message = error_text(Model::from_lightgbm_str("m.txt", &broken));
    assert!(message.contains("tree 0"), "{message}");
}

#[test]
fn unsupported_lightgbm_features_are_named() {
    let text = read("criteo_lgb.txt");
    let cases = [
        ("is_linear=0", "is_linear=1", "linear_tree"),
        ("num_class=1", "num_class=3", "num_class=3"),
        (
            "objective=binary sigmoid:1",
            "objective=poisson",
            "objective=poisson",
        ),
        (
            "objective=binary sigmoid:1",
            "objective=lambdarank",
            "objective=lambdarank",
        ),
        ("version=v4", "version=v2", "version=v2"),
    ];
    for (from, to, named) in cases {
        let message = error_text(Model::from_lightgbm_str(
            "model.txt",
            &text.replacen(from, to, 1),
        ));
        assert!(message.starts_with("model.txt: "), "{message}");
        assert!(
            message.contains(named) && message.contains("not supported"),
            "{message}"
        );
    }
}

#[test]
fn unsupported_xgboost_features_are_named() {
    let json = read("criteo_xgb.json");
    let cases = [
        (r#""name":"gbtree""#, r#""name":"dart""#, "booster dart"),
        (
            r#""name":"binary:logistic""#,
            r#""name":"multi:softprob""#,
            "multi:softprob",
        ),
        (r#""num_class":"0""#, r#""num_class":"3""#, "num_class=3"),
        (
            r#""split_type":[0,"#,
            r#""split_type":[1,"#,
            "categorical splits",
        ),
    ];
    for (from, to, named) in cases {
        assert!(json.contains(from), "fixture lacks {from}");
        let changed = json.replacen(from, to, 1);
        let message = error_text(Model::from_xgboost_json("m.json", changed.as_bytes()));
        assert!(
            message.contains(named) && message.contains("not supported"),
            "{message}"
        );
    }
}

#[test]
fn absurd_counts_are_refused_without_allocating() {
    let text = read("criteo_lgb.txt");
    for (from, to) in [
        ("max_feature_idx=20", "max_feature_idx=18446744073709551615"),
        ("max_feature_idx=20", "max_feature_idx=999999999999"),
        ("num_leaves=", "num_leaves=99999999999999"),
        ("num_cat=", "num_cat=99999999999999"),
    ] {
        assert!(text.contains(from), "fixture lacks {from}");
        let changed = text.replacen(from, to, 1);
        let message = error_text(Model::from_lightgbm_str("m.txt", &changed));
        assert!(message.starts_with("m.txt: "), "{message}");
    }
    let json = read("criteo_xgb.json").replacen(
        r#""num_class":"0","num_feature":"21""#,
        r#""num_class":"0","num_feature":"99999999999""#,
        1,
    );
    let message = error_text(Model::from_xgboost_json("m.json", json.as_bytes()));
    assert!(message.contains("num_feature"), "{message}");
}

#[test]
fn xgboost_errors_name_the_key() {
    let json =
        read("criteo_xgb.json").replacen(r#""left_children":["#, r#""left_children":["x","#, 1);
    let message = error_text(Model::from_xgboost_json("m.json", json.as_bytes()));
    assert!(message.contains("left_children"), "{message}");
}

#[test]
fn unknown_and_missing_files_are_reported() {
    let dir = std::env::temp_dir().join(format!("model-runtime-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("junk.bin");
    std::fs::write(&path, b"\x00\x01junk").expect("write");
    assert!(matches!(
        Model::load(&path),
        Err(LoadError::UnknownFormat { .. })
    ));
    assert!(matches!(
        Model::load(dir.join("absent")),
        Err(LoadError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn shapes_that_do_not_fit_are_errors() {
    let model = Model::load(fixture("criteo_lgb.txt")).expect("model");
    let width = model.num_features();
    let mut scratch = Scratch::new();
    let rows = vec![0.0f64; width * 3];
    let mut out = vec![0.0; 3];
    assert_eq!(
        model.predict_batch(&rows, width - 1, &mut scratch, &mut out),
        Err(ScoreError::TooFewFeatures {
            given: width - 1,
            needed: width
        })
    );
    assert_eq!(
        model.predict_batch(&rows[1..], width, &mut scratch, &mut out),
        Err(ScoreError::RaggedRows {
            values: width * 3 - 1,
            n_features: width
        })
    );
    assert_eq!(
        model.predict_batch(&rows, width, &mut scratch, &mut out[..2]),
        Err(ScoreError::OutputLength { out: 2, rows: 3 })
    );
    let mut empty: [f64; 0] = [];
    assert_eq!(
        model.predict_batch(&[] as &[f64], width, &mut scratch, &mut empty),
        Ok(())
    );
}

#[test]
fn extra_columns_are_ignored() {
    let model = Model::load(fixture("criteo_lgb.txt")).expect("model");
    let width = model.num_features();
    let mut scratch = Scratch::new();
    let narrow: Vec<f64> = (0..width * 2).map(|i| i as f64).collect();
    let mut wide = Vec::new();
    for row in narrow.chunks(width) {
        wide.extend_from_slice(row);
        wide.extend_from_slice(&[f64::NAN, 7.0]);
    }
    let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
    model
        .predict_raw_batch(&narrow, width, &mut scratch, &mut a)
        .expect("narrow");
    model
        .predict_raw_batch(&wide, width + 2, &mut scratch, &mut b)
        .expect("wide");
    assert_eq!(a, b);
}

#[test]
fn info_describes_the_model() {
    let model = Model::load(fixture("avazu_lgb.txt")).expect("model");
    let info = model.info();
    assert_eq!(
        (info.format, info.trees, info.features),
        ("lightgbm", 100, 18)
    );
    assert!(info.depth_max >= 1 && info.depth_max <= 6, "{info:?}");
    assert_eq!(model.feature_names()[0], "C1");
    let xgb = Model::load(fixture("avazu_xgb.json")).expect("xgb");
    assert_eq!((xgb.info().format, xgb.info().trees), ("xgboost", 100));
}

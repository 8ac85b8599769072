//! Random forests (numeric and categorical splits, every missing type, both default
//! directions) written as LightGBM text / XGBoost JSON, loaded and compiled by the runtime, and
//! checked against a naive tree walk kept here that follows the libraries' sources literally.

use model_runtime::{Model, Scratch};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const FEATURES: usize = 5;
const K_ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// Values chosen to sit on every edge: NaN, both zeros, sub-kZeroThreshold, thresholds,
/// categories inside and outside bitsets, negatives, fractions, huge numbers.
const VALUES: [f64; 22] = [
    f64::NAN,
    0.0,
    -0.0,
    5e-36,
    -5e-36,
    1.0000000180025095e-35,
    -1.0000000180025095e-35,
    0.5,
    -0.5,
    1.0,
    2.0,
    2.7,
    3.0,
    -1.0,
    -2.0,
    7.0,
    31.0,
    32.0,
    33.0,
    95.0,
    1e12,
    -1e12,
];
const THRESHOLDS: [f64; 10] = [
    -1.5,
    -1.0000000180025095e-35,
    0.0,
    1.0000000180025095e-35,
    0.5,
    1.0,
    2.0,
    2.7,
    31.0,
    1e300,
];

struct LgbTree {
    leaf_values: Vec<f64>,
    split_feature: Vec<usize>,
    threshold: Vec<f64>,
    decision_type: Vec<u32>,
    left: Vec<i64>,
    right: Vec<i64>,
    cat_boundaries: Vec<usize>,
    cat_words: Vec<u32>,
}

/// Per feature: (categorical?, missing type). `None` = every split draws its own, which mixes
/// uses of a feature and forces the general kernel.
type Styles = Option<[(bool, u32); FEATURES]>;

fn random_styles(rng: &mut StdRng) -> Styles {
    if rng.random_bool(0.5) {
        return None;
    }
    Some(std::array::from_fn(|_| {
        (rng.random_bool(0.3), rng.random_range(0..3u32))
    }))
}

fn random_lgb_tree(rng: &mut StdRng, styles: Styles) -> LgbTree {
    let leaves = rng.random_range(1..=24);
    let mut tree = LgbTree {
        leaf_values: (0..leaves).map(|_| rng.random_range(-1.0..1.0)).collect(),
        split_feature: Vec::new(),
        threshold: Vec::new(),
        decision_type: Vec::new(),
        left: Vec::new(),
        right: Vec::new(),
        cat_boundaries: vec![0],
        cat_words: Vec::new(),
    };
    // LightGBM's growth: split leaf `l` into (l, new leaf); the parent's pointer moves.
    let mut leaf_parent: Vec<Option<(usize, bool)>> = vec![None];
    for node in 0..leaves - 1 {
        let leaf = rng.random_range(0..=node);
        let new_leaf = node + 1;
        if let Some((parent, is_left)) = leaf_parent[leaf] {
            if is_left {
                tree.left[parent] = node as i64;
            } else {
                tree.right[parent] = node as i64;
            }
        }
        tree.left.push(!(leaf as i64));
        tree.right.push(!(new_leaf as i64));
        leaf_parent[leaf] = Some((node, true));
        leaf_parent.push(Some((node, false)));
        let feature = rng.random_range(0..FEATURES);
        tree.split_feature.push(feature);
        let (categorical, missing_type) = match styles {
            Some(styles) => styles[feature],
            None => (rng.random_bool(0.3), rng.random_range(0..3u32)),
        };
        let default_left = u32::from(rng.random_bool(0.5));
        if categorical {
            let words = rng.random_range(1..=3);
            tree.cat_words
                .extend((0..words).map(|_| rng.random::<u32>()));
            tree.threshold.push((tree.cat_boundaries.len() - 1) as f64);
            tree.cat_boundaries.push(tree.cat_words.len());
            tree.decision_type
                .push(1 | (default_left << 1) | (missing_type << 2));
        } else {
            tree.threshold
                .push(THRESHOLDS[rng.random_range(0..THRESHOLDS.len())]);
            tree.decision_type
                .push((default_left << 1) | (missing_type << 2));
        }
    }
    tree
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn lgb_text(trees: &[LgbTree]) -> String {
    let names: Vec<String> = (0..FEATURES).map(|f| format!("f{f}")).collect();
    let mut text = format!(
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
         max_feature_idx={}\nobjective=binary sigmoid:0.7\nfeature_names={}\n\n",
        FEATURES - 1,
        names.join(" ")
    );
    for (i, t) in trees.iter().enumerate() {
        let num_cat = t.cat_boundaries.len() - 1;
        text += &format!(
            "Tree={i}\nnum_leaves={}\nnum_cat={num_cat}\n",
            t.leaf_values.len()
        );
        text += &format!("split_feature={}\n", join(&t.split_feature));
        let thresholds: Vec<String> = t.threshold.iter().map(|v| format!("{v:e}")).collect();
        text += &format!("threshold={}\n", thresholds.join(" "));
        text += &format!("decision_type={}\n", join(&t.decision_type));
        text += &format!(
            "left_child={}\nright_child={}\n",
            join(&t.left),
            join(&t.right)
        );
        let leaves: Vec<String> = t.leaf_values.iter().map(|v| format!("{v:e}")).collect();
        text += &format!("leaf_value={}\n", leaves.join(" "));
        if num_cat > 0 {
            text += &format!("cat_boundaries={}\n", join(&t.cat_boundaries));
            text += &format!("cat_threshold={}\n", join(&t.cat_words));
        }
        text += "is_linear=0\nshrinkage=1\n\n\n";
    }
    text + "end of trees\n"
}

/// LightGBM `Tree::NumericalDecision`, literally.
fn numerical_decision(t: &LgbTree, node: usize, mut fval: f64) -> i64 {
    let missing_type = (t.decision_type[node] >> 2) & 3;
    let default_left = t.decision_type[node] & 2 != 0;
    if fval.is_nan() && missing_type != 2 {
        fval = 0.0;
    }
    let is_zero = (-K_ZERO_THRESHOLD..=K_ZERO_THRESHOLD).contains(&fval);
    if (missing_type == 1 && is_zero) || (missing_type == 2 && fval.is_nan()) {
        return if default_left {
            t.left[node]
        } else {
            t.right[node]
        };
    }
    if fval <= t.threshold[node] {
        t.left[node]
    } else {
        t.right[node]
    }
}

/// LightGBM `Tree::CategoricalDecision` with `Common::FindInBitset`, literally
/// (x86 `static_cast<int>` of an out-of-range double gives INT_MIN).
fn categorical_decision(t: &LgbTree, node: usize, fval: f64) -> i64 {
    if fval.is_nan() {
        return t.right[node];
    }
    let int_fval = if fval >= 2147483648.0 || fval <= -2147483649.0 {
        i32::MIN
    } else {
        fval as i32
    };
    if int_fval < 0 {
        return t.right[node];
    }
    let cat_idx = t.threshold[node] as usize;
    let words = &t.cat_words[t.cat_boundaries[cat_idx]..t.cat_boundaries[cat_idx + 1]];
    let word = int_fval as usize / 32;
    if word < words.len() && (words[word] >> (int_fval % 32)) & 1 == 1 {
        t.left[node]
    } else {
        t.right[node]
    }
}

fn lgb_reference(trees: &[LgbTree], row: &[f64]) -> f64 {
    // The predictor keeps only |v| > kZeroThreshold or NaN; the rest read as 0.0.
    let row: Vec<f64> = row
        .iter()
        .map(|&v| {
            if v.abs() > K_ZERO_THRESHOLD || v.is_nan() {
                v
            } else {
                0.0
            }
        })
        .collect();
    let mut sum = 0.0;
    for t in trees {
        if t.leaf_values.len() == 1 {
            sum += t.leaf_values[0];
            continue;
        }
        let mut node: i64 = 0;
        while node >= 0 {
            let n = node as usize;
            let fval = row[t.split_feature[n]];
            node = if t.decision_type[n] & 1 != 0 {
                categorical_decision(t, n, fval)
            } else {
                numerical_decision(t, n, fval)
            };
        }
        sum += t.leaf_values[!node as usize];
    }
    sum
}

fn random_rows(rng: &mut StdRng, count: usize) -> Vec<f64> {
    (0..count * FEATURES)
        .map(|_| {
            if rng.random_bool(0.8) {
                VALUES[rng.random_range(0..VALUES.len())]
            } else {
                rng.random_range(-3.0..40.0)
            }
        })
        .collect()
}

#[test]
fn random_lightgbm_forests_match_the_reference_walk() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut scratch = Scratch::new();
    let mut kernels = std::collections::BTreeSet::new();
    for round in 0..80 {
        let styles = random_styles(&mut rng);
        let trees: Vec<LgbTree> = (0..rng.random_range(1..40))
            .map(|_| random_lgb_tree(&mut rng, styles))
            .collect();
        let text = lgb_text(&trees);
        let model = Model::from_lightgbm_str("random.txt", &text).expect("random model loads");
        kernels.insert(model.info().kernel);
        let count = rng.random_range(1..70);
        let rows = random_rows(&mut rng, count);
        let mut raw = vec![0.0; count];
        let mut prob = vec![0.0; count];
        model
            .predict_raw_batch(&rows, FEATURES, &mut scratch, &mut raw)
            .expect("raw");
        model
            .predict_batch(&rows, FEATURES, &mut scratch, &mut prob)
            .expect("prob");
        for (i, row) in rows.chunks(FEATURES).enumerate() {
            let want = lgb_reference(&trees, row);
            assert!(
                (raw[i] - want).abs() <= 1e-9,
                "round {round} row {i} {row:?}: {} vs {want}\n{text}",
                raw[i]
            );
            let want_prob = 1.0 / (1.0 + (-0.7 * want).exp());
            assert!(
                (prob[i] - want_prob).abs() <= 1e-12,
                "round {round} row {i}: prob"
            );
        }
    }
    assert_eq!(
        kernels.into_iter().collect::<Vec<_>>(),
        ["fast", "general", "perfect"],
        "every kernel ran"
    );
}

struct XgbTree {
    left: Vec<i64>,
    right: Vec<i64>,
    feature: Vec<usize>,
    condition: Vec<f32>,
    default_left: Vec<bool>,
}

fn random_xgb_tree(rng: &mut StdRng) -> XgbTree {
    let mut tree = XgbTree {
        left: vec![-1],
        right: vec![-1],
        feature: vec![0],
        condition: vec![rng.random_range(-1.0..1.0)],
        default_left: vec![false],
    };
    for _ in 0..rng.random_range(0..20) {
        let leaves: Vec<usize> = (0..tree.left.len())
            .filter(|&n| tree.left[n] == -1)
            .collect();
        let leaf = leaves[rng.random_range(0..leaves.len())];
        let (l, r) = (tree.left.len(), tree.left.len() + 1);
        tree.left[leaf] = l as i64;
        tree.right[leaf] = r as i64;
        tree.feature[leaf] = rng.random_range(0..FEATURES);
        tree.condition[leaf] = THRESHOLDS[rng.random_range(0..THRESHOLDS.len() - 1)] as f32;
        tree.default_left[leaf] = rng.random_bool(0.5);
        for _ in 0..2 {
            tree.left.push(-1);
            tree.right.push(-1);
            tree.feature.push(0);
            tree.condition.push(rng.random_range(-1.0..1.0));
            tree.default_left.push(false);
        }
    }
    tree
}

fn xgb_json(trees: &[XgbTree], base_score: f32) -> String {
    let list = |v: Vec<String>| format!("[{}]", v.join(","));
    let tree_json: Vec<String> = trees
        .iter()
        .enumerate()
        .map(|(id, t)| {
            format!(
                r#"{{"id":{id},"left_children":{},"right_children":{},"split_indices":{},"split_conditions":{},"default_left":{},"split_type":{},"tree_param":{{"num_nodes":"{}","size_leaf_vector":"1","num_feature":"{FEATURES}","num_deleted":"0"}}}}"#,
                list(t.left.iter().map(ToString::to_string).collect()),
                list(t.right.iter().map(ToString::to_string).collect()),
                list(t.feature.iter().map(ToString::to_string).collect()),
                list(t.condition.iter().map(|c| format!("{c:e}")).collect()),
                list(t.default_left.iter().map(|&d| u8::from(d).to_string()).collect()),
                list(t.left.iter().map(|_| "0".to_string()).collect()),
                t.left.len()
            )
        })
        .collect();
    format!(
        r#"{{"learner":{{"feature_names":[],"learner_model_param":{{"base_score":"[{base_score:e}]","num_class":"0","num_feature":"{FEATURES}","num_target":"1"}},"objective":{{"name":"binary:logistic"}},"gradient_booster":{{"name":"gbtree","model":{{"trees":[{}]}}}}}},"version":[3,0,0]}}"#,
        tree_json.join(",")
    )
}

/// XGBoost's predictor: f32 features, NaN takes the default child, `fvalue < cond` goes left,
/// f32 sum from the base margin.
fn xgb_reference(trees: &[XgbTree], base_score: f32, row: &[f64]) -> f32 {
    let mut sum = -(1.0f32 / base_score - 1.0).ln();
    for t in trees {
        let mut node = 0usize;
        while t.left[node] != -1 {
            let fvalue = row[t.feature[node]] as f32;
            let go_left = if fvalue.is_nan() {
                t.default_left[node]
            } else {
                fvalue < t.condition[node]
            };
            node = if go_left { t.left[node] } else { t.right[node] } as usize;
        }
        sum += t.condition[node];
    }
    sum
}

#[test]
fn random_xgboost_forests_match_the_reference_walk() {
    let mut rng = StdRng::seed_from_u64(0xb005);
    let mut scratch = Scratch::new();
    for round in 0..60 {
        let trees: Vec<XgbTree> = (0..rng.random_range(1..30))
            .map(|_| random_xgb_tree(&mut rng))
            .collect();
        let base_score: f32 = rng.random_range(0.05..0.95);
        let json = xgb_json(&trees, base_score);
        let model = Model::from_xgboost_json("random.json", json.as_bytes()).expect("loads");
        let count = rng.random_range(1..70);
        let rows = random_rows(&mut rng, count);
        let mut raw = vec![0.0; count];
        model
            .predict_raw_batch(&rows, FEATURES, &mut scratch, &mut raw)
            .expect("raw");
        for (i, row) in rows.chunks(FEATURES).enumerate() {
            let want = xgb_reference(&trees, base_score, row);
            assert_eq!(raw[i] as f32, want, "round {round} row {i} {row:?}");
        }
    }
}

//! XGBoost JSON model (`Booster.save_model("m.json")`, gbtree) to a `ModelSpec`.
//!
//! Semantics follow XGBoost's CPU predictor: features are f32, `fvalue < split_condition`
//! goes left, a missing value (NaN) takes the default child (`default_left`), leaf values
//! (stored in `split_conditions` at leaves) are summed in f32 from the base margin, and for
//! `binary:logistic` the stored `base_score` is a probability: margin = logit(base_score).

use serde::Deserialize;

use crate::error::LoadError;
use crate::spec::{
    Accumulate, InputRule, ModelSpec, NumericTest, Objective, SpecNode, Test, TreeSpec,
};

/// Bound on nodes per tree (a depth-30 complete tree); larger trees are refused as corrupt.
const NODES_PER_TREE_MAX: usize = 1 << 31;
/// Bound on the number of trees, so a corrupt count cannot drive a huge allocation.
const TREES_MAX: usize = 1 << 20;

#[derive(Deserialize)]
struct Root {
    learner: Learner,
}

#[derive(Deserialize)]
struct Learner {
    #[serde(default)]
    feature_names: Vec<String>,
    learner_model_param: LearnerParam,
    objective: ObjectiveJson,
    gradient_booster: Booster,
}

#[derive(Deserialize)]
struct LearnerParam {
    base_score: String,
    #[serde(default)]
    num_class: Option<String>,
    num_feature: String,
    #[serde(default)]
    num_target: Option<String>,
}

#[derive(Deserialize)]
struct ObjectiveJson {
    name: String,
}

#[derive(Deserialize)]
struct Booster {
    name: String,
    #[serde(default)]
    model: Option<GbTreeModel>,
}

#[derive(Deserialize)]
struct GbTreeModel {
    trees: Vec<TreeJson>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Int(i64),
}

impl Flag {
    fn is_set(&self) -> bool {
        match *self {
            Flag::Bool(b) => b,
            Flag::Int(i) => i != 0,
        }
    }
}

#[derive(Deserialize)]
struct TreeJson {
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    split_conditions: Vec<f64>,
    default_left: Vec<Flag>,
    #[serde(default)]
    split_type: Vec<i64>,
    tree_param: TreeParam,
}

#[derive(Deserialize)]
struct TreeParam {
    num_nodes: String,
    #[serde(default)]
    size_leaf_vector: Option<String>,
}

fn unsupported(file: &str, feature: impl Into<String>) -> LoadError {
    LoadError::Unsupported {
        file: file.to_string(),
        feature: feature.into(),
    }
}

fn malformed(file: &str, location: impl Into<String>, message: impl Into<String>) -> LoadError {
    LoadError::Malformed {
        file: file.to_string(),
        location: location.into(),
        message: message.into(),
    }
}

fn parse_count(file: &str, key: &str, value: &str) -> Result<usize, LoadError> {
    value
        .trim()
        .parse()
        .map_err(|_| malformed(file, key, format!("not a count: {value:?}")))
}

/// `"5E-1"` or XGBoost 3's `"[5E-1]"`; a vector of several values is multi-target.
fn parse_base_score(file: &str, value: &str) -> Result<f32, LoadError> {
    let inner = value.trim().trim_start_matches('[').trim_end_matches(']');
    if inner.contains(',') {
        return Err(unsupported(
            file,
            format!("base_score={value} (multi-target)"),
        ));
    }
    inner.trim().parse().map_err(|_| {
        malformed(
            file,
            "learner_model_param.base_score",
            format!("bad number {value:?}"),
        )
    })
}

/// Parses XGBoost JSON. `file` names the source in error messages.
pub(crate) fn parse(file: &str, text: &[u8]) -> Result<ModelSpec, LoadError> {
    let mut deserializer = sonic_rs::Deserializer::from_slice(text);
    let root: Root = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        malformed(
            file,
            format!("key `{path}`"),
            error.into_inner().to_string(),
        )
    })?;
    let learner = root.learner;
    check_learner(file, &learner)?;
    let feature_count = parse_count(
        file,
        "learner_model_param.num_feature",
        &learner.learner_model_param.num_feature,
    )?;
    if feature_count > crate::FEATURES_MAX {
        return Err(unsupported(
            file,
            format!(
                "num_feature={feature_count} (more than {})",
                crate::FEATURES_MAX
            ),
        ));
    }
    let objective = match learner.objective.name.as_str() {
        "binary:logistic" | "reg:logistic" => Objective::XgBoostLogistic,
        "reg:squarederror" => Objective::XgBoostSquaredError,
        other => return Err(unsupported(file, format!("objective {other}"))),
    };
    let base_score = parse_base_score(file, &learner.learner_model_param.base_score)?;
    let base_margin = match objective {
        Objective::XgBoostLogistic => logit_f32(file, base_score)?,
        _ => base_score,
    };
    let feature_names = feature_names(file, learner.feature_names, feature_count)?;
    let model = learner
        .gradient_booster
        .model
        .ok_or_else(|| malformed(file, "learner.gradient_booster", "missing key `model`"))?;
    if model.trees.is_empty() || model.trees.len() > TREES_MAX {
        return Err(malformed(
            file,
            "learner.gradient_booster.model.trees",
            format!("{} trees (expected 1..={TREES_MAX})", model.trees.len()),
        ));
    }
    let trees = model
        .trees
        .iter()
        .enumerate()
        .map(|(index, tree)| convert_tree(file, index, tree, feature_count))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ModelSpec {
        format: "xgboost",
        feature_names,
        trees,
        objective,
        input_rule: InputRule::XgBoost,
        accumulate: Accumulate::F32,
        base_margin: f64::from(base_margin),
        average_divisor: 1.0,
    })
}

fn check_learner(file: &str, learner: &Learner) -> Result<(), LoadError> {
    let booster = learner.gradient_booster.name.as_str();
    if booster != "gbtree" {
        return Err(unsupported(file, format!("booster {booster}")));
    }
    let param = &learner.learner_model_param;
    if let Some(classes) = &param.num_class
        && parse_count(file, "learner_model_param.num_class", classes)? > 1
    {
        return Err(unsupported(
            file,
            format!("num_class={classes} (multiclass)"),
        ));
    }
    if let Some(targets) = &param.num_target
        && parse_count(file, "learner_model_param.num_target", targets)? > 1
    {
        return Err(unsupported(
            file,
            format!("num_target={targets} (multi-target)"),
        ));
    }
    Ok(())
}

/// XGBoost's `ProbToMargin` for logistic objectives, in f32: -ln(1/p - 1).
fn logit_f32(file: &str, probability: f32) -> Result<f32, LoadError> {
    if !(probability > 0.0 && probability < 1.0) {
        return Err(malformed(
            file,
            "learner_model_param.base_score",
            format!("{probability} is not a probability in (0, 1)"),
        ));
    }
    Ok(-(1.0f32 / probability - 1.0).ln())
}

fn feature_names(file: &str, names: Vec<String>, count: usize) -> Result<Vec<String>, LoadError> {
    if names.is_empty() {
        return Ok((0..count).map(|i| format!("f{i}")).collect());
    }
    if names.len() != count {
        return Err(malformed(
            file,
            "learner.feature_names",
            format!("{} names for num_feature = {count}", names.len()),
        ));
    }
    Ok(names)
}

fn convert_tree(
    file: &str,
    index: usize,
    tree: &TreeJson,
    feature_count: usize,
) -> Result<TreeSpec, LoadError> {
    let location = format!("learner.gradient_booster.model.trees[{index}]");
    if let Some(size) = &tree.tree_param.size_leaf_vector
        && parse_count(file, &location, size)? > 1
    {
        return Err(unsupported(
            file,
            format!("trees[{index}]: vector leaves (multi-target)"),
        ));
    }
    if tree.split_type.iter().any(|&kind| kind != 0) {
        return Err(unsupported(
            file,
            format!("trees[{index}]: categorical splits (split_type=1)"),
        ));
    }
    let count = parse_count(file, &location, &tree.tree_param.num_nodes)?;
    let lengths = [
        tree.left_children.len(),
        tree.right_children.len(),
        tree.split_indices.len(),
        tree.split_conditions.len(),
        tree.default_left.len(),
    ];
    if count == 0 || count > NODES_PER_TREE_MAX || lengths.iter().any(|&len| len != count) {
        return Err(malformed(
            file,
            location,
            format!("num_nodes={count} but node arrays have lengths {lengths:?}"),
        ));
    }
    (0..count)
        .map(|node| convert_node(file, &location, tree, node, feature_count))
        .collect::<Result<Vec<_>, _>>()
        .map(|nodes| TreeSpec { nodes })
}

fn convert_node(
    file: &str,
    location: &str,
    tree: &TreeJson,
    node: usize,
    feature_count: usize,
) -> Result<SpecNode, LoadError> {
    let value = f64::from(tree.split_conditions[node] as f32);
    if tree.left_children[node] == -1 {
        return Ok(SpecNode::Leaf { value });
    }
    let count = tree.left_children.len();
    let child = |raw: i64| {
        usize::try_from(raw)
            .ok()
            .filter(|&c| c < count && c != node)
    };
    let (Some(left), Some(right)) = (
        child(tree.left_children[node]),
        child(tree.right_children[node]),
    ) else {
        return Err(malformed(
            file,
            format!("{location}: node {node}"),
            "child index out of range",
        ));
    };
    let feature = usize::try_from(tree.split_indices[node])
        .ok()
        .filter(|&f| f < feature_count)
        .ok_or_else(|| {
            malformed(
                file,
                format!("{location}: node {node}"),
                "split index out of range",
            )
        })?;
    Ok(SpecNode::Split {
        feature: feature as u32,
        test: Test::Numeric(strict_less_than(value, tree.default_left[node].is_set())),
        left,
        right,
    })
}

/// `v < t` on f32 inputs is `v <= next_down(t)` on their exact f64 values. Nothing is below
/// -inf, and `v <= NaN` is never true, so -inf becomes NaN.
fn strict_less_than(threshold: f64, default_left: bool) -> NumericTest {
    let below = if threshold == f64::NEG_INFINITY {
        f64::NAN
    } else {
        threshold.next_down()
    };
    NumericTest {
        threshold: below,
        special_left: default_left,
        zero_is_missing: false,
    }
}

//! The format-neutral tree description both loaders produce and the compiler consumes.
//! Every split is already normalised to "go left if ...": LightGBM's `<=` and XGBoost's `<`
//! and all the missing-value rules are resolved here, so the scorer has a single semantics.

/// What a numeric split does with a value.
///
/// `v` is first normalised by the model's input rule (see `InputRule`). Then:
/// if `v` is NaN, or `zero_is_missing` and `v == 0.0`, go left iff `special_left`;
/// otherwise go left iff `v <= threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NumericTest {
    pub threshold: f64,
    pub special_left: bool,
    pub zero_is_missing: bool,
}

/// A categorical split: NaN or a value whose integer part is negative goes right;
/// otherwise the truncated integer goes left iff its bit is set in `bitset`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CategoryTest {
    pub bitset: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Numeric(NumericTest),
    Category(CategoryTest),
}

/// One node: a split with two children (indices into the tree's node list) or a leaf.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SpecNode {
    Split {
        feature: u32,
        test: Test,
        left: usize,
        right: usize,
    },
    Leaf {
        value: f64,
    },
}

/// One tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeSpec {
    pub nodes: Vec<SpecNode>,
}

/// How input values are normalised before any split sees them, to match the source library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputRule {
    /// LightGBM: values with |v| <= kZeroThreshold (1e-35f) are exactly 0.0 (its predictor
    /// drops them as sparse zeros), all else is kept in f64.
    LightGbm,
    /// XGBoost: values are rounded to f32, as its DMatrix stores them.
    XgBoost,
}

/// How leaf values are summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accumulate {
    /// In f64, in tree order (LightGBM).
    F64,
    /// In f32, in tree order, from the base margin (XGBoost).
    F32,
}

impl Accumulate {
    /// `sum + leaf` in this precision.
    #[inline(always)]
    pub(crate) fn add(self, sum: f64, leaf: f64) -> f64 {
        match self {
            Accumulate::F64 => sum + leaf,
            Accumulate::F32 => f64::from(sum as f32 + leaf as f32),
        }
    }
}

/// The transform from raw score to prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// LightGBM `binary sigmoid:S` (and `cross_entropy`, S = 1): 1 / (1 + exp(-S * raw)), in f64.
    LightGbmBinary { sigmoid: f64 },
    /// LightGBM `regression` family with identity output.
    LightGbmRegression,
    /// XGBoost `binary:logistic` / `reg:logistic`: the f32 logistic function.
    XgBoostLogistic,
    /// XGBoost `reg:squarederror`: identity.
    XgBoostSquaredError,
}

impl Objective {
    /// A short name for `info` output.
    pub fn name(&self) -> String {
        match self {
            Objective::LightGbmBinary { sigmoid } => format!("binary sigmoid:{sigmoid}"),
            Objective::LightGbmRegression => "regression".to_string(),
            Objective::XgBoostLogistic => "binary:logistic".to_string(),
            Objective::XgBoostSquaredError => "reg:squarederror".to_string(),
        }
    }

    /// Raw score to prediction.
    #[inline]
    pub fn transform(&self, raw: f64) -> f64 {
        match *self {
            Objective::LightGbmBinary { sigmoid } => 1.0 / (1.0 + (-sigmoid * raw).exp()),
            Objective::XgBoostLogistic => f64::from(logistic_f32(raw as f32)),
            Objective::LightGbmRegression | Objective::XgBoostSquaredError => raw,
        }
    }
}

/// XGBoost's `common::Sigmoid` on f32: 1 / (1 + exp(min(-x, 88.7))).
#[inline]
fn logistic_f32(x: f32) -> f32 {
    let exponent = (-x).min(88.7);
    1.0 / (exponent.exp() + 1.0)
}

/// Everything a loader hands to the compiler.
#[derive(Debug, Clone)]
pub(crate) struct ModelSpec {
    pub format: &'static str,
    pub feature_names: Vec<String>,
    pub trees: Vec<TreeSpec>,
    pub objective: Objective,
    pub input_rule: InputRule,
    pub accumulate: Accumulate,
    /// Added before the first tree (XGBoost's base margin); 0 for LightGBM.
    pub base_margin: f64,
    /// The raw sum is divided by this (LightGBM `average_output`, random forest); else 1.
    pub average_divisor: f64,
}

//! `Model`: a loaded, compiled, immutable GBDT model (Send + Sync, share it behind an `Arc`).

use std::path::Path;

use crate::compiled::{FeatureValue, Forest, Scratch};
use crate::error::{LoadError, ScoreError};
use crate::spec::Objective;
use crate::{lightgbm, xgboost};

/// Largest model file read, so a wrong path cannot pull gigabytes into memory.
pub const MODEL_FILE_BYTES_MAX: u64 = 1 << 30;

/// A summary for operators (`gbdt info`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// `"lightgbm"` or `"xgboost"`.
    pub format: &'static str,
    pub trees: usize,
    /// Deepest tree (edges from root to the farthest leaf).
    pub depth_max: usize,
    pub nodes: usize,
    pub features: usize,
    pub objective: Objective,
    /// `"perfect"` (padded heap-ordered trees, one compare per level), `"fast"` (per-feature
    /// input encoding, one compare per node) or `"general"`.
    pub kernel: &'static str,
}

/// A compiled model. Scoring never allocates once the caller's `Scratch` has warmed up.
#[derive(Debug, Clone)]
pub struct Model {
    format: &'static str,
    feature_names: Vec<String>,
    objective: Objective,
    forest: Forest,
}

fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    let file = path.display().to_string();
    let io = |source| LoadError::Io {
        file: file.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MODEL_FILE_BYTES_MAX {
        return Err(LoadError::Malformed {
            file: file.clone(),
            location: "file".to_string(),
            message: format!("{size} bytes exceeds the {MODEL_FILE_BYTES_MAX}-byte limit"),
        });
    }
    std::fs::read(path).map_err(io)
}

fn utf8<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, LoadError> {
    std::str::from_utf8(bytes).map_err(|e| LoadError::Malformed {
        file: file.to_string(),
        location: format!("byte {}", e.valid_up_to()),
        message: "not UTF-8 text".to_string(),
    })
}

impl Model {
    /// Loads a LightGBM `model.txt`.
    pub fn load_lightgbm(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        let file = path.display().to_string();
        Self::from_lightgbm_str(&file, utf8(&file, &bytes)?)
    }

    /// Loads an XGBoost JSON model.
    pub fn load_xgboost_json(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        Self::from_xgboost_json(&path.display().to_string(), &bytes)
    }

    /// Loads either format, recognised by content (`tree` first line, or a JSON object).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        let file = path.display().to_string();
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        match bytes.get(start) {
            Some(b'{') => Self::from_xgboost_json(&file, &bytes),
            _ if bytes.starts_with(b"tree") => Self::from_lightgbm_str(&file, utf8(&file, &bytes)?),
            _ => Err(LoadError::UnknownFormat { file }),
        }
    }

    /// Parses LightGBM model text; `file` names the source in errors.
    pub fn from_lightgbm_str(file: &str, text: &str) -> Result<Self, LoadError> {
        let spec = lightgbm::parse(file, text)?;
        Self::from_spec(file, spec)
    }

    /// Parses XGBoost JSON; `file` names the source in errors.
    pub fn from_xgboost_json(file: &str, json: &[u8]) -> Result<Self, LoadError> {
        let spec = xgboost::parse(file, json)?;
        Self::from_spec(file, spec)
    }

    fn from_spec(file: &str, spec: crate::spec::ModelSpec) -> Result<Self, LoadError> {
        let forest = Forest::compile(file, &spec)?;
        Ok(Self {
            format: spec.format,
            feature_names: spec.feature_names,
            objective: spec.objective,
            forest,
        })
    }

    /// Feature names in model order; row column `i` is feature `i`.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Number of features a row must provide.
    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    pub fn objective(&self) -> Objective {
        self.objective
    }

    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            format: self.format,
            trees: self.forest.tree_count(),
            depth_max: self.forest.depth_max(),
            nodes: self.forest.node_count(),
            features: self.num_features(),
            objective: self.objective,
            kernel: self.forest.kernel(),
        }
    }

    fn check_shape<T>(&self, rows: &[T], n_features: usize, out: &[f64]) -> Result<(), ScoreError> {
        if n_features < self.num_features() || n_features == 0 && !rows.is_empty() {
            return Err(ScoreError::TooFewFeatures {
                given: n_features,
                needed: self.num_features().max(1),
            });
        }
        if n_features > 0 && !rows.len().is_multiple_of(n_features) {
            return Err(ScoreError::RaggedRows {
                values: rows.len(),
                n_features,
            });
        }
        let row_count = rows.len().checked_div(n_features).unwrap_or(0);
        if out.len() != row_count {
            return Err(ScoreError::OutputLength {
                out: out.len(),
                rows: row_count,
            });
        }
        Ok(())
    }

    /// Raw scores (margins) of row-major `rows` (`n_features` values per row, NaN = missing;
    /// columns past the model's features are ignored) into `out`, one per row.
    pub fn predict_raw_batch<T: FeatureValue>(
        &self,
        rows: &[T],
        n_features: usize,
        scratch: &mut Scratch,
        out: &mut [f64],
    ) -> Result<(), ScoreError> {
        self.check_shape(rows, n_features, out)?;
        if !out.is_empty() {
            self.forest.score_raw(rows, n_features, scratch, out);
        }
        Ok(())
    }

    /// Predictions (probabilities for binary objectives, values for regression).
    pub fn predict_batch<T: FeatureValue>(
        &self,
        rows: &[T],
        n_features: usize,
        scratch: &mut Scratch,
        out: &mut [f64],
    ) -> Result<(), ScoreError> {
        self.predict_raw_batch(rows, n_features, scratch, out)?;
        for value in out.iter_mut() {
            *value = self.objective.transform(*value);
        }
        Ok(())
    }
}

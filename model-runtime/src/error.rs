//! Errors of model loading and scoring. Loading errors name the file and, where it helps,
//! the line or key that is wrong; scoring errors name the shape that does not fit.

use thiserror::Error;

/// A model file could not be read, parsed, or uses a feature this runtime refuses.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read at all.
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not well formed (truncated, corrupt, inconsistent).
    #[error("{file}: {location}: {message}")]
    Malformed {
        file: String,
        location: String,
        message: String,
    },
    /// The file is well formed but uses something this runtime does not score.
    #[error("{file}: {feature} is not supported")]
    Unsupported { file: String, feature: String },
    /// The file format could not be recognised.
    #[error("{file}: unknown model format (expected LightGBM model.txt or XGBoost JSON)")]
    UnknownFormat { file: String },
}

/// The rows or output buffer handed to a scoring call do not fit the model.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScoreError {
    /// `n_features` is smaller than the number of features the model reads.
    #[error("rows have {given} features, the model reads {needed}")]
    TooFewFeatures { given: usize, needed: usize },
    /// `rows.len()` is not a multiple of `n_features`.
    #[error("rows hold {values} values, not a multiple of n_features = {n_features}")]
    RaggedRows { values: usize, n_features: usize },
    /// `out.len()` differs from the number of rows.
    #[error("out holds {out} slots for {rows} rows")]
    OutputLength { out: usize, rows: usize },
}

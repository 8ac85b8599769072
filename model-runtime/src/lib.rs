//! `model-runtime`: exact, fast scoring of gradient-boosted decision trees.
//!
//! Owns: the model formats (LightGBM `model.txt` v3/v4, XGBoost JSON gbtree), their exact
//! split semantics (missing values, default directions, categorical bitsets, `<=` vs `<`,
//! f64 vs f32 accumulation), a compiled flat layout, and batch scoring into caller-owned
//! buffers. Must not know: ads, what any feature means, where rows come from, or threads
//! (a `Model` is immutable, `Send + Sync`, shared behind an `Arc`; each thread owns a
//! `Scratch`).
//!
//! ```no_run
//! use model_runtime::{Model, Scratch};
//! let model = Model::load("model.txt").expect("model");
//! let rows = vec![0.0f64; 3 * model.num_features()];
//! let mut out = [0.0; 3];
//! let mut scratch = Scratch::new();
//! model.predict_batch(&rows, model.num_features(), &mut scratch, &mut out).expect("shape");
//! ```

mod compiled;
mod error;
mod fast;
mod lightgbm;
mod model;
mod perfect;
mod spec;
mod xgboost;

pub use compiled::{BLOCK_ROWS, FeatureValue, Scratch, TREE_DEPTH_MAX};
pub use error::{LoadError, ScoreError};
pub use model::{MODEL_FILE_BYTES_MAX, Model, ModelInfo};
pub use spec::Objective;

/// Most features a model may read (a row is at least this wide), so a corrupt count cannot
/// drive a huge allocation.
pub const FEATURES_MAX: usize = 1 << 20;

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn model_is_send_and_sync() {
        assert_send_sync::<crate::Model>();
    }
}

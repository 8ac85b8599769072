//! Loading and checking the CTR model that serves: the embedded demo model or a file, refused
//! unless its features are schema v1 and a smoke prediction is a probability.
//!
//! A loaded model is immutable and shared by every shard behind an `Arc`; a reload builds a new
//! one off the shard threads and each shard swaps its `Arc` between two requests (an auction never
//! yields, so a request in flight always finishes on the model it started with).
//!
//! Owns: model sources, checks, versions. Must not know: tiers, features' meaning, shards.

use std::path::Path;

use model_runtime::Model;

use crate::features::{ROW_LEN, SCHEMA_V1, SchemaError};

/// The demo model trained by `tools/train/train_demo.py` on `adgen --logs` (schema v1).
pub const DEMO_MODEL_TEXT: &str = include_str!("../models/demo_ctr_v1.txt");
/// How the embedded demo model is named in versions and errors.
pub const DEMO_MODEL_NAME: &str = "embedded:demo_ctr_v1";

/// A model that passed the checks, with a version naming its source and content.
#[derive(Debug)]
pub struct ServingModel {
    pub model: Model,
    /// `<file stem>-<8 hex digits of the content hash>`, e.g. `demo_ctr_v1-1a2b3c4d`.
    pub version: String,
    /// The file it came from (or [`DEMO_MODEL_NAME`]).
    pub source: String,
}

/// Why a model was refused; the old model keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Load(#[from] model_runtime::LoadError),
    #[error("{file}: does not fit the feature schema: {source}")]
    Schema { file: String, source: SchemaError },
    #[error("{file}: smoke prediction failed: {message}")]
    Smoke { file: String, message: String },
}

/// FNV-1a, 64 bits: a stable content hash for versions (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn version_of(name: &str, bytes: &[u8]) -> String {
    format!("{name}-{:08x}", fnv1a(bytes) >> 32)
}

/// Loads the model at `path`, or the embedded demo model when `path` is empty, and checks it.
pub fn load(path: &Path) -> Result<ServingModel, ModelError> {
    if path.as_os_str().is_empty() {
        let model = Model::from_lightgbm_str(DEMO_MODEL_NAME, DEMO_MODEL_TEXT)?;
        let version = version_of("demo_ctr_v1", DEMO_MODEL_TEXT.as_bytes());
        return check(model, DEMO_MODEL_NAME.to_string(), version);
    }
    let file = path.display().to_string();
    let model = Model::load(path)?;
    // The content hash names the version; reading twice is fine off the hot path.
    let bytes = std::fs::read(path).map_err(|source| model_runtime::LoadError::Io {
        file: file.clone(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    check(model, file, version_of(&stem, &bytes))
}

/// Schema check, then a smoke prediction on two rows (all missing; all zero) that must give
/// finite probabilities.
fn check(model: Model, file: String, version: String) -> Result<ServingModel, ModelError> {
    SCHEMA_V1
        .check(model.feature_names())
        .map_err(|source| ModelError::Schema {
            file: file.clone(),
            source,
        })?;
    let mut rows = [f64::NAN; 2 * ROW_LEN];
    rows[ROW_LEN..].fill(0.0);
    let mut out = [0.0; 2];
    let mut scratch = model_runtime::Scratch::new();
    model
        .predict_batch(&rows, ROW_LEN, &mut scratch, &mut out)
        .map_err(|e| ModelError::Smoke {
            file: file.clone(),
            message: e.to_string(),
        })?;
    if let Some(bad) = out
        .iter()
        .find(|p| !(p.is_finite() && (0.0..=1.0).contains(*p)))
    {
        return Err(ModelError::Smoke {
            file,
            message: format!("prediction {bad} is not a probability in [0, 1]"),
        });
    }
    Ok(ServingModel {
        model,
        version,
        source: file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_demo_model_passes_its_checks() {
        let m = load(Path::new("")).unwrap();
        assert!(m.version.starts_with("demo_ctr_v1-"), "{}", m.version);
        assert_eq!(m.source, DEMO_MODEL_NAME);
    }

    #[test]
    fn refusals_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.txt");
        let e = load(&missing).unwrap_err().to_string();
        assert!(e.contains("none.txt: cannot read"), "{e}");

        let corrupt = dir.path().join("corrupt.txt");
        std::fs::write(&corrupt, &DEMO_MODEL_TEXT[..DEMO_MODEL_TEXT.len() / 3]).unwrap();
        let e = load(&corrupt).unwrap_err().to_string();
        assert!(e.starts_with(&corrupt.display().to_string()), "{e}");

        let renamed = dir.path().join("renamed.txt");
        std::fs::write(
            &renamed,
            DEMO_MODEL_TEXT.replacen("user_ctr", "user_ctr_7d", 1),
        )
        .unwrap();
        let e = load(&renamed).unwrap_err().to_string();
        assert!(
            e.contains("does not fit the feature schema: feature 4 is \"user_ctr_7d\""),
            "{e}"
        );
    }

    #[test]
    fn versions_follow_content() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("m.txt");
        std::fs::write(&a, DEMO_MODEL_TEXT).unwrap();
        let v1 = load(&a).unwrap().version;
        assert_eq!(v1, load(&a).unwrap().version);
        std::fs::write(&a, format!("{DEMO_MODEL_TEXT}\n")).unwrap();
        assert_ne!(v1, load(&a).unwrap().version);
    }
}

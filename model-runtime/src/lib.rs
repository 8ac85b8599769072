//! `model-runtime`: GBDT scoring. Knows nothing of ads.

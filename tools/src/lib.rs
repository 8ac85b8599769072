//! Shared helpers for the tools binaries.

pub mod load;

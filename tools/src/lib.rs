//! Shared helpers for the tools binaries.

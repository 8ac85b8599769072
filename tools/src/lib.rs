//! `tools`: operator tools around the engine.
//!
//! Owns `adgen` (deterministic demo data), `clicklog` (impression/click logs from a hidden ground
//! truth, featurised by the engine's own row builder), `dspsim` (the `dsp-sim` DSP simulator),
//! `load` (the `rtb-load` open-loop generator), `ledger` (the `ledger` WAL audit tool) and the CLIs in `src/bin/`. Depends on `engine`
//! for its public types (catalog, feature schema and row builder, profiles, scoring run); nothing
//! depends on this crate.
pub mod adgen;
pub mod clicklog;
pub mod dspsim;
pub mod ledger;
pub mod load;

//! `tools`: operator tools around the engine.
//!
//! Owns `adgen` (deterministic demo data), `dspsim` (the `dsp-sim` DSP simulator), `load` (the `rtb-load` open-loop generator) and the
//! CLIs in `src/bin/`. Depends on `engine` for catalog types only; nothing depends on this crate.
pub mod adgen;
pub mod dspsim;
pub mod load;

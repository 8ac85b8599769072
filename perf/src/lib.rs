//! Benchmarks and peer comparisons live here; see perf/README.md. No product code.

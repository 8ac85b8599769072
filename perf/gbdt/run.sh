#!/usr/bin/env bash
# GBDT scoring benchmark: model-runtime (batch 1/10/100/1000/all) vs LightGBM's Python
# predict and lleaves (if installed), single thread, same model and rows, in one run.
# Writes perf/gbdt/RESULTS.md. Run from anywhere: bash perf/gbdt/run.sh [ROW_COUNT]
# Needs: bash tools/train/setup.sh --with-lleaves (Python peers), a Rust toolchain.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rows="${1:-50000}"
out="$root/target/gbdt-bench"
fixtures="$root/model-runtime/tests/fixtures"
data="${GBDT_DATA:-$root/../shared/data/ctr}"
mkdir -p "$out"
rm -f "$out"/*.log
cd "$root"
cargo build --release -p model-runtime --example gbdt_bench
bench="$root/target/release/examples/gbdt_bench"

cp "$fixtures/avazu_lgb.txt" "$out/avazu_lgb_categorical.txt"
python3 perf/gbdt/train_numeric.py "$data" "$out/avazu_lgb_numeric.txt"

for model in avazu_lgb_categorical avazu_lgb_numeric; do
  echo "== $model"
  "$bench" "$out/$model.txt" "$fixtures/avazu_rows.csv" "$rows" | tee "$out/$model.rust.log"
  python3 perf/gbdt/bench.py "$out/$model.txt" "$fixtures/avazu_rows.csv" "$rows" | tee "$out/$model.py.log"
done
python3 perf/gbdt/report.py "$out" "$root/perf/gbdt/RESULTS.md"
echo "wrote perf/gbdt/RESULTS.md"

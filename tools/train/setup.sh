#!/usr/bin/env bash
# Installs the Python packages the training scripts and the GBDT benchmark need (idempotent).
# Usage: bash tools/train/setup.sh [--with-lleaves]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python3 -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
if [[ "${1:-}" == "--with-lleaves" ]]; then
  # Optional LLVM-compiled LightGBM peer for perf/gbdt (lleaves 1.3 needs llvmlite < 0.44,
  # which still has PassManagerBuilder); the benchmark skips it if absent.
  python3 -m pip install --quiet --disable-pip-version-check "lleaves==1.3.0" "llvmlite==0.43.0" || echo "lleaves not installed" >&2
fi
python3 -c "import lightgbm, xgboost, numpy, pandas; print('lightgbm', lightgbm.__version__, 'xgboost', xgboost.__version__)"

#!/usr/bin/env bash
# RTB timeout/revenue table (seed Part 3) with the real adserver and tools/dsp-sim (seed population,
# per-request draws): see run.py and RESULTS.md.
# Usage: perf/rtb/run.sh [requests] ; PROFILE=debug to skip the release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build -q --release --bin adserver -p engine
  cargo build -q --release --bin dsp-sim -p tools
fi
exec python3 perf/rtb/run.py --adserver "target/$PROFILE/adserver" --dsp-sim "target/$PROFILE/dsp-sim" \
  --catalog engine/tests/fixtures/catalog.json --requests "${1:-300}" \
  --out "perf/rtb/results-$(date -u +%Y%m%dT%H%M%SZ).json"

#!/usr/bin/env bash
# The perf suite: one command, writes perf/REPORT.md (machine, commit, driver; for each figure
# our number, the peer's number measured in the same run, and the ratio).
#
#   perf/run.sh            # ~15 min on 2 cores
#   QUICK=1 perf/run.sh    # fewer rates, shorter runs (~6 min), for a smoke check of the suite
#   RUN_ALL=1 perf/run.sh  # also re-runs perf/gbdt, perf/rtb and perf/budget before collecting
#
# Sections: no-bid HTTP path vs nginx `return 204` (one worker per core) at fixed rates; full
# pipeline capacity (highest rate with internal p99 < 1 ms) and p99/p99.9 at 80 % of it; OpenRTB
# JSON parse/write vs serde_json; io_uring vs legacy driver on the same load; and the GBDT, RTB
# revenue-capture and budget comparisons collected from their own RESULTS.md.
# Binaries are built with -C target-cpu=native (sonic-rs and the GBDT use the host's SIMD) into
# target/perf, so the normal target/ is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:--C target-cpu=native}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/perf}"
QUICK=${QUICK:-0}
OUT=perf/out/suite
rm -rf "$OUT"; mkdir -p "$OUT"
BIN=$CARGO_TARGET_DIR/release
export BIN OUT
source perf/lib.sh   # sets SHARDS, SERVER_CPUS, LOAD_CPUS (servers and load on separate CPUs)
export SHARDS SERVER_CPUS LOAD_CPUS

echo "== building (release, target-cpu=native)"
# The commit measured, for the report (HEAD may move while the suite runs).
{ git rev-parse --short HEAD | tr -d '\n'; [ -z "$(git status --porcelain)" ] || printf ' (with local changes)'; echo; } > "$OUT/commit.txt"
cargo build --release -q -p engine -p tools -p perf
[ -f demo-data/catalog.json ] || "$BIN/adgen" --out demo-data

if [ "$QUICK" = 1 ]; then
  NOBID_RATES="10000 20000 30000"; CAP_RATES="4000 8000 12000 16000 20000"; DUR=4s; WARMUP=1s
else
  NOBID_RATES="10000 15000 20000 25000 30000 35000"; CAP_RATES="4000 6000 8000 10000 12000 14000 16000 20000 24000"; DUR=8s; WARMUP=2s
fi
# Trials per server and rate on the no-bid comparison (interleaved with nginx's; medians compared).
TRIALS=${TRIALS:-$([ "$QUICK" = 1 ] && echo 2 || echo 3)}
export DUR WARMUP TRIALS

echo "== 1. no-bid path vs nginx return 204"
SKIP_BUILD=1 BIN=$BIN DUR=$DUR perf/foundation/run.sh $NOBID_RATES > "$OUT/foundation.log"
cp perf/out/foundation/*.json "$OUT/" 2>/dev/null || true

echo "== 2. full pipeline capacity (internal p99 < 1 ms)"
for r in $CAP_RATES; do
  start_adserver 18091
  CPU_PIDS="$ADS_PID" load cap http://127.0.0.1:18091/openrtb2/auction "$r"
  curl -s http://127.0.0.1:18091/stats > "$OUT/cap-$r.stats.json"
  stop_adserver
done
CAP=$(python3 - "$OUT" $CAP_RATES <<'PY'
import json, sys
out, rates = sys.argv[1], [int(r) for r in sys.argv[2:]]
best = 0
for r in rates:
    j = json.load(open(f"{out}/cap-{r}.json")); st = json.load(open(f"{out}/cap-{r}.stats.json"))["total"]
    if j["rate_achieved"] >= 0.97 * r and j["errors"] == 0 and j["timeouts"] == 0 and st["latency_total"]["p99_us"] < 1000:
        best = r
print(best)
PY
)
AT80=$(( CAP > 0 ? CAP * 8 / 10 : ${CAP_RATES%% *} ))
echo "   capacity $CAP req/s; measuring at $AT80"
start_adserver 18091
DUR=$([ "$QUICK" = 1 ] && echo 6s || echo 15s) load at80 http://127.0.0.1:18091/openrtb2/auction "$AT80"
curl -s http://127.0.0.1:18091/stats > "$OUT/at80-$AT80.stats.json"
stop_adserver

echo "== 3. io_uring vs legacy driver (full pipeline at $AT80 req/s)"
for d in uring legacy; do
  start_adserver 18092 --driver "$d"
  load "driver-$d" http://127.0.0.1:18092/openrtb2/auction "$AT80"
  curl -s http://127.0.0.1:18092/stats > "$OUT/driver-$d.stats.json"
  stop_adserver
done

echo "== 4. OpenRTB JSON vs serde_json"
"$BIN/json-bench" --json > "$OUT/json.json"

if [ "${RUN_ALL:-0}" = 1 ]; then
  echo "== 5. re-running the component benchmarks"
  [ -x perf/gbdt/run.sh ] && bash perf/gbdt/run.sh || echo "perf/gbdt failed (see its output)"
  [ -x perf/rtb/run.sh ] && bash perf/rtb/run.sh || true
  [ -x perf/budget/run.sh ] && bash perf/budget/run.sh || true
fi

python3 perf/report.py "$OUT" "$SHARDS" "$CAP" "$AT80" "$NOBID_RATES" "$SERVER_CPUS" "$LOAD_CPUS" > perf/REPORT.md
cat perf/REPORT.md

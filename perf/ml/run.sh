#!/usr/bin/env bash
# Scoring-stage latency with the GBDT (tiers 1-3) vs the category prior for everyone, measured by
# the engine's own stage histograms under the demo load (rtb-load, open loop).
# Usage (repository root): bash perf/ml/run.sh [rate] [seconds]
# Needs release binaries: cargo build --release --bin adserver --bin rtb-load --bin adgen
set -euo pipefail
rate="${1:-2000}"
secs="${2:-15}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$root/target/release"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
"$bin/adgen" --out "$data" --seed 42 >/dev/null
port=18190
run() {
  local label="$1" enabled="$2"
  printf '[model]\nenabled = %s\n[profiles]\npath = "%s/users.csv"\n' "$enabled" "$data" > "$data/cfg.toml"
  rm -rf "$data/wal-$label"
  "$bin/adserver" --config "$data/cfg.toml" --listen "127.0.0.1:$port" --catalog "$data/catalog.json" \
    --wal-dir "$data/wal-$label" serve >/dev/null 2>&1 &
  local pid=$!
  sleep 2
  "$bin/rtb-load" --target "http://127.0.0.1:$port/openrtb2/auction" --rate "$rate" \
    --duration "${secs}s" --connections 32 --users "$data/users.csv" --seed 42 >/dev/null 2>&1
  curl -s "http://127.0.0.1:$port/stats" > "$data/stats-$label.json"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$label" "$data/stats-$label.json" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
t = json.load(open(path))["total"]
st = dict((n, p) for n, p in t["stages"])
s, tot = st["scoring"], st["total"]
print(f"{label:>8}: requests {t['requests']}, tiers {dict(t['tiers'])}")
print(f"{'':>8}  scoring stage p50 {s['p50_us']:.1f} us, p99 {s['p99_us']:.1f} us, p99.9 {s['p99_9_us']:.1f} us;"
      f" total p50 {tot['p50_us']:.1f} us, p99 {tot['p99_us']:.1f} us")
PY
}
run gbdt true
run prior false

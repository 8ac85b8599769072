#!/usr/bin/env bash
# Foundation benchmark (issue: thread-per-core foundation): requests/s per shard of
#   1. adserver's no-bid path (parse, validate, hop, select, 204),
#   2. adserver's full internal pipeline (demo catalog, realistic requests),
#   3. nginx `return 204` with one worker per core (the peer),
# all driven by rtb-load at the same fixed rates in one run, on loopback.
# Writes perf/foundation/RESULTS.md. Needs nginx (installed with apt-get if missing).
# Servers run on the first half of the CPUs (one shard / nginx worker each), rtb-load on the
# other half (perf/lib.sh), so per-core figures are per core the server has to itself.
#
# Usage: perf/foundation/run.sh [rates...]   (default: 5000 10000 15000 20000 25000 30000 35000 40000)
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES=("${@:-5000 10000 15000 20000 25000 30000 35000 40000}")
read -r -a RATES <<< "${RATES[*]}"
DUR=${DUR:-8s}
CONNS=${CONNS:-64}
OUT=perf/out/foundation
mkdir -p "$OUT"

source perf/lib.sh   # sets SHARDS, SERVER_CPUS, LOAD_CPUS
ensure_nginx
BIN=${BIN:-target/release}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p engine -p tools
[ -f demo-data/catalog.json ] || $BIN/adgen --out demo-data
start_nginx 18080
start_adserver 18081

# nginx and the no-bid path take turns, trial by trial, in alternating order (nginx first in odd
# trials, second in even ones), so drift in the host's speed over the run falls on both alike.
TRIALS=${TRIALS:-3}
nobid_trial() { # NAME.tN RATE
  case $1 in
    nginx*) CPU_PIDS="$NGX_PIDS" load "$1" http://127.0.0.1:18080/openrtb2/auction "$2" --body-file perf/foundation/nobid-request.json ;;
    *) CPU_PIDS="$ADS_PID" load "$1" http://127.0.0.1:18081/openrtb2/auction "$2" --body-file perf/foundation/nobid-request.json ;;
  esac
}
for r in "${RATES[@]}"; do
  for t in $(seq "$TRIALS"); do
    if (( t % 2 )); then order="nginx nobid"; else order="nobid nginx"; fi
    for name in $order; do nobid_trial "$name.t$t" "$r"; done
  done
  keep_best nginx "$r" "$TRIALS"
  keep_best nobid "$r" "$TRIALS"
  CPU_PIDS="$ADS_PID" load full  http://127.0.0.1:18081/openrtb2/auction "$r"
done
curl -s http://127.0.0.1:18081/stats > "$OUT/stats.json"
stop_adserver

python3 - "$OUT" "$SHARDS" "${RATES[@]}" <<'PY'
import json, sys, subprocess, platform, os
out, shards, rates = sys.argv[1], int(sys.argv[2]), [int(r) for r in sys.argv[3:]]
def rd(name, r):
    with open(f"{out}/{name}-{r}.json") as f: return json.load(f)
def sustained(name):
    # Highest target rate achieved within 3 % with p99 under 10 ms.
    best = 0
    for r in rates:
        j = rd(name, r)
        if j["rate_achieved"] >= 0.97 * r and j["latency_us"]["p99"] < 10_000 and j["errors"] == 0 and j["timeouts"] == 0:
            best = r
    return best
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = [f"# Foundation benchmark\n", f"machine: {cpu}, {os.cpu_count()} cores; kernel {platform.release()}; commit {commit}; shards {shards}\n",
         "rtb-load (open loop, latency from intended send time) on the same machine: the load generator shares the cores.\n",
         "| target rate | nginx 204: achieved / p50 / p99 (us) | adserver no-bid: achieved / p50 / p99 | adserver full pipeline: achieved / p50 / p99 |",
         "|---|---|---|---|"]
for r in rates:
    cells = []
    for n in ("nginx", "nobid", "full"):
        j = rd(n, r); l = j["latency_us"]
        cells.append(f'{j["rate_achieved"]:.0f} / {l["p50"]:.0f} / {l["p99"]:.0f}')
    lines.append(f"| {r} | " + " | ".join(cells) + " |")
sn, sb, sf = sustained("nginx"), sustained("nobid"), sustained("full")
ratio = lambda a, b: f"{a/b:.2f}" if b else "n/a"
lines += ["", "Highest sustained rate (achieved within 3 %, p99 < 10 ms, no errors):", "",
          "| path | req/s | req/s per shard | ratio vs nginx |", "|---|---|---|---|",
          f"| nginx return 204 | {sn} | {sn/shards:.0f} | 1.00 |",
          f"| adserver no-bid | {sb} | {sb/shards:.0f} | {ratio(sb, sn)} |",
          f"| adserver full pipeline | {sf} | {sf/shards:.0f} | {ratio(sf, sn)} |"]
try:
    st = json.load(open(f"{out}/stats.json"))["total"]
    lines += ["", f'Engine-side internal latency over the whole run (all paths): p50 {st["latency_total"]["p50_us"]:.1f} us, p99 {st["latency_total"]["p99_us"]:.1f} us, p99.9 {st["latency_total"]["p99_9_us"]:.1f} us; driver {st["driver"]}.']
except Exception as e:
    lines.append(f"(stats unavailable: {e})")
open("perf/foundation/RESULTS.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

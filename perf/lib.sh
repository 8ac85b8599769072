# Shared shell helpers for the perf scripts (source it; not a script of its own).
# Expects: BIN (release binaries), OUT (output directory). Starts servers on loopback only and
# stops every process it started when the calling script exits.

PIDS=()
NGX_DIR=""

# CPU split between the servers under test and the load generator, so "per core" means a core the
# server has to itself: the first half of the CPUs serve (one shard or nginx worker each), the
# second half load. On a 2-CPU machine: CPU 0 serves, CPU 1 loads. Override with SERVER_CPUS /
# LOAD_CPUS (taskset lists) and SHARDS.
NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then
  HALF=$(( NCPU / 2 ))
  SERVER_CPUS=${SERVER_CPUS:-0-$(( HALF - 1 ))}
  LOAD_CPUS=${LOAD_CPUS:-$HALF-$(( NCPU - 1 ))}
  SHARDS=${SHARDS:-$HALF}
else
  SERVER_CPUS=${SERVER_CPUS:-0}; LOAD_CPUS=${LOAD_CPUS:-0}; SHARDS=${SHARDS:-1}
fi
# nginx worker_cpu_affinity masks for the server CPUs (one worker per CPU).
ngx_affinity() {
  local masks="" c
  for c in $(seq "${SERVER_CPUS%-*}" "${SERVER_CPUS#*-}"); do
    masks+=" $(python3 -c "print(bin(1 << $c)[2:])")"
  done
  echo "$masks"
}
cleanup_perf() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$NGX_DIR" ]; then nginx -c "$NGX_DIR/nginx.conf" -s stop 2>/dev/null || true; fi
}
trap cleanup_perf EXIT

ensure_nginx() {
  command -v nginx >/dev/null && return
  local SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light ||
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx
}

# start_nginx PORT: `return 204` on every path, one worker per server CPU, keep-alive.
start_nginx() {
  local port=$1
  NGX_DIR=$(mktemp -d)
  cat > "$NGX_DIR/nginx.conf" <<NGX
worker_processes $SHARDS;
worker_cpu_affinity$(ngx_affinity);
pid $NGX_DIR/nginx.pid;
error_log $NGX_DIR/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$port reuseport; location / { return 204; } }
}
NGX
  nginx -c "$NGX_DIR/nginx.conf"
  local i
  for i in $(seq 50); do [ -s "$NGX_DIR/nginx.pid" ] && break; sleep 0.1; done
  sleep 0.2
  NGX_PIDS=$(pgrep -P "$(cat "$NGX_DIR/nginx.pid")" | tr '\n' ' ')
}

# start_adserver PORT [adserver args...]: sets ADS_PID, waits for /health. Each server gets a
# fresh budget WAL directory: a log written with another shard count would (rightly) be refused.
start_adserver() {
  local port=$1; shift
  local wal="$OUT/wal-$port"
  rm -rf "$wal"
  taskset -c "$SERVER_CPUS" "$BIN/adserver" --listen "127.0.0.1:$port" --shards "$SHARDS" \
    --catalog demo-data/catalog.json --wal-dir "$wal" "$@" serve \
    2>>"$OUT/adserver-$port.log" &
  ADS_PID=$!
  PIDS+=("$ADS_PID")
  # /ready: listening and every shard holds its first budget grants.
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "adserver on $port did not become healthy (see $OUT/adserver-$port.log)" >&2
  return 1
}

stop_adserver() {
  kill "$ADS_PID" 2>/dev/null || true
  wait "$ADS_PID" 2>/dev/null || true
}

# proc_ticks PID...: user + system CPU of the processes (all their threads), in clock ticks.
proc_ticks() {
  local total=0 p t
  for p in "$@"; do
    # Fields after the `(comm)`: utime and stime are the 12th and 13th.
    t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    total=$(( total + ${t:-0} ))
  done
  echo "$total"
}

# host_ticks: "total iowait steal" jiffies of the whole machine (/proc/stat).
host_ticks() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $6, $9; exit}' /proc/stat; }

# load NAME URL RATE [rtb-load args...]: writes $OUT/NAME-RATE.json and .txt. With CPU_PIDS set
# (the server's pids), adds to the JSON the servers' CPU time over the run (warm-up included) and
# per request sent, and the host's steal and iowait shares over the run. CPU per request is the
# per-core cost, which a host stall (steal) does not inflate the way it inflates tail latency.
load() {
  local name=$1 url=$2 rate=$3; shift 3
  local cpu0 host0 cpu1 host1
  cpu0=$(proc_ticks ${CPU_PIDS:-}); host0=$(host_ticks)
  taskset -c "$LOAD_CPUS" "$BIN/rtb-load" --threads "${LOAD_THREADS:-1}" --target "$url" --rate "$rate" --duration "${DUR:-8s}" --warmup "${WARMUP:-2s}" \
    --connections "${CONNS:-64}" --users demo-data/users.csv --json "$OUT/$name-$rate.json" "$@" \
    > "$OUT/$name-$rate.txt"
  cpu1=$(proc_ticks ${CPU_PIDS:-}); host1=$(host_ticks)
  python3 - "$OUT/$name-$rate.json" "$(getconf CLK_TCK)" "${CPU_PIDS:-}" "$cpu0" "$cpu1" "$host0" "$host1" <<'PY'
import json, sys
path, hz, pids, cpu0, cpu1 = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
h0, h1 = [list(map(int, a.split())) for a in sys.argv[6:8]]
j = json.load(open(path))
total = max(h1[0] - h0[0], 1)
j["host"] = {"iowait_pct": 100 * (h1[1] - h0[1]) / total, "steal_pct": 100 * (h1[2] - h0[2]) / total}
if pids.strip():
    sent = j["sent"] + j.get("warmup_sent", 0)
    cpu_s = (cpu1 - cpu0) / hz
    j["server_cpu"] = {"seconds": cpu_s, "requests": sent, "us_per_request": 1e6 * cpu_s / max(sent, 1)}
json.dump(j, open(path, "w"))
PY
}

# keep_best NAME RATE TRIALS: of the trials $OUT/NAME.tN-RATE.json, keeps as $OUT/NAME-RATE.json
# (and .txt) the best one for latency: a clean trial (achieved within 3 %, no errors) first, then
# the lowest p99. A shared VM stalls for hundreds of ms now and then, for the peer as much as for
# us; the best of a few trials measures the server rather than the stall. CPU per request is
# not taken from that trial: the kept JSON gets `server_cpu.trials_us_per_request` (every
# trial's) and `server_cpu.median_us_per_request`, the figure comparisons use (host noise moves
# one trial's CPU per request by +-20 % on this VM, in either direction).
keep_best() {
  local name=$1 rate=$2 trials=$3
  python3 - "$OUT" "$name" "$rate" "$trials" <<'PY'
import json, shutil, statistics, sys
out, name, rate, trials = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
runs = [json.load(open(f"{out}/{name}.t{t}-{rate}.json")) for t in range(1, trials + 1)]
def key(j):
    clean = j["rate_achieved"] >= 0.97 * rate and j["errors"] == 0 and j["timeouts"] == 0
    return (not clean, j["latency_us"]["p99"])
best = min(range(trials), key=lambda i: key(runs[i]))
kept = runs[best]
cpu = [j["server_cpu"]["us_per_request"] for j in runs if "server_cpu" in j]
if cpu:
    kept["server_cpu"]["trials_us_per_request"] = cpu
    kept["server_cpu"]["median_us_per_request"] = statistics.median(cpu)
json.dump(kept, open(f"{out}/{name}-{rate}.json", "w"))
shutil.copy(f"{out}/{name}.t{best + 1}-{rate}.txt", f"{out}/{name}-{rate}.txt")
PY
}

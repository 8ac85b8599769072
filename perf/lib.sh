# Shared shell helpers for the perf scripts (source it; not a script of its own).
# Expects: BIN (release binaries), OUT (output directory). Starts servers on loopback only and
# stops every process it started when the calling script exits.

PIDS=()
NGX_DIR=""
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

# start_nginx PORT WORKERS: `return 204` on every path, one worker per core, keep-alive.
start_nginx() {
  local port=$1 workers=$2
  NGX_DIR=$(mktemp -d)
  cat > "$NGX_DIR/nginx.conf" <<NGX
worker_processes $workers;
worker_cpu_affinity auto;
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
}

# start_adserver PORT [adserver args...]: sets ADS_PID, waits for /health.
start_adserver() {
  local port=$1; shift
  "$BIN/adserver" --listen "127.0.0.1:$port" --catalog demo-data/catalog.json "$@" serve \
    2>>"$OUT/adserver-$port.log" &
  ADS_PID=$!
  PIDS+=("$ADS_PID")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "adserver on $port did not become healthy (see $OUT/adserver-$port.log)" >&2
  return 1
}

stop_adserver() {
  kill "$ADS_PID" 2>/dev/null || true
  wait "$ADS_PID" 2>/dev/null || true
}

# load NAME URL RATE [rtb-load args...]: writes $OUT/NAME-RATE.json and .txt.
load() {
  local name=$1 url=$2 rate=$3; shift 3
  "$BIN/rtb-load" --target "$url" --rate "$rate" --duration "${DUR:-8s}" --warmup "${WARMUP:-2s}" \
    --connections "${CONNS:-64}" --users demo-data/users.csv --json "$OUT/$name-$rate.json" "$@" \
    > "$OUT/$name-$rate.txt"
}

#!/usr/bin/env bash
# Benchmark: serving cached files, modproxy vs nginx over the same GOPROXY
# tree on the same disk, loaded by wrk on loopback. Alternates the two
# servers (A B B A) so machine drift cancels, and prints one ratio per
# target with min / median / max and a verdict. See BENCHMARKS.md.
#
#   bench/serve.sh                 # ROUNDS=2 DURATION=8s CONNECTIONS=64
#   TARGETS="v1.2.0.zip v1.3.0.zip" bench/serve.sh   # only these rows
#   MODPROXY_BIN=/tmp/modproxy-a bench/serve.sh       # that build, not built here
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-8s}"
CONNECTIONS="${CONNECTIONS:-64}"

# Tools: nginx (the static-file baseline) and wrk (the load), from Debian.
. bench/debian.sh
need nginx nginx-light
need wrk wrk
# MODPROXY_BIN=path: that build instead (to compare two builds, run each
# against the same nginx baseline).
if [ -z "${MODPROXY_BIN:-}" ]; then
  cargo build --release -q -p modproxy
fi
BIN="${MODPROXY_BIN:-${CARGO_TARGET_DIR:-target}/release/modproxy}"

WORK="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# One GOPROXY tree: 2000 small modules (.info, .mod) and two zips.
TREE="$WORK/tree"
bench/tree.py "$TREE"

chmod -R a+rX "$WORK" # nginx workers run unprivileged

# nginx: static files, sendfile, keep-alive, one worker per core.
NGINX_PORT=18081
MODPROXY_PORT=18082
cat > "$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$NGINX_PORT; root $TREE; }
}
CONF
nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
pids+=($NGINX_PID)
# modproxy as deployed (default prefetch), in front of nginx as its
# upstream; every request here is a hit, nothing is fetched.
MODPROXY_LOG=warn "$BIN" serve --listen 127.0.0.1:$MODPROXY_PORT --data "$TREE" \
  --upstream http://127.0.0.1:$NGINX_PORT --sumdb off > /dev/null &
MODPROXY_PID=$!
pids+=($MODPROXY_PID)
sleep 1

# A wrk script spreading .info/.mod requests over all modules.
cat > "$WORK/small.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  local ext = (n % 2 == 0) and "info" or "mod"
  return wrk.format("GET", "/example.com/m" .. (n % 2000) .. "/@v/v1.0.0." .. ext)
end
LUA

# CPU time (clock ticks) used so far by a server: modproxy's process, or
# nginx's master and workers.
cpu_ticks() {
  local total=0 p stat
  for p in "$@" $(pgrep -P "$1" || true); do
    stat=$(cat "/proc/$p/stat")
    stat=${stat##*) }
    # utime and stime: fields 14 and 15 of the line, 12 and 13 after ")".
    set -- $stat
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# Peak resident memory (KiB) of a server's processes since the last
# reset_peak: VmHWM, summed over nginx's master and workers.
peak_kib() {
  local total=0 p
  for p in "$@" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/^VmHWM:/ {print $2}' "/proc/$p/status")))
  done
  echo "$total"
}
reset_peak() {
  local p
  for p in "$@" $(pgrep -P "$1" || true); do echo 5 > "/proc/$p/clear_refs"; done
}

# run PORT PATH|small [CONNECTIONS] -> prints "requests/s bytes/s p99_ms
# cpu_us_per_request cpu_ns_per_byte peak_rss_kib"
run() {
  local port=$1 what=$2 conns=${3:-$CONNECTIONS} out server before after
  if [ "$port" = "$NGINX_PORT" ]; then server=$NGINX_PID; else server=$MODPROXY_PID; fi
  reset_peak "$server"
  before=$(cpu_ticks "$server")
  if [ "$what" = small ]; then
    out=$(wrk -t2 -c"$conns" -d"$DURATION" --latency -s "$WORK/small.lua" "http://127.0.0.1:$port")
  else
    out=$(wrk -t2 -c"$conns" -d"$DURATION" --timeout 60s --latency "http://127.0.0.1:$port$what")
  fi
  after=$(cpu_ticks "$server")
  python3 - "$out" "$((after - before))" "$(getconf CLK_TCK)" "$(peak_kib "$server")" <<'PY'
import re, sys
t = sys.argv[1]
cpu_seconds = int(sys.argv[2]) / int(sys.argv[3])
peak = int(sys.argv[4])
if "Requests/sec" not in t:
    sys.exit(f"wrk failed:\n{t}")
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", t)
unit = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[m.group(2)]
bps = float(m.group(1)) * unit
p = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
p99 = float(p.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p.group(2)]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
if errors:
    sys.exit(f"wrk saw {errors.group(1)} error responses")
requests = int(re.search(r"(\d+) requests in", t).group(1))
m = re.search(r"requests in [\d.]+\w+, ([\d.]+)(\w+) read", t)
total = float(m.group(1)) * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m.group(2)]
# (500 clients of a 100 MiB file may finish none in a short run: the
# bytes still count.)
print(rps, bps, p99, cpu_seconds / max(requests, 1) * 1e6, cpu_seconds / total * 1e9, peak)
PY
}

Z=/example.com/big/@v
declare -A RESULTS
ALL="small v0.1.0.zip v0.2.0.zip v1.0.0.zip v1.1.0.zip v1.2.0.zip v1.3.0.zip v1.4.0.zip v50.0.0+incompatible.zip v1.5.0.zip^500"
for target in ${TARGETS:-$ALL}; do
  [ "$target" != small ] && target="$Z/$target"
  # PATH^N: with N connections.
  path=${target%^*} conns=$CONNECTIONS
  [ "$path" != "$target" ] && conns=${target#*^}
  # Each server goes first in every other round: a machine that slows
  # down or speeds up within a round favours neither.
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      RESULTS["$target,nginx,$r"]=$(run $NGINX_PORT "$path" "$conns")
      RESULTS["$target,modproxy,$r"]=$(run $MODPROXY_PORT "$path" "$conns")
    else
      RESULTS["$target,modproxy,$r"]=$(run $MODPROXY_PORT "$path" "$conns")
      RESULTS["$target,nginx,$r"]=$(run $NGINX_PORT "$path" "$conns")
    fi
  done
done

python3 - "$ROUNDS" "$(for k in "${!RESULTS[@]}"; do echo "$k=${RESULTS[$k]}"; done)" <<'PY'
import statistics, sys
rounds = int(sys.argv[1])
res = {}
for line in sys.argv[2].splitlines():
    key, val = line.split("=", 1)
    res[key] = [float(x) for x in val.split()]
def ratios(target, idx, invert=False):
    out = []
    for r in range(1, rounds + 1):
        a, b = res[f"{target},modproxy,{r}"][idx], res[f"{target},nginx,{r}"][idx]
        out.append(a / b)
    return min(out), statistics.median(out), max(out)
Z = "/example.com/big/@v/"
rows = [
    ("cached .info/.mod, 64 conns: requests/s vs nginx", "small", 0, ">=", 1.0),
    ("cached .info/.mod: p99 latency vs nginx", "small", 2, "<=", 1.2),
    ("cached 16 KiB zip: throughput vs nginx", Z + "v0.1.0.zip", 1, ">=", 1.0),
    ("cached 256 KiB zip: throughput vs nginx", Z + "v0.2.0.zip", 1, ">=", 1.0),
    ("cached 1 MiB zip: throughput vs nginx", Z + "v1.0.0.zip", 1, ">=", 1.0),
    ("cached 1.5 MiB zip: throughput vs nginx", Z + "v1.1.0.zip", 1, ">=", 1.0),
    ("cached 3 MiB zip: throughput vs nginx", Z + "v1.2.0.zip", 1, ">=", 1.0),
    ("cached 8 MiB zip: throughput vs nginx", Z + "v1.3.0.zip", 1, ">=", 1.0),
    ("cached 20 MiB zip: throughput vs nginx", Z + "v1.4.0.zip", 1, ">=", 1.0),
    ("cached 20 MiB zip: server CPU per byte vs nginx", Z + "v1.4.0.zip", 4, "<=", 1.5),
    ("cached 50 MiB zip: throughput vs nginx", Z + "v50.0.0+incompatible.zip", 1, ">=", 0.95),
    ("cached 100 MiB zip, 500 conns: throughput vs nginx", Z + "v1.5.0.zip^500", 1, ">=", 1.0),
]
ran = lambda target: f"{target},modproxy,1" in res
for name, target, idx, op, goal in rows:
    if not ran(target):
        continue
    lo, med, hi = ratios(target, idx)
    ok = med >= goal if op == ">=" else med <= goal
    print(f"{name}: min {lo:.2f} median {med:.2f} max {hi:.2f} (target {op} {goal}) {'MET' if ok else 'NOT MET'}")
# Server CPU time per small-file request: steadier than throughput on a
# shared machine (the load generator competes for the same cores).
if ran("small"):
  cpu = {side: statistics.median(res[f"small,{side},{r}"][3] for r in range(1, rounds + 1)) for side in ("nginx", "modproxy")}
  print(f"cached .info/.mod: server CPU per request: nginx {cpu['nginx']:.1f} us, modproxy {cpu['modproxy']:.1f} us (medians; ratio {cpu['modproxy'] / cpu['nginx']:.2f})")
# modproxy's peak resident memory while serving (the highest of its rounds).
for name, target, goal in (
    ("cached 20 MiB zip, 64 conns", Z + "v1.4.0.zip", 32),
    ("cached 100 MiB zip, 500 conns", Z + "v1.5.0.zip^500", 64),
):
    if not ran(target):
        continue
    peak = max(res[f"{target},modproxy,{r}"][5] for r in range(1, rounds + 1)) / 1024
    nginx = max(res[f"{target},nginx,{r}"][5] for r in range(1, rounds + 1)) / 1024
    print(f"{name}: modproxy peak RSS {peak:.1f} MiB (target <= {goal} MiB) {'MET' if peak <= goal else 'NOT MET'}; nginx (all processes) {nginx:.1f} MiB")
# Every round, to see the spread.
for target in dict.fromkeys(k.split(",")[0] for k in res):
    for r in range(1, rounds + 1):
        for side in ("nginx", "modproxy"):
            v = res[f"{target},{side},{r}"]
            print(f"  round {r} {side:8} {target}: {v[0]:.0f} req/s, {v[1]/2**20:.1f} MiB/s, p99 {v[2]:.2f} ms, {v[3]:.1f} us CPU/request, {v[4]:.2f} ns CPU/byte")
PY

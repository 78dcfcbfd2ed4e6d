#!/usr/bin/env bash
# Benchmark: a long run at 80% of modproxy's maximum hit rate. Measures the
# maximum (wrk, 64 connections, cached .info/.mod over the benchmarks'
# tree), then holds 80% of it for SOAK_DURATION seconds (default 600),
# sampling RSS and open file descriptors every 10 s. Prints whether RSS
# stays flat, descriptors do not grow and no request fails. BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SOAK_DURATION="${SOAK_DURATION:-600}"
CONNECTIONS=64

. bench/debian.sh
need wrk wrk
cargo build --release -q -p modproxy
BIN="${CARGO_TARGET_DIR:-target}/release/modproxy"

WORK="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

bench/tree.py "$WORK/tree"
PORT=18083
MODPROXY_LOG=warn "$BIN" serve --listen 127.0.0.1:$PORT --data "$WORK/tree" \
  --upstream off --sumdb off > "$WORK/modproxy.log" 2>&1 &
pid=$!
sleep 1

# Requests spread over all small files. Pacing: before each request a
# connection waits 1 ms with probability PAUSE_P, else not at all.
cat > "$WORK/paced.lua" <<'LUA'
local n = 0
local p = tonumber(os.getenv("PAUSE_P") or "0")
request = function()
  n = n + 1
  local ext = (n % 2 == 0) and "info" or "mod"
  return wrk.format("GET", "/example.com/m" .. (n % 2000) .. "/@v/v1.0.0." .. ext)
end
delay = function()
  if math.random() < p then return 1 end
  return 0
end
LUA
rate() {
  PAUSE_P=$1 wrk -t2 -c$CONNECTIONS -d"$2" -s "$WORK/paced.lua" "http://127.0.0.1:$PORT" |
    awk '/Requests\/sec/ {print $2}'
}

max=$(rate 0 5s)
# Bisect the pause probability that holds 80 % of the maximum.
lo=0 hi=1
for _ in 1 2 3 4 5 6; do
  mid=$(python3 -c "print(($lo + $hi) / 2)")
  r=$(rate "$mid" 3s)
  if python3 -c "import sys; sys.exit(0 if $r > 0.8 * $max else 1)"; then lo=$mid; else hi=$mid; fi
done
pause_p=$(python3 -c "print(($lo + $hi) / 2)")
echo "maximum: $max req/s; soak: ${SOAK_DURATION}s, $CONNECTIONS connections, pause probability $pause_p"

sample() {
  local rss fds
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  echo "$rss $fds"
}
PAUSE_P=$pause_p wrk -t2 -c$CONNECTIONS -d"${SOAK_DURATION}s" -s "$WORK/paced.lua" \
  "http://127.0.0.1:$PORT" > "$WORK/wrk.out" &
wrk_pid=$!
: > "$WORK/samples"
while kill -0 "$wrk_pid" 2>/dev/null; do
  sample >> "$WORK/samples"
  sleep 10
done
wait "$wrk_pid"
sample >> "$WORK/samples"

python3 - "$WORK/wrk.out" "$WORK/samples" "$max" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
samples = [tuple(map(int, l.split())) for l in open(sys.argv[2]) if l.strip()]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
socket = re.search(r"Socket errors: (.*)", out)
failed = (int(errors.group(1)) if errors else 0)
rss = [s[0] / 1024 for s in samples]
fds = [s[1] for s in samples]
# Flat: after the first minute (caches warm), RSS within 10 % of that level.
warm = rss[min(6, len(rss) - 1)]
flat = max(rss[6:] or rss) <= warm * 1.10
print(f"held {rate:.0f} req/s ({rate / float(sys.argv[3]):.2f} of the maximum) for the soak")
print(f"RSS MiB: start {rss[0]:.1f}, after 1 min {warm:.1f}, max {max(rss):.1f}, end {rss[-1]:.1f}: {'flat MET' if flat else 'growing NOT MET'}")
print(f"open descriptors: start {fds[0]}, max {max(fds)}, end {fds[-1]}: {'MET' if fds[-1] <= fds[0] + 2 else 'NOT MET'}")
print(f"failed responses: {failed}{'; socket errors: ' + socket.group(1) if socket else ''}: {'MET' if failed == 0 and not socket else 'NOT MET'}")
PY

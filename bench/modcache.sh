#!/usr/bin/env bash
# Benchmark: `modproxy doctor --no-network` on a generated module cache of
# BENCH_CACHE_MB (5000) MB in BENCH_MODULES (500) module versions, against
# the floor of the same work: sha256sum of every file, as many at once as
# there are cores (`xargs -P`). Prints the ratio. See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MB="${BENCH_CACHE_MB:-5000}"
MODULES="${BENCH_MODULES:-500}"
cargo build --release -p modproxy --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/modproxy"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
echo "== writing a ${MB} MB module cache (${MODULES} versions) under $DIR"
python3 bench/modcache.py "$DIR/mod" "$MB" "$MODULES"
du -sh "$DIR/mod"
# Both runs read what the page cache holds: drop nothing, run the floor
# first (it warms the cache for both), then each twice, alternated.
floor() { find "$DIR/mod" -type f -print0 | xargs -0 -P "$(nproc)" -n 64 sha256sum >/dev/null; }
doctor() { GOMODCACHE="$DIR/mod" GOSUMDB=off "$BIN" doctor --no-network --json >"$DIR/report.json" || true; }
floor
for round in 1 2; do
  a=$(date +%s.%N); floor; b=$(date +%s.%N); doctor; c=$(date +%s.%N)
  python3 - "$a" "$b" "$c" "$DIR/report.json" <<'PY'
import json, sys
a, b, c = map(float, sys.argv[1:4])
r = json.load(open(sys.argv[4]))["module_cache"]
print(f"sha256sum floor {b-a:.2f}s  doctor {c-b:.2f}s  ratio {(c-b)/(b-a):.2f}x  "
      f"({r['files']} files, {r['bytes']>>20} MiB, {r['checked']} checked, {len(r['problems'])} problems)")
PY
done

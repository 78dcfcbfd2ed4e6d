#!/usr/bin/env bash
# Benchmark: cold `go mod tidy` of a deep module graph behind a slow
# upstream (BENCH_LATENCY_MS, default 200), straight vs through modproxy
# with prefetch. Prints the ratio; see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo bench -p modproxy --bench prefetch

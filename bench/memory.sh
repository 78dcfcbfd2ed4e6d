#!/usr/bin/env bash
# Benchmark: modproxy's memory idle, after 10 000 cached files, and under
# 500 concurrent downloads of one uncached 100 MB zip (BENCH_CLIENTS,
# BENCH_ZIP_MB). See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo bench -p modproxy --bench memory

#!/usr/bin/env bash
# Benchmark: the cost of a cold miss through modproxy — time to first byte
# of a cold zip vs the upstream's own, and a cold `go mod download` of a
# 57-module graph vs straight from the Go reference proxy. See
# BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
. bench/debian.sh
need nginx nginx-light # the bare reverse proxy, a floor for any hop
cargo bench -p modproxy --bench cold

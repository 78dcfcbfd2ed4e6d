#!/usr/bin/env bash
# Every issue-8 benchmark in turn (serving vs nginx, cold misses vs the
# reference proxy, memory, the 10-minute soak), their full output as they
# run, then the verdict lines together: one line per target. About 20
# minutes, most of it the soak (SOAK_DURATION=60 shortens it). Each
# script also runs alone; see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
for script in serve cold memory soak; do
  echo "== bench/$script.sh"
  "bench/$script.sh" 2>&1 | tee -a "$LOG"
done

echo
echo "== verdicts"
grep -w MET "$LOG"

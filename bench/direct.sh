#!/usr/bin/env bash
# Benchmark: direct mode on a repository with a long history
# (BENCH_COMMITS 3000 commits, a tag every 10, BENCH_BLOBS 20 random
# blobs of 2 MB early in the history). The first .zip of a tagged version
# through a fresh modproxy (`--upstream direct`) against `GOPROXY=direct
# go mod download` of it with a fresh module cache, then a second version
# of the same repository on each (modproxy reuses its mirror, the go
# command its own VCS cache). The remote is the repository over file://
# (git's insteadOf). Alternated, BENCH_ROUNDS (3) rounds; prints ratios:
# modproxy's by the request's own time (curl's time_total), and in
# brackets by the wall time around the curl process.
# See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh >/dev/null
COMMITS="${BENCH_COMMITS:-3000}" BLOBS="${BENCH_BLOBS:-20}" ROUNDS="${BENCH_ROUNDS:-3}"
cargo build --release -p modproxy --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/modproxy"
T="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
python3 bench/bigrepo.py "$T/big.git" "$COMMITS" 10 "$BLOBS" 2
du -sh "$T/big.git"
TAGS=$(( COMMITS / 10 ))
FIRST="v1.$(( TAGS / 2 )).0" SECOND="v1.$(( TAGS / 2 + 1 )).0"
cat >"$T/gitconfig" <<EOF2
[url "file://$T/big.git"]
	insteadOf = https://github.com/bench/big
[protocol "file"]
	allow = always
EOF2
export GIT_CONFIG_GLOBAL="$T/gitconfig" GIT_CONFIG_NOSYSTEM=1 GOFLAGS=-modcacherw
now() { date +%s.%N; }
minus() { python3 -c "print($1 - $2)"; }
go_run() {  # $1: module cache; prints seconds for the first and second version
  local mc="$1" a b c
  a=$(now)
  GOMODCACHE="$mc" GOPATH="$T/gopath" GOCACHE="$T/gocache" GOPROXY=direct GOSUMDB=off \
    go mod download -json "github.com/bench/big@$FIRST" >/dev/null
  b=$(now)
  GOMODCACHE="$mc" GOPATH="$T/gopath" GOCACHE="$T/gocache" GOPROXY=direct GOSUMDB=off \
    go mod download -json "github.com/bench/big@$SECOND" >/dev/null
  c=$(now)
  echo "$(minus "$b" "$a") $(minus "$c" "$b")"
}
modproxy_run() {  # $1: data dir
  local data="$1" a b c url
  # --private: the remote is on this machine (file://), which a public
  # module path may not reach (the address policy).
  "$BIN" serve --listen 127.0.0.1:0 --data "$data" --upstream direct --sumdb off \
    --private github.com/bench \
    --prefetch off >"$T/serve.out" 2>"$T/serve.err" &
  PIDS+=($!)
  local pid=$!
  for _ in $(seq 100); do grep -q "export GOPROXY=" "$T/serve.out" && break; sleep 0.05; done
  url=$(sed -n 's/.*export GOPROXY=//p' "$T/serve.out")
  # The request's own time (curl's time_total), and the wall time around
  # the curl process (its start and date's, ~10 ms here, included).
  local t1 t2
  a=$(now)
  t1=$(curl -sf -o /dev/null -w '%{time_total}' "$url/github.com/bench/big/@v/$FIRST.zip")
  b=$(now)
  t2=$(curl -sf -o /dev/null -w '%{time_total}' "$url/github.com/bench/big/@v/$SECOND.zip")
  c=$(now)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$t1 $t2 $(minus "$b" "$a") $(minus "$c" "$b")"
}
for round in $(seq "$ROUNDS"); do
  read -r g1 g2 < <(go_run "$T/mc-$round")
  read -r m1 m2 w1 w2 < <(modproxy_run "$T/data-$round")
  python3 -c "
g1,g2,m1,m2,w1,w2=map(float,'$g1 $g2 $m1 $m2 $w1 $w2'.split())
print(f'round $round: first version go {g1*1000:.0f}ms modproxy {m1*1000:.0f}ms ratio {m1/g1:.2f}x (wall {w1/g1:.2f}x); second version go {g2*1000:.0f}ms modproxy {m2*1000:.0f}ms ratio {m2/g2:.2f}x (wall {w2/g2:.2f}x)')"
done

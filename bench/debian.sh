# Sourced by the benchmarks: `need COMMAND PACKAGE...` installs the Debian
# packages when COMMAND is missing (nginx, the baseline; wrk, the load).
need() {
  local command=$1
  shift
  if ! command -v "$command" >/dev/null; then
    echo "== installing $*"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  fi
}

#!/usr/bin/env bash
# Yardstick: run Redis's own Tcl test suite (the installed redis-server's version, from
# Debian's source package) in external-server mode against a fresh server per unit, for
# one or more targets, and print per unit ok/err/exception side by side.
#
#   tests/compat/redis-tcl.sh                       # targets "redis node", default units
#   TCL_TARGETS="redis node proxy" tests/compat/redis-tcl.sh unit/type/list unit/scripting
#
# Targets:
#   redis  a fresh redis-server per unit
#   node   a fresh `sluice node` per unit
#   proxy  a fresh redis-server behind a fresh `sluice proxy` (standalone pool,
#          read_from = "master", allow_commands = ["CONFIG", "DEBUG"], auth = "passthrough"
#          so that the suite's ACL users reach the node) per unit
#
# Environment knobs (all optional):
#   TCL_TARGETS     targets to run, in column order (default "redis node")
#   SLUICE_BIN      sluice binary (default target/release/sluice, built if missing)
#   TCL_CACHE       where the suite is unpacked (default target/redis-tcl)
#   TCL_UNIT_TIMEOUT  seconds one unit may run (default 300)
#   TCL_KEEP=1      keep the per-unit logs (printed path)
#   TCL_SKIP_FILE   a file of more test names to skip (one per line), e.g. to see what a
#                   failing test hides behind it in its unit
#
# More units can be listed on the command line (streams, GEO, bit fields, tracking...);
# the tag exclusions below apply to every unit.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGETS=(${TCL_TARGETS:-redis node})
CACHE="${TCL_CACHE:-$ROOT/target/redis-tcl}"
UNIT_TIMEOUT="${TCL_UNIT_TIMEOUT:-300}"
DEFAULT_UNITS=(
  unit/type/string unit/type/hash unit/type/list unit/type/set unit/type/zset unit/expire
  unit/multi unit/pubsub unit/type/incr unit/keyspace unit/scan unit/protocol
  unit/info-command unit/quit
  unit/scripting unit/functions unit/introspection unit/pause unit/slowlog
  unit/latency-monitor unit/hyperloglog unit/sort unit/other
)
UNITS=("$@")
[[ ${#UNITS[@]} -gt 0 ]] || UNITS=("${DEFAULT_UNITS[@]}")
EXCLUDED_TAGS=(needs:repl needs:debug needs:config-maxmemory needs:config-resetstat
  needs:reset needs:save needs:pfdebug)

# Tests skipped on the node target only, each because it drives a feature node mode does
# not have yet from the test body itself, where a missing command is an exception that ends
# the whole unit. redis-server and the proxy (in front of redis-server) run them. Reasons in
# the README.
NODE_SKIP_TESTS=(
  "EVAL - Scripts can't run XREAD and XREADGROUP with BLOCK option"   # streams
  "Script ACL check"                                                   # ACL
  "SLOWLOG - Rewritten commands are logged as their original command"  # GEOADD
  "Keyspace notifications: stream events test"                         # streams
)

log() { echo "redis-tcl: $*" >&2; }

# ------------------------------------------------------------------ the suite
VERSION="$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')"
SUITE="$CACHE/redis-$VERSION"
fetch_suite() {
  [[ -x "$SUITE/runtest" ]] && return 0
  command -v tclsh >/dev/null || { log "tclsh is needed (apt-get install tcl)"; exit 2; }
  mkdir -p "$CACHE"
  local src=/etc/apt/sources.list.d/sluice-redis-src.sources
  if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && [[ ! -f $src ]]; then
    # A deb-src twin of every configured Debian deb822 source (same suites, same keyring).
    for f in /etc/apt/sources.list.d/*.sources; do
      grep -q 'debian' "$f" || continue
      sed 's/^Types: deb$/Types: deb-src/' "$f"
      echo
    done >"$src"
    apt-get update -qq >/dev/null
  fi
  local pkgver
  pkgver="$(dpkg-query -W -f='${Version}' redis-server 2>/dev/null || true)"
  (cd "$CACHE" && apt-get source --download-only "redis${pkgver:+=$pkgver}" >/dev/null 2>&1) \
    || (cd "$CACHE" && apt-get source --download-only redis >/dev/null)
  tar -xzf "$CACHE"/redis_"$VERSION".orig.tar.gz -C "$CACHE"
  [[ -x "$SUITE/runtest" ]] || { log "no runtest in $SUITE"; exit 2; }
}

# ------------------------------------------------------------------ servers
if [[ -z "${SLUICE_BIN:-}" ]]; then
  SLUICE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/sluice"
  [[ -x "$SLUICE_BIN" ]] || (cd "$ROOT" && cargo build --release --quiet)
fi
WORK="$(mktemp -d)"
# The servers of the unit being run (run_unit stops them).
PIDS=()
cleanup() {
  if [[ "${TCL_KEEP:-}" == 1 ]]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

wait_ping() { # port pid
  local i
  for i in $(seq 100); do
    kill -0 "$2" 2>/dev/null || return 1
    [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]] && return 0
    sleep 0.05
  done
  return 1
}

free_port() { echo $((20000 + RANDOM % 12000)); }

# Starts the target's server for one unit; sets PORT. A try that fails stops what it
# started before the next one; when every try failed nothing of this unit is left running.
start_target() { # target dir
  local t=$1 dir=$2 try pid rport line
  mkdir -p "$dir"
  for try in $(seq 10); do
    case $t in
      redis)
        PORT=$(free_port)
        redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no \
          --dir "$dir" --logfile "$dir/server.log" --enable-debug-command yes &
        pid=$!
        ;;
      node)
        PORT=$(free_port)
        "$SLUICE_BIN" node --port "$PORT" --dir "$dir" >"$dir/server.log" 2>&1 &
        pid=$!
        ;;
      proxy)
        rport=$(free_port)
        redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
          --dir "$dir" --logfile "$dir/redis.log" --enable-debug-command yes &
        PIDS+=($!)
        wait_ping "$rport" $! || { stop_all; continue; }
        PORT=$(free_port)
        cat >"$dir/sluice.toml" <<EOF
[[pools]]
name = "tcl"
listen = "127.0.0.1:$PORT"
mode = "standalone"
master = "127.0.0.1:$rport"
read_from = "master"
allow_commands = ["CONFIG", "DEBUG"]
auth = "passthrough"
EOF
        "$SLUICE_BIN" proxy -c "$dir/sluice.toml" >"$dir/server.log" 2>&1 &
        pid=$!
        ;;
    esac
    PIDS+=("$pid")
    if wait_ping "$PORT" "$pid"; then return 0; fi
    stop_all
  done
  log "could not start target $t"
  return 1
}

# Stops the current unit's servers (PIDS holds only theirs).
stop_all() {
  local p i
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    # A server busy in a script (a unit stopped before its SCRIPT KILL) ignores SIGTERM
    # until the script ends, which may be never: give it 5 s.
    for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}

# Runs one unit against one target; prints "ok err exception". In a subshell of its own
# (its caller reads its output through one anyway), which stops the unit's servers however
# it ends: a target that failed to start, the unit's end, or an interrupt (servers started
# in the background of a script ignore SIGINT, so ^C alone would leave them running).
run_unit() ( # target unit
  trap stop_all EXIT
  trap 'exit 130' INT TERM HUP
  local t=$1 unit=$2 dir="$WORK/$1/${2//\//_}" tags=() tag
  for tag in "${EXCLUDED_TAGS[@]}"; do tags+=(--tags "-$tag"); done
  if [[ $t == node ]]; then
    for tag in "${NODE_SKIP_TESTS[@]}"; do tags+=(--skiptest "$tag"); done
  fi
  if [[ -n "${TCL_SKIP_FILE:-}" ]]; then
    while IFS= read -r tag; do [[ -n $tag ]] && tags+=(--skiptest "$tag"); done <"$TCL_SKIP_FILE"
  fi
  if ! start_target "$t" "$dir"; then echo "- - start-failed"; return; fi
  # The harness's own listener takes a port below --baseport; a random base lets several
  # runs of this script (one per group of units) share the machine.
  (cd "$SUITE" && timeout "$UNIT_TIMEOUT" ./runtest --host 127.0.0.1 --port "$PORT" \
    --baseport $((12000 + RANDOM % 8000)) --single "$unit" --singledb --ignore-encoding --ignore-digest "${tags[@]}" \
    --clients 1 --timeout 60 >"$dir/runtest.log" 2>&1) || true
  stop_all
  local ok err exc
  # The harness colours its tags even into a file.
  sed 's/\x1b\[[0-9;]*m//g' "$dir/runtest.log" >"$dir/plain.log"
  ok=$(grep -c '^\[ok\]' "$dir/plain.log" || true)
  err=$(grep -c '^\[err\]' "$dir/plain.log" || true)
  exc=$(grep -c '^\[exception\]\|^\[TIMEOUT\]' "$dir/plain.log" || true)
  if [[ $exc == 0 ]] && ! grep -q 'All tests passed\|tests failed' "$dir/plain.log"; then
    exc=1 # killed by the unit timeout, or the harness died
  fi
  echo "$ok $err $exc"
)

fetch_suite
printf '%-26s' unit
for t in "${TARGETS[@]}"; do printf ' %-18s' "$t ok/err/exc"; done
echo
declare -A TOTAL_OK TOTAL_ERR TOTAL_EXC
for t in "${TARGETS[@]}"; do TOTAL_OK[$t]=0; TOTAL_ERR[$t]=0; TOTAL_EXC[$t]=0; done
for unit in "${UNITS[@]}"; do
  printf '%-26s' "$unit"
  for t in "${TARGETS[@]}"; do
    read -r ok err exc < <(run_unit "$t" "$unit")
    printf ' %-18s' "$ok/$err/$exc"
    TOTAL_OK[$t]=$((TOTAL_OK[$t] + ${ok//-/0}))
    TOTAL_ERR[$t]=$((TOTAL_ERR[$t] + ${err//-/0}))
    [[ $exc =~ ^[0-9]+$ ]] && TOTAL_EXC[$t]=$((TOTAL_EXC[$t] + exc))
  done
  echo
done
printf '%-26s' total
for t in "${TARGETS[@]}"; do
  printf ' %-18s' "${TOTAL_OK[$t]}/${TOTAL_ERR[$t]}/${TOTAL_EXC[$t]}"
done
echo

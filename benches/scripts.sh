#!/usr/bin/env bash
# Scripting speed, redis-server against `sluice node`, side by side in one run: EVALSHA of a
# script that SETs 100 keys (-c 10), and `EVAL "return 1" 0` (-c 1), each a
# `redis-benchmark -n N --csv` run; targets are interleaved within each round so a slow moment
# of the machine hits both alike, and the table shows the median of REPEAT rounds and the
# node's time relative to redis-server's (redis calls/s / node calls/s).
#
#   bash benches/scripts.sh                     # REPEAT=3, N=20000 (EVALSHA), 50000 (EVAL)
#   REPEAT=5 SLUICE_BIN=target/release/sluice bash benches/scripts.sh
#
# Environment: REPEAT, N_EVALSHA, N_EVAL, SLUICE_BIN (default target/release/sluice, built
# with `cargo build --release` if missing), BASE_BIN (another sluice binary, e.g. before a
# change: adds a "base" column, run in the same rounds), CARGO_TARGET_DIR (honoured as by
# cargo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REPEAT=${REPEAT:-3}
N_EVALSHA=${N_EVALSHA:-20000}
N_EVAL=${N_EVAL:-50000}
if [[ -z "${SLUICE_BIN:-}" ]]; then
  SLUICE_BIN="${CARGO_TARGET_DIR:-target}/release/sluice"
  [[ -x "$SLUICE_BIN" ]] || cargo build --release --quiet
fi

DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

port() { echo $((20000 + RANDOM % 12000)); }
wait_ping() {
  for _ in $(seq 100); do
    [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]] && return 0
    sleep 0.05
  done
  echo "scripts.sh: no PONG on port $1" >&2
  exit 1
}

RPORT=$(port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
  --logfile "$DIR/redis.log" &
PIDS+=($!)
NPORT=$(port)
"$SLUICE_BIN" node --port "$NPORT" --dir "$DIR" >"$DIR/node.log" 2>&1 &
PIDS+=($!)
wait_ping "$RPORT"
wait_ping "$NPORT"
TARGETS=(redis node)
declare -A PORT=([redis]=$RPORT [node]=$NPORT)
if [[ -n "${BASE_BIN:-}" ]]; then
  BPORT=$(port)
  mkdir -p "$DIR/base"
  "$BASE_BIN" node --port "$BPORT" --dir "$DIR/base" >"$DIR/base.log" 2>&1 &
  PIDS+=($!)
  wait_ping "$BPORT"
  TARGETS+=(base)
  PORT[base]=$BPORT
fi

SCRIPT="for i=1,#KEYS do redis.call('set', KEYS[i], ARGV[1]) end return #KEYS"
KEYS=()
for i in $(seq 100); do KEYS+=("key:$i"); done

# calls/s of one redis-benchmark run: port n clients args...
rate() {
  local p=$1 n=$2 c=$3
  shift 3
  redis-benchmark -p "$p" -n "$n" -c "$c" --csv "$@" 2>/dev/null |
    awk -F'","' 'NR == 2 { print $2 + 0 }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A RESULTS
for round in $(seq "$REPEAT"); do
  for target in "${TARGETS[@]}"; do
    p=${PORT[$target]}
    sha=$(redis-cli -p "$p" script load "$SCRIPT")
    RESULTS[$target.evalsha]+="$(rate "$p" "$N_EVALSHA" 10 EVALSHA "$sha" 100 "${KEYS[@]}" v) "
    RESULTS[$target.eval]+="$(rate "$p" "$N_EVAL" 1 EVAL "return 1" 0) "
  done
  echo "scripts.sh: round $round done" >&2
done

printf '%-34s %12s %12s %10s' test "redis /s" "node /s" "node time"
[[ -n "${BASE_BIN:-}" ]] && printf ' %12s %10s' "base /s" "base time"
echo
for t in evalsha eval; do
  r=$(tr ' ' '\n' <<<"${RESULTS[redis.$t]}" | grep . | median)
  n=$(tr ' ' '\n' <<<"${RESULTS[node.$t]}" | grep . | median)
  name="EVALSHA 100 SETs (-c 10)"
  [[ $t == eval ]] && name='EVAL "return 1" 0 (-c 1)'
  printf '%-34s %12.0f %12.0f %9.2fx' "$name" "$r" "$n" "$(echo "$r / $n" | bc -l)"
  if [[ -n "${BASE_BIN:-}" ]]; then
    b=$(tr ' ' '\n' <<<"${RESULTS[base.$t]}" | grep . | median)
    printf ' %12.0f %9.2fx' "$b" "$(echo "$r / $b" | bc -l)"
  fi
  echo
done

#!/usr/bin/env bash
# Scripting speed, redis-server against `sluice node`, side by side in one run: EVALSHA of a
# script that SETs 100 keys (-c 10), and `EVAL "return 1" 0` (-c 1), each a
# `redis-benchmark -n N --csv` run.
#
#   bash benches/scripts.sh                     # REPEAT=3, N=20000 (EVALSHA), 50000 (EVAL)
#   REPEAT=5 SLUICE_BIN=target/release/sluice bash benches/scripts.sh
#   MODE=instructions N_EVALSHA=1000 N_EVAL=2000 bash benches/scripts.sh   # callgrind
#
# MODE=rate (default): targets are interleaved within each round so a slow moment of the
# machine hits both alike; the table shows the median of REPEAT rounds of calls/s, the node's
# time relative to redis-server's (redis calls/s / node calls/s), and the CPU µs per call of
# each server process (all threads, from /proc/PID/task/*/schedstat before and after the run).
# MODE=instructions: the servers run under `valgrind --tool=callgrind`, counters zeroed right
# before each run and dumped right after it (start-up not counted), one round; the table shows
# user-space instructions (Ir) per call. The dumps stay in OUT for
# `callgrind_annotate --inclusive=yes OUT/node.evalsha.cg`.
#
# Environment: MODE (rate|instructions), REPEAT, N_EVALSHA, N_EVAL, OUT (instructions: default
# target/scripts), SLUICE_BIN (default target/release/sluice, built with `cargo build
# --release` if missing), BASE_BIN (another sluice binary, e.g. before a change: adds a "base"
# column, run in the same rounds), CARGO_TARGET_DIR (honoured as by cargo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODE=${MODE:-rate}
REPEAT=${REPEAT:-3}
N_EVALSHA=${N_EVALSHA:-20000}
N_EVAL=${N_EVAL:-50000}
if [[ -z "${SLUICE_BIN:-}" ]]; then
  SLUICE_BIN="${CARGO_TARGET_DIR:-target}/release/sluice"
  [[ -x "$SLUICE_BIN" ]] || cargo build --release --quiet
fi

BENCH_NAME=scripts
case "$MODE" in
  rate) ;;
  instructions)
    command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
      { echo "scripts: valgrind (callgrind) not found" >&2; exit 1; }
    OUT=${OUT:-${CARGO_TARGET_DIR:-target}/scripts}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    START_TIMEOUT=${START_TIMEOUT:-180}
    TARGET_WRAP="valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.%p"
    REPEAT=1
    ;;
  *) echo "scripts: MODE is rate or instructions" >&2; exit 1 ;;
esac
# shellcheck source=benches/bench_lib.sh
source benches/bench_lib.sh

declare -A PORT PID
read -r PORT[redis] PID[redis] < <(WRAP_THIS=1 start_redis redis) || die "redis-server did not start"
PIDS+=("${PID[redis]}")
mkdir -p "$WORKDIR/node"
read -r PORT[node] PID[node] < <(start_sluice node node node --port 0 --dir "$WORKDIR/node") ||
  die "sluice node did not start"
PIDS+=("${PID[node]}")
TARGETS=(redis node)
if [[ -n "${BASE_BIN:-}" ]]; then
  mkdir -p "$WORKDIR/base"
  read -r PORT[base] PID[base] < <(SLUICE_BIN=$BASE_BIN start_sluice base node node --port 0 --dir "$WORKDIR/base") ||
    die "base sluice node did not start"
  PIDS+=("${PID[base]}")
  TARGETS+=(base)
fi

SCRIPT="for i=1,#KEYS do redis.call('set', KEYS[i], ARGV[1]) end return #KEYS"
KEYS=()
for i in $(seq 100); do KEYS+=("key:$i"); done

# One redis-benchmark run: target test n clients args...; appends "target test rate cost" to
# the results, cost being CPU µs (rate) or instructions (instructions) per call.
measure() {
  local target=$1 test=$2 n=$3 c=$4 pid=${PID[$1]} before after rate dump
  shift 4
  if [[ $MODE == instructions ]]; then
    callgrind_control -z "$pid" >/dev/null
  else
    before=$(cpu_ns "$pid")
  fi
  rate=$(redis-benchmark -p "${PORT[$target]}" -n "$n" -c "$c" --csv "$@" 2>/dev/null </dev/null |
    awk -F'","' 'NR == 2 { print $2 + 0 }')
  if [[ $MODE == instructions ]]; then
    callgrind_control -d "$test" "$pid" >/dev/null
    # The newest dump of this process is the one just written.
    dump=$(ls -t "$OUT/cg.$pid".* | head -n 1)
    mv "$dump" "$OUT/$target.$test.cg"
    cost=$(awk -v n="$n" '/^(summary|totals):/ { ir = $2 } END { printf "%.0f", ir / n }' "$OUT/$target.$test.cg")
  else
    after=$(cpu_ns "$pid")
    cost=$(awk -v a="$before" -v b="$after" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / n / 1000 }')
  fi
  echo "$target $test $rate $cost" >>"$WORKDIR/results"
}

for round in $(seq "$REPEAT"); do
  for target in "${TARGETS[@]}"; do
    sha=$(redis-cli -p "${PORT[$target]}" script load "$SCRIPT")
    measure "$target" evalsha "$N_EVALSHA" 10 EVALSHA "$sha" 100 "${KEYS[@]}" v
    measure "$target" eval "$N_EVAL" 1 EVAL "return 1" 0
  done
  say "round $round/$REPEAT done"
done

# col TARGET TEST COLUMN: the median of COLUMN (3 calls/s, 4 cost) over the rounds.
col() { awk -v a="$1" -v t="$2" -v c="$3" '$1 == a && $2 == t { print $c }' "$WORKDIR/results" | median; }

echo
echo "$(nproc 2>/dev/null || echo '?') CPUs, redis $(redis-server --version | sed "s/.*v=\([^ ]*\).*/\1/"), sluice $("$SLUICE_BIN" --version | awk '{ print $2 }'), median of $REPEAT interleaved rounds"
if [[ $MODE == instructions ]]; then
  echo "cell: instructions per call (callgrind Ir, user space) and the ratio to redis-server's; dumps in $OUT"
else
  echo "cell: calls/s / CPU µs per call of the server process, and the node's time relative to redis-server's"
fi
header="| test | redis |"
rule="|---|---|"
for target in "${TARGETS[@]:1}"; do header+=" $target |"; rule+="---|"; done
echo
echo "$header"
echo "$rule"
for t in evalsha eval; do
  name="EVALSHA 100 SETs (-c 10, -n $N_EVALSHA)"
  [[ $t == eval ]] && name="EVAL \"return 1\" 0 (-c 1, -n $N_EVAL)"
  if [[ $MODE == instructions ]]; then
    r=$(col redis "$t" 4)
    row="| $name | $r |"
    for target in "${TARGETS[@]:1}"; do
      v=$(col "$target" "$t" 4)
      row+=" $v ($(ratio "$v" "$r")×) |"
    done
  else
    r=$(col redis "$t" 3)
    row="| $name | $(printf '%.0f / %s' "$r" "$(col redis "$t" 4)") |"
    for target in "${TARGETS[@]:1}"; do
      v=$(col "$target" "$t" 3)
      row+=" $(printf '%.0f / %s (%s×)' "$v" "$(col "$target" "$t" 4)" "$(ratio "$r" "$v")") |"
    done
  fi
  echo "$row"
done

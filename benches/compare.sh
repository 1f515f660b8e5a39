#!/usr/bin/env bash
# End-to-end speed, side by side on one machine in one run: redis-benchmark against a Redis
# master directly, through sluice (reads on the replicas), through predixy (reads on the
# replicas, when a predixy binary is given), through twemproxy (master only, when nutcracker is
# installed) and against `sluice node` (sluice's own data server in place of redis-server).
#
#   bash benches/compare.sh                       # REQUESTS=200000 CLIENTS=50 REPEAT=5
#   REPEAT=3 PIPELINES="1" bash benches/compare.sh
#   PREDIXY_BIN=/path/to/predixy bash benches/compare.sh
#   WITH_PROXIES=0 bash benches/compare.sh         # the node against redis-server alone
#
# Topology: one redis-server master and two replicas (all on loopback). sluice and predixy send
# SET to the master and GET to the replicas; twemproxy cannot split reads and uses the master.
#
# Each cell is one `redis-benchmark -t TEST -n REQUESTS -c CLIENTS -r 100000 -P P --csv` run;
# targets are interleaved within each round so a slow moment of the machine hits all of them
# alike, and the table shows the median of REPEAT rounds:
#   - requests/s and its ratio to direct Redis,
#   - p99 latency in ms as redis-benchmark reports it,
#   - CPU µs per request of the target process itself (for direct Redis: the master's), from
#     the sum of /proc/PID/task/*/schedstat (on-CPU nanoseconds of every thread) before and
#     after the run, divided by REQUESTS. The backends' CPU is not counted for proxies.
#
# Environment: REQUESTS, CLIENTS, REPEAT, PIPELINES (default "1 16"), TESTS (default "SET GET"),
# KEYSPACE (-r, default 100000), WITH_NODE (0 drops the node column), NODE_BASE_BIN (a
# second node column, node_base, from that binary), WITH_PROXIES (0: only redis-server,
# without replicas, and `sluice node`), SLUICE_BIN (a prebuilt
# binary; otherwise `cargo build --release` is run), SLUICE_ARGS (extra `sluice proxy`
# arguments), PREDIXY_BIN (predixy is not packaged: build it from its public source and name
# the binary here; the column is skipped when unset), CARGO_TARGET_DIR (honoured as by cargo).
# The targets are started by benches/targets.sh (shared with benches/syscalls.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
REPEAT=${REPEAT:-5}
PIPELINES=${PIPELINES:-"1 16"}
KEYSPACE=${KEYSPACE:-100000}
read -r -a TESTS <<<"${TESTS:-SET GET}"

BENCH_NAME=compare
# shellcheck source=benches/targets.sh
source benches/targets.sh

# --- runs ---------------------------------------------------------------------------------
# Results: one line per run, "target pipeline TEST rps p99_ms cpu_us_per_request".
runs=$((REPEAT * $(wc -w <<<"$PIPELINES") * ${#TARGETS[@]} * ${#TESTS[@]}))
say "$runs redis-benchmark runs: -n $REQUESTS -c $CLIENTS -r $KEYSPACE, pipelines: $PIPELINES, tests: ${TESTS[*]}, repeat $REPEAT"
for rep in $(seq 1 "$REPEAT"); do
    for p in $PIPELINES; do
        for t in "${TESTS[@]}"; do
            for target in "${TARGETS[@]}"; do
                before=$(cpu_ns "${PID[$target]}")
                out=$(redis-benchmark -p "${PORT[$target]}" -t "$t" -n "$REQUESTS" -c "$CLIENTS" \
                    -r "$KEYSPACE" -P "$p" --csv 2>>"$WORKDIR/benchmark.err" </dev/null)
                after=$(cpu_ns "${PID[$target]}")
                # CSV: "test","rps","avg","min","p50","p95","p99","max"
                row=$(awk -F'"' -v t="$t" 'toupper($2) == t { print $4, $14 }' <<<"$out")
                [ -n "$row" ] || die "no $t result from $target (-P $p): $out $(tail -n 3 "$WORKDIR/benchmark.err")"
                read -r rps p99 <<<"$row"
                cpu=$(awk -v a="$before" -v b="$after" -v n="$REQUESTS" 'BEGIN { printf "%.3f", (b - a) / n / 1000 }')
                echo "$target $p $t $rps $p99 $cpu" >>"$WORKDIR/results"
                say "round $rep/$REPEAT -P $p $t $target: $rps req/s, p99 $p99 ms, $cpu µs CPU/req"
            done
        done
    done
done

# --- table --------------------------------------------------------------------------------

echo
echo "redis-benchmark -n $REQUESTS -c $CLIENTS -r $KEYSPACE --csv; median of $REPEAT interleaved rounds${SLUICE_ARGS:+; sluice $SLUICE_ARGS}"
topology="sluice and predixy read from 2 replicas, twemproxy from the master"
[ "$WITH_PROXIES" = 1 ] || topology="redis-server without replicas"
echo "$(nproc 2>/dev/null || echo '?') CPUs, redis $(redis-server --version | sed "s/.*v=\([^ ]*\).*/\1/"), sluice $("$SLUICE_BIN" --version | awk '{ print $2 }'); $topology"
echo "cell: requests/s (ratio to direct) / p99 ms / CPU µs per request of that process"
echo
header="| test | -P | redis |"
rule="|---|---|---|"
for target in "${TARGETS[@]:1}"; do header+=" $target |"; rule+="---|"; done
echo "$header"
echo "$rule"
for p in $PIPELINES; do
    for t in "${TESTS[@]}"; do
        base=$(med redis "$p" "$t" 4)
        row="| $t | $p | $(printf '%.0f / %s / %s' "$base" "$(med redis "$p" "$t" 5)" "$(med redis "$p" "$t" 6)") |"
        for target in "${TARGETS[@]:1}"; do
            v=$(med "$target" "$p" "$t" 4)
            ratio=$(ratio "$v" "$base")
            row+=" $(printf '%.0f (%s×) / %s / %s' "$v" "$ratio" "$(med "$target" "$p" "$t" 5)" "$(med "$target" "$p" "$t" 6)") |"
        done
        echo "$row"
    done
done

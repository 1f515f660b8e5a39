#!/usr/bin/env bash
# Failover time of `sluice stack sentinel`: from `redis-cli shutdown nosave` of the master node
# to the sentinels naming a new master, and to the first write through the proxy succeeding
# again. Usage: benches/stack_failover.sh [BASE_PORT] [RUNS]   (SLUICE=path to the binary,
# default target/debug/sluice; needs redis-cli and bc).
set -euo pipefail
base=${1:-27200}
runs=${2:-3}
sluice=${SLUICE:-target/debug/sluice}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for run in $(seq 1 "$runs"); do
    b=$((base + run * 30))
    "$sluice" stack sentinel --base-port "$b" >"$out" 2>/dev/null &
    pid=$!
    until grep -q "stack ready" "$out"; do sleep 0.1; done
    until redis-cli -p "$b" set hello world >/dev/null 2>&1; do sleep 0.1; done
    # Wait until every sentinel knows the others (a failover needs two of them to agree).
    for s in 20 21 22; do
        until [ "$(redis-cli -p $((b + s)) sentinel sentinels stack | grep -c '^name$')" = 2 ]; do sleep 0.2; done
    done
    t0=$(date +%s.%N)
    redis-cli -p $((b + 10)) shutdown nosave >/dev/null 2>&1 || true
    until [ "$(redis-cli -p $((b + 20)) sentinel get-master-addr-by-name stack | tail -1)" != "$((b + 10))" ]; do sleep 0.05; done
    t1=$(date +%s.%N)
    until [ "$(redis-cli -p "$b" set hello again 2>/dev/null)" = OK ]; do sleep 0.05; done
    t2=$(date +%s.%N)
    printf 'run %d: new master named after %.2f s, proxy write OK after %.2f s\n' \
        "$run" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t0" | bc)"
    kill "$pid"
    wait "$pid" || true
done

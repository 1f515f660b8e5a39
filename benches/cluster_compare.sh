#!/usr/bin/env bash
# Cluster throughput: `redis-benchmark --cluster` straight at a 3-master Redis Cluster versus
# plain `redis-benchmark` through a sluice cluster pool in front of the same cluster, in the
# same run, interleaved REPEAT times; prints the median requests/s and the ratio.
#
#   bash benches/cluster_compare.sh          # REQUESTS=200000 CLIENTS=50 PIPELINE=1 REPEAT=3
#
# Environment: REQUESTS, CLIENTS, PIPELINE, REPEAT, SLUICE_BIN (otherwise a release build is
# made), BASE_PORT (default 17100: masters and replicas take BASE_PORT..BASE_PORT+5, their
# cluster buses BASE_PORT-10000.., sluice BASE_PORT+10).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-1}
REPEAT=${REPEAT:-3}
BASE_PORT=${BASE_PORT:-17100}
PROXY_PORT=$((BASE_PORT + 10))

if [ -z "${SLUICE_BIN:-}" ]; then
    cargo build --release --quiet
    SLUICE_BIN="${CARGO_TARGET_DIR:-target}/release/sluice"
fi

DIR=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT

ADDRS=()
for i in 0 1 2 3 4 5; do
    port=$((BASE_PORT + i))
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --dir "$DIR" --dbfilename "dump-$port.rdb" --cluster-enabled yes \
        --cluster-config-file "$DIR/nodes-$port.conf" --cluster-port $((port - 10000)) \
        --cluster-node-timeout 2000 --repl-diskless-sync-delay 0 --logfile "" >/dev/null &
    PIDS+=($!); disown
    ADDRS+=("127.0.0.1:$port")
done
for i in 0 1 2 3 4 5; do
    until redis-cli -p $((BASE_PORT + i)) ping >/dev/null 2>&1; do sleep 0.05; done
done
redis-cli --cluster create "${ADDRS[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
until [ "$(redis-cli -p "$BASE_PORT" cluster info | grep -c 'cluster_state:ok')" = 1 ]; do sleep 0.1; done

cat >"$DIR/sluice.toml" <<TOML
[[pools]]
name = "bench"
listen = "127.0.0.1:$PROXY_PORT"
mode = "cluster"
seeds = ["${ADDRS[0]}", "${ADDRS[1]}", "${ADDRS[2]}"]
read_from = "master"
TOML
SLUICE_LOG=error "$SLUICE_BIN" proxy --config "$DIR/sluice.toml" >/dev/null &
PIDS+=($!); disown
until redis-cli -p "$PROXY_PORT" set __bench_ready 1 2>/dev/null | grep -q OK; do sleep 0.1; done
sleep 5 # replicas finish their first sync

rps() { # redis-benchmark args... -> "SET GET" requests/s
    redis-benchmark "$@" -t set,get -n "$REQUESTS" -c "$CLIENTS" -P "$PIPELINE" -q 2>/dev/null \
        | tr '\r' '\n' | awk '/requests per second/ {for (i=1;i<=NF;i++) if ($i ~ /^[0-9.]+$/) {print $i; break}}' \
        | paste -sd' '
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$DIR/direct" ; : >"$DIR/sluice"
for _ in $(seq "$REPEAT"); do
    rps --cluster -h 127.0.0.1 -p "$BASE_PORT" >>"$DIR/direct"
    rps -h 127.0.0.1 -p "$PROXY_PORT" >>"$DIR/sluice"
done
printf '%-6s %14s %14s %7s\n' test direct sluice ratio
for col in 1 2; do
    name=$([ "$col" = 1 ] && echo SET || echo GET)
    d=$(cut -d' ' -f"$col" "$DIR/direct" | median)
    s=$(cut -d' ' -f"$col" "$DIR/sluice" | median)
    printf '%-6s %14s %14s %7.2f\n' "$name" "$d" "$s" "$(echo "$s / $d" | bc -l)"
done

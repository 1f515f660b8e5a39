#!/usr/bin/env bash
# What client authentication costs per request: redis-benchmark against one redis-server
# through three pools of one sluice process, interleaved in each round:
#   open         no authentication (auth = "password" without a password)
#   users        auth = "users": a read-write user held to the pattern "key:*" (every command
#                checked against its access level and every key against the pattern)
#   passthrough  auth = "passthrough": the client's requests on a connection logged in as its
#                own Redis ACL user (Redis checks them)
# and directly against the redis-server (as the same ACL user).
#
#   bash benches/auth.sh                          # REQUESTS=200000 CLIENTS=50 REPEAT=5
#   REPEAT=3 PIPELINES="1" bash benches/auth.sh
#
# The table shows the median of REPEAT rounds: requests/s, its ratio to the open pool, and
# the CPU µs per request of the process serving it (sluice's for the pools, redis-server's for
# direct). Environment: REQUESTS, CLIENTS, REPEAT, PIPELINES (default "1 16"), TESTS (default
# "SET GET"), SLUICE_BIN (a prebuilt binary; otherwise `cargo build --release` is run).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
REPEAT=${REPEAT:-5}
PIPELINES=${PIPELINES:-"1 16"}
read -r -a TESTS <<<"${TESTS:-SET GET}"

BENCH_NAME=auth
# shellcheck source=benches/bench_lib.sh
source benches/bench_lib.sh

if [ -z "${SLUICE_BIN:-}" ]; then
    cargo build --release --quiet
    SLUICE_BIN="${CARGO_TARGET_DIR:-target}/release/sluice"
fi

read -r redis_port redis_pid < <(start_redis master)
PIDS+=("$redis_pid")
redis-cli -p "$redis_port" ACL SETUSER bench on '>bench-pw' '~key:*' '+@all' >/dev/null

cat >"$WORKDIR/auth.toml" <<EOF
[[pools]]
name = "open"
listen = "127.0.0.1:0"
master = "127.0.0.1:$redis_port"

[[pools]]
name = "users"
listen = "127.0.0.1:0"
master = "127.0.0.1:$redis_port"
auth = "users"

[[pools.users]]
name = "bench"
password = "bench-pw"
access = "read-write"
keys = ["key:*"]

[[pools]]
name = "passthrough"
listen = "127.0.0.1:0"
master = "127.0.0.1:$redis_port"
auth = "passthrough"
EOF
read -r _ sluice_pid < <(start_sluice sluice "pool passthrough" proxy --config "$WORKDIR/auth.toml")
PIDS+=("$sluice_pid")
declare -A PORT PID
for pool in open users passthrough; do
    PORT[$pool]=$(sed -n "s/^sluice: pool $pool listening on .*:\([0-9][0-9]*\)\$/\1/p" "$WORKDIR/sluice.out")
    PID[$pool]=$sluice_pid
done
PORT[direct]=$redis_port
PID[direct]=$redis_pid
TARGETS=(direct open users passthrough)

for rep in $(seq 1 "$REPEAT"); do
    for p in $PIPELINES; do
        for t in "${TESTS[@]}"; do
            for target in "${TARGETS[@]}"; do
                auth=()
                [ "$target" = open ] || auth=(--user bench -a bench-pw)
                before=$(cpu_ns "${PID[$target]}")
                out=$(redis-benchmark -p "${PORT[$target]}" "${auth[@]}" -t "$t" -n "$REQUESTS" \
                    -c "$CLIENTS" -r 100000 -P "$p" --csv 2>>"$WORKDIR/benchmark.err" </dev/null)
                after=$(cpu_ns "${PID[$target]}")
                rps=$(awk -F'"' -v t="$t" 'toupper($2) == t { print $4 }' <<<"$out")
                [ -n "$rps" ] || die "no $t result from $target (-P $p): $out $(tail -n 3 "$WORKDIR/benchmark.err")"
                cpu=$(awk -v a="$before" -v b="$after" -v n="$REQUESTS" 'BEGIN { printf "%.3f", (b - a) / n / 1000 }')
                echo "$target $p $t $rps $cpu" >>"$WORKDIR/results"
            done
        done
    done
    say "round $rep of $REPEAT done"
done

printf '| test | -P | target | requests/s | vs open | CPU µs/request |\n|---|---|---|---|---|---|\n'
for p in $PIPELINES; do
    for t in "${TESTS[@]}"; do
        open=$(med open "$p" "$t")
        for target in "${TARGETS[@]}"; do
            rps=$(med "$target" "$p" "$t")
            printf '| %s | %s | %s | %.0f | %s | %s |\n' "$t" "$p" "$target" "$rps" \
                "$(ratio "$rps" "$open")" "$(med "$target" "$p" "$t" 5)"
        done
    done
done

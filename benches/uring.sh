#!/usr/bin/env bash
# Issue 11's io_uring lever, measured before adopting it: the client side of a proxy served on
# one thread by tokio (epoll, as `sluice proxy` runs) and by one io_uring that submits a whole
# batch of clients' sends and receives per kernel call (benches/uring_front.rs). Both answer
# every request with a fixed reply, so the difference is the I/O model alone; redis-server is
# run beside them for scale.
#
#   bash benches/uring.sh                      # REQUESTS=200000 CLIENTS=50 REPEAT=5
#
# Each cell: `redis-benchmark -t get -n REQUESTS -c CLIENTS -P P`, targets interleaved within a
# round, median of REPEAT rounds; CPU µs per request of the server process from schedstat.
# Environment: REQUESTS, CLIENTS, REPEAT, PIPELINES (default "1 16"), CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
REPEAT=${REPEAT:-5}
PIPELINES=${PIPELINES:-"1 16"}

BENCH_NAME=uring
# shellcheck source=benches/bench_lib.sh
source benches/bench_lib.sh

say "building benches/uring_front.rs (cargo build --release --bench uring_front)"
FRONT=$(cargo build --release --bench uring_front --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*uring_front[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$FRONT" ] || die "uring_front was not built"

declare -A PORT PID
for mode in epoll uring; do
    : >"$WORKDIR/$mode.out"
    "$FRONT" "$mode" >"$WORKDIR/$mode.out" 2>"$WORKDIR/$mode.err" </dev/null &
    PID[$mode]=$!
    PIDS+=("${PID[$mode]}")
    wait_for "${PID[$mode]}" "grep -q '^listening on' '$WORKDIR/$mode.out'" \
        || die "$mode front did not start: $(cat "$WORKDIR/$mode.err")"
    PORT[$mode]=$(awk '{ print $3 }' "$WORKDIR/$mode.out")
done
read -r PORT[redis] PID[redis] < <(start_redis master) || die "redis-server did not start"
PIDS+=("${PID[redis]}")
TARGETS=(epoll uring redis)

for rep in $(seq 1 "$REPEAT"); do
    for p in $PIPELINES; do
        for target in "${TARGETS[@]}"; do
            before=$(cpu_ns "${PID[$target]}")
            out=$(redis-benchmark -p "${PORT[$target]}" -t get -n "$REQUESTS" -c "$CLIENTS" \
                -P "$p" --csv 2>>"$WORKDIR/benchmark.err" </dev/null)
            after=$(cpu_ns "${PID[$target]}")
            rps=$(awk -F'"' '$2 == "GET" { print $4 }' <<<"$out")
            [ -n "$rps" ] || die "no result from $target (-P $p): $out"
            cpu=$(awk -v a="$before" -v b="$after" -v n="$REQUESTS" 'BEGIN { printf "%.3f", (b - a) / n / 1000 }')
            echo "$target $p GET $rps $cpu" >>"$WORKDIR/results"
            say "round $rep/$REPEAT -P $p $target: $rps req/s, $cpu µs CPU/req"
        done
    done
done

echo
echo "redis-benchmark -t get -n $REQUESTS -c $CLIENTS; median of $REPEAT interleaved rounds; $(nproc) CPUs"
echo "cell: requests/s (ratio to epoll) / CPU µs per request of that process (ratio to epoll)"
echo
echo "| -P | epoll (tokio) | io_uring | redis-server |"
echo "|---|---|---|---|"
for p in $PIPELINES; do
    base=$(med epoll "$p" GET); base_cpu=$(med epoll "$p" GET 5)
    row="| $p | $(printf '%.0f / %s' "$base" "$base_cpu") |"
    for target in uring redis; do
        v=$(med "$target" "$p" GET); c=$(med "$target" "$p" GET 5)
        row+=" $(printf '%.0f (%s×) / %s (%s×)' "$v" "$(ratio "$v" "$base")" "$c" "$(ratio "$c" "$base_cpu")") |"
    done
    echo "$row"
done

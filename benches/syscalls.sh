#!/usr/bin/env bash
# Where a request's cost goes, in load-independent units: system calls per request (by kind)
# and user-space instructions per request of each target (direct Redis, sluice, predixy,
# twemproxy), during one bounded redis-benchmark run per target and pipeline depth. Wall-clock
# rates are not measured here (see benches/compare.sh); counts do not depend on how busy the
# machine is, except that a busier proxy finds more work per wake-up (fewer epoll_waits).
#
#   bash benches/syscalls.sh                                  # syscalls, strace -c -f
#   MODE=instructions REQUESTS=5000 bash benches/syscalls.sh   # callgrind, user space only
#   PREDIXY_BIN=/path/to/predixy bash benches/syscalls.sh
#
# MODE=syscalls: `strace -c -f -p PID` is attached to the target for the run; the table shows
# calls per request of reads (read/recvfrom/recvmsg/readv), writes (write/sendto/sendmsg/
# writev), epoll_wait (any variant), futex, and all syscalls together. strace slows the
# target, so it batches a little more than untraced; TRACER=perf uses `perf trace -s` instead
# (in-kernel, cheaper, needs root).
# MODE=instructions: the proxies (and a separate direct redis-server) run under
# `valgrind --tool=callgrind`; counters are zeroed right before the run and dumped right after
# it, so start-up is not counted; the table shows instructions (Ir) per request. The dumps stay
# in OUT for `callgrind_annotate --inclusive=yes OUT/sluice.P1.cg`.
#
# Environment: REQUESTS (default 20000; 5000 for instructions), CLIENTS (50), PIPELINES
# ("1 16"), TEST (GET), KEYSPACE (-r, default 10000; the keys are set first), OUT (default target/syscalls), TRACER (strace|perf),
# and those of benches/targets.sh (SLUICE_BIN, PREDIXY_BIN, SLUICE_ARGS, WITH_NODE).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODE=${MODE:-syscalls}
CLIENTS=${CLIENTS:-50}
PIPELINES=${PIPELINES:-"1 16"}
TEST=${TEST:-GET}
KEYSPACE=${KEYSPACE:-10000}
TRACER=${TRACER:-strace}
WITH_NODE=${WITH_NODE:-0}
OUT=${OUT:-${CARGO_TARGET_DIR:-target}/syscalls}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

BENCH_NAME=syscalls
case "$MODE" in
    syscalls)
        REQUESTS=${REQUESTS:-20000}
        case "$TRACER" in
            strace) command -v strace >/dev/null || { echo "syscalls: strace not found" >&2; exit 1; } ;;
            perf) command -v perf >/dev/null || { echo "syscalls: perf not found" >&2; exit 1; } ;;
            *) echo "syscalls: TRACER is strace or perf" >&2; exit 1 ;;
        esac
        ;;
    instructions)
        REQUESTS=${REQUESTS:-5000}
        command -v valgrind >/dev/null && command -v callgrind_control >/dev/null \
            || { echo "syscalls: valgrind (callgrind) not found" >&2; exit 1; }
        START_TIMEOUT=${START_TIMEOUT:-180}
        TARGET_WRAP="valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.%p"
        ;;
    *) echo "syscalls: MODE is syscalls or instructions" >&2; exit 1 ;;
esac

# shellcheck source=benches/targets.sh
source benches/targets.sh

# GETs find their keys (a miss is a RESP3 null the proxy converts for RESP2 clients, which is
# not the common case): about 99% of the KEYSPACE keys are set, and the replicas have them.
populate() {
    redis-benchmark -p "$1" -t set -n $((KEYSPACE * 5)) -r "$KEYSPACE" -c 4 -P 64 -q \
        </dev/null >>"$WORKDIR/benchmark.out" 2>&1
}
populate "${PORT[redis]}"
keys=$(redis-cli -p "${PORT[redis]}" DBSIZE)
for port in "${REPLICAS[@]}"; do
    wait_for "${PID[redis]}" "[ \"\$(redis-cli -p $port DBSIZE)\" = $keys ]" 30 \
        || die "replica on $port did not catch up"
done
say "$keys keys set (KEYSPACE $KEYSPACE)"

if [ "$MODE" = instructions ]; then
    # Direct Redis under callgrind too: a standalone instance of its own (the master above
    # stays native, as the proxies' backend).
    read -r PORT[redis] PID[redis] < <(WRAP_THIS=1 start_redis direct) || die "direct redis did not start"
    PIDS+=("${PID[redis]}")
    populate "${PORT[redis]}"
fi

bench() {
    redis-benchmark -p "$1" -t "$TEST" -n "$REQUESTS" -c "$CLIENTS" -r "$KEYSPACE" -P "$2" -q \
        </dev/null >>"$WORKDIR/benchmark.out" 2>&1
}

# Prints "reads writes epoll futex total" calls per request from a strace -c or perf trace -s
# summary (perf: one table per thread, summed here).
per_request() {
    awk -v n="$REQUESTS" -v tracer="$TRACER" '
        function add(name, calls) {
            total += calls
            if (name ~ /^(read|readv|recvfrom|recvmsg|recv)$/) r += calls
            else if (name ~ /^(write|writev|sendto|sendmsg|send)$/) w += calls
            else if (name ~ /^epoll_(p?wait2?|pwait)$/) e += calls
            else if (name == "futex") f += calls
        }
        tracer == "strace" && $NF ~ /^[a-z_0-9]+$/ && $(NF - 1) ~ /^[0-9]+$/ && $NF != "total" {
            # "% time seconds usecs/call calls [errors] syscall"
            calls = (NF == 6) ? $(NF - 2) : $(NF - 1)
            add($NF, calls)
        }
        tracer == "perf" && NF >= 8 && $2 ~ /^[0-9]+$/ && $1 ~ /^[a-z_0-9]+$/ { add($1, $2) }
        END { printf "%.2f %.2f %.2f %.2f %.2f\n", r / n, w / n, e / n, f / n, total / n }
    ' "$1"
}

measure_syscalls() {
    local target=$1 p=$2 file="$OUT/$1.P$2.$TRACER" tracer_pid
    case "$TRACER" in
        strace) strace -c -f -p "${PID[$target]}" -o "$file" 2>/dev/null & ;;
        perf) perf trace -s -p "${PID[$target]}" -o "$file" 2>/dev/null & ;;
    esac
    tracer_pid=$!
    sleep 1 # let the tracer attach to every thread
    bench "${PORT[$target]}" "$p"
    kill -INT "$tracer_pid"
    wait "$tracer_pid" 2>/dev/null || true
    echo "$target $p $(per_request "$file")" >>"$WORKDIR/results"
}

measure_instructions() {
    local target=$1 p=$2 pid=${PID[$1]} dump
    callgrind_control -z "$pid" >/dev/null
    bench "${PORT[$target]}" "$p"
    callgrind_control -d "P$p" "$pid" >/dev/null
    # The newest dump of this process is the one just written.
    dump=$(ls -t "$OUT/cg.$pid".* | head -n 1)
    mv "$dump" "$OUT/$target.P$p.cg"
    awk -v n="$REQUESTS" -v t="$target" -v p="$p" \
        '/^(summary|totals):/ { ir = $2 } END { printf "%s %s %.0f\n", t, p, ir / n }' \
        "$OUT/$target.P$p.cg" >>"$WORKDIR/results"
}

for target in "${TARGETS[@]}"; do
    for p in $PIPELINES; do
        say "$target: redis-benchmark -t $TEST -n $REQUESTS -c $CLIENTS -P $p"
        "measure_$MODE" "$target" "$p"
    done
done

echo
echo "redis-benchmark -t $TEST -n $REQUESTS -c $CLIENTS -r $KEYSPACE; $(nproc 2>/dev/null || echo '?') CPUs, redis $(redis-server --version | sed "s/.*v=\([^ ]*\).*/\1/"); sluice and predixy read from 2 replicas, twemproxy from the master"
if [ "$MODE" = syscalls ]; then
    echo "system calls per request of the target process ($TRACER), all threads"
    echo
    echo "| target | -P | reads | writes | epoll_wait | futex | all |"
    echo "|---|---|---|---|---|---|---|"
    awk '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$WORKDIR/results"
else
    echo "user-space instructions per request of the target process (callgrind Ir); dumps in $OUT"
    echo
    echo "| target | -P | instructions per request |"
    echo "|---|---|---|"
    awk '{ printf "| %s | %s | %s |\n", $1, $2, $3 }' "$WORKDIR/results"
fi

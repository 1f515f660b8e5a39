# Shared by the bench scripts (sourced, not run): messages, a private work directory whose
# processes are stopped on exit, free ports, waiting, CPU accounting and starting redis-server
# and sluice processes.
#
# Defines say, die, wait_for, cpu_ns, pick_port, start_redis, start_sluice, the table helpers
# median, med and ratio, WORKDIR and PIDS (append the PID of every process you start; they are
# stopped on exit).
#
# Environment: BENCH_NAME (message prefix), TARGET_WRAP (a command prefix for the proxies, e.g.
# "valgrind --tool=callgrind"), START_TIMEOUT (seconds a target may take to serve, default 15).

say() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; }
die() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; exit 1; }

START_TIMEOUT=${START_TIMEOUT:-15}
# shellcheck disable=SC2206 # a word list on purpose.
WRAP=(${TARGET_WRAP:-})

for tool in redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null 2>&1 \
        || die "$tool not found (Debian/Ubuntu: apt-get install redis-server redis-tools)"
done
WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compare.XXXXXX")
PIDS=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORKDIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A random port below the ephemeral range (32768+) that nothing listens on right now.
pick_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 12000))
        port_in_use "$port" || { echo "$port"; return 0; }
    done
    die "no free port found"
}

# Waits until `test_cmd` succeeds while `pid` lives; false if the process died first.
wait_for() {
    local pid=$1 test_cmd=$2 deadline=$((SECONDS + ${3:-$START_TIMEOUT}))
    until eval "$test_cmd" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || return 1
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# On-CPU nanoseconds of every thread of a process (schedstat's first field).
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# Starts redis-server on a free port (retrying if it was taken in between); prints "port pid".
start_redis() {
    local name=$1 port pid wrap=()
    shift
    # WRAP_THIS=1 start_redis ...: this one runs under TARGET_WRAP too.
    [ -n "${WRAP_THIS:-}" ] && wrap=("${WRAP[@]}")
    for _ in 1 2 3 4 5; do
        port=$(pick_port)
        "${wrap[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --repl-diskless-sync-delay 0 --dir "$WORKDIR" --dbfilename "$name.rdb" \
            --logfile "$WORKDIR/$name.log" "$@" </dev/null >/dev/null &
        pid=$!
        if wait_for "$pid" "[ \"\$(redis-cli -p $port PING)\" = PONG ]"; then
            echo "$port $pid"
            return 0
        fi
        kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    done
    die "could not start redis-server $name; log: $(tail -n 5 "$WORKDIR/$name.log")"
}

# Starts a sluice process that prints "sluice: ... listening on ADDR:PORT"; prints "port pid".
start_sluice() {
    local name=$1 pattern=$2 port pid wrap=("${WRAP[@]}")
    shift 2
    # NO_WRAP=1 start_sluice ...: this one runs without TARGET_WRAP.
    [ -n "${NO_WRAP:-}" ] && wrap=()
    # Created here: the background process may not have opened it yet when we first look.
    : >"$WORKDIR/$name.out"
    SLUICE_LOG=${SLUICE_LOG:-warn} "${wrap[@]}" "$SLUICE_BIN" "$@" >"$WORKDIR/$name.out" 2>"$WORKDIR/$name.err" </dev/null &
    pid=$!
    for _ in $(seq 1 $((START_TIMEOUT * 20))); do
        port=$(sed -n "s/^sluice: $pattern listening on .*:\([0-9][0-9]*\)\$/\1/p" "$WORKDIR/$name.out")
        [ -n "$port" ] && { echo "$port $pid"; return 0; }
        kill -0 "$pid" 2>/dev/null || die "$name exited: $(cat "$WORKDIR/$name.err")"
        sleep 0.05
    done
    die "$name did not report its port"
}

# The median of the numbers on standard input (the mean of the middle two for an even count).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# med TARGET PIPELINE TEST [COLUMN]: the median of COLUMN (default 4, requests/s) over the rounds
# in $WORKDIR/results, whose lines are "target pipeline test rps ...".
med() { awk -v a="$1" -v p="$2" -v t="$3" -v c="${4:-4}" '$1 == a && $2 == p && $3 == t { print $c }' "$WORKDIR/results" | median; }
# ratio A B: A / B to two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

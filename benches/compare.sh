#!/usr/bin/env bash
# End-to-end speed, side by side on one machine in one run: redis-benchmark against a Redis
# master directly, through sluice (reads on the replicas), through predixy (reads on the
# replicas, when a predixy binary is given), through twemproxy (master only, when nutcracker is
# installed) and against `sluice node` (sluice's own data server in place of redis-server).
#
#   bash benches/compare.sh                       # REQUESTS=200000 CLIENTS=50 REPEAT=5
#   REPEAT=3 PIPELINES="1" bash benches/compare.sh
#   PREDIXY_BIN=/path/to/predixy bash benches/compare.sh
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
# KEYSPACE (-r, default 100000), WITH_NODE (0 drops the node column), SLUICE_BIN (a prebuilt
# binary; otherwise `cargo build --release` is run), SLUICE_ARGS (extra `sluice proxy`
# arguments), PREDIXY_BIN (predixy is not packaged: build it from its public source and name
# the binary here; the column is skipped when unset), CARGO_TARGET_DIR (honoured as by cargo).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
REPEAT=${REPEAT:-5}
PIPELINES=${PIPELINES:-"1 16"}
KEYSPACE=${KEYSPACE:-100000}
read -r -a TESTS <<<"${TESTS:-SET GET}"

say() { printf 'compare: %s\n' "$*" >&2; }
die() { printf 'compare: %s\n' "$*" >&2; exit 1; }

for tool in redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null 2>&1 \
        || die "$tool not found (Debian/Ubuntu: apt-get install redis-server redis-tools)"
done
HAVE_NUTCRACKER=0
if command -v nutcracker >/dev/null 2>&1; then
    HAVE_NUTCRACKER=1
else
    say "nutcracker not found: twemproxy column skipped (Debian/Ubuntu: apt-get install nutcracker)"
fi
if [ -n "${PREDIXY_BIN:-}" ]; then
    [ -x "$PREDIXY_BIN" ] || die "PREDIXY_BIN=$PREDIXY_BIN is not an executable"
else
    say "PREDIXY_BIN not set: predixy column skipped"
fi

if [ -z "${SLUICE_BIN:-}" ]; then
    say "building sluice (cargo build --release)"
    cargo build --release >&2
    SLUICE_BIN="${CARGO_TARGET_DIR:-target}/release/sluice"
fi
[ -x "$SLUICE_BIN" ] || die "sluice binary not found at $SLUICE_BIN"

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
    local pid=$1 test_cmd=$2 deadline=$((SECONDS + ${3:-15}))
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
    local name=$1 port pid
    shift
    for _ in 1 2 3 4 5; do
        port=$(pick_port)
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
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
    local name=$1 pattern=$2 port pid
    shift 2
    # shellcheck disable=SC2086 # SLUICE_ARGS is a word list on purpose.
    SLUICE_LOG=${SLUICE_LOG:-warn} "$SLUICE_BIN" "$@" >"$WORKDIR/$name.out" 2>"$WORKDIR/$name.err" </dev/null &
    pid=$!
    for _ in $(seq 1 300); do
        port=$(sed -n "s/^sluice: $pattern listening on .*:\([0-9][0-9]*\)\$/\1/p" "$WORKDIR/$name.out")
        [ -n "$port" ] && { echo "$port $pid"; return 0; }
        kill -0 "$pid" 2>/dev/null || die "$name exited: $(cat "$WORKDIR/$name.err")"
        sleep 0.05
    done
    die "$name did not report its port"
}

declare -A PORT PID

# --- Redis: a master and two replicas, in sync before anything is measured ----------------
read -r PORT[redis] PID[redis] < <(start_redis master) || die "redis master did not start"
PIDS+=("${PID[redis]}")
REPLICAS=()
for i in 1 2; do
    read -r port pid < <(start_redis "replica$i" --replicaof 127.0.0.1 "${PORT[redis]}") \
        || die "replica $i did not start"
    PIDS+=("$pid"); REPLICAS+=("$port")
done
wait_for "${PID[redis]}" \
    "[ \"\$(redis-cli -p ${PORT[redis]} INFO replication | grep -c 'state=online')\" = 2 ]" 30 \
    || die "replicas did not come online"
say "redis master on 127.0.0.1:${PORT[redis]}, replicas on ${REPLICAS[*]}"

# --- sluice: standalone pool, reads on the replicas ----------------------------------------
cat >"$WORKDIR/sluice.toml" <<TOML
[[pools]]
name = "bench"
listen = "127.0.0.1:0"
mode = "standalone"
master = "127.0.0.1:${PORT[redis]}"
replicas = ["127.0.0.1:${REPLICAS[0]}", "127.0.0.1:${REPLICAS[1]}"]
read_from = "replica"
max_clients = 10000
TOML
# shellcheck disable=SC2086
read -r PORT[sluice] PID[sluice] < <(start_sluice sluice "pool bench" proxy -c "$WORKDIR/sluice.toml" ${SLUICE_ARGS:-}) \
    || die "sluice did not start"
PIDS+=("${PID[sluice]}")
wait_for "${PID[sluice]}" "[ \"\$(redis-cli -p ${PORT[sluice]} SET compare:probe 1)\" = OK ] && [ \"\$(redis-cli -p ${PORT[sluice]} GET compare:probe)\" = 1 ]" \
    || die "sluice on port ${PORT[sluice]} does not serve: $(tail -n 5 "$WORKDIR/sluice.err")"
TARGETS=(redis sluice)
say "sluice on 127.0.0.1:${PORT[sluice]}"

# --- predixy: the same split, when a binary is given -------------------------------------
if [ -n "${PREDIXY_BIN:-}" ]; then
    PORT[predixy]=$(pick_port)
    cat >"$WORKDIR/predixy.conf" <<CONF
Bind 127.0.0.1:${PORT[predixy]}
WorkerThreads 1
ClientTimeout 0
Log $WORKDIR/predixy.log
LogVerbSample 0
LogDebugSample 0
LogInfoSample 0
LogNoticeSample 0
LogWarnSample 1
LogErrorSample 1
Authority {
    Auth {
        Mode write
    }
}
StandaloneServerPool {
    RefreshMethod fixed
    Databases 16
    Hash crc16
    Distribution modula
    MasterReadPriority 0
    StaticSlaveReadPriority 50
    DynamicSlaveReadPriority 50
    Group shard001 {
        + 127.0.0.1:${PORT[redis]}
        + 127.0.0.1:${REPLICAS[0]}
        + 127.0.0.1:${REPLICAS[1]}
    }
}
CONF
    "$PREDIXY_BIN" "$WORKDIR/predixy.conf" >"$WORKDIR/predixy.out" 2>&1 </dev/null &
    PID[predixy]=$!
    PIDS+=("${PID[predixy]}")
    wait_for "${PID[predixy]}" "[ \"\$(redis-cli -p ${PORT[predixy]} SET compare:probe 1)\" = OK ]" \
        || die "predixy does not serve: $(tail -n 5 "$WORKDIR/predixy.out")"
    TARGETS+=(predixy)
    say "predixy on 127.0.0.1:${PORT[predixy]}"
fi

# --- twemproxy: master only ---------------------------------------------------------------
if [ "$HAVE_NUTCRACKER" = 1 ]; then
    PORT[twemproxy]=$(pick_port)
    stats_port=$(pick_port)
    cat >"$WORKDIR/nutcracker.yml" <<YAML
bench:
  listen: 127.0.0.1:${PORT[twemproxy]}
  redis: true
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  server_connections: 1
  servers:
    - 127.0.0.1:${PORT[redis]}:1
YAML
    nutcracker -c "$WORKDIR/nutcracker.yml" -o "$WORKDIR/nutcracker.log" \
        -p "$WORKDIR/nutcracker.pid" -s "$stats_port" -a 127.0.0.1 </dev/null &
    PID[twemproxy]=$!
    PIDS+=("${PID[twemproxy]}")
    wait_for "${PID[twemproxy]}" "[ \"\$(redis-cli -p ${PORT[twemproxy]} SET compare:probe 1)\" = OK ]" \
        || die "nutcracker does not serve: $(tail -n 5 "$WORKDIR/nutcracker.log")"
    TARGETS+=(twemproxy)
    say "nutcracker on 127.0.0.1:${PORT[twemproxy]}"
fi

# --- sluice node: our own data server in place of redis-server --------------------------
if [ "${WITH_NODE:-1}" = 1 ]; then
    read -r PORT[node] PID[node] < <(start_sluice node node node --port 0 --dir "$WORKDIR") \
        || die "sluice node did not start"
    PIDS+=("${PID[node]}")
    TARGETS+=(node)
    say "sluice node on 127.0.0.1:${PORT[node]}"
fi

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
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { awk -v a="$1" -v p="$2" -v t="$3" -v c="$4" '$1 == a && $2 == p && $3 == t { print $c }' "$WORKDIR/results" | median; }

echo
echo "redis-benchmark -n $REQUESTS -c $CLIENTS -r $KEYSPACE --csv; median of $REPEAT interleaved rounds${SLUICE_ARGS:+; sluice $SLUICE_ARGS}"
echo "$(nproc 2>/dev/null || echo '?') CPUs, redis $(redis-server --version | sed "s/.*v=\([^ ]*\).*/\1/"), sluice $("$SLUICE_BIN" --version | awk '{ print $2 }'); sluice and predixy read from 2 replicas, twemproxy from the master"
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
            ratio=$(awk -v a="$v" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
            row+=" $(printf '%.0f (%s×) / %s / %s' "$v" "$ratio" "$(med "$target" "$p" "$t" 5)" "$(med "$target" "$p" "$t" 6)") |"
        done
        echo "$row"
    done
done

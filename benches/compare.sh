#!/usr/bin/env bash
# End-to-end throughput: redis-benchmark against Redis directly, through sluice and through
# twemproxy (nutcracker, when installed), side by side on the same machine in the same run.
#
#   bash benches/compare.sh                     # defaults: REQUESTS=200000 CLIENTS=50 REPEAT=3
#   REPEAT=5 CLIENTS=100 bash benches/compare.sh
#
# Every target gets the same commands: redis-benchmark -t set,get -n REQUESTS -c CLIENTS -q,
# once with -P 1 (no pipelining) and once with -P 16. Targets are interleaved within each
# repetition so that a slow moment of the machine hits all of them alike; the table shows the
# median requests/s of REPEAT runs and its ratio to direct Redis.
#
# The last column, "node", is `sluice node` (sluice's own Redis-compatible data server) in
# place of redis-server: the same ratio tells how close node mode comes to Redis itself.
#
# Environment: WITH_NODE (0 drops the node column), REQUESTS, CLIENTS, REPEAT, PIPELINES
# (default "1 16"), SLUICE_BIN (a prebuilt binary; otherwise `cargo build --release` is run),
# SLUICE_ARGS (extra `sluice proxy` arguments, e.g. "--threads 2"), CARGO_TARGET_DIR
# (honoured as by cargo).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
REPEAT=${REPEAT:-3}
PIPELINES=${PIPELINES:-"1 16"}
TESTS=(SET GET)

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
    local pid=$1 test_cmd=$2 deadline=$((SECONDS + 15))
    until eval "$test_cmd" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || return 1
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# --- Redis: retry on another port if the chosen one was taken in between -------------------
REDIS_PORT=
for _ in 1 2 3 4 5; do
    port=$(pick_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WORKDIR" --logfile "$WORKDIR/redis.log" </dev/null &
    pid=$!
    if wait_for "$pid" "[ \"\$(redis-cli -p $port PING)\" = PONG ]"; then
        PIDS+=("$pid"); REDIS_PORT=$port; break
    fi
    kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
done
[ -n "$REDIS_PORT" ] || die "could not start redis-server; log: $(tail -n 5 "$WORKDIR/redis.log")"
say "redis-server on 127.0.0.1:$REDIS_PORT"

# --- sluice: port 0 lets the OS pick a free port; sluice prints the one it got --------------
cat >"$WORKDIR/sluice.toml" <<TOML
[[pools]]
name = "bench"
listen = "127.0.0.1:0"
mode = "standalone"
master = "127.0.0.1:$REDIS_PORT"
read_from = "master"
max_clients = 10000
TOML
# shellcheck disable=SC2086 # SLUICE_ARGS is a word list on purpose.
SLUICE_LOG=${SLUICE_LOG:-warn} "$SLUICE_BIN" proxy -c "$WORKDIR/sluice.toml" ${SLUICE_ARGS:-} \
    >"$WORKDIR/sluice.out" 2>"$WORKDIR/sluice.err" </dev/null &
PIDS+=($!)
SLUICE_PORT=
for _ in $(seq 1 300); do
    SLUICE_PORT=$(sed -n 's/^sluice: pool bench listening on .*:\([0-9][0-9]*\)$/\1/p' "$WORKDIR/sluice.out")
    [ -n "$SLUICE_PORT" ] && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "sluice exited: $(cat "$WORKDIR/sluice.err")"
    sleep 0.05
done
[ -n "$SLUICE_PORT" ] || die "sluice did not report its port"
wait_for "${PIDS[-1]}" "[ \"\$(redis-cli -p $SLUICE_PORT SET compare:probe 1)\" = OK ]" \
    || die "sluice on port $SLUICE_PORT does not forward to Redis: $(tail -n 5 "$WORKDIR/sluice.err")"
say "sluice on 127.0.0.1:$SLUICE_PORT"

# --- twemproxy --------------------------------------------------------------------------
NUT_PORT=
if [ "$HAVE_NUTCRACKER" = 1 ]; then
    for _ in 1 2 3 4 5; do
        port=$(pick_port)
        stats_port=$(pick_port)
        cat >"$WORKDIR/nutcracker.yml" <<YAML
bench:
  listen: 127.0.0.1:$port
  redis: true
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  server_connections: 1
  servers:
    - 127.0.0.1:$REDIS_PORT:1
YAML
        nutcracker -c "$WORKDIR/nutcracker.yml" -o "$WORKDIR/nutcracker.log" \
            -p "$WORKDIR/nutcracker.pid" -s "$stats_port" -a 127.0.0.1 </dev/null &
        pid=$!
        if wait_for "$pid" "[ \"\$(redis-cli -p $port SET compare:probe 1)\" = OK ]"; then
            PIDS+=("$pid"); NUT_PORT=$port; break
        fi
        kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    done
    [ -n "$NUT_PORT" ] || die "could not start nutcracker; log: $(tail -n 5 "$WORKDIR/nutcracker.log")"
    say "nutcracker on 127.0.0.1:$NUT_PORT"
fi

# --- sluice node: our own data server, measured against redis-server as a backend ----------
NODE_PORT=
if [ "${WITH_NODE:-1}" = 1 ]; then
    SLUICE_LOG=${SLUICE_LOG:-warn} "$SLUICE_BIN" node --port 0 --dir "$WORKDIR" \
        >"$WORKDIR/node.out" 2>"$WORKDIR/node.err" </dev/null &
    PIDS+=($!)
    for _ in $(seq 1 300); do
        NODE_PORT=$(sed -n 's/^sluice: node listening on .*:\([0-9][0-9]*\)$/\1/p' "$WORKDIR/node.out")
        [ -n "$NODE_PORT" ] && break
        kill -0 "${PIDS[-1]}" 2>/dev/null || die "sluice node exited: $(cat "$WORKDIR/node.err")"
        sleep 0.05
    done
    [ -n "$NODE_PORT" ] || die "sluice node did not report its port"
    say "sluice node on 127.0.0.1:$NODE_PORT"
fi

TARGETS=(redis sluice)
declare -A PORT=([redis]=$REDIS_PORT [sluice]=$SLUICE_PORT)
if [ -n "$NUT_PORT" ]; then TARGETS+=(twemproxy); PORT[twemproxy]=$NUT_PORT; fi
if [ -n "$NODE_PORT" ]; then TARGETS+=(node); PORT[node]=$NODE_PORT; fi

# --- runs -------------------------------------------------------------------------------
# Results: one line per run, "target pipeline TEST rps", in $WORKDIR/results.
runs=$((REPEAT * $(wc -w <<<"$PIPELINES") * ${#TARGETS[@]}))
say "$runs redis-benchmark runs: -t set,get -n $REQUESTS -c $CLIENTS, pipelines: $PIPELINES, repeat $REPEAT"
for rep in $(seq 1 "$REPEAT"); do
    for p in $PIPELINES; do
        for target in "${TARGETS[@]}"; do
            out=$(redis-benchmark -p "${PORT[$target]}" -t set,get -n "$REQUESTS" -c "$CLIENTS" \
                -P "$p" -q 2>>"$WORKDIR/benchmark.err" </dev/null | tr '\r' '\n')
            for t in "${TESTS[@]}"; do
                rps=$(awk -v t="$t:" '$1 == t && $3 == "requests" { v = $2 } END { print v }' <<<"$out")
                [ -n "$rps" ] || die "no $t result from $target (-P $p): $out $(tail -n 3 "$WORKDIR/benchmark.err")"
                echo "$target $p $t $rps" >>"$WORKDIR/results"
            done
            say "run $rep/$REPEAT -P $p $target: $(awk '$1 ~ /:$/ && $3 == "requests" { printf "%s %s  ", $1, $2 }' <<<"$out")"
        done
    done
done

# --- table ------------------------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { awk -v a="$1" -v p="$2" -v t="$3" '$1 == a && $2 == p && $3 == t { print $4 }' "$WORKDIR/results" | median; }

echo
echo "redis-benchmark -t set,get -n $REQUESTS -c $CLIENTS -q; median of $REPEAT runs, requests/s (ratio to direct Redis)${SLUICE_ARGS:+; sluice $SLUICE_ARGS}"
echo "$(nproc 2>/dev/null || echo '?') CPUs, redis $(redis-server --version | sed "s/.*v=\([^ ]*\).*/\1/"), sluice $("$SLUICE_BIN" --version | awk '{ print $2 }')$([ -n "$NUT_PORT" ] && echo ", $(nutcracker -V 2>&1 | awk '{ print $NF }' | head -n 1)")"
echo
header="| test | pipeline | redis |"
rule="|---|---|---|"
for target in "${TARGETS[@]:1}"; do header+=" $target |"; rule+="---|"; done
echo "$header"
echo "$rule"
for p in $PIPELINES; do
    for t in "${TESTS[@]}"; do
        base=$(med redis "$p" "$t")
        row="| $t | $p | $(printf '%.0f' "$base") |"
        for target in "${TARGETS[@]:1}"; do
            v=$(med "$target" "$p" "$t")
            row+=" $(printf '%.0f (%.2f×)' "$v" "$(awk -v a="$v" -v b="$base" 'BEGIN { print a / b }')") |"
        done
        echo "$row"
    done
done

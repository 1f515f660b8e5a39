# Shared by benches/compare.sh and benches/syscalls.sh (sourced, not run): starts the targets
# of a side-by-side run on loopback and stops them on exit.
#
# Topology: one redis-server master and two replicas. sluice (standalone pool) and predixy send
# SET to the master and GET to the replicas; twemproxy cannot split reads and uses the master;
# `sluice node` stands in for redis-server.
#
# Sets TARGETS (names, "redis" first: the master, for direct runs), PORT[name], PID[name],
# and, from benches/bench_lib.sh, WORKDIR and the helpers say, die, wait_for, cpu_ns,
# start_redis, start_sluice, pick_port.
#
# Environment: BENCH_NAME (message prefix), SLUICE_BIN (a prebuilt binary; otherwise
# `cargo build --release` is run), SLUICE_ARGS (extra `sluice proxy` arguments), PREDIXY_BIN
# (predixy is not packaged: build it from its public source and name the binary here; the
# column is skipped when unset), WITH_NODE (0 drops the node target), NODE_BASE_BIN (adds a
# `node_base` target: a node of that binary, e.g. main before a change), WITH_PROXIES (0: only
# redis-server, without replicas, and the node: the node against Redis alone), TARGET_WRAP (a command
# prefix for the proxies, e.g. "valgrind --tool=callgrind"), START_TIMEOUT (seconds a target
# may take to serve, default 15), CARGO_TARGET_DIR (honoured as by cargo).
# shellcheck source=benches/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

WITH_PROXIES=${WITH_PROXIES:-1}
HAVE_NUTCRACKER=0
if [ "$WITH_PROXIES" = 0 ]; then
    PREDIXY_BIN=
elif command -v nutcracker >/dev/null 2>&1; then
    HAVE_NUTCRACKER=1
else
    say "nutcracker not found: twemproxy column skipped (Debian/Ubuntu: apt-get install nutcracker)"
fi
if [ -n "${PREDIXY_BIN:-}" ]; then
    [ -x "$PREDIXY_BIN" ] || die "PREDIXY_BIN=$PREDIXY_BIN is not an executable"
elif [ "$WITH_PROXIES" = 1 ]; then
    say "PREDIXY_BIN not set: predixy column skipped"
fi

if [ -z "${SLUICE_BIN:-}" ]; then
    say "building sluice (cargo build --release)"
    cargo build --release >&2
    SLUICE_BIN="${CARGO_TARGET_DIR:-target}/release/sluice"
fi
[ -x "$SLUICE_BIN" ] || die "sluice binary not found at $SLUICE_BIN"

declare -A PORT PID

# --- Redis: a master and two replicas, in sync before anything is measured ----------------
read -r PORT[redis] PID[redis] < <(start_redis master) || die "redis master did not start"
PIDS+=("${PID[redis]}")
REPLICAS=()
[ "$WITH_PROXIES" = 1 ] || say "WITH_PROXIES=0: redis-server alone (no replicas) and the node"
for i in $([ "$WITH_PROXIES" = 1 ] && echo 1 2); do
    read -r port pid < <(start_redis "replica$i" --replicaof 127.0.0.1 "${PORT[redis]}") \
        || die "replica $i did not start"
    PIDS+=("$pid"); REPLICAS+=("$port")
done
wait_for "${PID[redis]}" \
    "[ \"\$(redis-cli -p ${PORT[redis]} INFO replication | grep -c 'state=online')\" = ${#REPLICAS[@]} ]" 30 \
    || die "replicas did not come online"
say "redis master on 127.0.0.1:${PORT[redis]}, replicas on ${REPLICAS[*]:-none}"
TARGETS=(redis)

# --- sluice: standalone pool, reads on the replicas ----------------------------------------
if [ "$WITH_PROXIES" = 1 ]; then
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
TARGETS+=(sluice)
say "sluice on 127.0.0.1:${PORT[sluice]}"
fi

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
    "${WRAP[@]}" "$PREDIXY_BIN" "$WORKDIR/predixy.conf" >"$WORKDIR/predixy.out" 2>&1 </dev/null &
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
    "${WRAP[@]}" nutcracker -c "$WORKDIR/nutcracker.yml" -o "$WORKDIR/nutcracker.log" \
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
    read -r PORT[node] PID[node] < <(NO_WRAP=1 start_sluice node node node --port 0 --dir "$WORKDIR") \
        || die "sluice node did not start"
    PIDS+=("${PID[node]}")
    TARGETS+=(node)
    say "sluice node on 127.0.0.1:${PORT[node]}"
    # NODE_BASE_BIN: a node of another build (say, main before a change) in the same rounds.
    if [ -n "${NODE_BASE_BIN:-}" ]; then
        [ -x "$NODE_BASE_BIN" ] || die "NODE_BASE_BIN=$NODE_BASE_BIN is not an executable"
        mkdir -p "$WORKDIR/node_base"
        read -r PORT[node_base] PID[node_base] < <(SLUICE_BIN=$NODE_BASE_BIN NO_WRAP=1 \
            start_sluice node_base node node --port 0 --dir "$WORKDIR/node_base") \
            || die "the NODE_BASE_BIN node did not start"
        PIDS+=("${PID[node_base]}")
        TARGETS+=(node_base)
        say "base node ($NODE_BASE_BIN) on 127.0.0.1:${PORT[node_base]}"
    fi
fi

#!/usr/bin/env bash
# Development stack: a Redis master on 127.0.0.1:6379 and two replicas on :6381 and :6382
# (no persistence, files in a temporary directory), then sluice in front of them with
# config/standalone.toml (clients on 127.0.0.1:6380, admin HTTP on 127.0.0.1:9121).
#
#   bash deploy/dev-stack.sh          # Ctrl-C (or SIGTERM) stops sluice and the three Redis
#
# Everything it starts is stopped when it exits, whichever way it exits.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MASTER_PORT=6379
REPLICA_PORTS=(6381 6382)
CONFIG=config/standalone.toml
# Ports the config must use; checked below so the script and the config cannot drift apart.
PROXY_PORT=6380
ADMIN_PORT=9121
SYNC_TIMEOUT_S=${SYNC_TIMEOUT_S:-60}

say() { printf 'dev-stack: %s\n' "$*"; }
die() { printf 'dev-stack: %s\n' "$*" >&2; exit 1; }

for tool in redis-server redis-cli; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        die "$tool not found. Install Redis 7 first, e.g.:
    sudo apt-get update && sudo apt-get install -y redis-server redis-tools   # Debian/Ubuntu
    brew install redis                                                         # macOS"
    fi
done
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"

grep -q "^listen = \"127.0.0.1:${PROXY_PORT}\"" "$CONFIG" \
    || die "$CONFIG does not listen on 127.0.0.1:${PROXY_PORT} as this script expects"
grep -q "^listen = \"127.0.0.1:${ADMIN_PORT}\"" "$CONFIG" \
    || die "$CONFIG has no admin listener on 127.0.0.1:${ADMIN_PORT} as this script expects"
grep -q "^master = \"127.0.0.1:${MASTER_PORT}\"" "$CONFIG" \
    || die "$CONFIG does not use the master 127.0.0.1:${MASTER_PORT} this script starts"

# A port is taken when something accepts a TCP connection on it.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$MASTER_PORT" "${REPLICA_PORTS[@]}" "$PROXY_PORT" "$ADMIN_PORT"; do
    if port_in_use "$port"; then
        die "port $port on 127.0.0.1 is already in use (another Redis or sluice?); stop it first"
    fi
done

# Build before starting Redis, so a long first compile does not keep idle servers around and
# compile errors stop the script before anything runs.
say "building sluice (cargo build --release)"
cargo build --release

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-dev.XXXXXX")
PIDS=()
PROXY_PID=

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # sluice first (clients see it go away before the nodes), then the Redis servers.
    if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
        kill -TERM "$PROXY_PID" 2>/dev/null || true
    fi
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # Reap them all so nothing outlives the script; escalate if one hangs.
    for pid in ${PROXY_PID:+"$PROXY_PID"} "${PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORKDIR"
    say "stopped"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_redis() {
    local port=$1
    shift
    redis-server --port "$port" --bind 127.0.0.1 \
        --save '' --appendonly no \
        --dir "$WORKDIR" --dbfilename "dump-$port.rdb" \
        --logfile "$WORKDIR/redis-$port.log" \
        --repl-diskless-sync-delay 0 \
        "$@" </dev/null &
    PIDS+=($!)
}

wait_ping() {
    local port=$1 deadline=$((SECONDS + 10))
    until [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "redis-server on port $port did not start; log: $(tail -n 5 "$WORKDIR/redis-$port.log" 2>/dev/null)"
        sleep 0.05
    done
}

say "starting Redis master on 127.0.0.1:$MASTER_PORT (data in $WORKDIR)"
start_redis "$MASTER_PORT"
wait_ping "$MASTER_PORT"
for port in "${REPLICA_PORTS[@]}"; do
    say "starting Redis replica on 127.0.0.1:$port"
    start_redis "$port" --replicaof 127.0.0.1 "$MASTER_PORT"
done

# Synced = the replica reports its link up and no sync in progress.
for port in "${REPLICA_PORTS[@]}"; do
    wait_ping "$port"
    deadline=$((SECONDS + SYNC_TIMEOUT_S))
    while :; do
        info=$(redis-cli -p "$port" INFO replication 2>/dev/null | tr -d '\r')
        if grep -qx 'master_link_status:up' <<<"$info" && grep -qx 'master_sync_in_progress:0' <<<"$info"; then
            break
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "replica on port $port not synced after ${SYNC_TIMEOUT_S}s"
        sleep 0.1
    done
    say "replica 127.0.0.1:$port is in sync"
done

say "starting sluice: cargo run --release -- proxy -c $CONFIG (Ctrl-C to stop everything)"
# Started as a job and waited for, not run directly: bash runs traps only between commands,
# so a directly run foreground child would delay the SIGTERM cleanup until it exits by itself.
cargo run --release -- proxy -c "$CONFIG" </dev/null &
PROXY_PID=$!
wait "$PROXY_PID"

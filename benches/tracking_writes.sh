#!/usr/bin/env bash
# What one tracking client costs every other client's writes through the proxy: while any
# client of a pool tracks (`CLIENT TRACKING on`), each write notes its keys' order in the
# pool's tracking table (src/session/tracking/mod.rs `note_write`). redis-benchmark SETs
# (50 clients, pipelined by 1 and by 16, random keys) through `sluice proxy`, with no
# tracking client ("off") and with one idle RESP3 tracking client that has read TRACKED keys
# the benchmark never writes ("on"). Prints requests/s and the proxy's CPU nanoseconds per
# request, medians over ROUNDS (the modes interleaved round by round).
#   SLUICE_BIN=target/release/sluice benches/tracking_writes.sh
# Environment: SLUICE_BIN (default target/release/sluice), ROUNDS (5), REQUESTS (200000),
# TRACKED (10000).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=tracking_writes
# shellcheck source=benches/bench_lib.sh
source benches/bench_lib.sh
SLUICE_BIN=${SLUICE_BIN:-target/release/sluice}
ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-200000}
TRACKED=${TRACKED:-10000}
[ -x "$SLUICE_BIN" ] || die "no $SLUICE_BIN (cargo build --release)"

read -r RPORT RPID < <(start_redis master)
PIDS+=("$RPID")
cat >"$WORKDIR/sluice.toml" <<TOML
[[pools]]
name = "writes"
listen = "127.0.0.1:0"
mode = "standalone"
master = "127.0.0.1:$RPORT"
read_from = "master"
TOML
read -r SPORT SPID < <(start_sluice sluice "pool writes" proxy -c "$WORKDIR/sluice.toml")
PIDS+=("$SPID")

# A tracking client that read TRACKED keys (none of them redis-benchmark's), then idles
# (reading whatever comes) until killed; prints "ready" once its keys are in the table.
tracker() {
    python3 -u - "$SPORT" "$TRACKED" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"HELLO 3\r\nCLIENT TRACKING on\r\n")
s.sendall(b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k)
                   for k in (b"tracked:%d" % i for i in range(n))))
got = b""
# HELLO's map, +OK, then n nil replies (RESP3 `_`, which nothing before them contains).
while got.count(b"_\r\n") < n:
    got += s.recv(1 << 20)
print("ready")
while s.recv(1 << 20):
    pass
PY
}

# One redis-benchmark run through the proxy: prints "requests/s".
run_bench() { # pipeline
    redis-benchmark -p "$SPORT" -t set -n "$REQUESTS" -r 100000 -c 50 -P "$1" --csv 2>/dev/null \
        | awk -F'"' '/^"SET"/ { print $4 }'
}

for round in $(seq "$ROUNDS"); do
    for mode in off on; do
        TPID=""
        if [ "$mode" = on ]; then
            coproc TRACKER { tracker; }
            TPID=$TRACKER_PID
            read -r ready <&"${TRACKER[0]}"
            [ "$ready" = ready ] || die "the tracking client did not start"
        fi
        for p in 1 16; do
            c0=$(cpu_ns "$SPID")
            rps=$(run_bench "$p")
            c1=$(cpu_ns "$SPID")
            echo "$mode $p set $rps $(( (c1 - c0) / REQUESTS ))" >>"$WORKDIR/results"
        done
        if [ -n "$TPID" ]; then kill "$TPID" 2>/dev/null || true; wait "$TPID" 2>/dev/null || true; fi
    done
    say "round $round done"
done
printf '%-9s %-4s %12s %16s\n' tracking P 'requests/s' 'proxy CPU ns/req'
for mode in off on; do
    for p in 1 16; do
        printf '%-9s %-4s %12s %16s\n' "$mode" "$p" "$(med "$mode" "$p" set)" "$(med "$mode" "$p" set 5)"
    done
done

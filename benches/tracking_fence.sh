#!/usr/bin/env bash
# What the eviction fence (src/session/tracking/fence.rs) costs a tracking client through the
# proxy: one RESP3 client with `CLIENT TRACKING on` sends REQUESTS GETs of 100 keys (pipelined
# by 1 and by 16) through `sluice proxy`, with the master's `maxmemory` 0 (no node may evict:
# no fence) and with `maxmemory 1gb` + `allkeys-lru` (both set through the proxy) (every reply waits for a PONG on the
# master's tracking source; nothing is evicted). Prints requests/s and the proxy's CPU
# microseconds per request, medians over ROUNDS.
#   SLUICE_BIN=target/release/sluice benches/tracking_fence.sh
# Environment: SLUICE_BIN (default target/release/sluice), ROUNDS (5), REQUESTS (20000).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=tracking_fence
# shellcheck source=benches/bench_lib.sh
source benches/bench_lib.sh
SLUICE_BIN=${SLUICE_BIN:-target/release/sluice}
ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-20000}
[ -x "$SLUICE_BIN" ] || die "no $SLUICE_BIN (cargo build --release)"

read -r RPORT RPID < <(start_redis master)
PIDS+=("$RPID")
cat >"$WORKDIR/sluice.toml" <<TOML
[[pools]]
name = "fence"
listen = "127.0.0.1:0"
mode = "standalone"
master = "127.0.0.1:$RPORT"
read_from = "master"
allow_commands = ["CONFIG"]
TOML
read -r SPORT SPID < <(start_sluice sluice "pool fence" proxy -c "$WORKDIR/sluice.toml")
PIDS+=("$SPID")

# One tracking client's run: prints "requests/s".
run_client() { # pipeline
    python3 - "$SPORT" "$REQUESTS" "$1" <<'PY'
import socket, sys, time
port, n, depth = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = b""
def line():
    global buf
    while b"\r\n" not in buf:
        buf += s.recv(1 << 16)
    head, buf = buf.split(b"\r\n", 1)
    return head
def frame():
    # One RESP frame of any type; an invalidation push is not expected (nothing changes the
    # keys) and would be counted as a reply, failing the run below.
    global buf
    head = line()
    kind, rest = head[:1], head[1:]
    if kind in (b"$", b"=", b"!") and rest != b"-1":
        need = int(rest) + 2
        while len(buf) < need:
            buf += s.recv(1 << 16)
        buf = buf[need:]
    elif kind in (b"*", b"~", b">") and rest != b"-1":
        for _ in range(int(rest)):
            frame()
    elif kind == b"%":
        for _ in range(2 * int(rest)):
            frame()
    if kind == b">":
        raise SystemExit("unexpected push")
def read_frames(count):
    for _ in range(count):
        frame()
s.sendall(b"HELLO 3\r\nCLIENT TRACKING on\r\n")
read_frames(2)
keys = [b"fence:%d" % i for i in range(100)]
s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(k), k) for k in keys))
read_frames(len(keys))
gets = [b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k) for k in keys]
start = time.perf_counter()
sent = 0
while sent < n:
    batch = min(depth, n - sent)
    s.sendall(b"".join(gets[(sent + i) % 100] for i in range(batch)))
    read_frames(batch)
    sent += batch
print("%.0f" % (n / (time.perf_counter() - start)))
PY
}

for round in $(seq "$ROUNDS"); do
    for mode in off on; do
        if [ "$mode" = on ]; then
            redis-cli -p "$SPORT" CONFIG SET maxmemory 1gb maxmemory-policy allkeys-lru >/dev/null
        else
            redis-cli -p "$SPORT" CONFIG SET maxmemory 0 maxmemory-policy noeviction >/dev/null
        fi
        for p in 1 16; do
            c0=$(cpu_ns "$SPID")
            rps=$(run_client "$p")
            c1=$(cpu_ns "$SPID")
            echo "$mode $p get $rps $(( (c1 - c0) / 1000 / REQUESTS ))" >>"$WORKDIR/results"
        done
    done
    say "round $round done"
done
printf '%-8s %-4s %12s %14s\n' fence P 'requests/s' 'proxy CPU us/req'
for mode in off on; do
    for p in 1 16; do
        printf '%-8s %-4s %12s %14s\n' "$mode" "$p" "$(med "$mode" "$p" get)" "$(med "$mode" "$p" get 5)"
    done
done

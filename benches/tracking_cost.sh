#!/usr/bin/env bash
# What a tracking source costs a node: redis-server CPU time (clock ticks, from
# /proc/PID/stat) for 300,000 pipelined SETs of 100,000 keys, without and with one
# connection in `CLIENT TRACKING on BCAST` mode (what the proxy opens per node while any of
# its clients tracks), and the bytes of invalidations that connection receives.
#   benches/tracking_cost.sh [rounds]
set -euo pipefail
ROUNDS=${1:-3}
PORT=$((20000 + RANDOM % 10000))
DIR=$(mktemp -d)
redis-server --port "$PORT" --save "" --dir "$DIR" >/dev/null 2>&1 &
SERVER=$!
LISTENER=""
trap 'kill $SERVER ${LISTENER:-} 2>/dev/null; rm -rf "$DIR"' EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.05; done
cpu() { awk '{print $14+$15}' "/proc/$SERVER/stat"; }
bench() { redis-benchmark -p "$PORT" -t set -n 300000 -r 100000 -c 50 -P 16 -q >/dev/null 2>&1; }
for round in $(seq "$ROUNDS"); do
  c0=$(cpu); bench; c1=$(cpu)
  python3 - "$PORT" "$DIR/bytes" <<'PY' &
import os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"HELLO 3\r\nCLIENT TRACKING on BCAST\r\n")
n = 0
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    n += len(d)
    # Written whole, then renamed: the kill may come at any moment.
    open(sys.argv[2] + ".tmp", "w").write(str(n))
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
PY
  LISTENER=$!
  until [[ "$(redis-cli -p "$PORT" info stats | tr -d '\r' | grep -c '^tracking_total_prefixes:1')" == 1 ]]; do sleep 0.05; done
  c2=$(cpu); bench; c3=$(cpu)
  kill "$LISTENER"; wait "$LISTENER" 2>/dev/null || true
  echo "round $round: redis CPU ticks without $((c1 - c0)), with a BCAST listener $((c3 - c2)); invalidation bytes $(cat "$DIR/bytes")"
  rm -f "$DIR/bytes"
done

#!/usr/bin/env bash
# What TLS costs, side by side in one run: redis-benchmark against one redis-server directly
# (plain port and TLS port) and through sluice (a plain pool, and a pool with TLS on both
# sides: clients to sluice and sluice to the node's TLS port).
#
#   bash benches/tls.sh                        # REQUESTS=100000 CLIENTS=50 REPEAT=3
#   SLUICE_BIN=target/release/sluice PIPELINES="1" bash benches/tls.sh
#
# Certificates: the examples in config/tls/ (CA, server certificate for 127.0.0.1). The node
# does not ask for client certificates (tls-auth-clients no), so the TLS pool needs only the CA.
# Targets are interleaved within each round and the tables show the median of REPEAT rounds
# of `redis-benchmark -t TEST -n REQUESTS -c CLIENTS -r 100000 -P P --csv` (plus `--tls
# --cacert` for the TLS targets), with each TLS figure's ratio to its plain counterpart:
# requests/s, and CPU µs per request of the serving process (redis-server, or sluice without
# the node's share), from /proc/PID/task/*/schedstat before and after each run. On a shared
# machine the CPU figure is the steadier one: other load slows a run, not its CPU per request.
#
# Environment: REQUESTS, CLIENTS, REPEAT, PIPELINES (default "1 16"), TESTS (default "SET GET"),
# SLUICE_BIN (a prebuilt binary; otherwise `cargo build --release` is run), BASE_BIN (another
# build, e.g. of the commit before TLS: its plain pool is measured too, to show that plain
# TCP did not get slower).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
REPEAT=${REPEAT:-3}
PIPELINES=${PIPELINES:-"1 16"}
read -r -a TESTS <<<"${TESTS:-SET GET}"
CERTS=$PWD/config/tls

BENCH_NAME=tls
# shellcheck source=benches/bench_lib.sh
source benches/bench_lib.sh

if [ -z "${SLUICE_BIN:-}" ]; then
    say "building sluice (cargo build --release)"
    cargo build --release >&2
    SLUICE_BIN="${CARGO_TARGET_DIR:-target}/release/sluice"
fi
[ -x "$SLUICE_BIN" ] || die "sluice binary not found at $SLUICE_BIN"

# --- one redis-server, plain port and TLS port ---------------------------------------------
declare -A PORT TLSARGS PROC
PORT[redis]=$(pick_port)
PORT[redis_tls]=$(pick_port)
redis-server --port "${PORT[redis]}" --tls-port "${PORT[redis_tls]}" --bind 127.0.0.1 --save '' \
    --appendonly no --tls-cert-file "$CERTS/server.pem" --tls-key-file "$CERTS/server.key" \
    --tls-ca-cert-file "$CERTS/ca.pem" --tls-auth-clients no --logfile "$WORKDIR/redis.log" \
    </dev/null >/dev/null &
PIDS+=($!)
PROC[redis]=$!
PROC[redis_tls]=$!
wait_for "${PROC[redis]}" "[ \"\$(redis-cli -p ${PORT[redis]} PING)\" = PONG ]" || die "redis-server did not start"

# --- sluice: a plain pool and a TLS pool in front of it ------------------------------------
PORT[sluice]=$(pick_port)
PORT[sluice_tls]=$(pick_port)
cat >"$WORKDIR/sluice.toml" <<TOML
[[pools]]
name = "plain"
listen = "127.0.0.1:${PORT[sluice]}"
master = "127.0.0.1:${PORT[redis]}"
max_clients = 10000

[[pools]]
name = "tls"
listen = "127.0.0.1:${PORT[sluice_tls]}"
master = "127.0.0.1:${PORT[redis_tls]}"
max_clients = 10000
tls_cert = "$CERTS/server.pem"
tls_key = "$CERTS/server.key"
backend_tls = true
backend_tls_ca = "$CERTS/ca.pem"
TOML
SLUICE_LOG=warn "$SLUICE_BIN" proxy -c "$WORKDIR/sluice.toml" >"$WORKDIR/sluice.out" 2>"$WORKDIR/sluice.err" </dev/null &
PIDS+=($!)
PROC[sluice]=$!
PROC[sluice_tls]=$!
TLS=(--tls --cacert "$CERTS/ca.pem")
wait_for "${PROC[sluice]}" "[ \"\$(redis-cli -p ${PORT[sluice_tls]} ${TLS[*]} SET tls:probe 1)\" = OK ]" \
    || die "sluice does not serve TLS: $(tail -n 5 "$WORKDIR/sluice.err")"
TARGETS=(redis redis_tls sluice sluice_tls)
if [ -n "${BASE_BIN:-}" ]; then
    PORT[base]=$(pick_port)
    sed -n '1,/^max_clients/p' "$WORKDIR/sluice.toml" | sed "s/127.0.0.1:${PORT[sluice]}/127.0.0.1:${PORT[base]}/" >"$WORKDIR/base.toml"
    SLUICE_LOG=warn "$BASE_BIN" proxy -c "$WORKDIR/base.toml" >"$WORKDIR/base.out" 2>"$WORKDIR/base.err" </dev/null &
    PIDS+=($!)
    PROC[base]=$!
    wait_for "${PROC[base]}" "[ \"\$(redis-cli -p ${PORT[base]} SET tls:probe 1)\" = OK ]" \
        || die "BASE_BIN does not serve: $(tail -n 5 "$WORKDIR/base.err")"
    TARGETS+=(base)
    TLSARGS[base]=""
fi
TLSARGS[redis]=""
TLSARGS[sluice]=""
TLSARGS[redis_tls]="${TLS[*]}"
TLSARGS[sluice_tls]="${TLS[*]}"

# --- runs -----------------------------------------------------------------------------------
say "redis-benchmark -n $REQUESTS -c $CLIENTS, pipelines: $PIPELINES, tests: ${TESTS[*]}, repeat $REPEAT"
for rep in $(seq 1 "$REPEAT"); do
    for p in $PIPELINES; do
        for t in "${TESTS[@]}"; do
            for target in "${TARGETS[@]}"; do
                before=$(cpu_ns "${PROC[$target]}")
                # shellcheck disable=SC2086 # TLSARGS is a word list on purpose.
                out=$(redis-benchmark -p "${PORT[$target]}" ${TLSARGS[$target]} -t "$t" \
                    -n "$REQUESTS" -c "$CLIENTS" -r 100000 -P "$p" --csv 2>>"$WORKDIR/bench.err" </dev/null)
                rps=$(awk -F'"' -v t="$t" 'toupper($2) == t { print $4 }' <<<"$out")
                after=$(cpu_ns "${PROC[$target]}")
                [ -n "$rps" ] || die "no $t result from $target: $out $(tail -n 3 "$WORKDIR/bench.err")"
                cpu=$(awk -v a="$before" -v b="$after" -v n="$REQUESTS" 'BEGIN { printf "%.3f", (b - a) / n / 1000 }')
                echo "$target $p $t $rps $cpu" >>"$WORKDIR/results"
                say "round $rep/$REPEAT -P $p $t $target: $rps req/s, $cpu µs CPU/req"
            done
        done
    done
done

# --- table ----------------------------------------------------------------------------------

echo
echo "redis-benchmark -n $REQUESTS -c $CLIENTS -r 100000 --csv; median of $REPEAT interleaved rounds; $(nproc) CPUs"
table() {
    local col=$1 base_head="" base_rule=""
    [ -n "${BASE_BIN:-}" ] && { base_head=" sluice BASE_BIN (plain) | sluice / BASE_BIN |"; base_rule="---|---|"; }
    echo "| test | -P | redis | redis TLS | sluice | sluice TLS (both sides) |$base_head"
    echo "|---|---|---|---|---|---|$base_rule"
    for p in $PIPELINES; do
        for t in "${TESTS[@]}"; do
            r=$(med redis "$p" "$t" "$col"); rt=$(med redis_tls "$p" "$t" "$col")
            s=$(med sluice "$p" "$t" "$col"); st=$(med sluice_tls "$p" "$t" "$col")
            row="| $t | $p | $r | $rt ($(ratio "$rt" "$r")) | $s | $st ($(ratio "$st" "$s")) |"
            if [ -n "${BASE_BIN:-}" ]; then
                b=$(med base "$p" "$t" "$col")
                row+=" $b | $(ratio "$s" "$b") |"
            fi
            echo "$row"
        done
    done
}
echo "requests/s (TLS columns: ratio to the plain column beside them)"
echo
table 4
echo
echo "CPU µs per request of the serving process (redis-server; sluice without the node)"
echo
table 5

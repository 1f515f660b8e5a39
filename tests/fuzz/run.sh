#!/usr/bin/env bash
# Runs sluice's fuzz targets with libFuzzer on the stable toolchain, one after the other.
#
#   tests/fuzz/run.sh                       # every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=600 tests/fuzz/run.sh reply_scanner
#   tests/fuzz/run.sh request_decoder -- -jobs=1 -max_len=8192   # extra libFuzzer flags
#
# Targets: request_decoder, reply_scanner, command_classifier, config_parser.
# No nightly needed: instead of `cargo fuzz` (which asks for -Zsanitizer), the SanitizerCoverage
# pass is requested with stable -C flags, the same ones cargo-fuzz passes, and libfuzzer-sys
# links libFuzzer, which reads those counters; the corpus growing ("NEW" lines, cov/ft rising)
# shows the feedback works. No AddressSanitizer: safe Rust needs none for memory safety; debug
# assertions and overflow checks are on, so an overflow is a crash here.
#
# Corpora grow in tests/fuzz/corpus/<target>/ (seeded from tests/fuzz/seeds/ and, for the
# config, config/*.toml); crashes land in tests/fuzz/artifacts/<target>/. Both are git-ignored.
# Replay one: tests/fuzz/target/<triple>/release/<target> tests/fuzz/artifacts/<target>/crash-...
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

all=(request_decoder reply_scanner command_classifier config_parser)
targets=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    targets+=("$1")
    shift
done
[ "${1:-}" = "--" ] && shift
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
seconds="${FUZZ_SECONDS:-60}"

triple="$(rustc -vV | sed -n 's/^host: //p')"
# --target keeps these flags off build scripts and proc macros, which run on the host and must
# not need libFuzzer's hooks.
export RUSTFLAGS="${RUSTFLAGS:-} --cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks"
nice -n 19 cargo build --release --target "$triple" --bins

# Dictionaries: words the fuzzer could not guess byte by byte.
dicts="$here/target/dicts"
mkdir -p "$dicts"
{
    # Every command and subcommand name, upper case, and the keywords the classifier reads.
    awk -F'\t' '!/^#/ { n = toupper($1); split(n, p, "|"); print "\"" p[1] "\""; if (p[2] != "") print "\"" p[2] "\"" }' \
        "$root/src/command/commands.tsv" | sort -u
    for w in BLOCK STREAMS WITHSCORES WITHVALUES COUNT KEYS STORE STOREDIST GET BY LEFT RIGHT \
        LIMIT WEIGHTS AGGREGATE NUMKEYS REV BYSCORE BYLEX; do
        echo "\"$w\""
    done
} >"$dicts/command_classifier.dict"
{
    grep -v '^#' "$dicts/command_classifier.dict" | head -400
    printf '"%s"\n' '\r\n' '*1\r\n' '*2\r\n' '$3\r\n' '$-1\r\n' '*0\r\n' '*-1\r\n' '\"' "'" '\\x4'
} >"$dicts/request_decoder.dict"
printf '"%s"\n' '\r\n' '*1\r\n' '*2\r\n' '%1\r\n' '~2\r\n' '>3\r\n' '|1\r\n' '$3\r\n' '$-1\r\n' \
    '*-1\r\n' '_\r\n' ',1.5\r\n' ',inf\r\n' ',nan\r\n' '#t\r\n' '(123\r\n' '=7\r\ntxt:' '!3\r\n' \
    ':1\r\n' '+OK\r\n' '-ERR\r\n' '$?\r\n' >"$dicts/reply_scanner.dict"
{
    # Every key the raw config structs know, and the values with a fixed vocabulary.
    sed -n 's/^ *pub \([a-z_][a-z_0-9]*\): .*/"\1"/p' "$root/src/config/raw.rs" | sort -u
    printf '"%s"\n' '[[pools]]' '[[pools.users]]' '[admin]' ' = ' '\"' "'''" \
        standalone sentinel cluster master replica primary any read read-write admin users \
        password passthrough true false 10s 500ms 1m 2h 1KiB 64MiB 1GiB 1MB 127.0.0.1:6379 0.0.0.0:0 \
        '[::1]:6380' 'app:*'
} >"$dicts/config_parser.dict"
# libFuzzer's dictionary syntax knows only \\, \" and \xNN escapes.
sed -i 's/\\r/\\x0D/g; s/\\n/\\x0A/g' "$dicts"/*.dict

for t in "${targets[@]}"; do
    corpus="$here/corpus/$t"
    artifacts="$here/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    [ -d "$here/seeds/$t" ] && cp -n "$here/seeds/$t"/* "$corpus"/ 2>/dev/null || true
    if [ "$t" = config_parser ]; then
        for f in "$root"/config/*.toml; do cp -n "$f" "$corpus/seed-$(basename "$f")"; done
    fi
    echo "==> $t: ${seconds}s, corpus $corpus"
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb/-malloc_limit_mb: memory use
    # out of proportion to a 4 KiB input is a finding.
    nice -n 19 "$here/target/$triple/release/$t" "$corpus" \
        -dict="$dicts/$t.dict" -artifact_prefix="$artifacts/" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -print_final_stats=1 "$@"
done

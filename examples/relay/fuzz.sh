#!/usr/bin/env bash
# Fuzz writevv-relay's HTTP/WebSocket parsers (fuzz/fuzz_proto.c) with
# libFuzzer + ASan + UBSan, bounded in time, from the seed corpus.
#   examples/relay/fuzz.sh [SECONDS]     (default 60; env FUZZ_JOBS, BUILD_DIR)
# Exits non-zero on a crash, leak, sanitizer report or broken invariant; the
# reproducer is left in $BUILD_DIR/relay-fuzz-artifacts/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-60}
build=${BUILD_DIR:-$root/build-relay-fuzz}

CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DWRITEVV_RELAY_FUZZ=ON -DWRITEVV_BUILD_TESTS=OFF -DWRITEVV_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target writevv-relay-fuzz -j2 >/dev/null
bin=$(find "$build" -name writevv-relay-fuzz -type f -perm -u+x | head -n1)

corpus="$build/relay-fuzz-corpus"
mkdir -p "$corpus" "$build/relay-fuzz-artifacts"
cp -n "$here"/fuzz/seeds/* "$corpus"/
echo "fuzzing the relay parsers for ${seconds}s (corpus $corpus)"
"$bin" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=1024 \
	-print_final_stats=1 -artifact_prefix="$build/relay-fuzz-artifacts/" \
	"$corpus" 2>&1 | tail -n 25

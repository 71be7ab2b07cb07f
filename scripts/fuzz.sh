#!/usr/bin/env bash
# Coverage-guided differential fuzzing of writevv (tests/fuzz/README.md).
#
#   scripts/fuzz.sh [SECONDS_PER_ENGINE]   fuzz each engine in turn (default 35 s
#                                          each, six engines: about 3.5 minutes)
#   scripts/fuzz.sh --repro FILE [ENGINE]  run one input again (ENGINE: from the
#                                          file name <engine>-crash-..., else "all")
#
# Builds fuzz_writevv (clang, libFuzzer + ASan + UBSan) in its own build
# directory, loads the BPF program with the real loader into a pin directory
# of its own, runs libFuzzer with each engine pinned (WVV_FUZZ_ENGINE), prints
# the executions per engine, unloads, and exits non-zero if any engine found a
# crash, a mismatch with the writev loop, a leak, a hang or an out-of-memory.
# Crash inputs are kept in $FUZZ_BUILD_DIR/crashes/<engine>-*.
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_PIN_DIR (default
# /sys/fs/bpf/writevv-fuzz), FUZZ_ENGINES (default: all six).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$here/build-fuzz}
pin=${FUZZ_PIN_DIR:-/sys/fs/bpf/writevv-fuzz}
engines=${FUZZ_ENGINES:-default iouring sendfile zerocopy kernel userland}
all_engines="default iouring sendfile zerocopy kernel userland"

repro=""
secs=35
if [ "${1:-}" = "--repro" ]; then
	repro=${2:?usage: $0 --repro FILE [ENGINE]}
	[ -f "$repro" ] || { echo "fuzz.sh: $repro: no such file" >&2; exit 2; }
	repro=$(cd "$(dirname "$repro")" && pwd)/$(basename "$repro")
	engine=${3:-}
	if [ -z "$engine" ]; then
		engine=all
		for e in $all_engines; do
			case "$(basename "$repro")" in "$e"-*) engine=$e ;; esac
		done
	fi
elif [ $# -gt 0 ]; then
	secs=$1
	case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_ENGINE] | --repro FILE [ENGINE]" >&2; exit 2 ;; esac
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "fuzz.sh: run as root: it loads the BPF program for the kernel engine" >&2
	exit 1
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

echo "== building fuzz_writevv in $build"
CC=clang cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	-DWRITEVV_FUZZ=ON -DWRITEVV_BUILD_TESTS=OFF -DWRITEVV_BUILD_EXAMPLES=OFF \
	-DWRITEVV_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_writevv writevv-loader >/dev/null
fuzzer=$build/tests/fuzz/fuzz_writevv
loader=$build/writevv-loader

"$loader" unload --pin-dir "$pin" >/dev/null 2>&1 || true
"$loader" load --pin-dir "$pin" >/dev/null
trap '"$loader" unload --pin-dir "$pin" >/dev/null 2>&1 || true' EXIT
export WRITEVV_PIN_DIR=$pin

# Bounded memory: a call that allocates more than 256 MiB at once (the largest payload an input can make is 5 MiB), or a process
# above 2 GiB resident, is a finding (writevv's memory must follow from what a
# call passes, never from descriptor numbers).
opts=(-rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=60 -max_len=4096)

if [ -n "$repro" ]; then
	echo "== reproducing $repro (engine $engine)"
	WVV_FUZZ_ENGINE=$engine "$fuzzer" "${opts[@]}" "$repro"
	exit $?
fi

mkdir -p "$build/crashes"
status=0
summary=()
for e in $engines; do
	work=$build/fuzz-corpus/$e
	log=$build/fuzz-$e.log
	mkdir -p "$work"
	echo "== $e: fuzzing for $secs s (log $log)"
	rc=0
	WVV_FUZZ_ENGINE=$e nice "$fuzzer" "${opts[@]}" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$build/crashes/$e-" "$work" "$here/tests/fuzz/corpus" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	if [ "$rc" -ne 0 ]; then
		status=1
		found=$(sed -n "s/^.*Test unit written to //p" "$log" | tail -1)
		grep -A3 '^==== writevv differs' "$log" || grep -m1 -E 'ERROR: libFuzzer|SUMMARY:|runtime error' "$log" || tail -5 "$log"
		summary+=("$e: ${execs:-?} executions, FAILED (exit $rc) ${found:+- input $found}")
		[ -n "$found" ] && echo "   reproduce: $0 --repro $found"
	else
		summary+=("$e: ${execs:-?} executions, no finding")
	fi
done

echo "== fuzz summary ($secs s per engine)"
printf '  %s\n' "${summary[@]}"
exit $status

#!/bin/sh
# Flat kernel+user profiles of the sending thread, one engine at a time,
# open loop only (CALLS calls per repetition, default 50).
# usage: bench/profile.sh [BENCH] [RECV] [TARGETS] [PAYLOAD] [ENGINES...]
# Needs perf; hardware counters are not required (cpu-clock sampling).
set -e
BENCH=${1:-./build/bench/writevv-bench}
RECV=${2:-nic}
TARGETS=${3:-1000}
PAYLOAD=${4:-1400}
shift 4 2>/dev/null || shift $#
ENGINES=${*:-loop uring memfd sendzc wvv-kernel}
OUT=${PROFILE_DIR:-/tmp/writevv-profile}
mkdir -p "$OUT"
for e in $ENGINES; do
	perf record -q -e cpu-clock -g -o "$OUT/$e.data" -- \
		"$BENCH" --workload grid --recv "$RECV" --targets "$TARGETS" --payloads "$PAYLOAD" \
		--reps 3 --closed-calls 0 --calls "${CALLS:-50}" --engines "$e" >"$OUT/$e.txt" 2>&1
	echo "==== $e ($RECV, $TARGETS targets x $PAYLOAD B): sender thread (comm writevv-bench), top symbols"
	perf report -q -i "$OUT/$e.data" --comm writevv-bench --percentage relative \
		--no-children --sort sym --stdio \
		-g none 2>/dev/null | grep -v '^$' | head -${TOP:-25}
done

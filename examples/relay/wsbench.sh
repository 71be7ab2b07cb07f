#!/usr/bin/env bash
# WebSocket broadcast benchmark: writevv-relay (--mode default, userland)
# against a Node.js 'ws' server (bench/ws_broadcast.js) and uWebSockets' own
# publish (bench/uws_broadcast.cpp), all driven by the same load client
# (writevv-relay-loadgen ws: N verifying subscribers and one WebSocket
# publisher of /ws/bench; see wsload.c).  Servers on CPU 0, the load client
# on CPU 1; the server's CPU is read from /proc/PID/stat by the client over
# each phase.  For each subscriber count and message size: a fixed-rate phase
# and a search for the highest sustained rate.  Servers are interleaved within
# each repetition; the table gives medians over the repetitions.
#
#   examples/relay/wsbench.sh BUILD_DIR [options]
#     --servers "relay-default relay-userland node uws"
#     --subs "1000 10000"
#     --sizes 64,1024,16384
#     --rates-1000 50,50,20     fixed rates (messages/s) per size, 1000 subscribers
#     --rates-10000 5,5,2       ... 10000 subscribers (any count: --rates-N)
#     --seconds 4               fixed-rate phase
#     --step-seconds 1.5        max-rate search steps (rate x2, then 2 bisections)
#     --p99-bound-1000 500      a step is sustained if its p99 is within this (ms),
#     --p99-bound-10000 1500    ... per subscriber count (one broadcast to 10k
#                               sockets takes ~0.1-0.2 s of a core by itself)
#     --repeat 3
#     --uws-src DIR             DIR/uWebSockets and DIR/uSockets: checkouts of
#                               uNetworking/uWebSockets and uNetworking/uSockets
#                               (or env UWS_SRC); never part of this repository
#     --out DIR                 JSON of every run and the table (default: a temp dir)
#
# Needs: node with Debian's node-ws, g++, jq, taskset.  10k connections need
# RLIMIT_NOFILE > 10k (raised to the hard limit here); stock sysctls.
set -u
BUILD=${1:?usage: wsbench.sh BUILD_DIR [options]}; shift
HERE=$(cd "$(dirname "$0")" && pwd)
SERVERS="relay-default relay-userland node uws"
SUBS="1000 10000"; SIZES=64,1024,16384; SECS=4; STEP=1.5; REPEAT=3
UWS_SRC=${UWS_SRC:-}; OUT=
declare -A RATES=([1000]=50,50,20 [10000]=5,5,2) BOUNDS=([1000]=500 [10000]=1500)
while [ $# -gt 0 ]; do
	case "$1" in
	--servers) SERVERS=$2; shift 2 ;;
	--subs) SUBS=$2; shift 2 ;;
	--sizes) SIZES=$2; shift 2 ;;
	--rates-*) RATES[${1#--rates-}]=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	--step-seconds) STEP=$2; shift 2 ;;
	--p99-bound-*) BOUNDS[${1#--p99-bound-}]=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--uws-src) UWS_SRC=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
RELAY=$BUILD/examples/relay/writevv-relay
LOADGEN=$BUILD/examples/relay/writevv-relay-loadgen
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/wsbench.XXXXXX)
mkdir -p "$OUT"
export NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs:${NODE_PATH:-}
ulimit -n "$(ulimit -Hn)"
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# uWebSockets: header-only, on uSockets' objects (no TLS, no zlib); the flags
# of its own build (-O3 -march=native).
build_uws() {
	local s=$UWS_SRC b=$OUT/uws-build
	[ -n "$s" ] && [ -f "$s/uWebSockets/src/App.h" ] && [ -f "$s/uSockets/src/libusockets.h" ] || {
		echo "wsbench: --uws-src DIR (or UWS_SRC) must hold uWebSockets/ and uSockets/ checkouts" >&2
		return 1
	}
	[ -x "$b/uws_broadcast" ] && return 0
	mkdir -p "$b" && (cd "$b" &&
		gcc -O3 -march=native -DLIBUS_NO_SSL -std=c11 -I"$s/uSockets/src" -c \
			"$s"/uSockets/src/*.c "$s"/uSockets/src/eventing/*.c "$s"/uSockets/src/crypto/*.c &&
		g++ -O3 -march=native -std=c++20 -DLIBUS_NO_SSL -DUWS_NO_ZLIB -w \
			-I"$s/uWebSockets/src" -I"$s/uSockets/src" "$HERE/bench/uws_broadcast.cpp" ./*.o \
			-o uws_broadcast) >"$OUT/uws-build.log" 2>&1 || {
		echo "wsbench: building uws_broadcast failed, see $OUT/uws-build.log" >&2; return 1; }
}

# start_server NAME: sets SPID and PORT
start_server() {
	local log=$OUT/server.log
	: > "$log"
	case "$1" in
	relay-*) taskset -c 0 "$RELAY" --mode "${1#relay-}" --listen 127.0.0.1:0 --ingest 127.0.0.1:0 \
			--client-publish >"$log" 2>&1 & ;;
	node) taskset -c 0 node "$HERE/bench/ws_broadcast.js" 127.0.0.1 0 >"$log" 2>&1 & ;;
	uws) taskset -c 0 "$OUT/uws-build/uws_broadcast" 127.0.0.1 0 >"$log" 2>&1 & ;;
	*) echo "wsbench: unknown server $1" >&2; return 1 ;;
	esac
	SPID=$!
	PORT=
	for _ in $(seq 100); do
		case "$1" in
		relay-*) PORT=$(sed -n 's#.*viewers on http://[^ ]*:\([0-9][0-9]*\)/.*#\1#p' "$log") ;;
		*) PORT=$(sed -n 's/^listening on \(.*:\)\{0,1\}\([0-9][0-9]*\)$/\2/p' "$log") ;;
		esac
		[ -n "$PORT" ] && return 0
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1
	done
	echo "wsbench: $1 did not start: $(head -n3 "$log")" >&2
	return 1
}

case " $SERVERS " in *" uws "*) build_uws || exit 1 ;; esac
{
	echo "# $(date -u +%FT%TZ) $(uname -sr), $(nproc) CPUs: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n1)"
	echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# relay $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null), node $(node --version)," \
		"ws $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' /usr/share/nodejs/ws/package.json 2>/dev/null)," \
		"uWebSockets $(git -C "$UWS_SRC/uWebSockets" rev-parse --short HEAD 2>/dev/null || echo "${UWS_SRC:-none}")"
} | tee "$OUT/machine.txt" >&2

for rep in $(seq "$REPEAT"); do
	for n in $SUBS; do
		rates=${RATES[$n]:-${RATES[1000]}}; bound=${BOUNDS[$n]:-${BOUNDS[1000]}}
		for srv in $SERVERS; do
			start_server "$srv" || continue
			f=$OUT/r$rep-$n-$srv.json
			echo "# rep $rep, $n subscribers, $srv (port $PORT, pid $SPID), load $(cut -d' ' -f1 /proc/loadavg)" >&2
			taskset -c 1 "$LOADGEN" ws --to "127.0.0.1:$PORT" --path /ws/bench --subs "$n" \
				--sizes "$SIZES" --rates "$rates" --seconds "$SECS" --max \
				--step-seconds "$STEP" --p99-bound-ms "$bound" --server-pid "$SPID" >"$f" ||
				echo "# rep $rep $n $srv: the load client reported a failure (exit $?)" >&2
			kill "$SPID"; wait "$SPID" 2>/dev/null; SPID=
			sleep 1 # TIME_WAIT and the listen socket gone
		done
	done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2
/usr/bin/python3 "$HERE/bench/wsbench_table.py" "$OUT" "$OUT/phases.csv" | tee "$OUT/table.md"

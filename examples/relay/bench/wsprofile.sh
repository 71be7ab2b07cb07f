#!/usr/bin/env bash
# Where a WebSocket broadcast server's time goes: perf record -g of one
# server (pinned to CPU 0) while `writevv-relay-loadgen ws` (CPU 1) drives
# N subscribers at a fixed rate; prints the top symbols (self), the shares of
# the main kernel paths (children) and the user-space share.
#   examples/relay/bench/wsprofile.sh BUILD_DIR SERVER [SUBS] [SIZE] [RATE] [SECONDS]
#   SERVER: relay-default, relay-userland, ... (any --mode), node, or uws (needs
#   UWS_BIN, the uws_broadcast that wsbench.sh built).  Needs linux-perf.
set -u
BUILD=${1:?usage: wsprofile.sh BUILD_DIR SERVER [SUBS] [SIZE] [RATE] [SECONDS]}
SRV=${2:?server}; SUBS=${3:-10000}; SIZE=${4:-1024}; RATE=${5:-20}; SECS=${6:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/wsprofile.XXXXXX)
export NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs:${NODE_PATH:-}
ulimit -n "$(ulimit -Hn)"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
case "$SRV" in
relay-*) taskset -c 0 "$BUILD/examples/relay/writevv-relay" --mode "${SRV#relay-}" --listen 127.0.0.1:0 \
		--ingest 127.0.0.1:0 --client-publish >"$W/s.log" 2>&1 & ;;
node) taskset -c 0 node "$HERE/ws_broadcast.js" 127.0.0.1 0 >"$W/s.log" 2>&1 & ;;
uws) taskset -c 0 "${UWS_BIN:?UWS_BIN=path of uws_broadcast}" 127.0.0.1 0 >"$W/s.log" 2>&1 & ;;
*) echo "unknown server $SRV" >&2; exit 2 ;;
esac
SP=$!
for _ in $(seq 100); do
	PORT=$(sed -n -e 's#.*viewers on http://[^ ]*:\([0-9][0-9]*\)/.*#\1#p' \
		-e 's/^listening on \(.*:\)\{0,1\}\([0-9][0-9]*\)$/\2/p' "$W/s.log")
	[ -n "$PORT" ] && break; sleep 0.1
done
[ -n "$PORT" ] || { echo "$SRV did not start: $(cat "$W/s.log")" >&2; exit 1; }
taskset -c 1 "$BUILD/examples/relay/writevv-relay-loadgen" ws --to "127.0.0.1:$PORT" --subs "$SUBS" \
	--sizes "$SIZE" --rates "$RATE" --warmup 2 --seconds $((SECS + 4)) --server-pid "$SP" >"$W/load.json" &
LP=$!
# after the connections and the warm-up
for _ in $(seq 600); do [ "$(ls /proc/$SP/fd | wc -l)" -gt "$SUBS" ] && break; sleep 0.1; done
sleep 3
perf record -q -g -p "$SP" -o "$W/perf.data" -- sleep "$SECS" 2>/dev/null
wait $LP
echo "== $SRV, $SUBS subscribers x $SIZE B at $RATE msg/s: $(jq -c '[.phases[] | select(.kind == "fixed") | {delivered, expected, p50_ms: (.p50_us / 1000), p99_ms: (.p99_us / 1000), server_cpu_s, deliveries_per_core_s}]' "$W/load.json")"
echo "-- by object (self)"
perf report -i "$W/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -6
echo "-- top symbols (self)"
perf report -i "$W/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -25 | cut -c1-110
echo "-- kernel paths (children)"
perf report -i "$W/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' |
	grep -E '\] (__sys_sendmsg|__sys_sendto|__do_sys_io_uring_enter|tcp_write_xmit|net_rx_action|tcp_v4_rcv|sock_def_readable|_copy_from_iter|__x64_sys_fcntl|do_sendfile|__x64_sys_epoll_wait|ep_poll_callback|__alloc_skb) ' | cut -c1-80

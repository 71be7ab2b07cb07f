# Shared helpers for the writevv-relay tests (sourced by bash).
# Usage of a test: TEST.sh RELAY LOADGEN LOADER MODE THREADS
set -u
set -o pipefail

RELAY=$1
LOADGEN=$2
LOADER=$3
MODE=$4
THREADS=${5:-1}
TEST_NAME=$(basename "$0" .sh)

W=$(mktemp -d "${TMPDIR:-/tmp}/relay-${TEST_NAME}-${MODE}.XXXXXX")
RELAY_PID=
LPORT=
IPORT=
FAILS=0
CHECKS=0

log() { printf '[%s %s] %s\n' "$TEST_NAME" "$MODE" "$*"; }
fail() { log "FAIL: $*"; FAILS=$((FAILS + 1)); CHECKS=$((CHECKS + 1)); }
pass() { log "ok: $*"; CHECKS=$((CHECKS + 1)); }
die() {
	log "FATAL: $*"
	[ -f "$W/relay.log" ] && { log "relay log:"; tail -n 30 "$W/relay.log"; }
	exit 1
}
check() { # check DESCRIPTION COMMAND...
	local d=$1; shift
	if "$@"; then pass "$d"; else fail "$d"; fi
}

cleanup() {
	local pids
	pids=$(jobs -p)
	[ -n "$pids" ] && kill $pids 2>/dev/null
	[ -n "$RELAY_PID" ] && kill -9 "$RELAY_PID" 2>/dev/null
	wait 2>/dev/null
	if [ "${KEEP_WORK:-0}" = 1 ]; then log "work dir kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 ||
			die "'$t' is required (Debian: apt-get install -y ffmpeg curl jq)"
	done
}

# wait_until TIMEOUT_S COMMAND...: poll every 0.1 s
wait_until() {
	local deadline=$(( $(date +%s) + $1 )); shift
	until "$@"; do
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

mode_args() {
	case "$MODE" in
	default|kernel|userland) echo "--mode $MODE" ;;
	*) die "unknown mode $MODE" ;;
	esac
}

# start_relay ARGS...: starts the relay with port 0 unless ARGS say otherwise,
# sets RELAY_PID, LPORT, IPORT.  Kernel mode loads the BPF program first if
# the relay says it is not loaded, and never falls back silently.
start_relay() {
	local try
	for try in 1 2; do
		: > "$W/relay.log"
		"$RELAY" $(mode_args) --threads "$THREADS" "$@" <&0 >>"$W/relay.log" 2>&1 &
		RELAY_PID=$!
		wait_until 10 eval "grep -q 'viewers on http://' '$W/relay.log' || ! kill -0 $RELAY_PID 2>/dev/null"
		if grep -q 'viewers on http://' "$W/relay.log"; then
			break
		fi
		if ! kill -0 "$RELAY_PID" 2>/dev/null; then
			wait "$RELAY_PID"
			if [ "$MODE" = kernel ] && [ "$try" = 1 ] &&
			   grep -q 'BPF program is not loaded' "$W/relay.log"; then
				log "kernel mode: BPF program not loaded; running $LOADER load"
				"$LOADER" load >"$W/loader.log" 2>&1 ||
					{ cat "$W/loader.log"; die "writevv-loader load failed"; }
				continue
			fi
		fi
		die "relay did not start"
	done
	LPORT=$(sed -n 's#.*viewers on http://[^ ]*:\([0-9][0-9]*\)/.*#\1#p' "$W/relay.log" | head -n1)
	IPORT=$(sed -n 's#.*publisher on tcp://.*:\([0-9][0-9]*\)$#\1#p' "$W/relay.log" | head -n1)
	[ -n "$LPORT" ] || die "no viewer port in the relay log"
	local engine
	engine=$(stat_field engine)
	log "relay pid $RELAY_PID, viewers :$LPORT, ingest :${IPORT:-stdin}, engine $engine, threads $THREADS"
	if [ "$MODE" = kernel ] && [ "$engine" != kernel ]; then
		die "kernel mode asked for but the engine in use is '$engine'"
	fi
	if [ "$MODE" = userland ] && [ "$engine" != userland ]; then
		die "userland mode asked for but the engine in use is '$engine'"
	fi
}

stats() { curl -sS --max-time 5 "http://127.0.0.1:$LPORT/stats"; }
stat_field() { stats | jq -r ".$1"; }

viewers_are() { [ "$(stat_field viewers)" = "$1" ]; }

stop_relay() { # SIGTERM, expect a clean exit 0 within 10 s
	local rc
	kill -TERM "$RELAY_PID"
	if ! wait_until 10 bash -c "! kill -0 $RELAY_PID 2>/dev/null"; then
		fail "relay did not stop on SIGTERM"
		kill -9 "$RELAY_PID"
	fi
	wait "$RELAY_PID"; rc=$?
	check "relay exits 0 on SIGTERM (rc=$rc)" test "$rc" = 0
	RELAY_PID=
}

# start_redis: a redis-server on a free private port (RPORT), without
# persistence, and $W/redisctl.sh {start|stop} to restart it there.  The
# caller's EXIT trap must run "bash $W/redisctl.sh stop" (it runs daemonized).
start_redis() {
	RPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$W/redisctl.sh" <<EOT
case \$1 in
start)
	redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no --dir "$W" \
		--daemonize yes --pidfile "$W/redis.pid" --logfile "$W/redis.log" || exit 1
	for i in \$(seq 100); do redis-cli -p $RPORT ping >/dev/null 2>&1 && exit 0; sleep 0.1; done
	exit 1 ;;
stop)
	pid=\$(cat "$W/redis.pid") && kill -9 "\$pid"
	while kill -0 "\$pid" 2>/dev/null; do sleep 0.05; done ;;
esac
EOT
	bash "$W/redisctl.sh" start || die "redis-server did not start on port $RPORT"
	log "redis-server on 127.0.0.1:$RPORT"
}

# start_node LOG ARGS...: one more relay (start_relay's is node 1) with its
# own log; sets NODE_PID, NODE_PORT.
start_node() {
	local out=$1; shift
	"$RELAY" $(mode_args) "$@" >"$out" 2>&1 &
	NODE_PID=$!
	wait_until 10 grep -q 'viewers on http://' "$out" || die "a relay node did not start ($out)"
	NODE_PORT=$(sed -n 's#.*viewers on http://[^ ]*:\([0-9][0-9]*\)/.*#\1#p' "$out")
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# ts_file OUT SECONDS BITRATE: an MPEG-TS test stream from ffmpeg, padded to a
# constant mux rate so its size is predictable.
ts_file() {
	ffmpeg -hide_banner -loglevel error -nostdin -y \
		-f lavfi -i "testsrc=duration=$2:size=320x240:rate=25" \
		-c:v mpeg2video -b:v 1M -g 25 -muxrate "$3" -f mpegts "$1" ||
		die "ffmpeg could not generate the test stream"
}

finish() {
	log "$CHECKS checks, $FAILS failed"
	[ "$FAILS" = 0 ] || { log "relay log:"; tail -n 40 "$W/relay.log"; exit 1; }
	exit 0
}

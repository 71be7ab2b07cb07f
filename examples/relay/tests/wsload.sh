#!/usr/bin/env bash
# The benchmark's load client (writevv-relay-loadgen ws) cannot rot: 50
# WebSocket subscribers and a WebSocket publisher of 200 messages of each of
# 64 B, 1 KiB and 16 KiB, against the relay (--client-publish) and against
# the Node ws server of the benchmark (bench/ws_broadcast.js); every message
# counted and verified at every subscriber by the client, and the JSON checked
# here.  A relay without --client-publish delivers nothing: the client must
# say so (its verdict is not vacuous).  No timing is asserted.
. "$(dirname "$0")/lib.sh"
need jq node
D=$(cd "$(dirname "$0")/.." && pwd)
SUBS=50; COUNT=200

# check_run NAME JSON RC: every fixed phase complete, verified, in order
check_run() {
	local name=$1 j=$2 rc=$3
	check "$name: the load client exits 0 (rc=$rc)" test "$rc" = 0
	check "$name: $SUBS subscribers connected" test "$(jq .connected "$j")" = "$SUBS"
	check "$name: 3 fixed phases of $COUNT messages" \
		test "$(jq '[.phases[] | select(.kind == "fixed" and .published == '$COUNT')] | length' "$j")" = 3
	check "$name: each delivered $((SUBS * COUNT)) messages" \
		test "$(jq '[.phases[] | select(.kind == "fixed") | .delivered] | unique' -c "$j")" = "[$((SUBS * COUNT))]"
	check "$name: no gap, duplicate or verification failure" \
		test "$(jq '[.phases[] | .gaps + .dups + .verify_fail] | add' "$j")" = 0
	check "$name: latencies recorded" \
		test "$(jq '[.phases[] | select(.kind == "fixed" and .p50_us > 0 and .p99_us >= .p50_us)] | length' "$j")" = 3
}

run_client() { # PORT JSON [ARGS]
	local port=$1 out=$2; shift 2
	timeout 120 "$LOADGEN" ws --to "127.0.0.1:$port" --path /ws/smoke --subs "$SUBS" \
		--sizes 64,1024,16384 --rates 2000 --count "$COUNT" --warmup 0 "$@" >"$out" 2>"$out.err"
}

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --client-publish
run_client "$LPORT" "$W/relay.json"; rc=$?
log "relay: $(jq -c '[.phases[] | [.size, .delivered, .p50_us, .p99_us]]' "$W/relay.json")"
check_run relay "$W/relay.json" "$rc"
# the relay's own count: 3 x COUNT messages, each to the subscribers and the publisher
check "the relay delivered $((3 * COUNT * (SUBS + 1))) messages" \
	test "$(stats | jq .deliveries)" = "$((3 * COUNT * (SUBS + 1)))"
stop_relay

NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs node "$D/bench/ws_broadcast.js" 127.0.0.1 0 >"$W/node.log" 2>&1 &
NPID=$!
wait_until 20 grep -q '^listening on' "$W/node.log" || die "ws_broadcast.js did not start: $(cat "$W/node.log")"
NPORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$W/node.log")
run_client "$NPORT" "$W/node.json"; rc=$?
log "node ws: $(jq -c '[.phases[] | [.size, .delivered, .p50_us, .p99_us]]' "$W/node.json")"
check_run "node ws" "$W/node.json" "$rc"
kill "$NPID"; wait "$NPID" 2>/dev/null

# The checks are not vacuous: one message in 10 corrupted by the publisher
# (--inject-corrupt 10: seqs 5, 15, ..): 60 of 600 at each subscriber.
start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --client-publish
run_client "$LPORT" "$W/corrupt.json" --inject-corrupt 10; rc=$?
check "corrupted messages: the load client fails (rc=$rc)" test "$rc" = 1
check "corrupted messages: $((SUBS * 60)) verification failures" \
	test "$(jq '[.phases[] | .verify_fail] | add' "$W/corrupt.json")" = $((SUBS * 60))
check "corrupted messages: each seen as a gap of one by the next message" \
	test "$(jq '[.phases[] | .gaps] | add' "$W/corrupt.json")" = $((SUBS * 60))
check "corrupted messages: the others delivered" \
	test "$(jq '[.phases[] | .delivered] | add' "$W/corrupt.json")" = $((SUBS * 540))
stop_relay

# Without --client-publish the relay does not publish client frames.
start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0
timeout 120 "$LOADGEN" ws --to "127.0.0.1:$LPORT" --path /ws/smoke --subs 5 --sizes 64 --rates 100 \
	--count 5 --warmup 0 --grace-ms 100 >"$W/nopub.json" 2>"$W/nopub.err"; rc=$?
check "no --client-publish: the load client fails (rc=$rc)" test "$rc" = 1
check "no --client-publish: nothing delivered" \
	test "$(jq '[.phases[] | .delivered] | add' "$W/nopub.json")" = 0
stop_relay
finish

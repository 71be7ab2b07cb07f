#!/usr/bin/env bash
# HTTP handling with --stdin: bad requests get the proper 4xx and are closed
# without disturbing a viewer that is streaming meanwhile; /stats is JSON;
# the relay exits 0 once stdin ends and its viewers are served; a second
# relay on a port in use fails with a clear message.
. "$(dirname "$0")/lib.sh"
need curl jq

mkfifo "$W/in"
# start_relay sets variables, so run it in this shell with the FIFO opened
# for writing by a helper that holds it until we take over.
sleep 600 >"$W/in" &
HOLDER=$!
start_relay --listen 127.0.0.1:0 --stdin <"$W/in"
exec 7>"$W/in"
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null

# A pattern-checking viewer streams through the whole test.
"$LOADGEN" view --to "127.0.0.1:$LPORT" --conns 1 --verify --seconds 60 >"$W/view.json" 2>&1 7>&- &
VIEW_PID=$!
wait_until 10 viewers_are 1 || die "viewer did not join"
"$LOADGEN" publish --to - --rate 8000000 --seconds 6 --write-size 4096 >&7 2>"$W/pub.log" &
PUB_PID=$!

code() { curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
raw() { # raw REQUEST -> status line
	local r
	exec 8<>"/dev/tcp/127.0.0.1/$LPORT"
	printf '%b' "$1" >&8
	r=$(timeout 5 head -n1 <&8 | tr -d '\r')
	exec 8>&-
	echo "$r"
}

sleep 0.5
check "GET /stats is 200" test "$(code "http://127.0.0.1:$LPORT/stats")" = 200
check "GET /stats is JSON with the fields" \
	bash -c "curl -sS 'http://127.0.0.1:$LPORT/stats' | jq -e 'has(\"viewers\") and has(\"bytes_in\") and has(\"bytes_out\") and has(\"drops\") and has(\"engine\") and has(\"sender_cpu_ns_per_byte\")' >/dev/null"
check "unknown path is 404" test "$(code "http://127.0.0.1:$LPORT/nope")" = 404
check "POST / is 405" test "$(code -X POST -d x "http://127.0.0.1:$LPORT/")" = 405
check "DELETE /stats is 405" test "$(code -X DELETE "http://127.0.0.1:$LPORT/stats")" = 405
check "405 says Allow" bash -c "curl -sS -D - -o /dev/null -X PUT -d x 'http://127.0.0.1:$LPORT/' | grep -qi '^Allow: GET, HEAD'"
check "HEAD / is 200, video/mp2t, no body" \
	bash -c "curl -sS -I --max-time 5 'http://127.0.0.1:$LPORT/' | tr -d '\r' | grep -q '^Content-Type: video/mp2t$'"
check "garbage request line is 400" test "$(raw 'GARBAGE\r\n\r\n')" = "HTTP/1.1 400 Bad Request"
check "HTTP/1.1 without Host is 400" test "$(raw 'GET / HTTP/1.1\r\n\r\n')" = "HTTP/1.1 400 Bad Request"
check "header without colon is 400" test "$(raw 'GET / HTTP/1.1\r\nHost: x\r\nbogus\r\n\r\n')" = "HTTP/1.1 400 Bad Request"
check "HTTP/2.0 request line is 505" test "$(raw 'GET / HTTP/2.0\r\nHost: x\r\n\r\n')" = "HTTP/1.1 505 HTTP Version Not Supported"
big=$(head -c 10000 /dev/zero | tr '\0' a)
check "oversized headers are 431" test "$(code -H "X-Big: $big" "http://127.0.0.1:$LPORT/")" = 431
check "oversized URI is 414" test "$(code "http://127.0.0.1:$LPORT/$(head -c 5000 /dev/zero | tr '\0' a)")" = 414
check "HTTP/1.0 GET /stats without Host is 200" test "$(raw 'GET /stats HTTP/1.0\r\n\r\n')" = "HTTP/1.1 200 OK"
js=$(stats)
check "the streaming viewer is unaffected (still 1 viewer, 0 drops, 0 left)" \
	test "$(jq '[.viewers, .drops, .viewers_left] | join(",")' -r <<<"$js")" = "1,0,0"
check "errors were counted" test "$(jq .http_errors <<<"$js")" -ge 10

# A second relay on the same viewer port must fail clearly.
"$RELAY" --listen "127.0.0.1:$LPORT" --ingest 127.0.0.1:0 >"$W/second.log" 2>&1
rc=$?
check "second relay on a busy port exits 1 (rc=$rc)" test "$rc" = 1
check "it says the address is in use" grep -q 'address already in use' "$W/second.log"

wait "$PUB_PID" || die "publisher failed"
PUBLISHED=$(sed -n 's/.*published \([0-9]*\) bytes.*/\1/p' "$W/pub.log")
exec 7>&-   # end of stdin: the relay serves its viewer, then exits
wait "$VIEW_PID"; view_rc=$?
log "viewer: $(cat "$W/view.json")"
check "viewer verified every byte and got EOF" \
	test "$view_rc/$(jq -r '[.eof, .verify_fail] | join(",")' "$W/view.json")" = "0/1,0"
check "viewer got all $PUBLISHED published bytes" \
	test "$(jq .bytes "$W/view.json")" = "$PUBLISHED"
wait_until 15 bash -c "! kill -0 $RELAY_PID 2>/dev/null" || fail "relay still running after stdin ended"
wait "$RELAY_PID"; rc=$?
RELAY_PID=
check "relay exited 0 after stdin ended (rc=$rc)" test "$rc" = 0
check "relay said why it exited" grep -q 'stdin ended' "$W/relay.log"
finish

#!/usr/bin/env bash
# Viewers join and leave mid-stream (--ts-align): full viewers get every byte,
# late joiners a 188-aligned suffix starting with a sync byte, quitters a
# prefix (they hang up after 1, 2, 3 MB); a viewer that stops reading is dropped at --max-backlog, one that
# resets its connection is removed; the relay's RSS stays bounded.
. "$(dirname "$0")/lib.sh"
need ffmpeg curl jq cmp xxd

BACKLOG=$((3 * 1024 * 1024))
RSS_LIMIT_KB=${RELAY_RSS_LIMIT_KB:-32768}

ts_file "$W/src.ts" 8 8000000
SRC_SIZE=$(stat -c %s "$W/src.ts")
log "source: $SRC_SIZE bytes"

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --ts-align --max-backlog "$BACKLOG" --sndbuf 256K

curl_view() { # NAME [curl options]
	local name=$1; shift
	curl -sS -N "$@" -o "$W/$name.ts" "http://127.0.0.1:$LPORT/" 2>"$W/$name.err" &
	echo $! > "$W/$name.pid"
}

curl_quit() { # NAME BYTES: a viewer that hangs up after BYTES bytes
	( curl -sS -N --max-time 120 "http://127.0.0.1:$LPORT/" 2>/dev/null |
		head -c "$2" > "$W/$1.ts" ) &
	echo $! > "$W/$1.pid"
}

for i in 1 2 3 4 5; do curl_view full$i --max-time 120; done
for i in 1 2 3; do curl_quit quit$i $((i * 1000000)); done
"$LOADGEN" stall --to "127.0.0.1:$LPORT" --rcvbuf 4096 --seconds 60 >"$W/stall.out" 2>&1 &
STALL_PID=$!
"$LOADGEN" reset --to "127.0.0.1:$LPORT" --after 300000 --seconds 60 >"$W/reset.out" 2>&1 &
RESET_PID=$!
wait_until 30 viewers_are 10 || die "viewers did not join ($(stat_field viewers))"

(   # RSS sampler
	max=0
	while kill -0 "$RELAY_PID" 2>/dev/null; do
		r=$(rss_kb "$RELAY_PID"); [ -n "$r" ] && [ "$r" -gt "$max" ] && max=$r
		# (renamed into place: a reader never sees the file truncated)
		echo "$max" > "$W/rss.max.tmp" && mv -f "$W/rss.max.tmp" "$W/rss.max"
		sleep 0.1
	done
) &

"$LOADGEN" publish --to "127.0.0.1:$IPORT" --file "$W/src.ts" --rate 12000000 \
	--write-size 1316 2>"$W/pub.log" &
PUB_PID=$!
sleep 1.3
for i in 1 2 3; do curl_view late1_$i --max-time 120; done
sleep 1.3
for i in 1 2 3; do curl_view late2_$i --max-time 120; done

wait "$PUB_PID" || die "publisher failed"
for f in "$W"/*.pid; do wait "$(cat "$f")" 2>/dev/null; done
wait "$STALL_PID"; stall_rc=$?
wait "$RESET_PID"; reset_rc=$?

is_full() { cmp -s "$W/src.ts" "$W/$1.ts"; }
is_prefix() { # NAME BYTES
	local n; n=$(stat -c %s "$W/$1.ts")
	[ "$n" = "$2" ] && cmp -s -n "$n" "$W/src.ts" "$W/$1.ts"
}
is_aligned_suffix() {
	local n d; n=$(stat -c %s "$W/$1.ts"); d=$((SRC_SIZE - n))
	log "$1: joined at stream offset $d ($n bytes)"
	[ "$n" -gt 0 ] && [ "$d" -gt 0 ] && [ $((d % 188)) = 0 ] &&
		[ "$(head -c1 "$W/$1.ts" | xxd -p)" = 47 ] &&
		cmp -s -i "$d:0" "$W/src.ts" "$W/$1.ts"
}

for i in 1 2 3 4 5; do check "full viewer $i got every byte" is_full full$i; done
for i in 1 2 3; do check "quitter $i got a prefix" is_prefix quit$i $((i * 1000000)); done
for i in 1 2 3; do check "late joiner 1.$i got a 188-aligned suffix" is_aligned_suffix late1_$i; done
for i in 1 2 3; do check "late joiner 2.$i got a 188-aligned suffix" is_aligned_suffix late2_$i; done
l1=$(stat -c %s "$W/late1_1.ts"); l2=$(stat -c %s "$W/late2_1.ts")
check "later joiners got less ($l1 > $l2)" test "$l1" -gt "$l2"
check "stalled viewer dropped ($(cat "$W/stall.out" | tr '\n' ' '))" test "$stall_rc" = 0
check "resetting viewer ran ($(cat "$W/reset.out"))" test "$reset_rc" = 0

wait_until 10 viewers_are 0 || log "viewers still connected: $(stat_field viewers)"
js=$(stats)
log "stats: $js"
check "exactly one drop (the stalled viewer)" test "$(jq .drops <<<"$js")" = 1
check "quitters and the reset viewer counted as left (>= 4)" test "$(jq .viewers_left <<<"$js")" -ge 4
check "no viewer left connected" test "$(jq .viewers <<<"$js")" = 0
rss=$(cat "$W/rss.max")
check "relay RSS stayed bounded (max ${rss} kB < ${RSS_LIMIT_KB} kB)" test "$rss" -lt "$RSS_LIMIT_KB"

stop_relay
finish

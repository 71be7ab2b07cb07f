#!/usr/bin/env bash
# ffmpeg publishes MPEG-TS live by POST /pub/tv (chunked, -method POST); two
# WebSocket subscribers (Python websockets) and a curl -N /stream/tv viewer
# must each get exactly the bytes ffmpeg sent (the same command writing a
# file gives them), as binary frames; ffprobe must parse them.
. "$(dirname "$0")/lib.sh"
need ffmpeg ffprobe curl jq cmp /usr/bin/python3
D=$(cd "$(dirname "$0")" && pwd)

ffmpeg -hide_banner -loglevel error -nostdin -y \
	-f lavfi -i "testsrc=duration=4:size=320x240:rate=25" \
	-c:v mpeg2video -b:v 1M -g 25 -f mpegts "$W/src.ts" || die "ffmpeg could not make the source"
# What ffmpeg publishes: the same remux, to a file (the muxer is deterministic).
ffmpeg -hide_banner -loglevel error -nostdin -y -i "$W/src.ts" -c copy -f mpegts "$W/ref.ts" ||
	die "ffmpeg remux failed"
ffmpeg -hide_banner -loglevel error -nostdin -y -i "$W/src.ts" -c copy -f mpegts "$W/ref2.ts"
cmp -s "$W/ref.ts" "$W/ref2.ts" || die "ffmpeg's mpegts output is not deterministic here"
log "published stream: $(stat -c %s "$W/ref.ts") bytes"

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --ingest 127.0.0.1:0=tv2
TV2PORT=$(sed -n 's#.*publisher of topic tv2 on tcp://.*:\([0-9][0-9]*\)$#\1#p' "$W/relay.log")
[ -n "$TV2PORT" ] || die "no port for the second ingest in the log"
for k in 1 2; do
	/usr/bin/python3 "$D/wsdump.py" "ws://127.0.0.1:$LPORT/ws/tv" "$W/ws$k.ts" 4 >"$W/ws$k.log" 2>&1 &
done
curl -sS -N --max-time 60 -o "$W/curl.ts" "http://127.0.0.1:$LPORT/stream/tv" &
CURL=$!
wait_until 20 bash -c "[ \"\$(curl -s http://127.0.0.1:$LPORT/stats | jq .topics.tv.subscribers)\" = 3 ]" ||
	die "subscribers did not join"
ffmpeg -hide_banner -loglevel warning -nostdin -re -i "$W/src.ts" -c copy -f mpegts \
	-method POST "http://127.0.0.1:$LPORT/pub/tv" 2>"$W/ffmpeg.log"
rc=$?
check "ffmpeg POST publisher exits 0 (rc=$rc)" test "$rc" = 0
wait_until 20 bash -c "[ \$(stat -c %s '$W/curl.ts') -ge $(stat -c %s "$W/ref.ts") ]"
kill "$CURL" 2>/dev/null; wait "$CURL" 2>/dev/null
for k in 1 2; do
	wait_until 30 grep -q '"frames"' "$W/ws$k.log" || fail "ws$k did not finish"
	log "ws$k: $(tail -n1 "$W/ws$k.log")"
	check "WebSocket subscriber $k: bytes equal the published stream" cmp "$W/ref.ts" "$W/ws$k.ts"
	check "WebSocket subscriber $k: binary frames only, more than one" \
		test "$(tail -n1 "$W/ws$k.log" | jq -r '(.texts == 0 and .frames > 1)')" = true
	check "ffprobe parses subscriber $k's bytes: mpeg2video 320x240, 100 frames" \
		test "$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=codec_name,width,height,nb_read_frames -of json "$W/ws$k.ts" | jq -r '.streams[0] | [.codec_name, .width, .height, .nb_read_frames] | join(",")')" = "mpeg2video,320,240,100"
done
check "curl -N /stream/tv: bytes equal the published stream" cmp "$W/ref.ts" "$W/curl.ts"
# The --ingest stream (topic live) reaches WebSocket subscribers too, as
# binary frames holding exactly the published bytes; so does a second
# --ingest, feeding topic tv2, at the same time.
/usr/bin/python3 "$D/wsdump.py" "ws://127.0.0.1:$LPORT/ws/live" "$W/live.ts" 4 >"$W/live.log" 2>&1 &
/usr/bin/python3 "$D/wsdump.py" "ws://127.0.0.1:$LPORT/ws/tv2" "$W/tv2.ts" 4 >"$W/tv2.log" 2>&1 &
curl -sS -N --max-time 60 -o "$W/live-curl.ts" "http://127.0.0.1:$LPORT/" &
CURL=$!
curl -sS -N --max-time 60 -o "$W/tv2-curl.ts" "http://127.0.0.1:$LPORT/stream/tv2" &
CURL2=$!
wait_until 20 bash -c "[ \"\$(curl -s http://127.0.0.1:$LPORT/stats | jq '.topics.live.subscribers + .viewers + .topics.tv2.subscribers')\" = 4 ]" ||
	die "live and tv2 subscribers did not join"
"$LOADGEN" publish --to "127.0.0.1:$TV2PORT" --file "$W/ref.ts" --rate 4000000 --write-size 1316 \
	2>"$W/pub2.log" &
PUB2=$!
"$LOADGEN" publish --to "127.0.0.1:$IPORT" --file "$W/ref.ts" --rate 4000000 --write-size 1316 \
	2>"$W/pub.log" || die "ingest publisher failed"
wait "$PUB2" || die "second ingest publisher failed"
wait_until 30 grep -q '"frames"' "$W/live.log" || fail "the live WebSocket subscriber did not finish"
wait_until 30 grep -q '"frames"' "$W/tv2.log" || fail "the tv2 WebSocket subscriber did not finish"
wait "$CURL"
wait_until 20 bash -c "[ \$(stat -c %s '$W/tv2-curl.ts') -ge $(stat -c %s "$W/ref.ts") ]"
kill "$CURL2" 2>/dev/null; wait "$CURL2" 2>/dev/null
log "live ws: $(tail -n1 "$W/live.log"); tv2 ws: $(tail -n1 "$W/tv2.log")"
check "--ingest to topic live: WebSocket bytes equal the published stream" cmp "$W/ref.ts" "$W/live.ts"
check "--ingest to topic live: GET / bytes equal it too" cmp "$W/ref.ts" "$W/live-curl.ts"
check "second --ingest to topic tv2: WebSocket bytes equal the published stream" cmp "$W/ref.ts" "$W/tv2.ts"
check "second --ingest to topic tv2: /stream/tv2 bytes equal it too" cmp "$W/ref.ts" "$W/tv2-curl.ts"
check "the relay logged the end of tv2's publisher" grep -q 'ingest publisher of topic tv2 ended' "$W/relay.log"

js=$(stats)
# (the topics are gone with their last subscriber and publisher: the totals)
check "stats: no subscriber dropped ($(jq -c '{message_drops, drops}' <<<"$js"))" \
	test "$(jq '.message_drops + .drops' <<<"$js")" = 0
check "stats: the publisher is gone" test "$(jq '.publishers' <<<"$js")" = 0
stop_relay
finish

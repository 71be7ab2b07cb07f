#!/usr/bin/env bash
# 100 curl viewers join before the publisher starts; every viewer must get
# exactly the published MPEG-TS bytes, and ffprobe must read one of them.
. "$(dirname "$0")/lib.sh"
need ffmpeg ffprobe curl jq sha256sum

N=${RELAY_TEST_VIEWERS:-100}

ts_file "$W/src.ts" 4 2000000
SRC_SUM=$(sha256sum < "$W/src.ts" | cut -d' ' -f1)
SRC_SIZE=$(stat -c %s "$W/src.ts")
log "source: $SRC_SIZE bytes, sha256 $SRC_SUM"

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --max-backlog 64M

for i in $(seq 1 "$N"); do
	curl -sS -N --max-time 120 -o "$W/v$i.ts" "http://127.0.0.1:$LPORT/" 2>"$W/curl$i.err" &
	echo $! > "$W/curl$i.pid"
done
wait_until 60 viewers_are "$N" || die "only $(stat_field viewers) of $N viewers joined"
pass "$N viewers joined before the publisher"

# Publish the file's bytes unchanged, live-paced (4 Mbit/s), as one TCP publisher.
"$LOADGEN" publish --to "127.0.0.1:$IPORT" --file "$W/src.ts" --rate 4000000 \
	--write-size 1316 2>"$W/pub.log" || die "publisher failed"

bad_rc=0
for i in $(seq 1 "$N"); do
	wait "$(cat "$W/curl$i.pid")" || { bad_rc=$((bad_rc + 1)); log "curl $i: $(cat "$W/curl$i.err")"; }
done
check "all curl viewers ended cleanly at end of stream" test "$bad_rc" = 0

bad=0
for i in $(seq 1 "$N"); do
	s=$(sha256sum < "$W/v$i.ts" | cut -d' ' -f1)
	if [ "$s" != "$SRC_SUM" ]; then
		bad=$((bad + 1))
		log "viewer $i: $(stat -c %s "$W/v$i.ts") bytes, sha256 $s"
	fi
done
check "all $N viewer files equal the published bytes (sha256)" test "$bad" = 0

probe=$(ffprobe -v error -show_entries format=format_name:stream=codec_type,codec_name,width,height \
	-of default=nw=1 "$W/v1.ts" 2>&1)
log "ffprobe: $(echo $probe)"
check "ffprobe: MPEG-TS container" grep -q '^format_name=mpegts$' <<<"$probe"
check "ffprobe: one 320x240 mpeg2video stream" \
	bash -c 'grep -q "^codec_type=video$" <<<"$1" && grep -q "^codec_name=mpeg2video$" <<<"$1" &&
		grep -q "^width=320$" <<<"$1" && grep -q "^height=240$" <<<"$1"' _ "$probe"
frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames \
	-of csv=p=0 "$W/v1.ts" | tr -d ' ,' | grep -m1 '[0-9]')
check "ffprobe decodes all 100 frames (got $frames)" test "$frames" = 100

js=$(stats)
check "no drops" test "$(jq .drops <<<"$js")" = 0
check "$N viewers finished" test "$(jq .viewers_finished <<<"$js")" = "$N"
check "bytes_out = $N x source" test "$(jq .bytes_out <<<"$js")" = "$((N * SRC_SIZE))"
log "writevv calls: $(jq .writevv_calls <<<"$js"), sender CPU $(jq .sender_cpu_ns_per_byte <<<"$js") ns/B, engine $(jq -r .engine <<<"$js")"

stop_relay
finish

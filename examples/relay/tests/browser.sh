#!/usr/bin/env bash
# The pages in a real headless browser, $RELAY_BROWSER: chromium (default,
# over the DevTools protocol) or firefox (Firefox ESR, over WebDriver BiDi),
# with the same checks (browser.py): ffmpeg publishes a live H.264/AAC
# MPEG-TS test stream by POST /pub/tv; /watch/tv must play it, /messages/chat
# show what is POSTed while it is open, /dashboard show what /stats reports,
# with no console error on any page; then, from a --www without the npm
# packages, every page must say which is missing.  Screenshots go to
# $RELAY_SCREENSHOTS (default: ./screenshots).
. "$(dirname "$0")/lib.sh"
BROWSER=${RELAY_BROWSER:-chromium}
case "$BROWSER" in
chromium) EXE=chromium ;;
firefox) EXE=firefox-esr ;;
*) die "RELAY_BROWSER=$BROWSER: chromium or firefox" ;;
esac
need ffmpeg curl jq "$EXE" /usr/bin/python3
BARGS=(--browser "$BROWSER" --exe "$(command -v "$EXE")")
D=$(cd "$(dirname "$0")" && pwd)
WWW=$(cd "$D/../www" && pwd)
OUT=${RELAY_SCREENSHOTS:-$PWD/screenshots}
[ -f "$WWW/node_modules/mpegts.js/dist/mpegts.js" ] && [ -f "$WWW/node_modules/uplot/dist/uPlot.iife.min.js" ] ||
	die "the npm packages are not installed in $WWW/node_modules: run scripts/quickstart.sh (npm ci there)"

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --www "$WWW" --verbose  # (the log is shown on failure)
# 640x360 at 25 fps, one keyframe a second, 440 Hz tone; bounded in time.
ffmpeg -hide_banner -loglevel warning -nostdin -re \
	-f lavfi -i "testsrc2=size=640x360:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
	-t 180 -c:v libx264 -preset veryfast -tune zerolatency -g 25 -pix_fmt yuv420p -b:v 800k \
	-c:a aac -b:a 64k -f mpegts -method POST "http://127.0.0.1:$LPORT/pub/tv" 2>"$W/ffmpeg.log" &
FFMPEG=$!
wait_until 20 bash -c "[ \"\$(curl -s http://127.0.0.1:$LPORT/stats | jq '.topics.tv.bytes_in // 0')\" -gt 100000 ]" ||
	die "ffmpeg's stream did not reach the relay: $(cat "$W/ffmpeg.log")"
log "ffmpeg publishes to topic tv: $(stats | jq -c '.topics.tv | {messages, bytes_in}')"

/usr/bin/python3 "$D/browser.py" "${BARGS[@]}" --port "$LPORT" --out "$OUT" --video tv --chat chat \
	--width 640 --height 360 >"$W/browser.log" 2>&1
rc=$?
grep -v '^{' "$W/browser.log"
check "browser.py: every check passed (rc=$rc)" test "$rc" = 0
log "measured: $(tail -n1 "$W/browser.log")"
check "ffmpeg was still publishing at the end" kill -0 "$FFMPEG"
# (while ffmpeg still holds the topic: without it and subscribers it is gone)
js=$(stats)
check "stats: topic tv, no drops ($(jq -c '.topics.tv | {messages, bytes_in, deliveries, drops}' <<<"$js"))" \
	test "$(jq .topics.tv.drops <<<"$js")" = 0
kill "$FFMPEG" 2>/dev/null; wait "$FFMPEG" 2>/dev/null
for p in watch messages dashboard; do
	check "screenshot $OUT/$p.png is a PNG" test "$(head -c 4 "$OUT/$p.png" 2>/dev/null | tail -c 3)" = PNG
done
stop_relay

# Our pages without the npm packages: they say what is missing.
mkdir "$W/bare"
cp "$WWW"/*.html "$WWW"/*.js "$WWW"/*.css "$W/bare/"
start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --www "$W/bare"
/usr/bin/python3 "$D/browser.py" "${BARGS[@]}" --missing --port "$LPORT" --out "$OUT" >"$W/browser-missing.log" 2>&1
rc=$?
grep -v '^{' "$W/browser-missing.log"
check "browser.py --missing: every check passed (rc=$rc)" test "$rc" = 0
stop_relay
finish

#!/usr/bin/env bash
# writevv-relay with live test publishers, to look at in a browser:
#   topic tv    an H.264/AAC MPEG-TS test pattern from ffmpeg (POST /pub/tv, -re)
#   topic chat  a text message every second (POST /pub/chat)
# then open the URLs it prints.  Ctrl-C stops everything.
#   examples/relay/demo.sh [BUILD_DIR]      (LISTEN=ADDR:PORT, default 127.0.0.1:8080)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${BUILD_DIR:-$here/../../build}}
relay=$build/examples/relay/writevv-relay
listen=${LISTEN:-127.0.0.1:8080}
[ -x "$relay" ] || { echo "demo: no $relay: build first (scripts/quickstart.sh relay)" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "demo: ffmpeg is needed (apt-get install ffmpeg)" >&2; exit 1; }
[ -f "$here/www/node_modules/mpegts.js/dist/mpegts.js" ] ||
	echo "demo: the pages' npm packages are missing (scripts/quickstart.sh installs them): the pages will say so" >&2

pids=()
cleanup() { trap - EXIT INT TERM; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$relay" --listen "$listen" --ingest 127.0.0.1:0 --www "$here/www" &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://$listen/stats" >/dev/null && break; sleep 0.1; done
curl -sf "http://$listen/stats" >/dev/null || { echo "demo: the relay did not start on $listen" >&2; exit 1; }

# The video: ffmpeg again if it ever stops (it does not by itself).
( while :; do
	ffmpeg -hide_banner -loglevel error -nostdin -re \
		-f lavfi -i "testsrc2=size=640x360:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
		-c:v libx264 -preset veryfast -tune zerolatency -g 25 -pix_fmt yuv420p -b:v 800k \
		-c:a aac -b:a 64k -f mpegts -method POST "http://$listen/pub/tv" || sleep 1
done ) &
pids+=($!)
# The messages.
( n=0; while :; do
	n=$((n + 1))
	curl -sf -o /dev/null -H 'Content-Type: text/plain; charset=utf-8' \
		--data-binary "tick $n at $(date +%T)" "http://$listen/pub/chat" || true
	sleep 1
done ) &
pids+=($!)

cat <<MSG

  writevv-relay is serving on http://$listen/ with live publishers:
    video     http://$listen/watch/tv
    messages  http://$listen/messages/chat
    dashboard http://$listen/dashboard
  (Ctrl-C stops the relay and the publishers)

MSG
wait "${pids[0]}"

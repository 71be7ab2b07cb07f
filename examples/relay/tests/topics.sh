#!/usr/bin/env bash
# Topics with real clients (topics.py): WebSocket (Python websockets, Node
# ws), SSE and streams (curl -N), POST publishers; every message checked at
# every subscriber; then a clean SIGTERM exit.
. "$(dirname "$0")/lib.sh"
need curl jq node /usr/bin/python3
D=$(cd "$(dirname "$0")" && pwd)

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --history 64 ${TOPICS_EXTRA:-}
PYTHONPATH="$D" /usr/bin/python3 "$D/topics.py" "$LPORT" "$W" "$D/wsrecord.js"
rc=$?
check "topics.py passed (rc=$rc)" test "$rc" = 0
stop_relay
finish

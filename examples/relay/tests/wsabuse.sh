#!/usr/bin/env bash
# WebSocket/HTTP protocol abuse (wsabuse.py) while a topic streams to good
# subscribers, who must get every message; then a clean SIGTERM exit.
# With --ws-deflate: the good WebSocket subscribers negotiate
# permessage-deflate, and compressed frames are abused too.
. "$(dirname "$0")/lib.sh"
need curl jq node /usr/bin/python3
D=$(cd "$(dirname "$0")" && pwd)

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --client-publish --max-message 64K \
	--max-backlog 1M --sndbuf 64K --ws-deflate
PYTHONPATH="$D" /usr/bin/python3 "$D/wsabuse.py" "$LPORT" "$W" "$D/wsrecord.js"
rc=$?
check "wsabuse.py passed (rc=$rc)" test "$rc" = 0
stop_relay
finish

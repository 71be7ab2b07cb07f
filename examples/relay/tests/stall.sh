#!/usr/bin/env bash
# A WebSocket subscriber whose socket fills while it is ready gets the rest of
# its backlog when it reads again, with nothing more published (stall.py).
. "$(dirname "$0")/lib.sh"
need curl /usr/bin/python3
D=$(cd "$(dirname "$0")" && pwd)

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --sndbuf 16K
PYTHONPATH="$D" /usr/bin/python3 "$D/stall.py" "$LPORT"
rc=$?
check "stall.py passed (rc=$rc)" test "$rc" = 0
stop_relay
finish

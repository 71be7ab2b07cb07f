#!/usr/bin/env bash
# SSE resume on any node from the history kept in Redis, and the publish
# script after SCRIPT FLUSH and a Redis restart: two writevv-relay nodes on a
# real redis-server (private port, started and stopped here).  See
# redishist.py.
. "$(dirname "$0")/lib.sh"
need curl jq redis-server redis-cli /usr/bin/python3
D=$(cd "$(dirname "$0")" && pwd)

NB_PID=
trap 'bash "$W/redisctl.sh" stop 2>/dev/null; [ -n "$NB_PID" ] && kill -9 "$NB_PID" 2>/dev/null; cleanup' EXIT
start_redis
# --history 300: redishist.py's numbers depend on it
start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --history 300 --redis "127.0.0.1:$RPORT"
NA_PORT=$LPORT
start_node "$W/nodeB.log" --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --history 300 \
	--redis "127.0.0.1:$RPORT"
NB_PID=$NODE_PID NB_PORT=$NODE_PORT
log "node A :$NA_PORT (pid $RELAY_PID), node B :$NB_PORT (pid $NB_PID)"

PYTHONPATH="$D" /usr/bin/python3 "$D/redishist.py" "$NA_PORT" "$NB_PORT" "$RPORT" "$W" \
	"$W/redisctl.sh"
rc=$?
check "redishist.py passed (rc=$rc)" test "$rc" = 0
check "node A logged the reload of the script" grep -q 'publish script is gone' "$W/relay.log"
kill -TERM "$NB_PID"; wait "$NB_PID"; rc2=$?; NB_PID=
check "node B exits 0 on SIGTERM (rc=$rc2)" test "$rc2" = 0
stop_relay
bash "$W/redisctl.sh" stop
finish

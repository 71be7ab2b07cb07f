#!/usr/bin/env bash
# Two writevv-relay nodes on a real redis-server (private port, started and
# stopped here): see redis.py.  Both nodes must log the loss of Redis and
# exit 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"
need curl jq node redis-server /usr/bin/python3
D=$(cd "$(dirname "$0")" && pwd)

N2_PID=
# Redis runs daemonized: stop it (and node 2) whatever happens.
trap 'bash "$W/redisctl.sh" stop 2>/dev/null; [ -n "$N2_PID" ] && kill -9 "$N2_PID" 2>/dev/null; cleanup' EXIT
start_redis

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --redis "127.0.0.1:$RPORT"
N1_PID=$RELAY_PID N1_PORT=$LPORT
cp "$W/relay.log" "$W/node1.log"
# start_relay writes relay.log: node 2 has its own
start_node "$W/node2.log" --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --redis "127.0.0.1:$RPORT"
N2_PID=$NODE_PID N2_PORT=$NODE_PORT
log "node 1 :$N1_PORT (pid $N1_PID), node 2 :$N2_PORT (pid $N2_PID)"

PYTHONPATH="$D" /usr/bin/python3 "$D/redis.py" "$N1_PORT" "$N2_PORT" "$W" "$D/wsrecord.js" "$W/redisctl.sh"
rc=$?
check "redis.py passed (rc=$rc)" test "$rc" = 0
check "node 1 logged the loss of Redis" grep -q 'local delivery goes on' "$W/relay.log"
check "node 2 logged the loss of Redis" grep -q 'local delivery goes on' "$W/node2.log"
check "node 2 logged the reconnection" test "$(grep -c 'redis .*: connected' "$W/node2.log")" -ge 2
kill -TERM "$N2_PID"; wait "$N2_PID"; rc2=$?; N2_PID=
check "node 2 exits 0 on SIGTERM (rc=$rc2)" test "$rc2" = 0
stop_relay
bash "$W/redisctl.sh" stop
finish

#!/usr/bin/env bash
# Two writevv-relay nodes on a real redis-server (private port, started and
# stopped here): see redis.py.  Both nodes must log the loss of Redis and
# exit 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"
need curl jq node redis-server /usr/bin/python3
D=$(cd "$(dirname "$0")" && pwd)

# A free port for Redis, and a control script to stop and restart it there.
RPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$W/redisctl.sh" <<EOT
case \$1 in
start)
	redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no --dir "$W" \
		--daemonize yes --pidfile "$W/redis.pid" --logfile "$W/redis.log" || exit 1
	for i in \$(seq 100); do redis-cli -p $RPORT ping >/dev/null 2>&1 && exit 0; sleep 0.1; done
	exit 1 ;;
stop)
	pid=\$(cat "$W/redis.pid") && kill -9 "\$pid"
	while kill -0 "\$pid" 2>/dev/null; do sleep 0.05; done ;;
esac
EOT
N2_PID=
# Redis runs daemonized: stop it (and node 2) whatever happens.
trap 'bash "$W/redisctl.sh" stop 2>/dev/null; [ -n "$N2_PID" ] && kill -9 "$N2_PID" 2>/dev/null; cleanup' EXIT
bash "$W/redisctl.sh" start || die "redis-server did not start on port $RPORT"
log "redis-server on 127.0.0.1:$RPORT"

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --redis "127.0.0.1:$RPORT"
N1_PID=$RELAY_PID N1_PORT=$LPORT
cp "$W/relay.log" "$W/node1.log"
# start_relay writes relay.log: give node 2 its own log by starting it the same way
"$RELAY" $(mode_args) --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --redis "127.0.0.1:$RPORT" \
	>"$W/node2.log" 2>&1 &
N2_PID=$!
wait_until 10 grep -q 'viewers on http://' "$W/node2.log" || die "node 2 did not start"
N2_PORT=$(sed -n 's#.*viewers on http://[^ ]*:\([0-9][0-9]*\)/.*#\1#p' "$W/node2.log")
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

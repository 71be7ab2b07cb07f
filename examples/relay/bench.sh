#!/usr/bin/env bash
# writevv-relay load benchmark: N pattern-checking viewers
# (writevv-relay-loadgen view --verify) watch a stream published at a fixed
# bitrate; the relay's CPU is read from /proc/PID/stat over a steady window.
# The relay is pinned to CPU 0, the viewers and the publisher to the others.
#
#   examples/relay/bench.sh BUILD_DIR [options]
#     --viewers "1000 5000"    viewer counts
#     --modes "default kernel userland"   any of default kernel iouring sendfile userland
#     --rate 4000000           stream bitrate, bits/s
#     --seconds 20             measured window (after a 3 s warm-up)
#     --threads 1              relay --threads
#     --max-delay-ms 50        relay --max-delay-ms
#     --clients 2              loadgen processes the viewers are split over
#     --net "lo nic"           where the viewers are: lo = loopback (their TCP
#                              receive work runs in the relay's context); nic =
#                              NIC-like: another network namespace behind a veth
#                              pair, RPS steering their receive work to the other
#                              core, net.core.netdev_max_backlog raised to 100000
#
# Kernel mode loads the BPF program with BUILD_DIR/writevv-loader if needed
# (in $WRITEVV_PIN_DIR if set, which the relay's library honours too).
# Prints one markdown table row per run (and a CSV line to bench-relay.csv).
set -u
BUILD=${1:?usage: bench.sh BUILD_DIR [options]}; shift
VIEWERS="1000 5000"; MODES="default kernel userland"; RATE=4000000; SECS=20
THREADS=1; DELAY=50; CLIENTS=2; WARM=3; NETS=lo
while [ $# -gt 0 ]; do
	case "$1" in
	--viewers) VIEWERS=$2; shift 2 ;;
	--modes) MODES=$2; shift 2 ;;
	--rate) RATE=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--max-delay-ms) DELAY=$2; shift 2 ;;
	--clients) CLIENTS=$2; shift 2 ;;
	--net) NETS=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
RELAY=$BUILD/examples/relay/writevv-relay
LOADGEN=$BUILD/examples/relay/writevv-relay-loadgen
LOADER=$BUILD/writevv-loader
W=$(mktemp -d /tmp/relay-bench.XXXXXX)
CSV=${CSV:-bench-relay.csv}
HZ=$(getconf CLK_TCK)
NS=wvvrelay$$; VETH_A=wvr$$a; VETH_B=wvr$$b
ADDR_A=10.201.0.1; ADDR_B=10.201.0.2
BACKLOG_SAVED=$(cat /proc/sys/net/core/netdev_max_backlog)
NCPU=$(nproc); OTHERS=1-$((NCPU - 1)); [ "$NCPU" -gt 1 ] || OTHERS=0
cleanup() {
	kill $(jobs -p) 2>/dev/null; wait 2>/dev/null
	if [ -e "/run/netns/$NS" ]; then
		ip netns del "$NS" 2>/dev/null
		echo "$BACKLOG_SAVED" > /proc/sys/net/core/netdev_max_backlog
	fi
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The NIC-like network: veth VETH_A (ADDR_A, the relay's side) <-> VETH_B (ADDR_B)
# in namespace NS, whose receive work RPS sends to the CPUs other than 0.
nic_up() {
	[ -e "/run/netns/$NS" ] && return 0
	local mask
	mask=$(printf '%x' $(( (1 << NCPU) - 2 ))); [ "$NCPU" -gt 1 ] || mask=1
	ip netns add "$NS" &&
	ip link add "$VETH_A" type veth peer name "$VETH_B" netns "$NS" &&
	ip addr add "$ADDR_A/30" dev "$VETH_A" && ip link set "$VETH_A" up &&
	ip -n "$NS" addr add "$ADDR_B/30" dev "$VETH_B" && ip -n "$NS" link set "$VETH_B" up &&
	ip -n "$NS" link set lo up &&
	ip netns exec "$NS" sh -c "echo $mask > /sys/class/net/$VETH_B/queues/rx-0/rps_cpus" &&
	echo 100000 > /proc/sys/net/core/netdev_max_backlog &&
	echo "# nic: veth $VETH_A ($ADDR_A/30) <-> $VETH_B ($ADDR_B/30) in netns $NS," \
		"rps_cpus=$mask, netdev_max_backlog $BACKLOG_SAVED -> 100000 (restored on exit)" >&2
}
ulimit -n "$(ulimit -Hn)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
stats() { curl -sS --max-time 5 "http://$HOST:$LPORT/stats"; }
# packets dropped at the per-CPU input backlog (second column, hex)
drops_now() {
	local d=0 _a b _r
	while read -r _a b _r; do d=$((d + 16#$b)); done < /proc/net/softnet_stat
	echo "$d"
}

[ -f "$CSV" ] || echo "net,mode,engine,viewers,rate_bps,threads,max_delay_ms,seconds,relay_cpu_s,delivered_bytes,cpu_s_per_GB,cpu_ms_per_viewer_s,viewers_per_core,sender_ns_per_byte,writevv_calls_per_s,drops,verify_fail,delivered_pct" > "$CSV"
echo "| net | mode | engine | viewers | relay CPU (cores) | CPU s / GB delivered | CPU ms / viewer-s | viewers per core @ $((RATE / 1000000)) Mbit/s | sender ns/B | writevv calls/s | delivered | drops | verify failures |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"

for net in $NETS; do
	case "$net" in
	lo) HOST=127.0.0.1; INNS=() ;;
	nic) nic_up || { echo "bench.sh: cannot set up the NIC-like network (root, iproute2?)" >&2; exit 1; }
	     HOST=$ADDR_A; INNS=(ip netns exec "$NS") ;;
	*) echo "bench.sh: unknown --net $net (lo or nic)" >&2; exit 2 ;;
	esac
for mode in $MODES; do
	for n in $VIEWERS; do
		if [ "$mode" = kernel ] && ! "$LOADER" status 2>/dev/null | grep -q '^writevv: loaded'; then
			"$LOADER" load >/dev/null 2>&1 || { echo "| $net | kernel | - | $n | loader failed |"; continue; }
		fi
		: > "$W/relay.log"
		taskset -c 0 "$RELAY" --mode "$mode" --listen "$HOST:0" --ingest 127.0.0.1:0 \
			--threads "$THREADS" --max-delay-ms "$DELAY" >"$W/relay.log" 2>&1 &
		RPID=$!
		for _ in $(seq 50); do grep -q 'viewers on' "$W/relay.log" && break; sleep 0.1; done
		if ! kill -0 $RPID 2>/dev/null; then
			echo "| $net | $mode | - | $n | relay failed: $(head -n1 "$W/relay.log") |"; continue
		fi
		LPORT=$(sed -n 's#.*viewers on http://[^ ]*:\([0-9][0-9]*\)/.*#\1#p' "$W/relay.log")
		IPORT=$(sed -n 's#.*publisher on tcp://.*:\([0-9][0-9]*\)$#\1#p' "$W/relay.log")
		per=$(( (n + CLIENTS - 1) / CLIENTS )); left=$n; vp=()
		for c in $(seq "$CLIENTS"); do
			k=$(( left < per ? left : per )); left=$((left - k))
			[ "$k" -gt 0 ] || continue
			"${INNS[@]}" taskset -c "$OTHERS" "$LOADGEN" view --to "$HOST:$LPORT" --conns "$k" --verify --ramp 2000 \
				--seconds $((SECS + WARM + 60)) >"$W/view$c.json" 2>&1 &
			vp+=($!)
		done
		for _ in $(seq 600); do
			[ "$(stats | jq .viewers)" = "$n" ] && break; sleep 0.1
		done
		taskset -c "$OTHERS" "$LOADGEN" publish --to "127.0.0.1:$IPORT" --rate "$RATE" --write-size 1316 \
			--seconds $((SECS + WARM + 1)) 2>/dev/null &
		PP=$!
		sleep "$WARM"
		t0=$(cpu_ticks $RPID); s0=$(stats); d0=$(drops_now)
		sleep "$SECS"
		t1=$(cpu_ticks $RPID); s1=$(stats); d1=$(drops_now)
		[ "$d1" = "$d0" ] || echo "# $net $mode $n: $((d1 - d0)) packets dropped at the input backlog" >&2
		# on stderr: the engine the relay logged, and whether it holds a memfd (the sendfile engine)
		echo "# $net $mode $n: $(sed -n 's/^.*\(writevv engine.*\)$/\1/p' "$W/relay.log" | paste -sd';')" \
			"memfd=$(ls -l /proc/$RPID/fd 2>/dev/null | grep -c memfd:)" >&2
		wait $PP
		for p in "${vp[@]}"; do wait "$p"; done
		kill -TERM $RPID; wait $RPID
		vf=0; for c in $(seq "$CLIENTS"); do
			[ -s "$W/view$c.json" ] && vf=$((vf + $(tail -n1 "$W/view$c.json" | jq .verify_fail)))
			[ -s "$W/view$c.json" ] && echo "# $net $mode $n: loadgen $c: $(tail -n1 "$W/view$c.json")" >&2
		done
		python3 - "$net" "$mode" "$n" "$RATE" "$THREADS" "$DELAY" "$SECS" "$HZ" "$t0" "$t1" \
			"$s0" "$s1" "$vf" "$CSV" <<'EOF'
import json, sys
net, mode, n, rate, threads, delay, secs, hz, t0, t1, s0, s1, vf, csv = sys.argv[1:]
n, rate, secs, hz = int(n), float(rate), float(secs), float(hz)
s0, s1 = json.loads(s0), json.loads(s1)
cpu = (int(t1) - int(t0)) / hz
out = s1["bytes_out"] - s0["bytes_out"]
calls = s1["writevv_calls"] - s0["writevv_calls"]
sender = (s1["sender_cpu_ns"] - s0["sender_cpu_ns"]) / out if out else 0
expect = n * rate / 8 * secs
cores = cpu / secs
per_gb = cpu / (out / 1e9) if out else float("nan")
per_viewer_ms = cpu / secs / n * 1000
vpc = n / cores if cores else float("inf")
pct = 100.0 * out / expect
drops = s1["drops"]
print(f"| {net} | {mode} | {s1['engine']} | {n} | {cores:.3f} | {per_gb:.3f} | {per_viewer_ms:.4f} | "
      f"{vpc:.0f} | {sender:.3f} | {calls / secs:.0f} | {pct:.1f}% | {drops} | {vf} |")
with open(csv, "a") as f:
    f.write(f"{net},{mode},{s1['engine']},{n},{rate:.0f},{threads},{delay},{secs:.0f},{cpu:.3f},{out},"
            f"{per_gb:.4f},{per_viewer_ms:.5f},{vpc:.0f},{sender:.4f},{calls / secs:.1f},{drops},{vf},{pct:.2f}\n")
EOF
	done
done
done

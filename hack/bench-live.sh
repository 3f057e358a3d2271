#!/usr/bin/env bash
# Live capture benchmark: shark-agent sniff (dissecting, NDJSON to /dev/null)
# against tcpdump -B 65536 -w /dev/null, at the same load, in the same run.
# A fourth way, shark-agent sniff -w - (raw packets, no dissection), splits
# what our capture costs from what dissection costs.
#
# Two network namespaces joined by a veth pair (MTU 1500, offloads off): the
# servers (a Go net/http server, iperf3 -s) in "srv", the clients (wrk with
# keep-alive, iperf3 -c) in "cli". Each load runs DURATION seconds three
# ways: with no capture (the offered load), under shark-agent sniff --netns
# srv (dissecting, and raw packets only), and under tcpdump -i any in srv. Offered packets are the veth's own
# counters over the run; captured and lost are each tool's own report. The
# sender's slowdown is its rate under capture against the uncaptured rate.
# ROUNDS repeats the whole set, rotating the order; each cell is the median.
# Every captured run sits between two uncaptured runs of the same load, and
# its slowdown is taken against their mean.
#
# This machine is a VM on a shared host: while other guests run, the
# hypervisor takes CPU from ours (steal time), and the sender's rate falls
# with it, whatever the capture. A run during which steal took more than
# STEAL_MAX percent of the CPUs measures the neighbours, not the capture: it
# is run again, up to RETRIES times, and the table counts the runs redone.
#
#   hack/bench-live.sh                     # make bench-live
#   DURATION=5 ROUNDS=3 hack/bench-live.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
RING=${RING:-}          # shark-agent --ring-size (default: its own)
ZERO_COPY=${ZERO_COPY:-} # 1: shark-agent --zero-copy (experimental)
AGENT=${AGENT:-}        # a prebuilt shark-agent to measure instead of building one
WRK_CONNS=${WRK_CONNS:-32}
LOADS=${LOADS:-wrk iperf3} # the loads to run
AGENT_ARGS=${AGENT_ARGS:-} # more shark-agent sniff flags (e.g. --cpuprofile FILE)
STEAL_MAX=${STEAL_MAX:-5}  # percent of the CPUs; a run with more steal is redone
RETRIES=${RETRIES:-4}      # redos of one run before its steal is accepted

[[ $(id -u) -eq 0 ]] || { echo "error: must run as root (namespaces, AF_PACKET)" >&2; exit 1; }
for pair in wrk:wrk iperf3:iperf3 tcpdump:tcpdump ethtool:ethtool python3:python3; do
	command -v "${pair%%:*}" >/dev/null || { echo "error: ${pair%%:*} missing (apt-get install ${pair#*:})" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/shark-bench-live.XXXXXX)
SRV=sharkbench-srv-$$
CLI=sharkbench-cli-$$
BG=()
cleanup() {
	for pid in "${BG[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${BG[@]}"; do wait "$pid" 2>/dev/null || true; done
	ip netns del "$SRV" 2>/dev/null || true
	ip netns del "$CLI" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building shark-agent and trafficgen..." >&2
if [[ -n $AGENT ]]; then
	cp "$AGENT" "$WORK/shark-agent"
else
	CGO_ENABLED=0 go build -o "$WORK/shark-agent" ./cmd/shark-agent
fi
CGO_ENABLED=0 go build -o "$WORK/trafficgen" ./hack/trafficgen

# The veth pair, MTU 1500, no segmentation or receive offloads: every
# frame on the wire is a real, Ethernet-sized packet.
ip netns add "$SRV"
ip netns add "$CLI"
ip -n "$SRV" link set lo up
ip -n "$CLI" link set lo up
ip -n "$SRV" link add vsrv mtu 1500 type veth peer name vcli mtu 1500 netns "$CLI"
ip -n "$SRV" addr add 10.203.0.1/24 dev vsrv
ip -n "$CLI" addr add 10.203.0.2/24 dev vcli
for pair in "$SRV:vsrv" "$CLI:vcli"; do
	ip netns exec "${pair%%:*}" ethtool -K "${pair#*:}" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
	ip -n "${pair%%:*}" link set "${pair#*:}" up
done
for _ in $(seq 100); do
	ip -n "$CLI" -o link show vcli | grep -q "state UP" && break
	sleep 0.05
done

ip netns exec "$SRV" "$WORK/trafficgen" http-server -addr 10.203.0.1:8080 >"$WORK/http.log" 2>&1 &
BG+=($!)
ip netns exec "$SRV" iperf3 -s -p 5201 >"$WORK/iperf3-server.log" 2>&1 &
BG+=($!)
for _ in $(seq 100); do
	ip netns exec "$CLI" bash -c 'exec 3<>/dev/tcp/10.203.0.1/8080' 2>/dev/null &&
		ip netns exec "$CLI" bash -c 'exec 3<>/dev/tcp/10.203.0.1/5201' 2>/dev/null && break
	sleep 0.1
done

# Offered packets: what crossed the server's veth, both ways.
veth_packets() {
	ip netns exec "$SRV" cat /sys/class/net/vsrv/statistics/rx_packets /sys/class/net/vsrv/statistics/tx_packets |
		awk '{s += $1} END {print s}'
}

# load NAME: runs the load for DURATION s; prints the sender's rate.
load() {
	case $1 in
	wrk)
		ip netns exec "$CLI" wrk -t2 -c"$WRK_CONNS" -d"${DURATION}s" http://10.203.0.1:8080/healthz >"$WORK/wrk.out" 2>&1
		awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out"
		;;
	iperf3)
		ip netns exec "$CLI" iperf3 -c 10.203.0.1 -p 5201 -t "$DURATION" -M 1460 -J >"$WORK/iperf3.json" 2>&1
		python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_sent"]["bits_per_second"]/1e9)' "$WORK/iperf3.json"
		;;
	esac
}

# steal_ticks: clock ticks the hypervisor took from all CPUs so far.
steal_ticks() {
	awk '/^cpu / {print $9}' /proc/stat
}

# cpu_seconds PID: user+system CPU time a process used so far.
cpu_seconds() {
	awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}

# run LOAD MODE: prints "offered_packets sender_rate captured lost undissected cpu_s steal_pct"
run() {
	local what=$1 mode=$2 pid= before after rate captured=0 lost=0 undissected=0 cpu=0 st0 st1 t0 t1
	case $mode in
	shark | sharkraw)
		local ring=()
		[[ -n $RING ]] && ring=(--ring-size "$RING")
		[[ -n $ZERO_COPY ]] && ring+=(--zero-copy)
		# shellcheck disable=SC2206 # flags, split on purpose
		[[ -n $AGENT_ARGS ]] && ring+=($AGENT_ARGS)
		[[ $mode == sharkraw ]] && ring+=(-w -)
		"$WORK/shark-agent" sniff --netns "/run/netns/$SRV" -o json --stats "${ring[@]}" \
			>/dev/null 2>"$WORK/shark.err" &
		pid=$!
		for _ in $(seq 100); do grep -q attached "$WORK/shark.err" 2>/dev/null && break; sleep 0.05; done
		;;
	tcpdump)
		ip netns exec "$SRV" tcpdump -i any -B 65536 -w /dev/null 2>"$WORK/tcpdump.err" &
		pid=$!
		for _ in $(seq 100); do grep -q "listening on" "$WORK/tcpdump.err" 2>/dev/null && break; sleep 0.05; done
		;;
	esac
	sleep 0.5
	before=$(veth_packets)
	st0=$(steal_ticks)
	t0=$EPOCHREALTIME
	rate=$(load "$what")
	t1=$EPOCHREALTIME
	st1=$(steal_ticks)
	after=$(veth_packets)
	# Let the capture drain its last ring blocks before it stops.
	sleep 1.5
	[[ -n $pid ]] && cpu=$(cpu_seconds "$pid")
	case $mode in
	shark | sharkraw)
		kill -INT "$pid"
		wait "$pid" || true
		read -r captured lost < <(sed -n 's/^\([0-9]*\) packets captured .*, \([0-9]*\) dropped by the kernel.*/\1 \2/p' "$WORK/shark.err")
		undissected=$(grep -o '[0-9]* not dissected' "$WORK/shark.err" | awk '{s += $1} END {print s + 0}')
		;;
	tcpdump)
		kill -INT "$pid"
		wait "$pid" || true
		captured=$(sed -n 's/^\([0-9]*\) packets* captured$/\1/p' "$WORK/tcpdump.err")
		lost=$(sed -n 's/^\([0-9]*\) packets* dropped by kernel$/\1/p' "$WORK/tcpdump.err")
		;;
	esac
	local steal
	steal=$(awk -v s="$((st1 - st0))" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" -v t0="$t0" -v t1="$t1" \
		'BEGIN {printf "%.1f", 100 * s / hz / n / (t1 - t0)}')
	echo "$((after - before)) $rate ${captured:-0} ${lost:-0} ${undissected:-0} $cpu $steal"
}

results=$WORK/results
: >"$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# measure LOAD MODE: one run, redone while steal is over the limit;
# appends it to the results as "round load mode position ...".
pos=0
measure() {
	local try line steal
	for try in $(seq 0 "$RETRIES"); do
		echo "round $round: $1, capture: $2..." >&2
		line=$(run "$1" "$2")
		steal=${line##* }
		awk -v s="$steal" -v m="$STEAL_MAX" 'BEGIN {exit !(s <= m)}' && break
		[[ $try -lt $RETRIES ]] && echo "  steal took ${steal}% of the CPUs (over ${STEAL_MAX}%): again" >&2
	done
	pos=$((pos + 1))
	echo "$round $1 $2 $pos $line $try" >>"$results"
}

modes=(shark sharkraw tcpdump)
for round in $(seq "$ROUNDS"); do
	for what in $LOADS; do
		# An uncaptured run before and after each captured one: the machine
		# drifts within minutes, and each tool is measured against the
		# runs next to it. The order rotates each round too.
		measure "$what" none
		for i in 0 1 2; do
			measure "$what" "${modes[$(((i + round) % 3))]}"
			measure "$what" none
		done
	done
done

# Medians per (load, capture). A captured run's slowdown is taken against
# the mean of the uncaptured runs just before and after it, then the median
# of those.
echo "load average: $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after (the machine is shared)"
python3 - "$results" "$DURATION" "$LOADS" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
dur = float(sys.argv[2])
cell, slows = {}, {}
for i, (rnd, what, mode, pos, offered, r, captured, lost, undissected, cpu, steal, redone) in enumerate(rows):
    cell.setdefault((what, mode), []).append((int(offered), float(r), int(captured), int(lost), int(undissected), float(cpu), float(steal), int(redone)))
    if mode != "none":
        # Rows are in the order measured, and the measure loop puts an
        # uncaptured run of the same load right before and after every
        # captured one.
        base = (float(rows[i - 1][5]) + float(rows[i + 1][5])) / 2
        if base:
            slows.setdefault((what, mode), []).append((1 - float(r) / base) * 100)
rounds = sorted({r[0] for r in rows})
med = statistics.median
unit = {"wrk": "req/s", "iperf3": "Gbit/s"}
names = {"none": "no capture", "shark": "shark-agent sniff (dissecting)", "sharkraw": "shark-agent sniff -w - (raw packets only)",
         "tcpdump": "tcpdump -B 65536 -w /dev/null"}
print(f"\nlive capture, {dur:.0f} s runs on a veth pair (MTU 1500, offloads off), medians of {len(rounds)} round(s)")
print("steal: the hypervisor's share of the CPUs during the run (median, worst); redone: runs repeated for steal over the limit\n")
print("| load | capture | offered pkt/s | captured pkt/s | lost (kernel) | loss | captured, not dissected | capture CPU | sender rate | sender slowdown | steal | redone |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for what in sys.argv[3].split():
    for mode in ("none", "shark", "sharkraw", "tcpdump"):
        rs = cell[(what, mode)]
        offered = med([r[0] for r in rs]) / dur
        r = med([r[1] for r in rs])
        steal = f"{med([x[6] for x in rs]):.1f}%, {max(x[6] for x in rs):.1f}%"
        redone = sum(x[7] for x in rs)
        if mode == "none":
            print(f"| {what} | {names[mode]} | {offered:,.0f} | - | - | - | - | - | {r:,.2f} {unit[what]} | - | {steal} | {redone} |")
            continue
        slow = med(slows[(what, mode)])
        captured = med([x[2] for x in rs])
        lost = med([x[3] for x in rs])
        loss = 100 * lost / (captured + lost) if captured + lost else 0
        und = f"{med([x[4] for x in rs]):,.0f}" if mode == "shark" else "-"
        cpu = med([x[5] for x in rs]) / dur * 100
        print(f"| {what} | {names[mode]} | {offered:,.0f} | {captured / dur:,.0f} | {lost:,.0f} | {loss:.2f}% | {und} | {cpu:.0f}% | {r:,.2f} {unit[what]} | {slow:.1f}% | {steal} | {redone} |")
print("\nslowdown of each captured run, against the mean of the uncaptured runs beside it:")
for (what, mode), xs in sorted(slows.items()):
    print(f"  {what} {mode}: " + ", ".join(f"{x:.1f}%" for x in xs))
EOF

# shellcheck shell=bash
# Helpers for scripts that run real servers and clients inside a private
# network namespace and capture their traffic. Source it; it sets WORK, NS
# and an EXIT trap that stops what it started and removes the namespace.

NS=""
WORK=""
BG_PIDS=()
CAPTURE_PID=""
CAPTURE_LOG=""

die() {
	echo "error: $*" >&2
	exit 1
}

require_root() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, tcpdump)"
}

# ensure_tools CMD:PACKAGE...: apt-get installs the packages of missing commands.
ensure_tools() {
	local missing=() pair
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
	done
	((${#missing[@]} == 0)) && return 0
	echo "installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_work() {
	WORK=$(mktemp -d /tmp/shark-rec.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

cleanup() {
	local pid
	[[ -n $CAPTURE_PID ]] && kill -INT "$CAPTURE_PID" 2>/dev/null
	for pid in "${BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${BG_PIDS[@]}" $CAPTURE_PID; do
		wait "$pid" 2>/dev/null || true
	done
	[[ -n $NS ]] && ip netns del "$NS" 2>/dev/null
	[[ -n $WORK ]] && rm -rf "$WORK"
	return 0
}

# netns_create NAME: a namespace whose loopback behaves like an Ethernet
# NIC without segmentation offloads, so captured frames are MTU-sized.
# Checksum offload on lo cannot be turned off: TCP checksums stay partial,
# as in captures from a pod's veth.
netns_create() {
	NS=$1
	ip netns add "$NS"
	in_ns ip link set lo mtu 1500
	in_ns ip link set lo up
	in_ns ethtool -K lo tso off gso off gro off >/dev/null 2>&1 || true
}

in_ns() { ip netns exec "$NS" "$@"; }

# start_bg NAME CMD...: runs CMD in the namespace in the background, logging
# to $WORK/NAME.log; cleanup stops it.
start_bg() {
	local name=$1
	shift
	ip netns exec "$NS" "$@" >"$WORK/$name.log" 2>&1 &
	BG_PIDS+=($!)
}

# wait_tcp HOST:PORT: waits up to 10s for a listener in the namespace.
wait_tcp() {
	local host=${1%:*} port=${1##*:} i
	for ((i = 0; i < 100; i++)); do
		in_ns bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null && return 0
		sleep 0.1
	done
	die "nothing listens on $1; logs in $WORK"
}

# wait_file FILE PID: waits up to 60s for FILE while PID lives.
wait_file() {
	local file=$1 pid=$2 i
	for ((i = 0; i < 600; i++)); do
		[[ -e $file ]] && return 0
		kill -0 "$pid" 2>/dev/null || die "process $pid exited before creating $file"
		sleep 0.1
	done
	die "timed out waiting for $file"
}

# wait_all PID...: waits for every PID, failing if any failed.
wait_all() {
	local pid rc=0
	for pid in "$@"; do
		wait "$pid" || rc=$?
	done
	((rc == 0)) || die "a client failed (exit $rc)"
}

# capture_start FILE FILTER [TCPDUMP_OPTION...]: starts tcpdump in the
# namespace (on lo unless the options name -i) and waits until it listens.
capture_start() {
	local file=$1 filter=$2 i
	shift 2
	# No --immediate-mode: it makes the kernel drop packets under bursts on
	# -i any. capture_stop waits for the ring block to time out instead.
	local opts=(-s 0 -U -B 32768 -Z root -w "$file")
	[[ " $* " == *" -i "* ]] || opts+=(-i lo)
	CAPTURE_LOG=$WORK/tcpdump-$(basename "$file").log
	# shellcheck disable=SC2086 # the filter is a list of words on purpose
	ip netns exec "$NS" tcpdump "${opts[@]}" "$@" $filter 2>"$CAPTURE_LOG" &
	CAPTURE_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q "listening on" "$CAPTURE_LOG" 2>/dev/null && return 0
		kill -0 "$CAPTURE_PID" 2>/dev/null || die "tcpdump failed: $(cat "$CAPTURE_LOG")"
		sleep 0.1
	done
	die "tcpdump did not start: $(cat "$CAPTURE_LOG")"
}

# capture_stop: waits past tcpdump's 1s ring-block timeout, so the last
# packets (ACKs, FINs) are handed to tcpdump rather than lost with the block
# when it is interrupted; then stops it, and fails when the kernel dropped
# packets (the counts would no longer hold).
capture_stop() {
	sleep 1.5
	kill -INT "$CAPTURE_PID"
	wait "$CAPTURE_PID" || true
	CAPTURE_PID=""
	local dropped
	dropped=$(sed -n 's/^\([0-9]*\) packets* dropped by kernel$/\1/p' "$CAPTURE_LOG")
	[[ ${dropped:-0} -eq 0 ]] && return 0
	[[ -n ${CAPTURE_ALLOW_DROPS:-} ]] || die "tcpdump: $dropped packets dropped by kernel: $(cat "$CAPTURE_LOG")"
	echo "warning: tcpdump: $dropped packets dropped by kernel" >&2
}

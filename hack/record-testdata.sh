#!/usr/bin/env bash
# Records the testdata captures from real clients and servers, inside a
# private network namespace so nothing else is on the wire.
#
#   hack/record-testdata.sh                    # testdata/*.pcap* and *.expected.json
#   hack/record-testdata.sh bench OUT SIZE_MB  # one large mixed capture for benchmarks
#
# Every client logs what it did; the logs are summed into
# testdata/<name>.expected.json, which tests compare with tshark and with our
# engine. Counts are deterministic run to run; bytes are not.
# Needs root (network namespaces, tcpdump). Installs its tools with apt-get.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/netns.sh
source "$ROOT/hack/lib/netns.sh"

TESTDATA=${TESTDATA_OUT:-$ROOT/testdata} # TESTDATA_OUT: record elsewhere (tests)
HTTP=127.0.0.1:8080     # HTTP/1.1 API
H2C=127.0.0.1:8081      # h2c: prior knowledge and Upgrade
H2C_MID=127.0.0.1:8082  # h2c, captured mid-connection
GRPC=127.0.0.1:50051    # gRPC demo.Catalog and health
DNS=127.0.0.1           # dnsmasq on port 53

usage() {
	echo "usage: $0 [bench OUT_FILE SIZE_MB]" >&2
	exit 2
}

# tg runs trafficgen inside the namespace.
tg() { in_ns "$WORK/trafficgen" "$@"; }

start_servers() {
	start_bg http-server "$WORK/trafficgen" http-server -addr "$HTTP" -duration 30m
	start_bg h2c-server "$WORK/trafficgen" h2c-server -addr "$H2C" -duration 30m
	start_bg h2c-mid-server "$WORK/trafficgen" h2c-server -addr "$H2C_MID" -duration 30m
	start_bg grpc-server "$WORK/trafficgen" grpc-server -addr "$GRPC" -duration 30m
	start_dnsmasq
	wait_tcp "$HTTP"
	wait_tcp "$H2C"
	wait_tcp "$H2C_MID"
	wait_tcp "$GRPC"
	wait_tcp "$DNS:53"
}

# start_dnsmasq serves the shark.test zone the DNS clients query, and
# nothing else: no upstream, no /etc/hosts, no config files.
start_dnsmasq() {
	start_bg dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null \
		--no-resolv --no-hosts --no-poll --user=root \
		--listen-address="$DNS" --bind-interfaces --port=53 \
		--pid-file="$WORK/dnsmasq.pid" --local=/shark.test/ \
		--address=/shop.shark.test/192.0.2.10 \
		--host-record=api.shark.test,192.0.2.20,2001:db8::20 \
		--mx-host=shark.test,mail.shark.test,10 \
		--txt-record=shark.test,"v=spf1 -all","shark demo zone" \
		--srv-host=_http._tcp.shark.test,shop.shark.test,8080,0,100
}

# record NAME FORMAT FILTER CLIENT_FN [tcpdump options...]: captures what
# CLIENT_FN does into testdata/NAME, then merges the clients' logs into
# testdata/<NAME without extension>.expected.json.
record() {
	local name=$1 filter=$2 clients=$3
	shift 3
	local raw=$WORK/$name.pcap logs=$WORK/logs-$name
	mkdir -p "$logs"
	capture_start "$raw" "$filter" "$@"
	"$clients" "$logs"
	capture_stop
	finish_capture "$raw" "$TESTDATA/$name"
	tg merge -o "$TESTDATA/${name%%.*}.expected.json" "$logs"/*.json
	echo "recorded $name ($(stat -c %s "$TESTDATA/$name") bytes)"
}

# finish_capture copies raw to dst, as pcapng when dst ends in .pcapng.
finish_capture() {
	local raw=$1 dst=$2
	if [[ $dst == *.pcapng ]]; then
		editcap -F pcapng "$raw" "$dst"
	else
		cp "$raw" "$dst"
	fi
}

clients_http1() {
	tg http-client -url "http://$HTTP" -n 80 -c 4 -large-every 40 \
		-pipeline 3 -pipeline-depth 4 -log "$1/go.json"
	tg curl-client -mode http1 -url "http://$HTTP" -log "$1/curl.json"
}

# clients_pipeline_head pipelines HEAD among GETs: bodiless responses with a
# Content-Length, back to back in one segment.
clients_pipeline_head() {
	tg http-client -url "http://$HTTP" -n 0 -pipeline 3 -pipeline-depth 4 -pipeline-head \
		-log "$1/go.json"
}

clients_h2c() {
	tg h2-client -url "http://$H2C" -n 40 -c 4 -conns 2 -log "$1/go.json"
	tg h2c-upgrade-client -addr "$H2C" -n 8 -c 2 -log "$1/upgrade.json"
	tg curl-client -mode h2 -url "http://$H2C" -log "$1/curl.json"
}

clients_grpc() {
	tg grpc-client -addr "$GRPC" -n 40 -c 2 -log "$1/grpc.json"
}

clients_dns() {
	tg dig-client -server "$DNS" -log "$1/dig.json"
	tg dns-client -server "$DNS:53" -n 16 -tcp 4 -log "$1/go.json"
}

# clients_mixed runs a bit of everything at once, so flows interleave.
clients_mixed() {
	local pids=()
	tg http-client -url "http://$HTTP" -n 30 -c 3 -pipeline 1 -log "$1/http1.json" & pids+=($!)
	tg h2-client -url "http://$H2C" -n 12 -c 3 -log "$1/h2.json" & pids+=($!)
	tg h2c-upgrade-client -addr "$H2C" -n 3 -log "$1/upgrade.json" & pids+=($!)
	tg grpc-client -addr "$GRPC" -n 10 -c 2 -log "$1/grpc.json" & pids+=($!)
	tg dns-client -server "$DNS:53" -n 8 -tcp 2 -log "$1/dns.json" & pids+=($!)
	wait_all "${pids[@]}"
}

# record_midstream NAME FILTER CLIENT_ARGS...: the client opens its
# keep-alive connections and makes unlogged requests, then waits while
# tcpdump starts; only what follows is captured and logged.
record_midstream() {
	local name=$1 filter=$2
	shift 2
	local raw=$WORK/$name.pcap logs=$WORK/logs-$name
	mkdir -p "$logs"
	rm -f "$WORK/$name.ready" "$WORK/$name.go"
	tg "$@" -ready "$WORK/$name.ready" -go "$WORK/$name.go" -log "$logs/client.json" &
	local client=$!
	wait_file "$WORK/$name.ready" "$client"
	capture_start "$raw" "$filter"
	touch "$WORK/$name.go"
	wait_all "$client"
	capture_stop
	finish_capture "$raw" "$TESTDATA/$name"
	tg merge -o "$TESTDATA/${name%%.*}.expected.json" "$logs"/*.json
	echo "recorded $name ($(stat -c %s "$TESTDATA/$name") bytes)"
}

record_testdata() {
	mkdir -p "$TESTDATA"
	record http1.pcap "tcp port 8080" clients_http1
	record http1-pipeline-head.pcap "tcp port 8080" clients_pipeline_head
	record h2c.pcapng "tcp port 8081" clients_h2c
	record grpc.pcap "tcp port 50051" clients_grpc --time-stamp-precision=nano
	record dns.pcap "port 53" clients_dns
	record mixed.pcapng "" clients_mixed -y LINUX_SLL2 -i any
	record_midstream http1-midstream.pcap "tcp port 8080" \
		http-client -url "http://$HTTP" -warmup 4 -c 4 -n 40
	record_midstream h2c-midstream.pcap "tcp port 8082" \
		h2-client -url "http://$H2C_MID" -warmup 4 -c 4 -n 24
}

# bench OUT SIZE_MB: rounds of mostly HTTP/1.1 keep-alive traffic with some
# HTTP/2, gRPC and DNS, until the capture reaches SIZE_MB (bounded rounds).
# Every LARGE_EVERY-th HTTP/1.1 request is a 200 KB download: 25 gives about
# 9 KB per exchange and 1 KB per packet, the shape of the reference capture
# in BENCHMARKS.md; 100 gives a denser one (2.4 KB per exchange).
bench() {
	local out=$1 size_mb=$2 large_every=${LARGE_EVERY:-25}
	[[ $size_mb =~ ^[0-9]+$ ]] || usage
	local want=$((size_mb * 1024 * 1024)) logs=$WORK/logs-bench round=0
	mkdir -p "$logs" "$(dirname "$out")"
	CAPTURE_ALLOW_DROPS=1 # a benchmark input need not match its logs exactly
	capture_start "$WORK/bench.pcap" ""
	while (( $(stat -c %s "$WORK/bench.pcap") < want && round < 200 )); do
		round=$((round + 1))
		local pids=()
		tg http-client -url "http://$HTTP" -n 20000 -c 8 -large-every "$large_every" -pipeline 20 \
			-log "$logs/http1-$round.json" & pids+=($!)
		tg h2-client -url "http://$H2C" -n 2000 -c 8 -conns 2 -log "$logs/h2-$round.json" & pids+=($!)
		tg grpc-client -addr "$GRPC" -n 1000 -c 4 -log "$logs/grpc-$round.json" & pids+=($!)
		tg dns-client -server "$DNS:53" -n 200 -tcp 20 -log "$logs/dns-$round.json" & pids+=($!)
		wait_all "${pids[@]}"
		echo "bench round $round: $(( $(stat -c %s "$WORK/bench.pcap") / 1024 / 1024 )) MB"
	done
	capture_stop
	mv "$WORK/bench.pcap" "$out"
	tg merge -o "$out.expected.json" "$logs"/*.json
	echo "recorded $out ($(stat -c %s "$out") bytes), counts in $out.expected.json"
}

main() {
	local mode=${1:-testdata}
	case $mode in
	testdata) [[ $# -le 1 ]] || usage ;;
	bench) [[ $# -eq 3 ]] || usage ;;
	*) usage ;;
	esac
	require_root
	ensure_tools tcpdump:tcpdump dnsmasq:dnsmasq dig:dnsutils curl:curl ip:iproute2 \
		ethtool:ethtool editcap:wireshark-common
	setup_work
	(cd "$ROOT" && go build -o "$WORK/trafficgen" ./hack/trafficgen)
	netns_create "shark-rec-$$"
	start_servers
	if [[ $mode == bench ]]; then
		bench "$2" "$3"
	else
		record_testdata
	fi
}

main "$@"

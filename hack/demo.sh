#!/usr/bin/env bash
# The demo: taps a capture recorded from real clients and servers (HTTP/1.1,
# HTTP/2, gRPC, DNS) and shows the entries, then a filtered view.
set -euo pipefail
cd "$(dirname "$0")/.."
capture=testdata/mixed.pcapng
echo "==> kubectl shark tap --read $capture"
bin/kubectl-shark tap --read "$capture" --color always | head -40
echo
echo "==> only errors: --filter 'int(status) >= 400 || (proto == \"grpc\" && status != \"OK\") || status == \"NXDOMAIN\"'"
bin/kubectl-shark tap --read "$capture" --color always \
	--filter '(proto in ["http", "http2"] && int(status) >= 400) || (proto == "grpc" && status != "OK") || status == "NXDOMAIN"'

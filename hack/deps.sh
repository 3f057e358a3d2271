#!/usr/bin/env bash
# Installs the Debian packages the tests, benchmarks and demo use. Idempotent:
# apt runs only when something is missing.
set -euo pipefail
pkgs=(
	tshark tcpdump dnsmasq dnsutils iproute2 ethtool curl procps # engine tests, recording
	redis-server redis-tools wrk iperf3                          # worker tests, live benchmark
	clang llvm libbpf-dev                                        # make generate, eBPF drift test
	nginx openssl python3                                        # TLS tracer tests (curl is above)
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

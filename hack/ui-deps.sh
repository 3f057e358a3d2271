#!/usr/bin/env bash
# Installs what the dashboard's build and browser tests need: Node.js and
# npm (Debian 12 ships Node 18, which Vite 5 supports) and chromium, which
# playwright-core drives. Idempotent: apt runs only when something is
# missing, and a newer Node already installed is kept.
set -euo pipefail
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg-query -W -f='${Status}' fonts-dejavu-core 2>/dev/null | grep -q "install ok installed" || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
	echo "ui-deps: Node $(node --version) is too old: Vite 5 needs Node 18 or later" >&2
	exit 1
fi

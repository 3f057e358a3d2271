#!/usr/bin/env bash
# The dashboard (pkg/ui): build dist/ from the sources, or test it.
#
#   hack/ui.sh build   npm ci, type check, vite build, record the sources' hash
#   hack/ui.sh test    vitest (unit), then playwright (browser, against hack/uireplay)
#   hack/ui.sh deps    only install: Debian packages and node_modules
#
# npm's cache lives in .cache/npm, so that a second run needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/ui-deps.sh
export npm_config_cache="$PWD/.cache/npm"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

install() {
	# npm ci starts node_modules over: skip it while the lock file is the
	# one node_modules was installed from.
	local stamp=pkg/ui/node_modules/.shark-lock.sha256
	local want
	want=$(sha256sum pkg/ui/package-lock.json | cut -d' ' -f1)
	if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
		(cd pkg/ui && npm ci --no-audit --no-fund)
		echo "$want" >"$stamp"
	fi
}

case "${1:-}" in
deps)
	install
	;;
build)
	install
	(cd pkg/ui && npx tsc --noEmit && npx vite build)
	go run ./pkg/ui/internal/writehash pkg/ui
	echo "pkg/ui/dist built; commit it with the sources (and pkg/ui/dist.sha256)"
	;;
test)
	install
	(cd pkg/ui && npx tsc --noEmit && npx vitest run)
	go test -count=1 ./pkg/ui/...
	(cd pkg/ui && npx vitest run --config vitest.e2e.config.ts)
	;;
*)
	echo "usage: hack/ui.sh build|test|deps" >&2
	exit 2
	;;
esac

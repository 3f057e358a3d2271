#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME (default 10s) each.
# A crash (the fuzzer writes the failing input under testdata/fuzz) fails at
# once. A run that ends without a crashing input (on a busy machine Go's
# fuzzer can stop with "context deadline exceeded" while minimising) is
# tried once more before it counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0
# Only the packages whose tests declare a fuzz target: listing runs a test
# binary's TestMain, and some build binaries there (test/packaging builds
# every release archive), minutes of CI for nothing to fuzz.
fuzzdirs=$(grep -rl --include='*_test.go' '^func Fuzz' cmd pkg hack internal test 2>/dev/null | xargs -r -n1 dirname | sort -u)
for pkg in $(printf './%s\n' $fuzzdirs); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		for attempt in 1 2; do
			[ "$attempt" = 1 ] && echo "fuzz $pkg $target ($fuzztime)"
			if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
				break
			fi
			if grep -q "Failing input written to" "$log" || [ "$attempt" = 2 ]; then
				tail -30 "$log"
				failed=1
				break
			fi
			echo "  no crashing input ($(grep -m1 -o 'context deadline exceeded\|fuzzing process hung[^.]*' "$log" || echo 'see log')); trying again"
		done
	done
done
exit $failed

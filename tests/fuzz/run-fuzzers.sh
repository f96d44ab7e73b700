#!/bin/sh
# Run every libFuzzer target (built with --enable-fuzzing) for a short while,
# starting from its committed corpus.  New inputs go to a scratch directory,
# never into the tree.  Usage: run-fuzzers.sh BUILDDIR [SECONDS-PER-TARGET]
set -eu
build=$1
secs=${2:-20}
top=$(cd "$(dirname "$0")/../.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
for fuzzer in "$build"/tests/fuzz/*_fuzz; do
	name=$(basename "$fuzzer" _fuzz)
	corpus="$top/tests/fuzz/corpus/$name"
	dict="$top/tests/fuzz/$name.dict"
	mkdir -p "$scratch/$name"
	set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=0 -artifact_prefix="$scratch/$name-"
	[ -f "$dict" ] && set -- "$@" -dict="$dict"
	if "$fuzzer" "$@" "$scratch/$name" "$corpus" \
	    >"$scratch/$name.log" 2>&1; then
		runs=$(grep -Eo 'Done [0-9]+ runs' "$scratch/$name.log" | tail -1)
		echo "fuzz $name: ok (${runs:-done} in ${secs}s)"
	else
		echo "fuzz $name: FAILED"
		tail -60 "$scratch/$name.log"
		for a in "$scratch/$name"-*; do
			[ -f "$a" ] && { echo "input:"; od -c "$a" | head -20; }
		done
		failed=$((failed + 1))
	fi
done
[ "$failed" -eq 0 ]

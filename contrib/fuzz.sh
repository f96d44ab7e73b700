#!/bin/sh
# A long fuzzing campaign, whose finds are kept in the tree.
#
#   contrib/fuzz.sh [TARGET|all] [SECONDS]
#
# Runs the libFuzzer target tests/fuzz/TARGET_fuzz (every target for
# "all", the default) for SECONDS (default 600) each, in FUZZ_JOBS
# parallel jobs (-jobs/-workers, default: the number of CPUs), starting
# from its committed corpus and its dictionary.  New inputs go to a
# scratch directory; at the end "-merge=1 -use_counters=0" adds to
# tests/fuzz/corpus/TARGET only those that reach an edge the corpus does
# not reach yet (existing files are kept), so the grown corpus can be
# committed as it is.  A
# crash stops the target: its input is kept in FUZZ_ARTIFACTS (default
# build/fuzz-artifacts) and the script exits 1.
#
# The targets are built with clang in FUZZ_BUILDDIR (default build/fuzz,
# configured with --enable-fuzzing if it is not).  On a shared machine:
#   nice -n 19 contrib/fuzz.sh http1 300
# Check afterwards that the replays stay quick ("make check" replays every
# committed corpus) and regenerate doc/fuzz-coverage.md with
# contrib/fuzz-coverage.sh.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
target=${1:-all}
secs=${2:-600}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
build=${FUZZ_BUILDDIR:-build/fuzz}
artifacts=${FUZZ_ARTIFACTS:-build/fuzz-artifacts}

case $secs in
''|*[!0-9]*) echo "usage: $0 [TARGET|all] [SECONDS]" >&2; exit 2 ;;
esac
if [ "$target" = all ]; then
	targets=$(ls tests/fuzz/*_fuzz.c | sed 's,.*/,,; s/_fuzz\.c$//')
else
	[ -f "tests/fuzz/${target}_fuzz.c" ] ||
	    { echo "$0: no target tests/fuzz/${target}_fuzz.c" >&2; exit 2; }
	targets=$target
fi

# Build (or bring up to date) the targets asked for.
if [ ! -f "$build/Makefile" ]; then
	[ -x configure ] || autoreconf -fi -Wno-portability >/dev/null
	mkdir -p "$build"
	(cd "$build" && "$top/configure" -q --enable-fuzzing CC=clang)
fi
(cd "$build" && make -s -j"$jobs" libportcullis.a &&
    make -s -j"$jobs" $(for t in $targets; do
	printf ' tests/fuzz/%s_fuzz' "$t"; done))

mkdir -p "$artifacts"
artifacts=$(cd "$artifacts" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in $targets; do
	fuzzer="$top/$build/tests/fuzz/${t}_fuzz"
	corpus="$top/tests/fuzz/corpus/$t"
	dict="$top/tests/fuzz/$t.dict"
	mkdir -p "$scratch/$t" "$corpus"
	set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$artifacts/$t-"
	[ -f "$dict" ] && set -- "$@" -dict="$dict"
	before=$(ls "$corpus" | wc -l)
	echo "fuzz $t: ${secs}s, $jobs job(s), from $before inputs"
	# -jobs writes fuzz-N.log in the current directory.
	if ! (cd "$scratch" && "$fuzzer" "$@" -jobs="$jobs" \
	    -workers="$jobs" "$scratch/$t" "$corpus" >"$scratch/$t.log" 2>&1)
	then
		echo "fuzz $t: FAILED (inputs in $artifacts/$t-*)"
		tail -40 "$scratch"/fuzz-*.log "$scratch/$t.log" 2>/dev/null
		status=1
	fi
	# Keep what reaches new code, even after a crash: the merge adds to
	# the corpus only inputs that reach an edge it does not (edges only,
	# not hit counts: -use_counters=0 keeps the corpus small).
	"$fuzzer" -merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=2048 \
	    "$corpus" "$scratch/$t" >"$scratch/$t.merge.log" 2>&1 ||
	    { echo "fuzz $t: merge failed"; tail -20 "$scratch/$t.merge.log";
	      status=1; }
	rm -f "$scratch"/fuzz-*.log
	echo "fuzz $t: $before -> $(ls "$corpus" | wc -l) inputs" \
	    "($(du -sk "$corpus" | cut -f1) KiB)"
done
exit $status

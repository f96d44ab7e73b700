#!/bin/sh
# Install what is missing, build and run the whole test suite:
#   1. a plain build with -Werror: unit tests, corpus replays, integration
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer, with
#      the soak test (tests/integration/test_soak.py, 90 s; the plain
#      build skips it)
#   3. every libFuzzer target for a short run over its corpus (clang)
#   4. make distcheck (the tarball builds, installs and passes its tests)
#   5. the Debian package: built, lintian, installed, checked, purged
#      (tests/package/test_deb.sh)
#   6. the container: deploy/Dockerfile and deploy/docker-compose.yml built
#      and run by a dockerd of its own (contrib/container-test.sh, about
#      4 minutes on a clean machine)
# Ends with one line: "N passed, N failed".  Exit status 0 only if all pass.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

contrib/install-deps.sh test || exit 1

passed=0
failed=0
skipped=0
note() { printf '\n==== %s ====\n' "$*"; }

# Automake test counts, with the integration wrapper replaced by pytest's.
tally() {
	log=$1/test-suite.log
	plog=$1/tests/run-integration.sh.log
	[ -f "$log" ] || { failed=$((failed + 1)); return; }
	p=$(sed -n 's/^# PASS: *//p' "$log" | head -1)
	f=$(sed -n 's/^# FAIL: *//p' "$log" | head -1)
	e=$(sed -n 's/^# ERROR: *//p' "$log" | head -1)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0} + ${e:-0}))
	if [ -f "$plog" ]; then
		summary=$(grep -E '^=*.* (passed|failed|error)' "$plog" | tail -1)
		echo "pytest: $summary"
		pp=$(echo "$summary" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+')
		pf=$(echo "$summary" | grep -Eo '[0-9]+ (failed|errors?)' |
		    awk '{ s += $1 } END { if (NR) print s }')
		ps=$(echo "$summary" | grep -Eo '[0-9]+ skipped' | grep -Eo '[0-9]+')
		# The wrapper itself was counted as one PASS or FAIL above.
		if grep -q '^:test-result: PASS' "$1/tests/run-integration.sh.trs"
		then passed=$((passed - 1)); else failed=$((failed - 1)); fi
		passed=$((passed + ${pp:-0}))
		failed=$((failed + ${pf:-0}))
		skipped=$((skipped + ${ps:-0}))
		[ -z "$pp$pf" ] && failed=$((failed + 1))
	fi
}

# Counts the "NAME: ok" and "NAME: FAILED" lines of a script's output
# ($out, printed here) and its exit status $1: a failure that named no
# check counts as one.  A check's line starts at the line's start (the
# scripts indent what tools print) and ends with its verdict.
ok_re='^[^[:space:]].*: ok( \(.*\))?$'
failed_re='^[^[:space:]].*: FAILED( \(.*\))?$'
count_checks() {
	echo "$out"
	passed=$((passed + $(echo "$out" | grep -Ec "$ok_re")))
	failed=$((failed + $(echo "$out" | grep -Ec "$failed_re")))
	[ "$1" -ne 0 ] && [ "$(echo "$out" | grep -Ec "$failed_re")" -eq 0 ] &&
	    failed=$((failed + 1))
}

build_and_check() {
	dir=$1; shift
	note "build $dir: configure $*"
	rm -rf "$dir"
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" -q "$@" && make -s -j"$jobs") ||
	    { failed=$((failed + 1)); return; }
	note "test $dir"
	(cd "$dir" && make -s -j"$jobs" check VERBOSE=1) || true
	tally "$dir"
}

# Out-of-tree builds need an unconfigured source tree.
if [ -f config.status ]; then
	echo "source tree was configured in place: make distclean"
	make -s distclean >/dev/null 2>&1 || true
fi
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi -Wno-portability >/dev/null || exit 1

build_and_check build/plain --enable-werror
# A small quarantine: freed memory ASan holds back counts as RSS, and the
# streaming tests check that RSS stays flat (GnuTLS frees every record).
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:quarantine_size_mb=16
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The sanitizer run moves 256 MiB instead of 1 GiB through the streaming
# tests: the point there is memory errors, not the flat-RSS figure, which
# the plain run checks with the full size.
PORTCULLIS_BIG_BYTES=$((256 << 20))
export ASAN_OPTIONS UBSAN_OPTIONS PORTCULLIS_BIG_BYTES
build_and_check build/asan --enable-werror --enable-sanitizers
unset ASAN_OPTIONS UBSAN_OPTIONS PORTCULLIS_BIG_BYTES

note "fuzz: ${FUZZ_SECONDS}s per target"
rm -rf build/fuzz && mkdir -p build/fuzz
if (cd build/fuzz && "$top/configure" -q --enable-fuzzing CC=clang &&
    make -s -j"$jobs" libportcullis.a &&
    make -s -j"$jobs" $(cd "$top" && ls tests/fuzz/*_fuzz.c | sed 's/\.c$//')); then
	out=$(tests/fuzz/run-fuzzers.sh build/fuzz "$FUZZ_SECONDS")
	count_checks $?
else
	failed=$((failed + 1))
fi

# The tarball's own test run skips the slow tests (1 GiB streaming,
# testssl.sh); the plain and sanitizer runs above ran them.
note "make distcheck"
# The tarball builds, installs and passes its unit tests, fuzz replays and
# checks; of the integration tests every file is collected and a few run
# (tests/run-integration.sh): the whole suite ran above, twice.
if (cd build/plain && PORTCULLIS_QUICK=1 PORTCULLIS_SMOKE=1 make -s distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror \
    >distcheck.log 2>&1); then
	echo "distcheck: ok"
	passed=$((passed + 1))
else
	tail -80 build/plain/distcheck.log
	failed=$((failed + 1))
fi

note "debian package"
# Builds from a copy of the tree, installs on this machine and purges again
# (an EXIT trap in the script, on failure too).
out=$(tests/package/test_deb.sh "$top" 2>&1)
count_checks $?

note "container"
# Starts and stops its own dockerd (an EXIT trap, on failure too).
out=$(contrib/container-test.sh 2>&1)
count_checks $?

echo
[ "$skipped" -gt 0 ] && echo "($skipped skipped, see the pytest summaries above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

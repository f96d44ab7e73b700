#!/bin/sh
# Run the integration tests (pytest, Debian's interpreter) against the
# binary just built.  Called by "make check" with PORTCULLIS_BIN set.
#
# The test files run in PORTCULLIS_TEST_JOBS parallel pytest processes
# (default: one more than the number of CPUs, at most 4), the slowest
# files first, each process with its own port range (conftest.free_port)
# and temporary directory; most of the suite's time is spent waiting on timeouts and
# children, not on CPU.  The output of every file follows, in name order,
# then one pytest-style summary line with the sums.  PORTCULLIS_TEST_JOBS=1,
# or arguments (passed to pytest: -k, file names), run one pytest process.
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
PYTHON3=${PYTHON3:-/usr/bin/python3}
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE PYTHON3
tdir=$top/tests/integration
# PORTCULLIS_SMOKE=1 (contrib/test.sh sets it for make distcheck, after
# the full suite ran on the same sources in two builds): every test file is
# collected (each one is in the tarball and imports), and the files below
# run; the rest are not run, and pytest's count says so.
if [ "${PORTCULLIS_SMOKE:-0}" = 1 ]; then
	"$PYTHON3" -m pytest -p no:cacheprovider -q --collect-only \
	    --rootdir="$tdir" "$tdir" >/dev/null || exit 1
	exec "$PYTHON3" -m pytest -p no:cacheprovider -q -rfEs \
	    --rootdir="$tdir" "$tdir/test_cli.py" \
	    "$tdir/test_proxy_basic.py" "$tdir/test_upstreams.py" "$@"
fi
jobs=${PORTCULLIS_TEST_JOBS:-$(( $(nproc 2>/dev/null || echo 1) + 1 ))}
[ "$jobs" -gt 4 ] && jobs=4
if [ "$jobs" -le 1 ] || [ $# -gt 0 ]; then
	exec "$PYTHON3" -m pytest -p no:cacheprovider -q -rfEs \
	    --rootdir="$tdir" "$tdir" "$@"
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-it.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT
# The slowest files first (measured in the plain build), so that the two
# queues end together; a file not named here runs after these.
slow="test_soak test_tls test_acme test_proxy_out test_proxy_http test_paths
test_streaming test_health_checks test_timeouts test_under_load test_routing
test_upstream_errors test_h2 test_h2_early test_ratelimit test_health
test_upstream_tls test_ratelimit_flood test_reload test_proxy_protocol"
{
	for f in $slow; do [ -f "$tdir/$f.py" ] && echo "$f"; done
	for p in "$tdir"/test_*.py; do
		f=$(basename "$p" .py)
		case " $(echo $slow) " in *" $f "*) ;; *) echo "$f" ;; esac
	done
} > "$out/order"
span=$((22000 / jobs))
start=$(date +%s)
# One pytest per file; xargs numbers its running slots from 0, and a slot
# owns ports [10000 + slot * span, 10000 + (slot + 1) * span).
xargs -P "$jobs" -n 1 --process-slot-var=PORTCULLIS_SLOT sh -c '
	out=$1 tdir=$2 span=$3 f=$4
	lo=$((10000 + PORTCULLIS_SLOT * span))
	PORTCULLIS_PORT_RANGE=$lo-$((lo + span - 1)) "$PYTHON3" -m pytest \
	    -p no:cacheprovider -q -rfEs --rootdir="$tdir" \
	    --basetemp="$out/tmp-$f" "$tdir/$f.py" > "$out/$f.log" 2>&1
	echo $? > "$out/$f.rc"
	rm -rf "$out/tmp-$f"
	echo "$f: $(tail -n 1 "$out/$f.log")"
' sh "$out" "$tdir" "$span" < "$out/order"

passed=0 failed=0 skipped=0 errors=0 bad=0
for f in $(sort "$out/order"); do
	printf '\n######## %s\n' "$f.py"
	cat "$out/$f.log"
	last=$(grep -E '^=*.* in [0-9.]+s' "$out/$f.log" | tail -n 1)
	n() { echo "$last" | grep -Eo "[0-9]+ $1" | grep -Eo '^[0-9]+' || echo 0; }
	p=$(n passed) fl=$(n failed) s=$(n skipped) e=$(n 'errors?')
	passed=$((passed + p)) failed=$((failed + fl))
	skipped=$((skipped + s)) errors=$((errors + e))
	rc=$(cat "$out/$f.rc" 2>/dev/null || echo 99)
	# A file that ran no test, or ended badly with no failure counted
	# (a crash of pytest itself), is one error.
	if [ "$p$fl$e$s" = 0000 ] || { [ "$rc" != 0 ] && [ "$fl$e" = 00 ]; }; then
		echo "$f.py: pytest exited $rc with no test failed: counted as an error"
		errors=$((errors + 1)) bad=1
	fi
	[ "$rc" != 0 ] && bad=1
done
secs=$(( $(date +%s) - start ))
sum=""
[ $failed -gt 0 ] && sum="$failed failed, "
sum="$sum$passed passed"
[ $skipped -gt 0 ] && sum="$sum, $skipped skipped"
[ $errors -gt 0 ] && sum="$sum, $errors errors"
echo "======== $sum in ${secs}s ($jobs processes) ========"
[ $bad = 0 ] && [ $failed = 0 ] && [ $errors = 0 ]

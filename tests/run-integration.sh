#!/bin/sh
# Run the integration tests (pytest, Debian's interpreter) against the
# binary just built.  Called by "make check" with PORTCULLIS_BIN set.
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
PYTHON3=${PYTHON3:-/usr/bin/python3}
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
# PORTCULLIS_SMOKE=1 (contrib/test.sh sets it for make distcheck, after
# the full suite ran on the same sources in two builds): every test file is
# collected (each one is in the tarball and imports), and the files below
# run; the rest are not run, and pytest's count says so.
if [ "${PORTCULLIS_SMOKE:-0}" = 1 ]; then
	"$PYTHON3" -m pytest -p no:cacheprovider -q --collect-only \
	    --rootdir="$top/tests/integration" "$top/tests/integration" \
	    >/dev/null || exit 1
	exec "$PYTHON3" -m pytest -p no:cacheprovider -q -rfEs \
	    --rootdir="$top/tests/integration" \
	    "$top/tests/integration/test_cli.py" \
	    "$top/tests/integration/test_proxy_basic.py" \
	    "$top/tests/integration/test_upstreams.py" "$@"
fi
exec "$PYTHON3" -m pytest -p no:cacheprovider -q -rfEs \
    --rootdir="$top/tests/integration" "$top/tests/integration" "$@"

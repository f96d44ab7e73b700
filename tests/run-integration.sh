#!/bin/sh
# Run the integration tests (pytest, Debian's interpreter) against the
# binary just built.  Called by "make check" with PORTCULLIS_BIN set.
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
PYTHON3=${PYTHON3:-/usr/bin/python3}
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
exec "$PYTHON3" -m pytest -p no:cacheprovider -q -rfEs \
    --rootdir="$top/tests/integration" "$top/tests/integration" "$@"

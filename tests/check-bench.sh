#!/bin/sh
# The benchmark harness (bench/) is not run by the test suite (no timed
# tests); this only checks that its scripts still parse.
top=${top_srcdir:-$(dirname "$0")/..}
py=${PYTHON3:-/usr/bin/python3}
bash -n "$top/bench/run" || exit 1
for f in "$top"/bench/*.py; do
	# ast.parse, not py_compile: nothing may be written to the source tree.
	"$py" -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' \
	    "$f" || exit 1
done
# bench/run and contrib/install-deps.sh install every library configure
# requires (a fresh machine has none of them).
for pkg in $(sed -n 's/^PC_REQUIRE(\[[^]]*\], *\[[^]]*\], *\[\([^]]*\)\]).*/\1/p' \
    "$top/configure.ac"); do
	for f in bench/run contrib/install-deps.sh; do
		grep -Eq "(^|[ \"])$pkg([ \"]|\$)" "$top/$f" ||
		    { echo "$f does not install $pkg (configure.ac requires it)"; exit 1; }
	done
done
echo "bench scripts parse; bench/run installs what configure requires"

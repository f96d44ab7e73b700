#!/bin/sh
# Print the module graph of src/ and fail if it has a cycle.
#
# A module x is src/x.c and src/x.h together; x -> y when x.c or x.h
# includes "y.h" (a header of src/; generated and system headers do not
# count).  Modules layer one way: every cycle is reported as its set of
# modules (a strongly connected component) and the includes inside it,
# which are the ones to cut.
#   tests/check-layers.sh          graph, then cycles; exit 1 if any
#   tests/check-layers.sh --dot    the graph for graphviz, nothing else
top=${top_srcdir:-$(dirname "$0")/..}
dot=false
[ "${1:-}" = --dot ] && dot=true

for f in "$top"/src/*.c "$top"/src/*.h; do
	[ -e "$f" ] || continue
	m=$(basename "$f"); m=${m%.*}
	echo "M $m"
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)\.h".*/\1/p' \
	    "$f" | while read -r d; do
		[ -e "$top/src/$d.h" ] && [ "$d" != "$m" ] && echo "E $m $d"
	done
done | sort -u | awk -v dot="$dot" '
$1 == "M" { mods[++n] = $2; idx[$2] = n; next }
$1 == "E" { edge[$2, $3] = 1; next }
END {
	for (i = 1; i <= n; i++)
		for (j = 1; j <= n; j++)
			reach[i, j] = ((mods[i], mods[j]) in edge)
	# Transitive closure (Warshall): some thirty modules.
	for (k = 1; k <= n; k++)
		for (i = 1; i <= n; i++)
			if (reach[i, k])
				for (j = 1; j <= n; j++)
					if (reach[k, j])
						reach[i, j] = 1
	if (dot == "true") {
		print "digraph src {"
		for (i = 1; i <= n; i++)
			for (j = 1; j <= n; j++)
				if ((mods[i], mods[j]) in edge) {
					red = reach[j, i] ? " [color=red]" : ""
					printf "\t\"%s\" -> \"%s\"%s;\n",
					    mods[i], mods[j], red
				}
		print "}"
		exit 0
	}
	print "module graph of src/ (x -> y: x.c or x.h includes y.h):"
	for (i = 1; i <= n; i++) {
		line = ""
		for (j = 1; j <= n; j++)
			if ((mods[i], mods[j]) in edge)
				line = line " " mods[j]
		if (line == "")
			line = " (none)"
		printf "  %-10s ->%s\n", mods[i], line
	}
	ncyc = 0
	for (i = 1; i <= n; i++) {
		if (done[i] || !reach[i, i])
			continue
		ncyc++
		set = ""; inner = ""
		for (j = 1; j <= n; j++)
			if (j == i || (reach[i, j] && reach[j, i])) {
				done[j] = 1
				set = set " " mods[j]
			}
		for (j = 1; j <= n; j++)
			for (k = 1; k <= n; k++)
				if ((j == i || (reach[i, j] && reach[j, i])) &&
				    (k == i || (reach[i, k] && reach[k, i])) &&
				    ((mods[j], mods[k]) in edge))
					inner = inner "\n    " mods[j] " -> " mods[k]
		printf "cycle {%s}, through:%s\n", substr(set, 2), inner
	}
	if (ncyc > 0) {
		printf "%d cycle(s) in the module graph of src/\n", ncyc
		exit 1
	}
	print "no cycle in the module graph of src/"
}'

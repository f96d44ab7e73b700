#!/bin/sh
# Fail if src/ calls a banned function (see STYLE.md): they are either
# unbounded (strcpy, strcat, sprintf, gets), ambiguous on bad input (atoi,
# sscanf, strtok) or subtly unterminated (strncpy).
top=${top_srcdir:-$(dirname "$0")/..}
banned='\b(strcpy|strcat|sprintf|vsprintf|strncpy|strtok|sscanf|atoi|atol|atoll|gets)[[:space:]]*\('
# Comments and strings mentioning a name are fine; calls are not.
hits=$(grep -nE "$banned" "$top"/src/*.c "$top"/src/*.h |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)' || true)
if [ -n "$hits" ]; then
	echo "banned functions in src/:"
	echo "$hits"
	exit 1
fi
echo "no banned functions in src/"

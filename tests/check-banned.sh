#!/bin/sh
# Fail if src/ calls a banned function.  The rule, complete here:
#   - unbounded: strcpy, strcat, sprintf, vsprintf, gets.  Use snprintf()
#     (bounded; it returns the length it needed) or memcpy() with a
#     length already checked;
#   - subtly unterminated: strncpy.  Same replacements;
#   - ambiguous on bad input (no error for "12x", "", an overflow): atoi,
#     atol, atoll, sscanf.  Use util_parse_u64() (util.h: all digits, in
#     range);
#   - hidden state, not reentrant: strtok.  Walk the bytes with memchr().
# What is checked: a banned name followed by "(" on a line of src/*.[ch]
# that does not start a comment.  Run by "make check", or alone as
# tests/check-banned.sh.
top=${top_srcdir:-$(dirname "$0")/..}
banned='\b(strcpy|strcat|sprintf|vsprintf|strncpy|strtok|sscanf|atoi|atol|atoll|gets)[[:space:]]*\('
hits=$(grep -nE "$banned" "$top"/src/*.c "$top"/src/*.h |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)' || true)
if [ -n "$hits" ]; then
	echo "banned functions in src/:"
	echo "$hits"
	exit 1
fi
echo "no banned functions in src/"

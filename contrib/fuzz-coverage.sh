#!/bin/sh
# Line coverage of the parsers by their fuzz corpora, into
# doc/fuzz-coverage.md (the table between the "coverage table" markers;
# the prose around it is kept).
#
#   contrib/fuzz-coverage.sh [BUILDDIR]
#
# Builds every fuzz target's replay driver (tests/fuzz/X_replay: the
# target's code with a plain main(), no libFuzzer) with clang's
# -fprofile-instr-generate -fcoverage-mapping in BUILDDIR (default
# build/coverage), runs each over its committed corpus tests/fuzz/corpus/X,
# merges the profiles with llvm-profdata and reports with llvm-cov, for
# each target, the lines of the source files it fuzzes (the list below)
# that its own corpus reaches.  Needs clang and llvm (llvm-cov,
# llvm-profdata: contrib/install-deps.sh coverage).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${1:-build/coverage}
doc=doc/fuzz-coverage.md
jobs=$(nproc 2>/dev/null || echo 2)

tool() {
	for t in "$1" "$1-14" "$1-15" "$1-16" "$1-13"; do
		command -v "$t" >/dev/null 2>&1 && { echo "$t"; return; }
	done
	echo "$0: $1 not found (contrib/install-deps.sh coverage)" >&2
	exit 1
}
cov=$(tool llvm-cov)
profdata=$(tool llvm-profdata)

# Each target and the source files whose parsing it fuzzes.
map="acmecrypto:src/acmecrypto.c
acmejson:src/acmejson.c
admin:src/admin.c
balance:src/balance.c
cidr:src/cidr.c
config:src/config.c src/image.c
control:src/control.c
h2:src/h2req.c
h2guard:src/h2guard.c
headers:src/headers.c
http1:src/http1.c
image:src/image.c
log:src/log.c
path:src/path.c
proxyhdr:src/proxyhdr.c
proxyproto:src/proxyproto.c
realip:src/realip.c"

# Functions of those files that are not parsing and that no input of the
# target can reach by design: I/O, the event loop, builders of what we
# send, other parts of a module that also parses.  Their lines are left
# out of the "parser" columns (the "whole file" column counts them);
# doc/fuzz-coverage.md says why for each file.
excluded="src/acmecrypto.c:acme_key_generate acme_key_pem acme_jws acme_eab
 acme_key_authz acme_csr acme_alpn_cert dup_datum json_plain jws_flat
 es256_sign b64u_decode dns_name_ok
src/admin.c:admin_client_arg admin_reply admin_reply_error admin_open
 admin_start admin_close client_of client_free clear_stale admin_accept_cb
 client_read_cb client_timeout_cb
src/balance.c:balance_hash balance_ring balance_set_cookie balance_ring_find
 balance_pick point_cmp path_attr_ok usable use none_left pick_least turn
 pick_hash pick_rr
src/config.c:config_load read_file
src/control.c:control_open control_send control_send_gen control_recv
 control_report control_report_gen control_read control_child_check
 control_child_report control_child_read master_end_deaf has_fd msg_gen
 take_fds from_master child_config
src/log.c:log_set_access log_access_enabled log_enabled log_level_parse
 log_format_parse log_reopened log_reopen log_batching log_flush log_warn
 log_warnx log_errorx log_info log_debug fatal fatalx batch_ok dest_probe
 unwrite count_lines report_lost log_vmsg"

# The functions excluded in file $1, one per line.
excluded_in() {
	echo "$excluded" | awk -v f="$1" '
		/^src\// { on = index($0, f ":") == 1; sub(/^[^:]*:/, "") }
		on { for (i = 1; i <= NF; i++) print $i }'
}

# Every target has a line above, and every line a target.
listed=$(echo "$map" | cut -d: -f1 | sort)
present=$(ls tests/fuzz/*_fuzz.c | sed 's,.*/,,; s/_fuzz\.c$//' | sort)
if [ "$listed" != "$present" ]; then
	echo "$0: the target list is out of date; targets in the tree:" >&2
	echo "$present" >&2
	exit 1
fi

if [ ! -f "$build/Makefile" ]; then
	[ -x configure ] || autoreconf -fi -Wno-portability >/dev/null
	mkdir -p "$build"
	(cd "$build" && "$top/configure" -q CC=clang \
	    CFLAGS="-O0 -g -fprofile-instr-generate -fcoverage-mapping")
fi
(cd "$build" && make -s -j"$jobs" $(for t in $listed; do
	printf ' tests/fuzz/%s_replay' "$t"; done))

prof=$(mktemp -d)
trap 'rm -rf "$prof"' EXIT
table=$prof/table
{
	echo "| parser source | fuzz target | inputs | parser lines |" \
	    "covered | % | whole file: lines | covered | % |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
} >"$table"
echo "$map" | while IFS=: read -r t files; do
	bin="$build/tests/fuzz/${t}_replay"
	corpus="tests/fuzz/corpus/$t"
	LLVM_PROFILE_FILE="$prof/$t.profraw" "$bin" "$corpus" >/dev/null
	"$profdata" merge -sparse -o "$prof/$t.profdata" "$prof/$t.profraw"
	n=$(ls "$corpus" | wc -l)
	for f in $files; do
		# One row per function, then TOTAL: Name Regions Missed
		# Cover Lines Missed Cover ...  A static function is
		# "file.c:name".
		"$cov" report "$bin" -instr-profile="$prof/$t.profdata" \
		    -show-functions "$top/$f" >"$prof/report"
		excluded_in "$f" >"$prof/excluded"
		awk -v ex="$prof/excluded" '
			function pct(c, l) { return l ? 100 * c / l : 0 }
			BEGIN { while ((getline x < ex) > 0) skip[x] = 1 }
			$1 == "TOTAL" { tl = $5; tm = $6; next }
			NF >= 7 && $5 ~ /^[0-9]+$/ {
				name = $1; sub(/^.*:/, "", name)
				if (name in skip) { seen[name] = 1; next }
				pl += $5; pm += $6
			}
			END {
				for (x in skip) if (!(x in seen)) {
					print "excluded function " x \
					    " not found" > "/dev/stderr"
					exit 1
				}
				printf "%d %d %.1f %d %d %.1f\n", pl, pl - pm,
				    pct(pl - pm, pl), tl, tl - tm,
				    pct(tl - tm, tl)
			}' "$prof/report" >"$prof/row"
		read -r pl pc pp tl tc tp <"$prof/row"
		echo "| $f | $t | $n | $pl | $pc | $pp | $tl | $tc | $tp |" \
		    >>"$table"
		echo "$f ($t): parser $pc of $pl lines, $pp%;" \
		    "whole file $tc of $tl, $tp%"
	done
done

# Replace the table between the markers.
awk -v table="$table" '
	/<!-- coverage table begin -->/ {
		print; while ((getline line < table) > 0) print line
		skip = 1; next
	}
	/<!-- coverage table end -->/ { skip = 0 }
	!skip
' "$doc" >"$prof/doc"
cp "$prof/doc" "$doc"
echo "updated $doc"

#!/bin/sh
# The Debian package, for real: build it from a copy of the tree
# (dpkg-buildpackage -us -uc -b, the upstream tests skipped: nocheck), run
# lintian --fail-on error,warning, install it with dpkg, check what the
# maintainer scripts did (the system user, the directories and their owners
# and modes, the conffiles, the fail2ban jails disabled, the unit enabled),
# validate the installed configuration as root and as the service user,
# then purge and check that what the package added is gone.
#
# Needs root (it installs a package) and no init: systemctl is not called
# (debhelper's snippets skip starting when systemd is not running).  It
# leaves the machine as it found it, on failure too: an EXIT trap purges the
# package, removes the "portcullis" user if the test created it and the
# snakeoil pair if the package's postinst made it.
#
# Usage: tests/package/test_deb.sh [SRCDIR]   (default: this tree)
# Prints "NAME: ok" or "NAME: FAILED" per check; exit status 0 only if all
# passed.
set -u
top=$(cd "${1:-$(dirname "$0")/../..}" && pwd)

[ "$(id -u)" -eq 0 ] || { echo "deb: FAILED (needs root)"; exit 1; }
for t in dpkg-buildpackage dh lintian git; do
	command -v "$t" >/dev/null ||
	    { echo "deb: FAILED ($t missing: contrib/install-deps.sh test)"; exit 1; }
done
# Known to dpkg in any state but purged ("not-installed").
pkg_present() {
	st=$(dpkg-query -W -f='${Status}' portcullis 2>/dev/null) || return 1
	case "$st" in *not-installed|"") return 1 ;; esac
}
if pkg_present; then
	echo "deb: FAILED (portcullis is installed on this machine already)"
	exit 1
fi

snakeoil_cert=/etc/ssl/certs/ssl-cert-snakeoil.pem
snakeoil_key=/etc/ssl/private/ssl-cert-snakeoil.key
had_user=no; getent passwd portcullis >/dev/null && had_user=yes
had_group=no; getent group portcullis >/dev/null && had_group=yes
had_snakeoil=no; [ -e "$snakeoil_cert" ] && had_snakeoil=yes
tmp=$(mktemp -d /tmp/portcullis-deb.XXXXXX)

cleanup() {
	if pkg_present; then
		dpkg --purge portcullis >/dev/null 2>&1 || true
	fi
	if [ "$had_user" = no ] && getent passwd portcullis >/dev/null; then
		userdel portcullis 2>/dev/null || true
	fi
	if [ "$had_group" = no ] && getent group portcullis >/dev/null; then
		groupdel portcullis 2>/dev/null || true
	fi
	if [ "$had_snakeoil" = no ]; then
		rm -f "$snakeoil_cert" "$snakeoil_key"
		# make-ssl-cert links the cert under its hash too.
		find /etc/ssl/certs -maxdepth 1 -lname '*ssl-cert-snakeoil.pem' \
		    -delete 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fails=0
ok() { echo "$1: ok"; }
bad() { echo "$1: FAILED${2:+ ($2)}"; fails=$((fails + 1)); }
check() { name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# mode owner group of a path
attrs() { stat -c '%a %U %G' "$1" 2>/dev/null; }
check_attrs() {
	got=$(attrs "$1")
	if [ "$got" = "$2" ]; then ok "dir $1 $2"; else bad "dir $1 $2" "got: ${got:-missing}"; fi
}

# 1. Build from a copy of the tracked and new files (not the ignored ones), so
# that the tree itself gets no build products.
mkdir -p "$tmp/src"
(cd "$top" && git ls-files -z --cached --others --exclude-standard | tar -c --null -T - -f -) |
    tar -x -C "$tmp/src" -f - || { bad build "copying the tree"; exit 1; }
if (cd "$tmp/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
    nice -n 10 dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
	ok build
else
	tail -40 "$tmp/build.log"
	bad build
	exit 1
fi
deb=$(ls "$tmp"/portcullis_*.deb 2>/dev/null | head -1)
changes=$(ls "$tmp"/portcullis_*.changes 2>/dev/null | head -1)
[ -n "$deb" ] && [ -n "$changes" ] || { bad build "no .deb or .changes"; exit 1; }

# 2. lintian on the .changes (the .deb and the .buildinfo).
echo "Depends: $(dpkg-deb -f "$deb" Depends)"
if lintian --fail-on error,warning --display-info "$changes" \
    >"$tmp/lintian.log" 2>&1; then
	cat "$tmp/lintian.log"
	ok lintian
else
	cat "$tmp/lintian.log"
	bad lintian
fi

# 3. Install; no systemd is running, so nothing is started.
if dpkg -i "$deb" >"$tmp/install.log" 2>&1; then
	ok install
else
	cat "$tmp/install.log"
	bad install
	exit 1
fi

pw=$(getent passwd portcullis)
check "user portcullis exists" test -n "$pw"
uid=$(echo "$pw" | cut -d: -f3)
check "user portcullis is a system user (uid $uid < 1000)" \
    test "${uid:-1000}" -lt 1000
check "user portcullis has no login shell" \
    test "$(echo "$pw" | cut -d: -f7)" = /usr/sbin/nologin
check "user portcullis is in group ssl-cert" \
    sh -c 'id -nG portcullis | tr " " "\n" | grep -qx ssl-cert'

check_attrs /var/log/portcullis "750 portcullis adm"
check_attrs /var/lib/portcullis "700 portcullis portcullis"
check_attrs /run/portcullis "750 portcullis portcullis"
check_attrs /etc/portcullis/portcullis.conf "644 root root"

conffiles=/var/lib/dpkg/info/portcullis.conffiles
for f in /etc/portcullis/portcullis.conf /etc/logrotate.d/portcullis \
    /etc/fail2ban/filter.d/portcullis.conf \
    /etc/fail2ban/filter.d/portcullis-probe.conf \
    /etc/fail2ban/jail.d/portcullis.conf \
    /etc/fail2ban/jail.d/portcullis-journal.conf; do
	check "conffile $f" grep -qx "$f" "$conffiles"
done

# The file jails and the journal (backend = systemd) jails.
for jail in /etc/fail2ban/jail.d/portcullis.conf \
    /etc/fail2ban/jail.d/portcullis-journal.conf; do
	jails=$(grep -c '^\[' "$jail" 2>/dev/null)
	disabled=$(grep -Ec '^enabled[[:space:]]*=[[:space:]]*false[[:space:]]*$' "$jail" 2>/dev/null)
	enabled=$(grep -E '^[[:space:]]*enabled' "$jail" 2>/dev/null |
	    grep -Evc '=[[:space:]]*false[[:space:]]*$')
	check "fail2ban: $jail: $jails jails, all disabled" \
	    test "${jails:-0}" -ge 2 -a "${disabled:-0}" -eq "${jails:-0}" -a "${enabled:-1}" -eq 0
done
check "fail2ban: the journal jails use the systemd backend" \
    sh -c 'test "$(grep -Ec "^backend *= *systemd$" /etc/fail2ban/jail.d/portcullis-journal.conf)" -ge 2'
# fail2ban itself reads the files (filters parse, jails disabled).
if command -v fail2ban-client >/dev/null; then
	check "fail2ban-client -d: no portcullis jail active" \
	    sh -c 'out=$(fail2ban-client -d 2>&1) &&
	        ! echo "$out" | grep -q "add.*portcullis"'
fi

check "unit installed" test -f /lib/systemd/system/portcullis.service
check "unit enabled" \
    test -L /etc/systemd/system/multi-user.target.wants/portcullis.service
check "sysusers.d and tmpfiles.d entries" \
    test -f /usr/lib/sysusers.d/portcullis.conf -a \
    -f /usr/lib/sysusers.d/portcullis-ssl-cert.conf -a \
    -f /usr/lib/tmpfiles.d/portcullis.conf
check "man pages" test -f /usr/share/man/man8/portcullis.8.gz -a \
    -f /usr/share/man/man5/portcullis.conf.5.gz
check "example config" test -f /usr/share/doc/portcullis/examples/portcullis.conf
if command -v logrotate >/dev/null; then
	check "logrotate -d accepts /etc/logrotate.d/portcullis" \
	    sh -c 'logrotate -d /etc/logrotate.d/portcullis >/dev/null 2>&1'
fi

# 4. The installed configuration validates, as root and as the user the
# unit runs it as (User=portcullis: the key is readable through ssl-cert).
check "portcullis --validate (root)" \
    /usr/sbin/portcullis --validate -c /etc/portcullis/portcullis.conf
check "portcullis --validate (user portcullis)" \
    setpriv --reuid=portcullis --regid=portcullis --init-groups \
    /usr/sbin/portcullis --validate -c /etc/portcullis/portcullis.conf

# 5. Purge: the package's files, conffiles, directories and the unit's
# enablement go; the system user stays (see debian/portcullis.postrm).
if dpkg --purge portcullis >"$tmp/purge.log" 2>&1; then
	ok purge
else
	cat "$tmp/purge.log"
	bad purge
fi
if pkg_present; then bad "purged: dpkg forgot the package"
else ok "purged: dpkg forgot the package"; fi
for p in /etc/portcullis /etc/logrotate.d/portcullis \
    /etc/fail2ban/filter.d/portcullis.conf \
    /etc/fail2ban/filter.d/portcullis-probe.conf \
    /etc/fail2ban/jail.d/portcullis.conf \
    /etc/fail2ban/jail.d/portcullis-journal.conf \
    /var/log/portcullis /var/lib/portcullis /run/portcullis \
    /lib/systemd/system/portcullis.service \
    /etc/systemd/system/multi-user.target.wants/portcullis.service \
    /usr/lib/sysusers.d/portcullis.conf /usr/lib/tmpfiles.d/portcullis.conf \
    /usr/lib/sysusers.d/portcullis-ssl-cert.conf \
    /usr/sbin/portcullis $conffiles; do
	check "purged: $p" test ! -e "$p" -a ! -L "$p"
done

[ "$fails" -eq 0 ]

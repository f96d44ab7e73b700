#!/bin/sh
# Install the Debian packages portcullis needs, if any are missing.
#   contrib/install-deps.sh build   build the daemon
#   contrib/install-deps.sh demo    build + run the demo
#   contrib/install-deps.sh test    build + the whole test suite ("make check"
#                                   needs cmocka and fails without it)
#   contrib/install-deps.sh coverage  test + llvm-cov and llvm-profdata for
#                                   contrib/fuzz-coverage.sh
set -eu

build="build-essential autoconf automake pkg-config libgnutls28-dev
libnghttp2-dev libconfuse-dev libsystemd-dev libcap-dev libev-dev
libseccomp-dev libcurl4-gnutls-dev libjansson-dev libgmp-dev"
demo="$build python3 curl openssl procps"
test="$demo libcmocka-dev clang libclang-rt-14-dev python3-pytest python3-h2
gnutls-bin nghttp2-client socat util-linux systemd wrk testssl.sh fail2ban
iproute2 nginx pebble haproxy"
# Issue 20, metrics: the exposition's parser and a real Prometheus
# (tests/integration/test_metrics.py).
test="$test python3-prometheus-client prometheus"
# The Debian package stage (tests/package/test_deb.sh).
test="$test dpkg-dev debhelper lintian fakeroot ssl-cert"
# The container stage (contrib/container-test.sh): Debian's Docker (the
# script starts its own dockerd), compose 1.29 for deploy/docker-compose.yml,
# debootstrap for the base image (Docker Hub is not reachable in CI), curl
# and fail2ban-regex (above) against the proxy and its log.
test="$test docker.io docker-compose debootstrap"
# Issue 20, the journal: fail2ban's systemd backend reads the journal
# through python3-systemd (fail2ban-regex systemd-journal in
# tests/integration/test_journal.py, which starts systemd-journald from
# the systemd package above).
test="$test python3-systemd"
coverage="$test llvm-14"

case "${1:-build}" in
build) want=$build ;;
demo) want=$demo ;;
test) want=$test ;;
coverage) want=$coverage ;;
*) echo "usage: $0 build|demo|test|coverage" >&2; exit 2 ;;
esac

missing=""
for pkg in $want; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing="$missing $pkg" ;;
	esac
done
[ -z "$missing" ] && exit 0

echo "installing:$missing"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "need root (or sudo) to install:$missing" >&2; exit 1; }
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing

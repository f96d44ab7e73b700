#!/bin/bash
# The container test (issue 20): deploy/Dockerfile and
# deploy/docker-compose.yml for real, with Debian's docker.io and
# docker-compose.  Run as root:
#   contrib/container-test.sh
# contrib/test.sh runs it as a stage.  It prints one "NAME: ok" or
# "NAME: FAILED" line per check and exits 0 only if every check passed.
#
# It starts a dockerd of its own (there is no init system in CI) with its
# data, state and socket in a temporary directory, and stops it on exit,
# on failure too, after removing what it started (containers, networks,
# volumes; the iptables chains dockerd made, if there were none before).
# Docker Hub is not reachable here, so the base image comes from Debian's
# archive: debootstrap --variant=minbase bookworm, apt lists and caches
# removed, docker import.  The tarball is cached per day in
# $PORTCULLIS_CONTAINER_CACHE (/var/tmp/portcullis-container-cache; a
# clean machine makes it, about a minute).  Everything is built FROM it
# (the BASE build argument); the Dockerfile's own default stays
# debian:bookworm-slim.
#
# Environment: PORTCULLIS_CONTAINER_PORTS="HTTPS HTTP" (the published
# ports on 127.0.0.1, default "41443 41080"), PORTCULLIS_CONTAINER_KEEP=1
# (leave the temporary directory, for a look at dockerd.log).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)

DOCKER=/usr/bin/docker          # not a newer client that may come first in PATH
COMPOSE=/usr/bin/docker-compose # Debian's 1.29
DOCKERD=/usr/sbin/dockerd
cache=${PORTCULLIS_CONTAINER_CACHE:-/var/tmp/portcullis-container-cache}
read -r https_port http_port <<<"${PORTCULLIS_CONTAINER_PORTS:-41443 41080}"
project=portcullis-ctest
failures=0

ok() { echo "$1: ok"; }
fail() {
	echo "$1: FAILED${2:+ ($2)}"
	failures=$((failures + 1))
}
# check NAME COMMAND...: one line for one command's status.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else fail "$name"; fi
}
elapsed() { echo $(($(date +%s) - start)); }

if [ "$(id -u)" -ne 0 ]; then
	fail container "must run as root (it starts dockerd)"
	exit 1
fi
for t in "$DOCKER" "$COMPOSE" "$DOCKERD" /usr/sbin/debootstrap; do
	if [ ! -x "$t" ]; then
		fail container "$t is missing: contrib/install-deps.sh test"
		exit 1
	fi
done

# Another Docker daemon shares the machine's iptables chains (and docker0),
# which this one would rework: run the test where none runs (CI), not
# beside a running Docker.
if pgrep -x dockerd >/dev/null; then
	fail container "another dockerd is running: stop it first"
	exit 1
fi

# A short path: the unix socket must fit in sun_path.
tmp=$(mktemp -d /var/tmp/pc-ctest.XXXXXX) || exit 1
export DOCKER_HOST=unix://$tmp/docker.sock
export COMPOSE_PROJECT_NAME=$project
# Compose's settings (deploy/docker-compose.yml).
export PORTCULLIS_BASE=portcullis-base:bookworm
export PORTCULLIS_ADDR=127.0.0.1
export PORTCULLIS_HTTPS_PORT=$https_port PORTCULLIS_HTTP_PORT=$http_port
export PORTCULLIS_LOG_DIR=$tmp/logs
# The builds' RUN steps use the host's network: this dockerd has no
# default bridge (docker0), so that it neither makes nor changes the
# machine's; the compose services get a network of their own.
export PORTCULLIS_BUILD_NETWORK=host
compose() { timeout "${CT:-120}" "$COMPOSE" -f "$top/deploy/docker-compose.yml" "$@"; }
dk() { timeout "${CT:-60}" "$DOCKER" "$@"; }

had_docker_chains=no
iptables -S DOCKER-USER >/dev/null 2>&1 && had_docker_chains=yes
# dockerd turns IP forwarding on and may set the FORWARD policy to DROP:
# both are put back as they were.
ip_forward=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)
forward_policy=$(iptables -S FORWARD 2>/dev/null | sed -n 's/^-P FORWARD //p')

cleanup() {
	set +e
	if [ -S "$tmp/docker.sock" ]; then
		CT=60 compose down -v --remove-orphans -t 5 >/dev/null 2>&1
		ids=$(dk ps -aq 2>/dev/null)
		[ -n "$ids" ] && dk rm -f $ids >/dev/null 2>&1
		dk network prune -f >/dev/null 2>&1
	fi
	if [ -f "$tmp/docker.pid" ]; then
		pid=$(cat "$tmp/docker.pid")
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 1 30); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 1
		done
		kill -KILL "$pid" 2>/dev/null
		# Its containerd, if it outlived it.
		[ -f "$tmp/exec/containerd/containerd.pid" ] &&
		    kill -KILL "$(cat "$tmp/exec/containerd/containerd.pid")" 2>/dev/null
	fi
	# Mounts left under the directory (the network namespaces dockerd
	# keeps in its exec root, overlays of a killed daemon), deepest first.
	awk -v d="$tmp/" 'index($2, d) == 1 { print $2 }' /proc/mounts |
	    sort -r | while read -r m; do umount -l "$m"; done
	if [ "$had_docker_chains" = no ]; then
		iptables -D FORWARD -j DOCKER-USER 2>/dev/null
		iptables -D FORWARD -j DOCKER-ISOLATION-STAGE-1 2>/dev/null
		for c in DOCKER DOCKER-ISOLATION-STAGE-1 DOCKER-ISOLATION-STAGE-2 DOCKER-USER; do
			iptables -F "$c" 2>/dev/null && iptables -X "$c" 2>/dev/null
		done
		iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j DOCKER 2>/dev/null
		iptables -t nat -D OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER 2>/dev/null
		iptables -t nat -F DOCKER 2>/dev/null && iptables -t nat -X DOCKER 2>/dev/null
	fi
	[ -n "$forward_policy" ] && iptables -P FORWARD "$forward_policy" 2>/dev/null
	[ -n "$ip_forward" ] && echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward 2>/dev/null
	if [ "${PORTCULLIS_CONTAINER_KEEP:-0}" = 1 ]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	echo "container test: $(elapsed) s"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The end of a step's output on failure.
show() { [ -f "$1" ] && tail -n "${2:-30}" "$1" | sed 's/^/    /'; }

# ---- dockerd
mkdir -p "$tmp/logs"
echo '{}' >"$tmp/daemon.json"   # not the machine's /etc/docker/daemon.json
"$DOCKERD" --config-file "$tmp/daemon.json" --data-root "$tmp/data" \
    --exec-root "$tmp/exec" --pidfile "$tmp/docker.pid" \
    -H "$DOCKER_HOST" --bridge=none --storage-driver=overlay2 \
    >"$tmp/dockerd.log" 2>&1 &
up=no
for _ in $(seq 1 60); do
	if CT=5 dk version >/dev/null 2>&1; then up=yes; break; fi
	sleep 0.5
done
if [ $up = no ]; then
	fail container-dockerd
	show "$tmp/dockerd.log"
	exit 1
fi
ok container-dockerd

# ---- base image: Debian's archive, cached per day
mkbase() {
	local tarball="$cache/bookworm-minbase-$(date -u +%Y%m%d).tar" root="$tmp/rootfs"
	if [ ! -s "$tarball" ]; then
		mkdir -p "$cache" || return 1
		timeout 600 debootstrap --variant=minbase bookworm "$root" \
		    http://deb.debian.org/debian >"$tmp/debootstrap.log" 2>&1 ||
		    { show "$tmp/debootstrap.log"; return 1; }
		# The sources of debian:bookworm-slim (updates and security too).
		rm -f "$root/etc/apt/sources.list"
		cat >"$root/etc/apt/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: http://deb.debian.org/debian
		Suites: bookworm bookworm-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: http://deb.debian.org/debian-security
		Suites: bookworm-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		EOF
		rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
		    "$root"/var/log/*.log "$root"/var/log/apt/*
		mkdir -p "$root/var/lib/apt/lists/partial" \
		    "$root/var/cache/apt/archives/partial"
		tar -C "$root" -cf "$tarball.part" . && mv "$tarball.part" "$tarball" ||
		    return 1
		rm -rf "$root"
		# Older days' tarballs.
		find "$cache" -name 'bookworm-minbase-*.tar*' ! -path "$tarball" -delete
	fi
	dk import "$tarball" "$PORTCULLIS_BASE" >/dev/null
}
check container-base-image mkbase
echo "  ($(elapsed) s)"

# ---- build both images (compose builds deploy/Dockerfile and the app)
if CT=1200 compose build >"$tmp/build.log" 2>&1; then
	ok container-build
else
	fail container-build
	show "$tmp/build.log" 40
	exit 1
fi
echo "  ($(elapsed) s)"
image=portcullis:latest

# The final stage: the binary and its libraries, CA certificates, no
# compiler, no curl; a non-root user.
contents() {
	local user
	user=$(dk image inspect -f '{{.Config.User}}' "$image") || return 1
	[ -n "$user" ] && [ "${user%%:*}" != root ] && [ "${user%%:*}" != 0 ] ||
	    { echo "    image user: '$user'"; return 1; }
	dk run --rm --network none --entrypoint /bin/sh "$image" -c '
	    for t in cc gcc clang make curl wget autoreconf pkg-config; do
		command -v $t && { echo "    $t in the image"; exit 1; }
	    done
	    test -s /etc/ssl/certs/ca-certificates.crt || exit 1
	    ldd /usr/sbin/portcullis | grep "not found" && exit 1
	    test -z "$(ls /var/lib/apt/lists | grep -v -e partial -e lock)"'
}
check container-image-contents contents

# A bad configuration: the file and line, a non-zero status, no start.
badconf() {
	local out rc
	printf 'workers = 2\nlistener {\n  https-port = 99999\n}\n' >"$tmp/bad.conf"
	chmod 0644 "$tmp/bad.conf"
	out=$(dk run --rm --network none \
	    -v "$tmp/bad.conf:/etc/portcullis/portcullis.conf:ro" "$image" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/    /'
	[ $rc -ne 0 ] &&
	    echo "$out" | grep -q '^/etc/portcullis/portcullis.conf:[0-9]*: ' &&
	    echo "$out" | grep -q 'not valid'
}
check container-bad-config badconf

# ---- the compose example
if compose up -d >"$tmp/up.log" 2>&1; then
	ok container-compose-up
else
	fail container-compose-up
	show "$tmp/up.log"
	exit 1
fi
cid=$(compose ps -q portcullis)

healthy() {
	local s=""
	for _ in $(seq 1 60); do
		s=$(dk inspect -f '{{.State.Health.Status}}' "$cid" 2>/dev/null)
		[ "$s" = healthy ] && return 0
		[ "$(dk inspect -f '{{.State.Running}}' "$cid")" = true ] || break
		sleep 1
	done
	echo "    health: '$s'"
	dk logs --tail 20 "$cid" 2>&1 | sed 's/^/    /'
	return 1
}
# The check itself can fail: nothing answers /health on another port.
# Status 1 from the script, not 125-127 from docker exec failing to run it.
unhealthy() {
	local rc
	dk exec -e PORTCULLIS_HEALTH_PORT=9 "$cid" \
	    /usr/local/bin/portcullis-healthcheck 2>/dev/null
	rc=$?
	[ "$rc" -eq 1 ] || { echo "    healthcheck status $rc, not 1"; return 1; }
}
check container-healthy healthy
check container-healthcheck-can-fail unhealthy
echo "  ($(elapsed) s)"

# The example's certificate, to verify the proxy with (no -k).
dk cp "$cid:/etc/ssl/portcullis/cert.pem" "$tmp/cert.pem" >/dev/null 2>&1
curl_tls() {
	curl -sS --max-time 20 --cacert "$tmp/cert.pem" \
	    --resolve "localhost:$https_port:127.0.0.1" "$@"
}
https() {
	local body v
	body=$(curl_tls "https://localhost:$https_port/hello") || return 1
	echo "$body" | grep -q '^hello from the example app (host localhost.*path /hello)' ||
	    { echo "    body: $body"; return 1; }
	v=$(curl_tls --http2 -o /dev/null -w '%{http_version} %{http_code}' \
	    "https://localhost:$https_port/") || return 1
	[ "$v" = "2 200" ] || { echo "    HTTP/2: $v"; return 1; }
	v=$(curl_tls --http1.1 -o /dev/null -w '%{http_version} %{http_code}' \
	    "https://localhost:$https_port/") || return 1
	[ "$v" = "1.1 200" ] || { echo "    HTTP/1.1: $v"; return 1; }
}
check container-https https

# The plain port redirects to the published HTTPS port (redirect-port).
redirect() {
	local loc
	loc=$(curl -sS --max-time 10 -o /dev/null -w '%{redirect_url}' \
	    -H 'Host: localhost' "http://127.0.0.1:$http_port/x?y=1") || return 1
	[ "$loc" = "https://localhost/x?y=1" ] || { echo "    Location: $loc"; return 1; }
}
check container-redirect redirect

# The log on the host, in the bind-mounted directory, and fail2ban's
# filter finds the rate-limit lines in it (the example allows 20 at once).
hostlog() {
	local log=$tmp/logs/access.log
	for _ in $(seq 1 20); do
		grep -q 'ACCESS.*path=/hello.*status=200' "$log" 2>/dev/null && break
		sleep 0.5
	done
	grep -q 'ACCESS.*path=/hello.*status=200' "$log" ||
	    { show "$log" 5; return 1; }
	[ "$(stat -c %u "$tmp/logs")" != 0 ] || { echo "    logs owned by root"; return 1; }
}
check container-log-on-host hostlog

fail2ban() {
	local log=$tmp/logs/access.log urls=() n
	for i in $(seq 1 40); do urls+=("https://localhost:$https_port/rl$i"); done
	curl_tls "${urls[@]}" >/dev/null 2>&1
	for _ in $(seq 1 20); do
		grep -q RATE_LIMIT "$log" && break
		sleep 0.5
	done
	command -v fail2ban-regex >/dev/null || { echo "    no fail2ban-regex"; return 1; }
	n=$(fail2ban-regex "$log" "$top/deploy/fail2ban/filter.d/portcullis.conf" 2>&1 |
	    sed -n 's/^Failregex: \([0-9]*\) total.*/\1/p')
	echo "    fail2ban-regex: ${n:-?} matched"
	[ "${n:-0}" -gt 0 ]
}
check container-fail2ban-reads-log fail2ban

# Every process of the container (master, workers, signer) runs as the
# image's user, with no capability.
notroot() {
	local pids p n=0 bad=0 uid cap
	pids=$(dk top "$cid" -eo pid | tail -n +2) || return 1
	for p in $pids; do
		uid=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$p/status") || continue
		cap=$(awk '/^CapEff:/ { e = $2 } /^CapPrm:/ { p = $2 } END { print e, p }' "/proc/$p/status")
		printf '    pid %s %s: uid %s, caps %s\n' "$p" \
		    "$(tr '\0' ' ' <"/proc/$p/cmdline" | cut -c1-40)" "$uid" "$cap"
		n=$((n + 1))
		case " $uid " in *" 0 "*) bad=1 ;; esac
		[ "$cap" = "0000000000000000 0000000000000000" ] || bad=1
	done
	# The master, 2 workers and the signer at least.
	[ $n -ge 4 ] && [ $bad -eq 0 ]
}
check container-not-root notroot

# docker stop: SIGTERM, the master drains (a slow request in flight gets
# its answer) and exits 0.
drain() {
	local t0 t1 rc body
	curl_tls -o "$tmp/slow.out" "https://localhost:$https_port/slow?s=5" &
	local cpid=$!
	# Until the app has the request (its log line comes when it answers,
	# so wait on portcullis's connection instead: two seconds are plenty).
	sleep 2
	t0=$(date +%s)
	dk stop -t 30 "$cid" >/dev/null || return 1
	t1=$(date +%s)
	wait $cpid
	rc=$?
	body=$(cat "$tmp/slow.out" 2>/dev/null)
	echo "    slow request: curl status $rc, stop took $((t1 - t0)) s"
	[ $rc -eq 0 ] && echo "$body" | grep -q 'path /slow' || return 1
	[ "$(dk inspect -f '{{.State.ExitCode}}' "$cid")" = 0 ] ||
	    { echo "    exit code $(dk inspect -f '{{.State.ExitCode}}' "$cid")"; return 1; }
	# It waited for the request (3 s more), and not for docker's SIGKILL;
	# the log says so too.
	[ $((t1 - t0)) -ge 2 ] && [ $((t1 - t0)) -lt 25 ] || return 1
	grep -q 'ACCESS.*path=/slow?s=5.*status=200' "$tmp/logs/access.log" &&
	    grep -q 'proc=master.*msg=exiting' "$tmp/logs/access.log"
}
check container-stop-drains drain

[ $failures -eq 0 ]

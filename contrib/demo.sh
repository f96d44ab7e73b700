#!/bin/sh
# Install what is missing, build portcullis and run it in the foreground on
# the bundled demo configuration:
#   - a self-signed certificate for "localhost", made on the first run;
#   - a demo upstream (python3's http.server) on 127.0.0.1:8081;
#   - portcullis on https://localhost:8443/ (and http://localhost:8080/,
#     which redirects), health on 127.0.0.1:9900.
# Then, from another terminal:  curl -k https://localhost:8443/
# Stop with Ctrl-C.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
contrib/install-deps.sh demo

run="$top/contrib/demo-run"
mkdir -p "$run/www"
chmod 755 "$run" "$run/www"

if [ -f config.status ]; then
	bin="$top/portcullis"
	make -s -j"$(nproc)" portcullis
else
	[ -x configure ] || autoreconf -fi -Wno-portability >/dev/null
	mkdir -p build/demo
	(cd build/demo && { [ -f Makefile ] || ../../configure -q; } &&
	    make -s -j"$(nproc)" portcullis)
	bin="$top/build/demo/portcullis"
fi

if [ ! -f "$run/cert.pem" ]; then
	echo "making a self-signed certificate for localhost"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -days 365 -subj /CN=localhost \
	    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
	    -keyout "$run/key.pem" -out "$run/cert.pem" 2>/dev/null
	chmod 600 "$run/key.pem"
fi
cat >"$run/www/index.html" <<HTML
<!doctype html>
<title>portcullis demo</title>
<h1>Hello from the demo upstream</h1>
<p>This page came through portcullis.</p>
HTML
sed "s|@RUN@|$run|g" contrib/demo.conf.in >"$run/portcullis.conf"
# Add an IPv6 listener when the loopback has ::1, as "localhost" may be.
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	sed -n '/^listener {/,/^}/p' "$run/portcullis.conf" |
	    sed 's/bind = "127.0.0.1"/bind = "::1"/' >>"$run/portcullis.conf"
fi
"$bin" --validate -c "$run/portcullis.conf"

python3 -m http.server 8081 --bind 127.0.0.1 --directory "$run/www" \
    >"$run/upstream.log" 2>&1 &
upstream=$!
trap 'kill $upstream 2>/dev/null' EXIT INT TERM

echo "portcullis: https://localhost:8443/ (try: curl -k https://localhost:8443/)"
"$bin" -c "$run/portcullis.conf"

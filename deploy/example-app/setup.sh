#!/bin/sh
# One-shot "setup" service of deploy/docker-compose.yml, run as root
# before portcullis starts:
#  - a self-signed certificate for localhost in /tls (the example's
#    certificate volume), once; the key readable by the portcullis user
#    of the image (uid/gid 65532) only;
#  - the log directory (the host's bind mount) owned by that user, so
#    that portcullis can write the log fail2ban on the host reads.
# Replace the certificate with yours, or use ACME (README.md).
set -eu
uid=${PORTCULLIS_UID:-65532}
gid=${PORTCULLIS_GID:-65532}
if [ ! -s /tls/cert.pem ] || [ ! -s /tls/key.pem ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	    -nodes -days 365 -subj /CN=localhost \
	    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	    -keyout /tls/key.pem -out /tls/cert.pem 2>/dev/null
	echo "setup: made a self-signed certificate for localhost"
fi
chown "$uid:$gid" /tls/key.pem /tls/cert.pem
chmod 0600 /tls/key.pem
chmod 0644 /tls/cert.pem
chown "$uid:$gid" /logs
chmod 0750 /logs
echo "setup: done"

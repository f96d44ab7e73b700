#!/bin/bash
# HEALTHCHECK of the portcullis container image (deploy/Dockerfile):
# GET /health on 127.0.0.1:$PORTCULLIS_HEALTH_PORT (health-check-port,
# default 9900), healthy on "200".  Bash's /dev/tcp, so the image needs no
# curl; docker's --timeout bounds it.
port=${PORTCULLIS_HEALTH_PORT:-9900}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3 || exit 1
IFS= read -r -t 2 status <&3 || exit 1
case $status in
"HTTP/1.1 200 "*) exit 0 ;;
esac
echo "health: ${status%$'\r'}" >&2
exit 1

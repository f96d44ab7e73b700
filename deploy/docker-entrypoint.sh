#!/bin/sh
# Entry point of the portcullis container image (deploy/Dockerfile).
# Checks the configuration first, so that a bad one stops the container
# at once with every problem as FILE:LINE: reason and a non-zero status,
# then becomes portcullis (exec: the master is PID 1 and gets
# docker stop's SIGTERM itself).
#   docker run IMAGE                       -c /etc/portcullis/portcullis.conf
#   docker run IMAGE -c FILE [OPTIONS]     another file, other options
#   docker run IMAGE --validate [-c FILE]  only check
#   docker exec CONTAINER portcullis ctl status
set -u
bin=/usr/sbin/portcullis

case "${1:-}" in
ctl|--validate|-V|--version|-h|--help)
	exec "$bin" "$@" ;;
esac

if ! "$bin" --validate "$@" >/dev/null; then
	echo "portcullis-entrypoint: the configuration is not valid (above);" \
	    "not starting. It is in the /etc/portcullis volume." >&2
	exit 1
fi
exec "$bin" "$@"

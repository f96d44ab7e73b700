/*
 * listen.c - the listening sockets (see listen.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "util.h"

#define LISTEN_BACKLOG	1024

size_t
listen_plan(const struct config *cfg, struct listen_sock *out)
{
	size_t i, n = 0;

	for (i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];

		out[n++] = (struct listen_sock){ LISTEN_HTTPS, i,
		    l->https_port, -1 };
		if (l->http_port != 0)
			out[n++] = (struct listen_sock){ LISTEN_HTTP, i,
			    l->http_port, -1 };
	}
	if (cfg->health_port != 0)
		out[n++] = (struct listen_sock){ LISTEN_HEALTH, 0,
		    cfg->health_port, -1 };
	return n;
}

void
listen_describe(const struct config *cfg, const struct listen_sock *l,
    char *buf, size_t bufsz)
{
	const struct config_listener *cl;
	char addr[INET6_ADDRSTRLEN];

	if (l->kind == LISTEN_HEALTH) {
		snprintf(buf, bufsz, "127.0.0.1:%u", l->port);
		return;
	}
	cl = &cfg->listeners[l->listener];
	inet_ntop(cl->family, &cl->addr, addr, sizeof(addr));
	snprintf(buf, bufsz, cl->family == AF_INET6 ? "[%s]:%u" : "%s:%u",
	    addr, l->port);
}

static int
bind_one(const struct config *cfg, const struct listen_sock *l)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	int family = AF_INET, fd, on = 1;
	socklen_t len = sizeof(*sin);

	memset(&ss, 0, sizeof(ss));
	if (l->kind == LISTEN_HEALTH) {
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (cfg->listeners[l->listener].family == AF_INET) {
		sin->sin_addr = cfg->listeners[l->listener].addr.v4;
	} else {
		family = AF_INET6;
		len = sizeof(*sin6);
		sin6->sin6_addr = cfg->listeners[l->listener].addr.v6;
	}
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		sin->sin_port = htons(l->port);
	else
		sin6->sin6_port = htons(l->port);

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
	    &on, sizeof(on)) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1)
		return util_close_fail(fd);
	return fd;
}

int
listen_bind_all(const struct config *cfg, struct listen_sock *out, size_t *n)
{
	char where[64];
	size_t i;

	*n = listen_plan(cfg, out);
	for (i = 0; i < *n; i++) {
		if ((out[i].fd = bind_one(cfg, &out[i])) == -1) {
			listen_describe(cfg, &out[i], where, sizeof(where));
			log_warn("cannot listen on %s", where);
			while (i-- > 0)
				close(out[i].fd);
			return -1;
		}
	}
	return 0;
}

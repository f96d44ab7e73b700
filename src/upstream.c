/*
 * upstream.c - upstream connections and the keep-alive pool (see upstream.h).
 */
#include "autoconf.h"

#include <sys/queue.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "upstream.h"
#include "util.h"

#define IDLE_MAGIC	0x49444c45u	/* "IDLE" */

struct idle {
	uint32_t		 magic;
	struct upstream_pool	*pool;
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	int			 fd;
	ev_io			 io;
	ev_timer		 timer;
	TAILQ_ENTRY(idle)	 all;		/* oldest first */
};

struct upstream_pool {
	struct ev_loop		*loop;
	TAILQ_HEAD(idle_head, idle) idle;
	size_t			 n;
};

struct upstream_pool *
upstream_pool_new(struct ev_loop *loop)
{
	struct upstream_pool *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->loop = loop;
	TAILQ_INIT(&p->idle);
	return p;
}

size_t
upstream_pool_size(const struct upstream_pool *p)
{
	return p->n;
}

static void
idle_remove(struct idle *i, bool close_fd)
{
	struct upstream_pool *p = i->pool;

	ev_io_stop(p->loop, &i->io);
	ev_timer_stop(p->loop, &i->timer);
	TAILQ_REMOVE(&p->idle, i, all);
	p->n--;
	if (close_fd)
		close(i->fd);
	i->magic = 0;
	free(i);
}

static struct idle *
idle_of(void *data)
{
	struct idle *i = data;

	if (i == NULL || i->magic != IDLE_MAGIC)
		fatalx("upstream: corrupt idle connection");
	return i;
}

/* Readable while idle: the upstream closed it, or misbehaved. */
static void
idle_read_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents UNUSED)
{
	idle_remove(idle_of(w->data), true);
}

static void
idle_timeout_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	idle_remove(idle_of(w->data), true);
}

static bool
same_addr(const struct idle *i, const struct sockaddr *a, socklen_t len)
{
	return i->addrlen == len && memcmp(&i->addr, a, len) == 0;
}

int
upstream_take(struct upstream_pool *p, const struct sockaddr *addr,
    socklen_t len)
{
	struct idle *i;
	int fd;

	/* The most recently used is the least likely to be timing out. */
	TAILQ_FOREACH_REVERSE(i, &p->idle, idle_head, all) {
		if (!same_addr(i, addr, len))
			continue;
		fd = i->fd;
		idle_remove(i, false);
		return fd;
	}
	return -1;
}

void
upstream_put(struct upstream_pool *p, const struct sockaddr *addr,
    socklen_t len, int fd)
{
	struct idle *i, *old = NULL;
	size_t same = 0;

	TAILQ_FOREACH(i, &p->idle, all) {
		if (same_addr(i, addr, len) && same++ == 0)
			old = i;
	}
	if (same >= UPSTREAM_IDLE_PER_ADDR)
		idle_remove(old, true);
	else if (p->n >= UPSTREAM_IDLE_MAX)
		idle_remove(TAILQ_FIRST(&p->idle), true);
	if (len > sizeof(i->addr) || (i = calloc(1, sizeof(*i))) == NULL) {
		close(fd);
		return;
	}
	i->magic = IDLE_MAGIC;
	i->pool = p;
	memcpy(&i->addr, addr, len);
	i->addrlen = len;
	i->fd = fd;
	ev_io_init(&i->io, idle_read_cb, fd, EV_READ);
	i->io.data = i;
	ev_timer_init(&i->timer, idle_timeout_cb, UPSTREAM_IDLE_TIMEOUT, 0.);
	i->timer.data = i;
	ev_io_start(p->loop, &i->io);
	ev_timer_start(p->loop, &i->timer);
	TAILQ_INSERT_TAIL(&p->idle, i, all);
	p->n++;
}

void
upstream_pool_flush(struct upstream_pool *p)
{
	struct idle *i;

	while ((i = TAILQ_FIRST(&p->idle)) != NULL)
		idle_remove(i, true);
}

void
upstream_pool_free(struct upstream_pool *p)
{
	if (p == NULL)
		return;
	upstream_pool_flush(p);
	free(p);
}

int
upstream_connect(const struct sockaddr *addr, socklen_t len)
{
	int fd, on = 1;

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	/* Heads and small bodies go out at once. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (connect(fd, addr, len) == -1 && errno != EINPROGRESS)
		return util_close_fail(fd);
	return fd;
}

int
upstream_connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return errno;
	return err;
}

void
upstream_describe(const struct sockaddr *addr, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)
		    (const void *)addr;

		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s->sin_port));
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)
		    (const void *)addr;

		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s->sin6_port));
	} else
		snprintf(buf, len, "-");
}

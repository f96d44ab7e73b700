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
#include "uptls.h"
#include "util.h"

#define IDLE_MAGIC	0x49444c45u	/* "IDLE" */
#define SWEEP_SECS	5.0		/* how often the expired are closed */

struct peer;

struct idle {
	uint32_t		 magic;
	struct upstream_pool	*pool;
	struct peer		*peer;
	int			 fd;
	struct uptls_conn	*tls;		/* NULL: plain */
	ev_io			 io;
	double			 since;		/* pooled at */
	double			 until;		/* then closed (its backend's
						   timeout) */
	TAILQ_ENTRY(idle)	 entry;		/* oldest first */
};

/* One upstream address and tag, and its idle connections (few per
   worker). */
struct peer {
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	uint64_t		 tag;
	TAILQ_HEAD(idle_head, idle) idle;
	size_t			 n;
};

struct upstream_pool {
	struct ev_loop		*loop;
	struct peer		**peers;
	size_t			 npeers;
	size_t			 n;		/* idle, all peers */
	ev_timer		 sweep;
	struct util_cache	 spare;		/* freed, for reuse */
};

static void	sweep_cb(struct ev_loop *, ev_timer *, int);

struct upstream_pool *
upstream_pool_new(struct ev_loop *loop)
{
	struct upstream_pool *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->loop = loop;
	ev_timer_init(&p->sweep, sweep_cb, SWEEP_SECS, SWEEP_SECS);
	p->sweep.data = p;
	return p;
}

size_t
upstream_pool_size(const struct upstream_pool *p)
{
	return p->n;
}

static void
idle_remove(struct upstream_pool *p, struct idle *i, bool close_fd)
{
	struct peer *pe = i->peer;

	ev_io_stop(p->loop, &i->io);
	TAILQ_REMOVE(&pe->idle, i, entry);
	pe->n--;
	p->n--;
	if (close_fd) {
		uptls_conn_free(i->tls);
		close(i->fd);
	}
	i->magic = 0;
	/* Kept: puts follow takes, a few dozen apart under load. */
	util_cache_put(&p->spare, i);
	if (p->n == 0)
		ev_timer_stop(p->loop, &p->sweep);
}

static struct idle *
idle_of(void *data)
{
	struct idle *i = data;

	if (i == NULL || i->magic != IDLE_MAGIC)
		fatalx("upstream: corrupt idle connection");
	return i;
}

/* Readable while idle: the upstream closed it, or misbehaved; over TLS
   it may also have sent a session ticket (or part of one), which is no
   reason to go. */
static void
idle_read_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents UNUSED)
{
	struct idle *i = idle_of(w->data);

	if (i->tls != NULL && uptls_idle(i->tls, false) >= 0)
		return;
	idle_remove(i->pool, i, true);
}

/*
 * Whether an idle connection holds nothing: no byte and no EOF or error
 * waiting.  Its watcher closes it when it turns readable, but only from
 * the loop: a connection given back and taken again in one loop iteration
 * (a pipelined request, another HTTP/2 stream), or taken before a pending
 * event is handled, has not been looked at.  Whatever it holds is no
 * answer to the next request and must never be read as one.
 *
 * The socket is asked every time (one recv): that the loop polled it
 * since it was pooled proves nothing, as a poll does not report every
 * ready descriptor (libev's epoll backend takes at most as many events
 * as its array holds and the kernel keeps the rest for the next call).
 * Over TLS what came is read (records without application data are
 * taken in), and nothing may be left inside the session, not even part
 * of a record.
 */
static bool
idle_clean(const struct idle *i)
{
	char c;

	if (i->tls != NULL)
		return uptls_idle(i->tls, true) == 0;
	return recv(i->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Close a peer's connections idle past their time.  Sites sharing the
   address may have different timeouts: the whole list is looked at. */
static void
expire(struct upstream_pool *p, struct peer *pe)
{
	double now = ev_now(p->loop);
	struct idle *i, *next;

	for (i = TAILQ_FIRST(&pe->idle); i != NULL; i = next) {
		next = TAILQ_NEXT(i, entry);
		if (i->until <= now)
			idle_remove(p, i, true);
	}
}

static void
sweep_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct upstream_pool *p = w->data;
	size_t k;

	for (k = 0; k < p->npeers && p->n > 0; k++)
		expire(p, p->peers[k]);
}

static struct peer *
peer_of(struct upstream_pool *p, const struct sockaddr *a, socklen_t len,
    uint64_t tag, bool create)
{
	struct peer *pe, **n;
	size_t k;

	for (k = 0; k < p->npeers; k++)
		if (p->peers[k]->tag == tag && p->peers[k]->addrlen == len &&
		    memcmp(&p->peers[k]->addr, a, len) == 0)
			return p->peers[k];
	if (!create || len > sizeof(pe->addr))
		return NULL;
	/* One with nothing idle takes the new address and tag: PROXY
	   headers give each client connection a tag of its own, and the
	   table stays as large as what is idle at once, not as all the
	   clients ever seen. */
	for (k = 0; k < p->npeers; k++)
		if (p->peers[k]->n == 0) {
			pe = p->peers[k];
			memcpy(&pe->addr, a, len);
			pe->addrlen = len;
			pe->tag = tag;
			return pe;
		}
	if ((pe = calloc(1, sizeof(*pe))) == NULL)
		return NULL;
	if ((n = reallocarray(p->peers, p->npeers + 1, sizeof(*n))) == NULL) {
		free(pe);
		return NULL;
	}
	memcpy(&pe->addr, a, len);
	pe->addrlen = len;
	pe->tag = tag;
	TAILQ_INIT(&pe->idle);
	p->peers = n;
	p->peers[p->npeers++] = pe;
	return pe;
}

int
upstream_take(struct upstream_pool *p, const struct sockaddr *addr,
    socklen_t len, uint64_t tag, unsigned keep, struct uptls_conn **tls)
{
	struct peer *pe = peer_of(p, addr, len, tag, false);
	struct idle *i;
	int fd;

	*tls = NULL;
	if (pe == NULL)
		return -1;
	/* Pooled before a reload turned keep-alive off: not used. */
	if (keep == 0) {
		while ((i = TAILQ_FIRST(&pe->idle)) != NULL)
			idle_remove(p, i, true);
		return -1;
	}
	/*
	 * The most recently used is the least likely to be timing out.  The
	 * sweep runs every SWEEP_SECS: one past its time is closed here, and
	 * as connections are taken from the end, none ever is taken late.
	 * One that holds anything is closed too (idle_clean).
	 */
	while ((i = TAILQ_LAST(&pe->idle, idle_head)) != NULL &&
	    (i->until <= ev_now(p->loop) || !idle_clean(i)))
		idle_remove(p, i, true);
	if (i == NULL)
		return -1;
	fd = i->fd;
	*tls = i->tls;
	idle_remove(p, i, false);
	return fd;
}

/* The connection idle longest, whatever its peer. */
static struct idle *
oldest(struct upstream_pool *p)
{
	struct idle *i, *best = NULL;
	size_t k;

	for (k = 0; k < p->npeers; k++)
		if ((i = TAILQ_FIRST(&p->peers[k]->idle)) != NULL &&
		    (best == NULL || i->since < best->since))
			best = i;
	return best;
}

/* A connection that is not kept. */
static void
conn_close(int fd, struct uptls_conn *tls)
{
	uptls_conn_free(tls);
	close(fd);
}

void
upstream_put(struct upstream_pool *p, const struct sockaddr *addr,
    socklen_t len, uint64_t tag, int fd, struct uptls_conn *tls,
    unsigned keep, unsigned timeout)
{
	struct peer *pe;
	struct idle *i;

	if (keep == 0 || (pe = peer_of(p, addr, len, tag, true)) == NULL) {
		conn_close(fd, tls);
		return;
	}
	/* A reload may have lowered keep: more than one may go. */
	while (pe->n >= keep)
		idle_remove(p, TAILQ_FIRST(&pe->idle), true);
	if (p->n >= UPSTREAM_IDLE_MAX)
		idle_remove(p, oldest(p), true);
	if ((i = util_cache_take(&p->spare, sizeof(*i))) == NULL) {
		conn_close(fd, tls);
		return;
	}
	memset(i, 0, sizeof(*i));
	i->magic = IDLE_MAGIC;
	i->pool = p;
	i->peer = pe;
	i->fd = fd;
	i->tls = tls;
	i->since = ev_now(p->loop);
	i->until = i->since + (double)timeout;
	ev_io_init(&i->io, idle_read_cb, fd, EV_READ);
	/* The descriptor stayed open and watched since the exchange had it:
	   libev need not re-register it (a failing EPOLL_CTL_ADD each). */
	i->io.events &= ~EV__IOFDSET;
	i->io.data = i;
	ev_io_start(p->loop, &i->io);
	TAILQ_INSERT_TAIL(&pe->idle, i, entry);
	pe->n++;
	if (p->n++ == 0)
		ev_timer_again(p->loop, &p->sweep);
}

void
upstream_pool_flush(struct upstream_pool *p)
{
	struct idle *i;

	while ((i = oldest(p)) != NULL)
		idle_remove(p, i, true);
}

void
upstream_pool_free(struct upstream_pool *p)
{
	size_t k;

	if (p == NULL)
		return;
	upstream_pool_flush(p);
	for (k = 0; k < p->npeers; k++)
		free(p->peers[k]);
	free(p->peers);
	util_cache_clear(&p->spare);
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
	/* Asked for every exchange, nearly always of the same address: the
	   last answer is kept (one thread per process). */
	static struct sockaddr_storage last;
	static char last_name[INET6_ADDRSTRLEN + 16];
	size_t alen = addr->sa_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	char ip[INET6_ADDRSTRLEN];

	if ((addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
	    last.ss_family == addr->sa_family &&
	    memcmp(&last, addr, alen) == 0) {
		size_t n = strlen(last_name);

		if (len == 0)
			return;
		n = MINIMUM(n, len - 1);
		memcpy(buf, last_name, n);
		buf[n] = '\0';
		return;
	}
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
	} else {
		snprintf(buf, len, "-");
		return;
	}
	if (strlen(buf) + 1 < len && strlen(buf) < sizeof(last_name)) {
		memcpy(&last, addr, alen);
		memcpy(last_name, buf, strlen(buf) + 1);
	}
}

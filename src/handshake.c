/*
 * handshake.c - the TLS handshake of an HTTPS client connection, then
 * ALPN's choice (see handshake.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "client.h"
#include "gen.h"
#include "h1conn.h"
#include "h2conn.h"
#include "handshake.h"
#include "log.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define HS_MAGIC	0x48534b31u	/* "HSK1" */

/* A TLS handshake in progress. */
struct handshake {
	uint32_t		 magic;
	struct worker_conn	 wc;
	struct worker		*wk;
	struct gen		*gen;		/* the credentials it uses */
	size_t			 li;
	int			 fd;
	struct tls_conn		*tls;
	struct sockaddr_storage	 peer;		/* AF_UNSPEC if unknown */
	char			 client_ip[INET6_ADDRSTRLEN];
	ev_io			 io;
	int			 events;
	ev_timer		 timer;
};

static struct handshake *
hs_of(void *data)
{
	struct handshake *h = data;

	if (h == NULL || h->magic != HS_MAGIC)
		fatalx("handshake: corrupt");
	return h;
}

/* The watchers stop; the socket and the session go on, or not. */
static void
hs_end(struct handshake *h)
{
	struct ev_loop *loop = worker_loop(h->wk);

	ev_io_stop(loop, &h->io);
	ev_timer_stop(loop, &h->timer);
	ev_clear_pending(loop, &h->io);
	ev_clear_pending(loop, &h->timer);
	h->magic = 0;
}

static void
hs_close(struct handshake *h, const char *reason)
{
	log_debug("%s: connection closed: %s", h->client_ip, reason);
	hs_end(h);
	tls_conn_free(h->tls);
	close(h->fd);
	gen_unref(h->gen);
	worker_conn_del(h->wk, &h->wc);
	free(h);
}

/* Done: ALPN says who takes the socket, the session and gen. */
static void
hs_hand_over(struct handshake *h)
{
	hs_end(h);
	/* Registered there before it leaves here: a drain never sees 0. */
	if (strcmp(tls_conn_alpn(h->tls), "h2") == 0)
		h2_accept(h->wk, h->fd, h->li, h->tls, h->gen, &h->peer,
		    h->client_ip);
	else
		h1_start(h->wk, h->fd, h->li, h->tls, h->gen, &h->peer,
		    h->client_ip);
	worker_conn_del(h->wk, &h->wc);
	free(h);
}

static void
hs_watch(struct handshake *h)
{
	int ev = tls_conn_want_write(h->tls) ? EV_WRITE : EV_READ;

	if (ev != h->events || !ev_is_active(&h->io)) {
		util_watch(worker_loop(h->wk), &h->io, h->fd, ev);
		h->events = ev;
	}
}

static void
hs_io_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents)
{
	struct handshake *h = hs_of(w->data);
	int rc;

	if (revents & EV_READ)
		tls_conn_readable(h->tls);
	rc = tls_conn_handshake(h->tls);
	if (rc == -1)
		hs_close(h, tls_conn_error(h->tls));
	else if (rc == 0)
		hs_watch(h);
	else
		hs_hand_over(h);
}

static void
hs_timer_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	hs_close(hs_of(w->data), "timeout");
}

/* A drain lets a handshake finish: the connection it becomes drains. */
static void
hs_drain(struct worker_conn *wc UNUSED)
{
}

static void
hs_abort(struct worker_conn *wc)
{
	hs_close(hs_of(CONTAINER_OF(wc, struct handshake, wc)), "shutdown");
}

void
handshake_start(struct worker *wk, int fd, size_t li)
{
	struct gen *g = worker_gen(wk);
	struct handshake *h;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		close(fd);
		return;
	}
	if ((h->tls = tls_conn_new(g->tls, li, fd)) == NULL) {
		free(h);
		close(fd);
		return;
	}
	h->magic = HS_MAGIC;
	h->wk = wk;
	h->gen = gen_ref(g);
	h->li = li;
	h->fd = fd;
	h->wc.nfds = 1;
	h->wc.drain = hs_drain;
	h->wc.abort = hs_abort;
	client_peer(fd, &h->peer, h->client_ip, sizeof(h->client_ip));
	ev_io_init(&h->io, hs_io_cb, fd, 0);
	h->io.data = h;
	ev_timer_init(&h->timer, hs_timer_cb, g->cfg->http.handshake_timeout,
	    0.);
	h->timer.data = h;
	worker_conn_add(wk, &h->wc);
	ev_timer_start(worker_loop(wk), &h->timer);
	hs_watch(h);
}


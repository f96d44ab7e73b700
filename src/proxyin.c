/*
 * proxyin.c - the PROXY header of a connection on a proxy-protocol
 * listener (see proxyin.h).
 *
 * Nothing past the header is ever consumed: bytes are looked at with
 * MSG_PEEK and taken only when they are header bytes for sure (all of
 * them once the header is complete; all so far while a trusted source's
 * header is incomplete, since from there anything but a header ends the
 * connection anyway).  An untrusted source's bytes are only looked at:
 * while they are a proper prefix of a signature (at most 11 bytes, a
 * client that paused inside "POST" or "PRI"), the socket is looked at
 * again every POLL_SECS instead of on readability, which a level-
 * triggered loop would report again and again for bytes we leave there.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "cidr.h"
#include "client.h"
#include "gen.h"
#include "log.h"
#include "proxyin.h"
#include "proxyproto.h"
#include "util.h"
#include "worker.h"

#define PI_MAGIC	0x50524f31u	/* "PRO1" */
#define POLL_SECS	0.05

/* A connection whose PROXY header is awaited. */
struct proxyin {
	uint32_t		 magic;
	struct client		 cl;		/* socket, peer, watchers */
	proxyin_next_fn		*next;
	bool			 trusted;	/* its peer is a trusted proxy */
	ev_timer		 poll;		/* untrusted: look again */
	size_t			 have;		/* header bytes taken */
	uint8_t			 buf[PROXYPROTO_MAX];
};

static struct proxyin *
pi_of(void *data)
{
	struct proxyin *p = data;

	if (p == NULL || p->magic != PI_MAGIC)
		fatalx("proxyin: corrupt");
	return p;
}

static void
pi_free(struct proxyin *p)
{
	ev_timer_stop(worker_loop(p->cl.wk), &p->poll);
	p->magic = 0;
	free(p);
}

static void
pi_close(struct proxyin *p, const char *reason)
{
	log_debug("%s: connection closed: %s", p->cl.client_ip, reason);
	client_close(&p->cl);
	pi_free(p);
}

/* The one line a refused connection gets: the TCP peer, never an
   address a header named. */
static void
pi_refuse(struct proxyin *p, const char *error)
{
	struct log_event ev;

	log_event_begin(&ev, "PROXY");
	log_event_cstr(&ev, "client_ip", p->cl.client_ip);
	log_event_uint(&ev, "listener", p->cl.li + 1);
	log_event_cstr(&ev, "trusted", p->trusted ? "yes" : "no");
	log_event_cstr(&ev, "error", error);
	log_event_end(&ev);
	client_close(&p->cl);
	pi_free(p);
}

/* The client address is known: on to the next stage. */
static void
pi_hand_over(struct proxyin *p)
{
	struct client from = { .wk = p->cl.wk, .fd = p->cl.fd,
	    .li = p->cl.li, .gen = p->cl.gen, .peer = p->cl.peer,
	    .cap = p->cl.cap };

	/* An untrusted source's address was final at accept (and counted
	   then): it goes on as it is. */
	if (!p->trusted)
		memcpy(from.client_ip, p->cl.client_ip, sizeof(from.client_ip));
	else if (!client_address_final(&from)) {
		client_close(&p->cl);
		pi_free(p);
		return;
	}
	/* Registered there before it leaves here: a drain never sees 0. */
	p->next(&from);
	client_leave(&p->cl);
	pi_free(p);
}

/* Take n bytes the peek saw: they are header bytes. */
static bool
pi_take(struct proxyin *p, size_t n)
{
	ssize_t got;

	do
		got = recv(p->cl.fd, p->buf + p->have, n, 0);
	while (got == -1 && errno == EINTR);
	if (got != (ssize_t)n)
		return false;
	p->have += n;
	return true;
}

static void
pi_trusted(struct proxyin *p, size_t n)
{
	struct proxyproto h;

	switch (proxyproto_parse(p->buf, p->have + n, &h)) {
	case PROXYPROTO_MORE:
		if (!pi_take(p, n))
			pi_refuse(p, "reading the PROXY header failed");
		return;
	case PROXYPROTO_ERROR:
		pi_refuse(p, h.why);
		return;
	case PROXYPROTO_DONE:
		break;
	}
	if (!pi_take(p, h.len - p->have)) {
		pi_refuse(p, "reading the PROXY header failed");
		return;
	}
	if (h.cmd == PROXYPROTO_PROXY && h.has_addr)
		p->cl.peer = h.src;
	pi_hand_over(p);
}

static void
pi_untrusted(struct proxyin *p, size_t n)
{
	struct ev_loop *loop = worker_loop(p->cl.wk);

	switch (proxyproto_detect(p->buf, n)) {
	case PROXYPROTO_SIG_NONE:
		pi_hand_over(p);
		return;
	case PROXYPROTO_SIG_V1:
	case PROXYPROTO_SIG_V2:
		pi_refuse(p, "a PROXY header from a source not in "
		    "trusted-proxies");
		return;
	case PROXYPROTO_SIG_MORE:
		break;
	}
	/* Bytes left in the socket: readability says nothing new. */
	ev_io_stop(loop, &p->cl.io);
	if (!ev_is_active(&p->poll)) {
		p->poll.repeat = POLL_SECS;
		ev_timer_again(loop, &p->poll);
	}
}

/* Look at what the socket holds past the header bytes taken. */
static void
pi_read(struct proxyin *p)
{
	size_t room = sizeof(p->buf) - p->have;
	ssize_t n;

	/* An untrusted source's first bytes only: the longest signature. */
	if (!p->trusted)
		room = MINIMUM(room, 12);
	n = recv(p->cl.fd, p->buf + p->have, room, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	/* A trusted source that leaves without a byte (a balancer's plain
	   TCP check) sent nothing to refuse. */
	if (n <= 0) {
		if (p->trusted && p->have > 0)
			pi_refuse(p, n == 0 ? "closed before its PROXY header "
			    "ended" : "error before its PROXY header ended");
		else
			pi_close(p, n == 0 ? "closed" : "error");
		return;
	}
	if (p->trusted)
		pi_trusted(p, (size_t)n);
	else
		pi_untrusted(p, (size_t)n);
}

static void
pi_io_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents UNUSED)
{
	pi_read(pi_of(w->data));
}

static void
pi_poll_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	pi_read(pi_of(w->data));
}

static void
pi_timer_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct proxyin *p = pi_of(w->data);

	if (p->trusted)
		pi_refuse(p, "no whole PROXY header within "
		    "handshake-timeout");
	else
		pi_close(p, "timeout");
}

/* A drain lets the header come: the connection it becomes drains. */
static void
pi_drain(struct worker_conn *wc UNUSED)
{
}

static void
pi_abort(struct worker_conn *wc)
{
	pi_close(pi_of(CONTAINER_OF(wc, struct proxyin, cl.wc)), "shutdown");
}

static const struct client_ops pi_client_ops = {
	.io = pi_io_cb,
	.timer = pi_timer_cb,
	.drain = pi_drain,
	.abort = pi_abort,
};

void
proxyin_start(struct worker *wk, int fd, size_t li, proxyin_next_fn *next)
{
	struct gen *g = worker_gen(wk);
	const struct config_listener *l = &g->cfg->listeners[li];
	struct client from;
	struct proxyin *p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		close(fd);
		return;
	}
	client_accepted(&from, wk, fd, li);
	/* Gone before it was accepted (a balancer's check that reset):
	   no peer to judge, nothing to serve. */
	if (from.peer.ss_family == AF_UNSPEC) {
		log_debug("connection closed: its peer is gone");
		client_drop(&from);
		free(p);
		return;
	}
	p->magic = PI_MAGIC;
	p->next = next;
	p->trusted = cidr_find(l->trusted, l->ntrusted,
	    (const struct sockaddr *)&from.peer) >= 0;
	/* Its address is final now: counted against
	   max-connections-per-client from the start, as on any listener. */
	if (!p->trusted && !client_address_final(&from)) {
		client_drop(&from);
		free(p);
		return;
	}
	client_take(&p->cl, &pi_client_ops, p, &from);
	ev_timer_init(&p->poll, pi_poll_cb, 0., POLL_SECS);
	p->poll.data = p;
	p->cl.timer.repeat = g->cfg->http.handshake_timeout;
	ev_timer_again(worker_loop(wk), &p->cl.timer);
	util_watch(worker_loop(wk), &p->cl.io, fd, EV_READ);
}

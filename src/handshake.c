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
#include "metrics.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define HS_MAGIC	0x48534b31u	/* "HSK1" */

/* A TLS handshake in progress. */
struct handshake {
	uint32_t		 magic;
	struct client		 cl;		/* socket, TLS, peer, watchers */
	int			 events;
};

static struct handshake *
hs_of(void *data)
{
	struct handshake *h = data;

	if (h == NULL || h->magic != HS_MAGIC)
		fatalx("handshake: corrupt");
	return h;
}

static void
hs_close(struct handshake *h, const char *reason)
{
	log_debug("%s: connection closed: %s", h->cl.client_ip, reason);
	client_close(&h->cl);
	h->magic = 0;
	free(h);
}

/*
 * A handshake refused for want of a certificate (acme mode: none issued
 * yet for the name, or acme-tls/1 without a pending challenge) says why,
 * in one ACME line; one refused for the client's certificate (a site with
 * client-auth "required": none sent, expired, unknown issuer ...) in one
 * CLIENT_CERT line; any other failure is the client's business (debug).
 */
static void
hs_failed(struct handshake *h)
{
	struct log_event ev;
	const char *why, *name;
	unsigned flags = 0;
	size_t len;

	if (tls_conn_refusal(h->cl.tls, &name, &len) != NULL)
		flags |= METRICS_TLS_F_NO_CERT;
	if (tls_conn_auth_refusal(h->cl.tls, &name) != NULL)
		flags |= METRICS_TLS_F_CLIENT_CERT;
	metrics_count_handshake_failure(worker_stats(h->cl.wk),
	    metrics_tls_reason(tls_conn_handshake_error(h->cl.tls), flags));
	if ((why = tls_conn_refusal(h->cl.tls, &name, &len)) != NULL) {
		log_event_begin(&ev, "ACME");
		log_event_cstr(&ev, "client_ip", h->cl.client_ip);
		log_event_str(&ev, "name", len > 0 ? name : "-",
		    len > 0 ? len : 1);
		log_event_cstr(&ev, "error", why);
		log_event_end(&ev);
	} else if ((why = tls_conn_auth_refusal(h->cl.tls, &name)) != NULL) {
		log_event_begin(&ev, "CLIENT_CERT");
		log_event_cstr(&ev, "client_ip", h->cl.client_ip);
		log_event_cstr(&ev, "site", name);
		log_event_cstr(&ev, "error", why);
		log_event_end(&ev);
	}
	hs_close(h, tls_conn_error(h->cl.tls));
}

/* Done: ALPN says who takes the socket, the session and gen. */
static void
hs_hand_over(struct handshake *h)
{
	struct client *cl = &h->cl;
	const char *alpn = tls_conn_alpn(cl->tls);

	metrics_count_handshake(worker_stats(cl->wk));
	/* TLS-ALPN-01: the challenge certificate was the answer; no HTTP. */
	if (strcmp(alpn, TLS_ALPN_ACME) == 0) {
		tls_conn_bye(cl->tls);
		hs_close(h, "tls-alpn-01 challenge answered");
		return;
	}
	/* Registered there before it leaves here: a drain never sees 0. */
	if (strcmp(alpn, "h2") == 0)
		h2_start(cl);
	else
		h1_start(cl);
	client_leave(cl);
	h->magic = 0;
	free(h);
}

static void
hs_watch(struct handshake *h)
{
	int ev = tls_conn_want_write(h->cl.tls) ? EV_WRITE : EV_READ;

	if (ev != h->events || !ev_is_active(&h->cl.io)) {
		util_watch(worker_loop(h->cl.wk), &h->cl.io, h->cl.fd, ev);
		h->events = ev;
	}
}

static void
hs_io_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents)
{
	struct handshake *h = hs_of(w->data);
	int rc;

	if (revents & EV_READ)
		tls_conn_readable(h->cl.tls);
	rc = tls_conn_handshake(h->cl.tls);
	if (rc == -1)
		hs_failed(h);
	else if (rc == 0)
		hs_watch(h);
	else
		hs_hand_over(h);
}

static void
hs_timer_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct handshake *h = hs_of(w->data);

	metrics_count_handshake_failure(worker_stats(h->cl.wk),
	    metrics_tls_reason(0, METRICS_TLS_F_TIMEOUT));
	hs_close(h, "timeout");
}

/* A drain lets a handshake finish: the connection it becomes drains. */
static void
hs_drain(struct worker_conn *wc UNUSED)
{
}

static void
hs_abort(struct worker_conn *wc)
{
	hs_close(hs_of(CONTAINER_OF(wc, struct handshake, cl.wc)),
	    "shutdown");
}

static const struct client_ops hs_client_ops = {
	.io = hs_io_cb,
	.timer = hs_timer_cb,
	.drain = hs_drain,
	.abort = hs_abort,
};

void
handshake_begin(const struct client *from)
{
	struct client c = *from;
	struct handshake *h;

	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (c.tls = tls_conn_new(c.gen->tls, c.li, c.fd)) == NULL) {
		free(h);
		client_drop(&c);
		return;
	}
	h->magic = HS_MAGIC;
	client_take(&h->cl, &hs_client_ops, h, &c);
	h->cl.timer.repeat = c.gen->cfg->http.handshake_timeout;
	ev_timer_again(worker_loop(c.wk), &h->cl.timer);
	hs_watch(h);
}

void
handshake_start(struct worker *wk, int fd, size_t li)
{
	struct client from;

	if (client_accepted_final(&from, wk, fd, li))
		handshake_begin(&from);
}

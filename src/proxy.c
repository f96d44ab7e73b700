/*
 * proxy.c - one exchange with an upstream (see proxy.h).
 *
 * States, in this order only (ex_next() alone goes back, from HEAD to
 * CONNECTING, before a byte of an answer, to the next upstream):
 *
 *   CONNECTING  a new connection, not yet writable (a pooled one starts
 *               at HEAD); once it is, a backend with
 *               upstream-proxy-protocol sends its PROXY header, in one
 *               send, before anything else (TLS too)
 *   TLS         upstream-scheme "https": the TLS handshake (uptls.c),
 *               still under connect-timeout
 *   HEAD        the request goes out; the response head is awaited (1xx
 *               are dropped)
 *   BODY        the head went to the frontend; its body follows
 *   DONE        done() was called: whoever entered from the loop frees
 *               the exchange on the way out (ex_leave)
 *
 * The request side runs alongside from HEAD on (req_ended, want_body),
 * and the response side can pause for the frontend (paused).  The request
 * head is built once, into `out`; the
 * body follows as the frontend supplies it, framed with Content-Length or
 * re-chunked.  The response is parsed with the strict parser: a malformed
 * head is a 502 and the connection is thrown away; body bytes are handed
 * to the frontend as they arrive, and whatever it cannot take yet stays at
 * the front of `in` (`pend` bytes of it are body already accounted for by
 * the chunked decoder) until it calls proxy_resume().
 *
 * Every byte to and from the upstream goes through the io_*() functions,
 * plain or TLS (but for the PROXY header, which is outside TLS); where
 * the upstream is (its address, its host) only ex_addr() and ex_host()
 * know.
 *
 * A PROXY header describes the client connection it was made for, so a
 * connection that sent one is pooled under a tag that has a hash of the
 * header in it (ex_pool_tag): it serves again only requests whose header
 * would be the same bytes, those of the same client connection.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "balance.h"
#include "buf.h"
#include "log.h"
#include "proxy.h"
#include "ratelimit.h"
#include "upstate.h"
#include "upstream.h"
#include "uptls.h"
#include "util.h"

#define EX_MAGIC	0x45584348u	/* "EXCH" */
/* Room kept in `out` for a chunk's framing and the last chunk. */
#define CHUNK_OVERHEAD	32
/* What goes to the upstream (see ex_build_head). */
#define EX_OUT_SMALL	4096
#define EX_OUT_BODY	(2 * PROXY_BUF)
/* The upstream side's read buffer, first and grown (see ex_grow_in). */
#define EX_IN_SMALL	PROXY_BUF
#define EX_IN_BUF	(4 * PROXY_BUF)

enum ex_state {
	EX_CONNECTING,
	EX_TLS,
	EX_HEAD,
	EX_BODY,
	EX_DONE,
};

struct exchange {
	uint32_t		 magic;
	struct proxy_ctx	*ctx;
	const struct proxy_ops	*ops;
	void			*fe;
	const struct config_backend *be;	/* where it goes */
	const char		*site;		/* its site's name, for logs */
	const char		*prefix;	/* its path block's, or NULL */
	const struct sockaddr	*peer;		/* the client: &client, or NULL */
	struct sockaddr_storage	 client;	/* a copy: the request's may go */
	int			 sticky;
	const struct config_upstream *up;	/* the one chosen, or NULL */
	int			 upi;		/* its index in be->ups */
	uint64_t		 tried;		/* bit i: ups[i] had a new
						   connection that failed */
	bool			 counted;	/* in up's in-flight count */
	bool			 ours;		/* the failure is ours (memory,
						   descriptors): said once per
						   window (log_rate_warnx) */
	bool			 marked;	/* this attempt's failure
						   counted */
	char			 name[64];	/* the upstream, for logs */
	char			 error[128];	/* what failed, for the log */
	char			*set_cookie;	/* sticky-cookie's, or NULL */
	enum ex_state		 state;
	int			 fd;
	/* Over https: its settings, the pool's tag for them, the session
	   (NULL until the connection is up, and for plain HTTP). */
	const struct uptls_backend *uptls;
	uint64_t		 tag;
	struct uptls_conn	*tls;
	/* upstream-proxy-protocol: the header (NULL: none) and the hash of
	   it the pool's tag takes in (0: none). */
	unsigned char		*pp;
	size_t			 pp_len;
	uint64_t		 pp_hash;
	bool			 reused;
	ev_io			 io;
	ev_timer		 timer;		/* connect / inactivity */
	ev_timer		 soon;		/* a failure to report later */
	enum proxy_result	 soon_result;
	int			 soon_errno;
	struct buf		*out;
	struct buf		*in;

	/* The request. */
	enum headers_framing	 req_framing;
	uint64_t		 req_left;	/* LENGTH: bytes to come */
	bool			 req_ended;	/* the frontend ended the body */
	bool			 want_body;	/* the frontend waits for room */
	char			*retry;		/* the head, to resend once */
	size_t			 retry_len;
	bool			 got_bytes;	/* any byte of a response */

	/* The response. */
	enum http1_method	 method;
	bool			 websocket;
	struct http1_parser	 parser;
	struct http1_response	 resp;
	enum http1_body		 body;
	uint64_t		 body_left;	/* LENGTH */
	struct http1_chunked	 chunked;
	size_t			 pend;		/* decoded body at in's front */
	bool			 paused;
	bool			 eof;		/* the upstream closed */

	int			 events;	/* what io watches */
	bool			 in_callback;
};

static void	ex_io_cb(struct ev_loop *, ev_io *, int);
static int	ex_connect(struct exchange *);

/* Freed exchanges, for the next request (4.5 KiB: past malloc's tcache). */
static struct util_cache ex_cache;

static struct exchange *
ex_of(void *data)
{
	struct exchange *ex = data;

	if (ex == NULL || ex->magic != EX_MAGIC)
		fatalx("proxy: corrupt exchange");
	return ex;
}

static struct ev_loop *
loop_of(const struct exchange *ex)
{
	return ex->ctx->loop;
}

/*
 * The tag the pool keeps the connection under: what TLS made it with
 * (uptls_tag; 0: plain), and with a PROXY header, a hash of the header
 * (never 0).  Only the TLS tag names the session cache's entry: a PROXY
 * header does not stop a session from being resumed.
 */
static inline uint64_t
ex_pool_tag(const struct exchange *ex)
{
	return ex->tag ^ ex->pp_hash;
}

/*
 * The hash of a PROXY header: SipHash under a key of the worker's own,
 * drawn at its first, so that no client can make its header collide
 * with another's (the pool would give it the other's connection).
 */
static uint64_t
pp_hash(const unsigned char *pp, size_t len)
{
	static unsigned char key[16];
	static bool keyed;
	uint64_t h;

	if (!keyed) {
		if (gnutls_rnd(GNUTLS_RND_RANDOM, key, sizeof(key)) < 0)
			fatalx("proxy: no random key for PROXY headers");
		keyed = true;
	}
	h = ratelimit_siphash(key, pp, len);
	return h != 0 ? h : 1;
}

/*
 * Where the exchange goes: the chosen upstream's address, and its host
 * (the name TLS verifies unless upstream-server-name says another).
 */
static const struct sockaddr *
ex_addr(const struct exchange *ex, socklen_t *len)
{
	*len = ex->up->addrlen;
	return (const struct sockaddr *)&ex->up->addr;
}

static const char *
ex_host(const struct exchange *ex)
{
	return ex->up->host;
}

/*
 * The upstream connection's I/O, plain or TLS: send and recv()'s
 * contract (-1 with errno, EAGAIN for "not now"); a TLS failure is
 * EPROTO, and io_strerror() says what it was.
 */
static ssize_t
io_tls_result(ssize_t r)
{
	if (r >= 0)
		return r;
	errno = r == TLS_AGAIN ? EAGAIN : EPROTO;
	return -1;
}

/* Plain HTTP, the common case, stays a system call away. */
static inline ssize_t
io_send(struct exchange *ex, const void *p, size_t n)
{
	if (ex->tls == NULL)
		return send(ex->fd, p, n, MSG_NOSIGNAL);
	return io_tls_result(uptls_write(ex->tls, p, n));
}

static inline ssize_t
io_recv(struct exchange *ex, void *p, size_t n)
{
	if (ex->tls == NULL)
		return recv(ex->fd, p, n, 0);
	return io_tls_result(uptls_read(ex->tls, p, n));
}

static const char *
io_strerror(const struct exchange *ex, int err)
{
	if (ex->tls != NULL && err == EPROTO)
		return uptls_error(ex->tls);
	return strerror(err);
}

/* The loop saw the socket readable (TLS reads may recv() again). */
static void
io_readable(struct exchange *ex)
{
	if (ex->tls != NULL)
		uptls_readable(ex->tls);
}

/* Bytes read and decrypted already, which no event will announce. */
static bool
io_pending(const struct exchange *ex)
{
	return ex->tls != NULL && uptls_pending(ex->tls);
}

/* Close the connection (close_notify first over TLS). */
static void
io_close(struct exchange *ex)
{
	uptls_conn_free(ex->tls);
	ex->tls = NULL;
	close(ex->fd);
	ex->ctx->nfds--;
	ex->fd = -1;
	/* The next descriptor may get the same number: util_watch() must
	   see it as new. */
	ev_io_set(&ex->io, -1, 0);
}

static void
ex_stop(struct exchange *ex)
{
	struct ev_loop *loop = loop_of(ex);

	ev_io_stop(loop, &ex->io);
	ev_timer_stop(loop, &ex->timer);
	ev_timer_stop(loop, &ex->soon);
	/* A fed event must not reach a freed watcher. */
	ev_clear_pending(loop, &ex->io);
	ev_clear_pending(loop, &ex->timer);
	ev_clear_pending(loop, &ex->soon);
	if (ex->fd != -1)
		io_close(ex);
}

/* The request no longer counts as in flight to its upstream. */
static void
ex_uncount(struct exchange *ex)
{
	if (ex->counted) {
		upstate_end(ex->ctx->ups, ex->up->slot);
		ex->counted = false;
	}
}

static void
ex_free(struct exchange *ex)
{
	ex_stop(ex);
	ex_uncount(ex);
	buf_free(ex->out);
	buf_free(ex->in);
	free(ex->retry);
	free(ex->set_cookie);
	free(ex->pp);
	ex->magic = 0;
	util_cache_put(&ex_cache, ex);
}

/*
 * The end.  The exchange is only marked: whoever entered it from the
 * event loop frees it on the way out, so no caller up the stack ever
 * touches freed memory.
 */
static void
ex_finish(struct exchange *ex, enum proxy_result result)
{
	ex_stop(ex);
	ex_uncount(ex);
	ex->state = EX_DONE;
	ex->in_callback = true;
	ex->ops->done(ex->fe, result);
	ex->in_callback = false;
}

/* Every entry from the event loop ends here. */
static void
ex_leave(struct exchange *ex)
{
	if (ex->state == EX_DONE)
		ex_free(ex);
}

/* What failed, for the access log: "NAME WHAT", several "; "-separated. */
static void
ex_note(struct exchange *ex, const char *what)
{
	size_t len = strlen(ex->error);

	snprintf(ex->error + len, sizeof(ex->error) - len, "%s%s%s%s",
	    len > 0 ? "; " : "", ex->name, ex->name[0] != '\0' ? " " : "",
	    what);
}

/* Passive health: this attempt failed (once per attempt). */
static void
ex_mark_failed(struct exchange *ex, const char *what)
{
	const struct config_backend *be = ex->be;

	if (ex->up == NULL || ex->marked)
		return;
	ex->marked = true;
	ex->tried |= (uint64_t)1 << ex->upi;
	if (ex->ctx->ups == NULL || !upstate_fail(ex->ctx->ups, be,
	    ex->up->slot, upstate_now_ms()))
		return;
	log_warnx("upstream %s (%s, site %s%s%s) is down: %u failure%s in a "
	    "row, the last: %s; not used for %u s", ex->name, ex->up->name,
	    ex->site, ex->prefix != NULL ? " path " : "",
	    ex->prefix != NULL ? ex->prefix : "", be->max_fails,
	    be->max_fails == 1 ? "" : "s", what, be->fail_timeout);
}

/* Passive health: the upstream answered. */
static void
ex_mark_ok(struct exchange *ex)
{
	if (ex->ctx->ups == NULL || !upstate_ok(ex->ctx->ups, ex->be,
	    ex->up->slot))
		return;
	log_warnx("upstream %s (%s, site %s%s%s) is up again", ex->name,
	    ex->up->name, ex->site, ex->prefix != NULL ? " path " : "",
	    ex->prefix != NULL ? ex->prefix : "");
}

/*
 * Choose an upstream (balance.h) among those not tried yet, and count
 * the request in flight to it.  0, or a balance_none.
 */
static int
ex_choose(struct exchange *ex)
{
	const struct config_backend *be = ex->be;
	struct balance_req rq = { ex->peer, ex->sticky, ex->tried,
	    ex->up != NULL ? ex->upi : -1 };
	uint64_t now = 0;
	int i;

	/* The clock only for what can be down (balance.h). */
	if (ex->ctx->ups != NULL && (be->nups > 1 || be->health.on))
		now = upstate_now_ms();
	if ((i = balance_pick(be, ex->ctx->ups, &rq, now)) < 0)
		return i;
	ex->upi = i;
	ex->up = &ex->be->ups[i];
	ex->marked = false;
	/* Over https, what its connections are made and verified with. */
	ex->tag = ex->uptls != NULL ? uptls_tag(ex->uptls, ex_host(ex)) : 0;
	upstream_describe((const struct sockaddr *)&ex->up->addr, ex->name,
	    sizeof(ex->name));
	if (ex->ctx->ups != NULL) {
		upstate_begin(ex->ctx->ups, ex->up->slot);
		ex->counted = true;
	}
	return 0;
}

/* Failures of our own repeat with every request while they last. */
static struct log_rate	 ours_rate;

static void PRINTFLIKE(3, 4)
ex_fail(struct exchange *ex, enum proxy_result result, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ex->ours)
		log_rate_warnx(&ours_rate, "upstream %s (site %s): %s",
		    ex->name, ex->site, msg);
	else
		log_warnx("upstream %s (site %s): %s", ex->name, ex->site,
		    msg);
	ex_note(ex, msg);
	if (ex->state == EX_BODY && result != PROXY_OK)
		result = PROXY_BROKEN;
	else if (result == PROXY_BAD_GATEWAY || result == PROXY_TIMEOUT)
		ex_mark_failed(ex, msg);
	ex_finish(ex, result);
}

/* Watch for what the exchange can do next, and time what it waits for. */
static void
ex_update(struct exchange *ex)
{
	struct ev_loop *loop = loop_of(ex);
	int events = 0;
	bool waiting_upstream;

	if (ex->state == EX_CONNECTING)
		events = EV_WRITE;
	else if (ex->state == EX_TLS)
		events = uptls_want_write(ex->tls) ? EV_WRITE : EV_READ;
	else {
		if (!buf_empty(ex->out))
			events |= EV_WRITE;
		if (!ex->paused && buf_space(ex->in) > 0)
			events |= EV_READ;
	}
	if (ex->state == EX_DONE)
		return;
	if (ex->events != events || ev_is_active(&ex->io) != (events != 0)) {
		util_watch(loop, &ex->io, ex->fd, events);
		ex->events = events;
	}
	/* Waiting for the client (its body, or room for the response) is
	   not the upstream's fault: its clock runs only when it owes us. */
	waiting_upstream = ex->state == EX_CONNECTING ||
	    ex->state == EX_TLS || (!ex->paused &&
	    (!buf_empty(ex->out) || ex->req_ended));
	if (waiting_upstream && !ev_is_active(&ex->timer))
		ev_timer_again(loop, &ex->timer);
	else if (!waiting_upstream)
		ev_timer_stop(loop, &ex->timer);
}

static void
ex_progress(struct exchange *ex)
{
	ev_timer_again(loop_of(ex), &ex->timer);
}

static int
ex_connect(struct exchange *ex)
{
	const struct config_backend *be = ex->be;
	const struct sockaddr *addr;
	socklen_t len;

	addr = ex_addr(ex, &len);
	if ((ex->fd = upstream_connect(addr, len)) == -1)
		return -1;
	ex->ctx->nfds++;
	ex->state = EX_CONNECTING;
	ex->timer.repeat = (double)be->connect_timeout;
	ev_timer_again(loop_of(ex), &ex->timer);
	return 0;
}

/* A connect error of our own (descriptors, memory), not the upstream's. */
static bool
local_error(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM;
}

/*
 * The upstream could not be reached, or a pooled connection was found
 * closed: send the request to the next upstream (balance.h: the next in
 * turn, or on the ring; a pooled connection's upstream is not marked
 * tried, as its close is not its failure, and may get the request again
 * on a new connection), before any byte of an answer.  If anything was
 * sent, only a request that http1_replayable() allows (ex_build_head kept
 * a copy): anything else may have been acted on already, and the client
 * gets a 502.  failed: this counts against the upstream's health (not a
 * pooled connection's close, not an error of our own).
 *
 * true: handled (sent on, or, once it moved on, failed here with what the
 * last upstream tried did); false: nothing done, the caller fails the
 * exchange with its own result and message.
 */
static bool
ex_next(struct exchange *ex, bool failed, const char *what)
{
	/* Over TLS, nothing is sent before the handshake is done. */
	bool sent = ex->state != EX_CONNECTING && ex->state != EX_TLS;
	bool moved = false;
	char again[96];
	size_t noted;

	if (ex->got_bytes || ex->state == EX_BODY)
		return false;
	if (!failed)
		ex->marked = true;	/* nor by the caller's ex_fail() */
	if (sent && ex->retry == NULL) {
		if (ex->reused)
			log_warnx("upstream %s (site %s): reused connection "
			    "closed before answering; the request is not "
			    "replayable (a method other than GET, HEAD, "
			    "OPTIONS, or a body), not sent again", ex->name,
			    ex->site);
		return false;
	}
	for (;;) {
		/* A new connection failed: this upstream had its try. */
		if (!ex->reused)
			ex->tried |= (uint64_t)1 << ex->upi;
		if (failed)
			ex_mark_failed(ex, what);
		else
			ex->marked = true;
		noted = strlen(ex->error);
		ex_note(ex, what);
		log_debug("upstream %s (site %s): %s; the request goes to the "
		    "next upstream", ex->name, ex->site, what);
		ev_io_stop(loop_of(ex), &ex->io);
		if (ex->fd != -1)
			io_close(ex);
		ev_io_set(&ex->io, -1, 0);	/* see ex_stop() */
		ex->reused = false;
		ex_uncount(ex);
		if (ex_choose(ex) < 0) {
			/* ex->up is still the last tried: its failure is the
			   answer, said once, by whoever fails the exchange. */
			ex->error[noted] = '\0';
			if (!moved)
				return false;
			ex->ours = !failed;
			ex_fail(ex, PROXY_BAD_GATEWAY, "%s", what);
			return true;
		}
		moved = true;
		if (sent) {
			buf_reset(ex->out);
			if (buf_add(ex->out, ex->retry, ex->retry_len) == -1) {
				ex->marked = true;
				ex->ours = true;
				ex_fail(ex, PROXY_BAD_GATEWAY, "out of memory");
				return true;
			}
		}
		if (ex_connect(ex) == 0)
			break;
		failed = !local_error(errno);
		snprintf(again, sizeof(again), "connect: %s", strerror(errno));
		what = again;
	}
	ex_update(ex);
	return true;
}

static void
ex_flush(struct exchange *ex)
{
	ssize_t n;

	while (!buf_empty(ex->out)) {
		n = io_send(ex, buf_data(ex->out), buf_len(ex->out));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			char what[96];

			snprintf(what, sizeof(what), "write: %s",
			    io_strerror(ex, errno));
			if (ex_next(ex, !ex->reused, what))
				return;
			ex_fail(ex, PROXY_BAD_GATEWAY, "%s", what);
			return;
		}
		buf_consume(ex->out, (size_t)n);
		ex_progress(ex);
	}
	if (ex->want_body && buf_space(ex->out) > buf_cap(ex->out) / 4) {
		ex->want_body = false;
		ex->in_callback = true;
		ex->ops->want_body(ex->fe);
		ex->in_callback = false;
	}
	ex_update(ex);
}

/* The response is complete: keep the connection only if it is clean. */
static void
ex_complete(struct exchange *ex)
{
	bool sent = ex->req_ended && buf_empty(ex->out);
	bool clean = ex->resp.keep_alive && ex->body != HTTP1_BODY_CLOSE &&
	    sent && buf_empty(ex->in) && ex->pend == 0 && !io_pending(ex);
	const struct sockaddr *addr;
	struct uptls_conn *tls = ex->tls;
	int fd = ex->fd;
	socklen_t len;

	if (clean) {
		ev_io_stop(loop_of(ex), &ex->io);
		ev_clear_pending(loop_of(ex), &ex->io);
		ex->fd = -1;
		ex->tls = NULL;
		ex->ctx->nfds--;
		addr = ex_addr(ex, &len);
		upstream_put(ex->ctx->pool, addr, len, ex_pool_tag(ex), fd,
		    tls, ex->be->keepalive, ex->be->keepalive_timeout);
	}
	ex->req_ended = sent;	/* what proxy_request_sent() reports */
	ex_finish(ex, PROXY_OK);
}

/* Hand the frontend up to len body bytes at the front of `in`. */
static size_t
ex_deliver(struct exchange *ex, size_t len)
{
	size_t taken;

	if (len == 0)
		return 0;
	ex->in_callback = true;
	taken = ex->ops->body(ex->fe, buf_data(ex->in), len);
	ex->in_callback = false;
	if (taken > len)
		fatalx("proxy: frontend took more than offered");
	buf_consume(ex->in, taken);
	if (taken < len) {
		ex->paused = true;
		ev_timer_stop(loop_of(ex), &ex->timer);
	}
	return taken;
}

/* Decode and deliver what is buffered.  false: stop (paused or ended). */
static bool
ex_body_chunked(struct exchange *ex)
{
	const char *data;
	size_t consumed, dlen, lead;
	int rc;

	rc = http1_chunked_decode(&ex->chunked, buf_data(ex->in),
	    buf_len(ex->in), &consumed, &data, &dlen);
	if (rc < 0) {
		ex_fail(ex, PROXY_BROKEN, "bad chunked framing: %s",
		    http1_strerror(rc));
		return false;
	}
	if (rc == HTTP1_CHUNK_END) {
		buf_consume(ex->in, consumed);
		ex_complete(ex);
		return false;
	}
	if (rc == HTTP1_CHUNK_MORE) {
		buf_consume(ex->in, consumed);
		return false;
	}
	/* Drop the framing before the data; the data is pending delivery. */
	lead = (size_t)(data - buf_data(ex->in));
	buf_consume(ex->in, lead);
	ex->pend = dlen;
	ex->pend -= ex_deliver(ex, dlen);
	return ex->pend == 0;
}

static void
ex_body(struct exchange *ex)
{
	size_t n;

	if (ex->pend > 0) {
		ex->pend -= ex_deliver(ex, ex->pend);
		if (ex->pend > 0)
			return;
	}
	switch (ex->body) {
	case HTTP1_BODY_LENGTH:
		n = (size_t)MINIMUM((uint64_t)buf_len(ex->in), ex->body_left);
		ex->body_left -= ex_deliver(ex, n);
		if (ex->body_left == 0)
			ex_complete(ex);
		break;
	case HTTP1_BODY_CHUNKED:
		while (ex->state != EX_DONE && !ex->paused &&
		    !buf_empty(ex->in) &&
		    ex_body_chunked(ex))
			;
		break;
	case HTTP1_BODY_CLOSE:
		ex_deliver(ex, buf_len(ex->in));
		/* Delimited by the close: done once all of it went out. */
		if (ex->eof && buf_empty(ex->in)) {
			ex->resp.keep_alive = false;
			ex_complete(ex);
		}
		break;
	default:
		ex_complete(ex);
	}
}

static bool
is_websocket_accept(const struct http1_response *r)
{
	const struct http1_header *u;

	u = http1_find_header(r->headers, r->nheaders, "upgrade");
	return u != NULL && util_strcaseeq(u->value.p, u->value.len,
	    "websocket", 9);
}

static void
ex_upgrade(struct exchange *ex)
{
	struct uptls_conn *tls = ex->tls;
	int fd = ex->fd;

	/* The socket (and its descriptor count) now belong to the tunnel,
	   and so does its TLS session. */
	ex->fd = -1;
	ex->tls = NULL;
	ex->ctx->nfds--;
	ex_stop(ex);
	ex->state = EX_DONE;
	ex->in_callback = true;
	ex->ops->upgrade(ex->fe, fd, tls, buf_data(ex->in), buf_len(ex->in));
	ex->ops->done(ex->fe, PROXY_UPGRADED);
	ex->in_callback = false;
}

/*
 * sticky-cookie: a response from another upstream than the request's
 * cookie named (none, stale, forged, or that one failed) sets the cookie
 * of the one that answered.  An extra field in the parsed head, so that
 * both frontends send it as they send the upstream's own.
 */
static void
ex_sticky(struct exchange *ex)
{
	struct http1_header *h;
	char buf[CONFIG_PREFIX_MAX + 128];
	const char *v;

	if (ex->be->balance != CONFIG_LB_STICKY || ex->upi == ex->sticky ||
	    ex->resp.nheaders >= HTTP1_MAX_HEADERS ||
	    (v = balance_set_cookie(ex->be, (size_t)ex->upi, ex->prefix, buf,
	    sizeof(buf))) == NULL || (ex->set_cookie = strdup(v)) == NULL)
		return;
	h = &ex->resp.headers[ex->resp.nheaders++];
	h->name = (struct http1_slice){ "Set-Cookie", 10 };
	h->value = (struct http1_slice){ ex->set_cookie,
	    strlen(ex->set_cookie) };
}

/* A complete response head in ex->resp. */
static void
ex_head(struct exchange *ex)
{
	struct proxy_response pr;
	int rc;

	if (ex->resp.status == 101 && (!ex->websocket ||
	    !is_websocket_accept(&ex->resp))) {
		ex_fail(ex, PROXY_BAD_GATEWAY, "unexpected 101");
		return;
	}
	ex_sticky(ex);
	ex->state = EX_BODY;
	ex->body = ex->resp.body;
	ex->body_left = ex->resp.content_length;
	http1_chunked_init(&ex->chunked);
	memset(&pr, 0, sizeof(pr));
	pr.status = ex->resp.status;
	pr.reason = ex->resp.reason;
	pr.fields = ex->resp.headers;
	pr.nfields = ex->resp.nheaders;
	pr.body = ex->resp.body;
	pr.content_length = ex->resp.content_length;
	pr.websocket = ex->resp.status == 101;
	ex->in_callback = true;
	rc = ex->ops->head(ex->fe, &pr);
	ex->in_callback = false;
	if (rc == -1) {
		/* Refused on our side (out of memory, say): the upstream
		   answered, its passive health must not count a failure. */
		ex_mark_ok(ex);
		ex->marked = true;
		ex->ours = true;
		ex->state = EX_HEAD;	/* a 502, not a cut response */
		ex_fail(ex, PROXY_BAD_GATEWAY, "response head refused");
		return;
	}
	ex_mark_ok(ex);
	buf_consume(ex->in, ex->resp.head_len);
	if (pr.websocket)
		ex_upgrade(ex);
	else
		ex_body(ex);
}

static void
ex_parse_head(struct exchange *ex)
{
	struct http1_limits lim;
	int rc;

	for (;;) {
		http1_limits_default(&lim);
		lim.max_head = PROXY_BUF;	/* not EX_IN_BUF */
		rc = http1_parse_response(&ex->parser, buf_data(ex->in),
		    buf_len(ex->in), &lim, ex->method, &ex->resp);
		if (rc == HTTP1_INCOMPLETE) {
			if (buf_len(ex->in) >= PROXY_BUF)
				ex_fail(ex, PROXY_BAD_GATEWAY, "response head "
				    "larger than %zu bytes", (size_t)PROXY_BUF);
			return;
		}
		if (rc == HTTP1_E_HEAD_TOO_LARGE) {
			ex_fail(ex, PROXY_BAD_GATEWAY, "response head larger "
			    "than %zu bytes", (size_t)PROXY_BUF);
			return;
		}
		if (rc < 0) {
			ex_fail(ex, PROXY_BAD_GATEWAY, "malformed response: "
			    "%s", http1_strerror(rc));
			return;
		}
		/* 1xx: we answered Expect ourselves; others are dropped. */
		if (ex->resp.status >= 100 && ex->resp.status < 200 &&
		    ex->resp.status != 101) {
			buf_consume(ex->in, ex->resp.head_len);
			http1_parser_init(&ex->parser);
			continue;
		}
		ex_head(ex);
		return;
	}
}

static void
ex_process(struct exchange *ex)
{
	if (ex->state == EX_HEAD)
		ex_parse_head(ex);
	else
		ex_body(ex);
}

static void
ex_eof(struct exchange *ex, int err)
{
	if (ex->state == EX_HEAD) {
		char what[96];

		snprintf(what, sizeof(what), "closed before a complete "
		    "response head%s%s", err ? ": " : "",
		    err ? io_strerror(ex, err) : "");
		/* A pooled connection closed before any byte is not the
		   upstream's failure (it may close an idle one any time). */
		if (ex_next(ex, !(ex->reused && !ex->got_bytes), what))
			return;
		ex_fail(ex, PROXY_BAD_GATEWAY, "%s", what);
	} else if (ex->body == HTTP1_BODY_CLOSE && err == 0) {
		ex->eof = true;
		ex_body(ex);
		ex_update(ex);
	} else
		ex_fail(ex, PROXY_BROKEN, "closed in the middle of the "
		    "response body");
}

/*
 * `in` starts at EX_IN_SMALL, room for the largest response head, and
 * grows to EX_IN_BUF once a read of the body fills it: a small answer
 * never needs more, a streamed body moves 64 KiB a recv() (where 16 KiB
 * took four: a 256 MiB download, 8% less CPU).  Only after the head:
 * while it is parsed, the parser's fields point into the buffer.
 */
static void
ex_grow_in(struct exchange *ex)
{
	struct buf *b;

	if (buf_cap(ex->in) >= EX_IN_BUF)
		return;
	/* Out of memory: stream through the small buffer. */
	if ((b = buf_resize(ex->in, EX_IN_BUF)) != NULL)
		ex->in = b;
}

/*
 * What the upstream sent.  Over TLS, what the session holds decrypted is
 * read on, while there is room: no event would say it is there.
 */
static void
ex_read(struct exchange *ex)
{
	size_t room;
	ssize_t n;

	do {
		if ((room = buf_space(ex->in)) == 0)
			return;
		n = io_recv(ex, buf_tail(ex->in), room);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			ex_eof(ex, n == 0 ? 0 : errno);
			return;
		}
		buf_produce(ex->in, (size_t)n);
		ex->got_bytes = true;
		if ((size_t)n == room && ex->state == EX_BODY)
			ex_grow_in(ex);
		ex_progress(ex);
		ex_process(ex);
	} while (ex->state != EX_DONE && !ex->paused && io_pending(ex));
}

/*
 * upstream-proxy-protocol: the PROXY header, first on the new connection
 * and outside TLS.  All of it in one send, as the spec asks (a new
 * connection's empty send buffer always takes a few hundred bytes).  0,
 * or -1 with what failed in what.
 */
static int
ex_send_pp(struct exchange *ex, char *what, size_t len)
{
	ssize_t n;

	do
		n = send(ex->fd, ex->pp, ex->pp_len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == (ssize_t)ex->pp_len)
		return 0;
	if (n == -1)
		snprintf(what, len, "PROXY header: %s", strerror(errno));
	else
		snprintf(what, len, "PROXY header: only %zd of %zu bytes "
		    "sent at once", n, ex->pp_len);
	return -1;
}

/* Connected (and over TLS, the handshake done): the request goes. */
static void
ex_connected(struct exchange *ex)
{
	ex->state = EX_HEAD;
	ex->timer.repeat = (double)ex->be->request_timeout;
	ex_progress(ex);
}

/* Over https: a session on the new connection, whose handshake begins. */
static int
ex_tls_start(struct exchange *ex)
{
	const struct sockaddr *addr;
	socklen_t len;

	addr = ex_addr(ex, &len);
	ex->tls = uptls_conn_new(ex->uptls, ex->ctx->tls_cache, ex->fd, addr,
	    len, ex_host(ex), ex->tag);
	if (ex->tls == NULL)
		return -1;
	ex->state = EX_TLS;
	return 0;
}

/* A step of the handshake: true once it is done (then HEAD). */
static bool
ex_handshake(struct exchange *ex)
{
	int rc = uptls_handshake(ex->tls);
	char what[256];

	if (rc == 0)
		return false;
	if (rc == -1) {
		/* Nothing was sent: as a connect error, the next upstream if
		   there is one; else one line says which name, which
		   upstream and why.  (Copied: ex_next() frees the session.) */
		snprintf(what, sizeof(what), "%s", uptls_error(ex->tls));
		if (!ex_next(ex, true, what))
			ex_fail(ex, PROXY_BAD_GATEWAY, "%s", what);
		return false;
	}
	log_debug("upstream %s: TLS session %s", ex->name,
	    uptls_resumed(ex->tls) ? "resumed" : "new");
	ex_connected(ex);
	return true;
}

/* Both steps may end the exchange; ex_leave() frees it after the last. */
static void
ex_io_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents)
{
	struct exchange *ex = ex_of(w->data);
	char what[96];
	int err;

	if (ex->state == EX_CONNECTING && !(revents & EV_CUSTOM)) {
		if ((err = upstream_connect_result(ex->fd)) != 0) {
			snprintf(what, sizeof(what), "connect: %s",
			    strerror(err));
			if (!ex_next(ex, true, what))
				ex_fail(ex, err == ETIMEDOUT ? PROXY_TIMEOUT :
				    PROXY_BAD_GATEWAY, "%s", what);
			ex_leave(ex);
			return;
		}
		/* Nothing of the request went: as a connect error. */
		if (ex->pp != NULL && ex_send_pp(ex, what, sizeof(what)) == -1) {
			if (!ex_next(ex, true, what))
				ex_fail(ex, PROXY_BAD_GATEWAY, "%s", what);
			ex_leave(ex);
			return;
		}
		if (ex->uptls == NULL) {
			ex_connected(ex);
			revents = EV_WRITE;
		} else if (ex_tls_start(ex) == -1) {
			ex->marked = true;	/* ours, not the upstream's */
			ex->ours = true;
			ex_fail(ex, PROXY_BAD_GATEWAY, "TLS: out of memory");
			ex_leave(ex);
			return;
		}
	}
	if (ex->state == EX_TLS && !(revents & EV_CUSTOM)) {
		if (revents & EV_READ)
			io_readable(ex);
		if (!ex_handshake(ex)) {
			if (ex->state != EX_DONE)
				ex_update(ex);
			ex_leave(ex);
			return;
		}
		revents = EV_WRITE;
	}
	if (revents & EV_READ)
		io_readable(ex);
	/* Resumed by the frontend: first what is already here. */
	if ((revents & EV_CUSTOM) && ex->state != EX_DONE) {
		ex_process(ex);
		if (ex->state != EX_DONE)
			ex_update(ex);
	}
	if ((revents & EV_WRITE) && ex->state != EX_DONE)
		ex_flush(ex);
	if (((revents & EV_READ) || io_pending(ex)) && ex->state != EX_DONE &&
	    !ex->paused)
		ex_read(ex);
	/* Paused, or out of room: stop watching what we will not read. */
	if (ex->state != EX_DONE)
		ex_update(ex);
	ex_leave(ex);
}

static void
ex_timer_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct exchange *ex = ex_of(w->data);

	char what[96];

	if (ex->state == EX_CONNECTING || ex->state == EX_TLS) {
		if (ex->state == EX_TLS)
			snprintf(what, sizeof(what), "TLS handshake not done "
			    "within %us (connect-timeout)",
			    ex->be->connect_timeout);
		else
			snprintf(what, sizeof(what), "connect timed out after "
			    "%us", ex->be->connect_timeout);
		if (!ex_next(ex, true, what))
			ex_fail(ex, PROXY_TIMEOUT, "%s", what);
	} else
		ex_fail(ex, PROXY_TIMEOUT, "no answer within %us",
		    ex->be->request_timeout);
	ex_leave(ex);
}

static void
ex_soon_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct exchange *ex = ex_of(w->data);
	char what[96];

	if (ex->soon_result == PROXY_UNAVAILABLE) {
		/* Each going down was logged; the access log says it. */
		ex_note(ex, "all upstreams down");
		ex_finish(ex, PROXY_UNAVAILABLE);
	} else {
		snprintf(what, sizeof(what), "connect: %s",
		    strerror(ex->soon_errno));
		if (!ex_next(ex, !local_error(ex->soon_errno), what)) {
			ex->ours = local_error(ex->soon_errno);
			ex_fail(ex, ex->soon_result, "%s", what);
		}
	}
	ex_leave(ex);
}

static void
ex_send_now(struct exchange *ex)
{
	ssize_t n;

	n = io_send(ex, buf_data(ex->out), buf_len(ex->out));
	if (n > 0) {
		buf_consume(ex->out, (size_t)n);
		ex_progress(ex);
	}
}

/*
 * `out` holds the head, then streams the body: 2 * PROXY_BUF for a request
 * with a body, EX_OUT_SMALL for one without (nearly every head fits; a
 * 32 KiB buffer for each of 500 HTTP/2 streams in flight cost the
 * allocator's time and 9 MiB of peak RSS).  A head too large for its
 * buffer, or one that leaves no room for a chunked body's framing, is
 * built again in the next size up, PROXY_HEAD_MAX at most.
 */
static int
ex_build_head(struct exchange *ex, const struct proxy_request *req)
{
	size_t cap = req->h.framing == HEADERS_FRAME_NONE ? EX_OUT_SMALL :
	    EX_OUT_BODY;
	int rc;

	for (;;) {
		if ((ex->out = buf_new(cap)) == NULL)
			return -1;
		if (req->head != NULL)
			rc = buf_add(ex->out, buf_data(req->head),
			    buf_len(req->head));
		else
			rc = headers_request_head(ex->out, &req->h);
		/* A chunked body needs room for at least its last chunk
		   (proxy_body_end() relies on it). */
		if (rc == 0 && (req->h.framing != HEADERS_FRAME_CHUNKED ||
		    buf_space(ex->out) >= CHUNK_OVERHEAD))
			break;
		buf_free(ex->out);
		ex->out = NULL;
		if (cap >= PROXY_HEAD_MAX)
			return -1;
		cap = cap < EX_OUT_BODY ? EX_OUT_BODY : PROXY_HEAD_MAX;
	}
	/* Only these may be sent again on a new connection (ex_next), and
	   only a pooled one, or one of several upstreams, may need it. */
	if ((ex->reused || ex->be->nups > 1) && http1_replayable(req->h.method_id,
	    req->h.framing != HEADERS_FRAME_NONE)) {
		/* The head alone (a few hundred bytes, from malloc's
		   thread cache), not a buffer the size of out. */
		ex->retry_len = buf_len(ex->out);
		if ((ex->retry = malloc(ex->retry_len)) == NULL)
			return -1;
		memcpy(ex->retry, buf_data(ex->out), ex->retry_len);
	}
	return 0;
}

static struct exchange *
ex_new(struct proxy_ctx *ctx, const struct proxy_request *req,
    const struct proxy_ops *ops, void *fe)
{
	struct exchange *ex;

	/* Zeroed but for the response's field array, 4 KiB of the 4.5 that
	   the parser fills and nobody reads past nheaders: the memset of a
	   calloc() was 11% of the instructions per request. */
	if ((ex = util_cache_take(&ex_cache, sizeof(*ex))) == NULL)
		return NULL;
	memset(ex, 0, offsetof(struct exchange, resp.headers));
	memset(&ex->resp.nheaders, 0, sizeof(*ex) -
	    offsetof(struct exchange, resp.nheaders));
	ex->magic = EX_MAGIC;
	ex->ctx = ctx;
	ex->ops = ops;
	ex->fe = fe;
	ex->be = req->be;
	ex->site = req->site;
	ex->prefix = req->prefix;
	if (req->peer != NULL) {
		memcpy(&ex->client, req->peer, req->peer->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : req->peer->sa_family ==
		    AF_INET ? sizeof(struct sockaddr_in) : sizeof(sa_family_t));
		ex->peer = (const struct sockaddr *)&ex->client;
	}
	ex->sticky = req->sticky;
	ex->fd = -1;
	ex->method = req->h.method_id;
	ex->websocket = req->h.websocket;
	ex->req_framing = req->h.framing;
	ex->req_left = req->h.framing == HEADERS_FRAME_LENGTH ?
	    req->h.content_length : 0;
	ex->req_ended = req->h.framing == HEADERS_FRAME_NONE;
	/* https without its TLS would go out in the clear: never. */
	if ((req->be->scheme == CONFIG_SCHEME_HTTPS) != (req->tls != NULL))
		fatalx("proxy: upstream-scheme and TLS settings disagree");
	ex->uptls = req->tls;
	http1_parser_init(&ex->parser);
	ev_io_init(&ex->io, ex_io_cb, -1, 0);
	ex->io.data = ex;
	ev_timer_init(&ex->timer, ex_timer_cb, 0., 1.);
	ex->timer.data = ex;
	ev_timer_init(&ex->soon, ex_soon_cb, 0., 0.);
	ex->soon.data = ex;
	/* Out: see ex_build_head().  In: see ex_grow_in(). */
	if ((ex->in = buf_new(EX_IN_SMALL)) == NULL) {
		ex_free(ex);
		return NULL;
	}
	/* upstream-proxy-protocol: the header is the exchange's own (it may
	   be sent again, to the next upstream). */
	if (req->pp != NULL) {
		if ((ex->pp = malloc(req->pp_len)) == NULL) {
			ex_free(ex);
			return NULL;
		}
		memcpy(ex->pp, req->pp, req->pp_len);
		ex->pp_len = req->pp_len;
		ex->pp_hash = pp_hash(ex->pp, ex->pp_len);
	}
	return ex;
}

struct exchange *
proxy_start(struct proxy_ctx *ctx, const struct proxy_request *req,
    const struct proxy_ops *ops, void *fe)
{
	const struct config_backend *be = req->be;
	const struct sockaddr *addr;
	struct exchange *ex;
	socklen_t len;

	if ((ex = ex_new(ctx, req, ops, fe)) == NULL)
		return NULL;
	if (ex_choose(ex) < 0) {
		/* The body may come until done(): `out` takes it. */
		if (ex_build_head(ex, req) == -1) {
			ex_free(ex);
			return NULL;
		}
		/* Reported from the loop: done() never runs inside start. */
		ex->soon_result = PROXY_UNAVAILABLE;
		ev_timer_start(ctx->loop, &ex->soon);
		return ex;
	}
	addr = ex_addr(ex, &len);
	ex->fd = upstream_take(ctx->pool, addr, len, ex_pool_tag(ex),
	    be->keepalive, &ex->tls);
	if (ex->fd != -1) {
		/* Open and watched all along (by the pool): libev need not
		   register it again. */
		ev_io_set(&ex->io, ex->fd, 0);
		ex->io.events &= ~EV__IOFDSET;
		ex->reused = true;
		ctx->nfds++;
		ex->state = EX_HEAD;
		ex->timer.repeat = (double)be->request_timeout;
	}
	if (ex_build_head(ex, req) == -1) {
		ex_free(ex);
		return NULL;
	}
	/* A pooled connection is almost always writable: send the head now
	   rather than watch for writability (two epoll_ctl calls) first.
	   Errors are left for the loop to find, as done() must not run
	   inside start. */
	if (ex->fd != -1)
		ex_send_now(ex);
	if (ex->fd == -1 && ex_connect(ex) == -1) {
		/* Reported from the loop: done() never runs inside start. */
		ex->soon_errno = errno;
		ex->soon_result = errno == ETIMEDOUT ? PROXY_TIMEOUT :
		    PROXY_BAD_GATEWAY;
		ev_timer_start(ctx->loop, &ex->soon);
		return ex;
	}
	ex_update(ex);
	return ex;
}

size_t
proxy_body(struct exchange *ex, const char *data, size_t len)
{
	size_t room, n;

	ex_of(ex);
	if (ex->req_ended)
		return 0;
	room = buf_space(ex->out);
	if (ex->req_framing == HEADERS_FRAME_LENGTH) {
		n = (size_t)MINIMUM((uint64_t)MINIMUM(len, room), ex->req_left);
		if (n > 0 && buf_add(ex->out, data, n) == -1)
			n = 0;
		ex->req_left -= n;
	} else {
		n = room > CHUNK_OVERHEAD ? MINIMUM(len, room -
		    CHUNK_OVERHEAD) : 0;
		if (n > 0 && (buf_printf(ex->out, "%zx\r\n", n) == -1 ||
		    buf_add(ex->out, data, n) == -1 ||
		    buf_add(ex->out, "\r\n", 2) == -1))
			fatalx("proxy: chunk did not fit its reserved room");
	}
	if (n < len)
		ex->want_body = true;
	if (ex->state != EX_CONNECTING && n > 0)
		ex_update(ex);
	return n;
}

void
proxy_body_end(struct exchange *ex)
{
	ex_of(ex);
	if (ex->req_ended)
		return;
	/* CHUNK_OVERHEAD keeps room for this. */
	if (ex->req_framing == HEADERS_FRAME_CHUNKED &&
	    buf_add(ex->out, "0\r\n\r\n", 5) == -1)
		fatalx("proxy: last chunk did not fit its reserved room");
	ex->req_ended = true;
	if (ex->state != EX_CONNECTING)
		ex_update(ex);
}

void
proxy_resume(struct exchange *ex)
{
	ex_of(ex);
	if (!ex->paused)
		return;
	ex->paused = false;
	ex_update(ex);
	/* Deliver from the loop, not from inside the frontend's call. */
	ev_feed_event(loop_of(ex), &ex->io, EV_CUSTOM);
}

void
proxy_abort(struct exchange *ex)
{
	ex_of(ex);
	if (ex->in_callback)
		fatalx("proxy: aborted from inside its own callback");
	ex_free(ex);
}

const char *
proxy_upstream_name(const struct exchange *ex)
{
	return ex->name;
}

const char *
proxy_upstream_error(const struct exchange *ex)
{
	return ex->error;
}

bool
proxy_request_sent(const struct exchange *ex)
{
	return ex->req_ended && buf_empty(ex->out);
}

int
proxy_error_status(enum proxy_result res)
{
	switch (res) {
	case PROXY_BAD_GATEWAY:
		return 502;
	case PROXY_TIMEOUT:
		return 504;
	case PROXY_UNAVAILABLE:
		return 503;
	default:
		return 0;
	}
}

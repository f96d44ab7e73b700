/*
 * h2conn.c - HTTP/2 client connections (see h2conn.h).
 *
 * One nghttp2 server session per connection, driven through its
 * in-memory API: bytes read from TLS go to nghttp2_session_mem_recv(),
 * frames from nghttp2_session_mem_send() are gathered in `out` and
 * written in as few TLS records as they fit.
 *
 * Streams.  A request's HEADERS are collected by h2req.c; a complete
 * request waits on the `ready` list and is started (routed, checked,
 * proxy_start()) only after the whole read it arrived in was processed,
 * so that a HEADERS + RST_STREAM pair in one read never reaches an
 * upstream.  Request bodies are read only as fast as the exchange takes
 * them: window updates are manual (nghttp2_session_consume() for what the
 * exchange took), so a stream buffers at most its window.  Response
 * bodies wait in a small buffer per stream and leave as the client's
 * window allows; a full buffer pauses the exchange.
 *
 * Callbacks from nghttp2 and from the exchanges only change state; the
 * connection is freed only from its own event handlers (h2_io_cb,
 * h2_timer_cb) on their way out, as in h1conn.c.
 *
 * Abuse.  nghttp2 limits what it knows (RST_STREAM rate, CONTINUATION
 * count, queued ACKs, SETTINGS entries).  On top of that each connection
 * has an anomaly budget: a token bucket that SETTINGS, PING, PRIORITY,
 * RST_STREAM, empty DATA, invalid frames and refused requests draw from;
 * when it runs dry the connection ends with GOAWAY(ENHANCE_YOUR_CALM).
 * Timers never count control frames as progress: a client that only
 * PINGs is idle, and one that holds its window shut is too slow.
 */
#include "autoconf.h"

#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>

#include "buf.h"
#include "client.h"
#include "front.h"
#include "gen.h"
#include "h2conn.h"
#include "h2guard.h"
#include "h2req.h"
#include "headers.h"
#include "log.h"
#include "proxy.h"
#include "request.h"
#include "tls.h"
#include "tunnel.h"
#include "util.h"
#include "worker.h"

#define H2_MAGIC	0x48324332u	/* "H2C2" */
#define ST_MAGIC	0x48325354u	/* "H2ST" */
#define H2_IN		16384
#define H2_OUT		(64 * 1024)	/* frames gathered for TLS */
#define STREAM_WINDOW	65535		/* what a stream may buffer */
#define RESP_SMALL	4096		/* a response body known to fit */
#define CONN_WINDOW	(1 << 20)
#define READS_PER_EVENT	8

/* The anomaly budget: a burst, refilled at a rate per second. */
#define BUDGET_BURST	200.0
#define BUDGET_RATE	20.0

struct h2_conn;

struct h2_stream {
	uint32_t		 magic;
	struct h2_conn		*c;
	int32_t			 id;
	TAILQ_ENTRY(h2_stream)	 entry;
	TAILQ_ENTRY(h2_stream)	 ready_entry;
	bool			 ready;		/* on c->ready */

	struct h2req		*req;		/* until the exchange starts */
	struct gen		*gen;		/* the request's routing */
	struct exchange		*ex;
	enum http1_method	 method;
	bool			 logging;	/* a request awaits its log */
	bool			 websocket;	/* DATA is for the tunnel */

	/* The request body. */
	struct buf		*body;		/* received, not yet taken */
	uint64_t		 body_seen;
	bool			 body_wait;	/* the exchange is full */
	bool			 end_stream;	/* the client is done sending */
	bool			 body_ended;	/* proxy_body_end() was called */

	/* The response. */
	bool			 submitted;	/* HEADERS submitted */
	bool			 sent;		/* our END_STREAM went out */
	bool			 stop;		/* reset it once that is out */
	struct buf		*resp;		/* body for nghttp2 */
	bool			 resp_eof;	/* nothing more after resp */
	bool			 deferred;	/* the data source said DEFERRED */
	bool			 resp_wait;	/* the exchange is paused */
	bool			 broken;

	/* WebSocket (RFC 8441): after the upstream's 101, DATA both ways
	   is the tunnel's; body and resp carry it. */
	bool			 tunnel;
	struct tunnel		 up;		/* shut: END_STREAM sent on */
	double			 tunnel_at;	/* bytes last moved */

	/* response-header, hide-response-header: in gen. */
	const struct headers_edit *resp_edit;

	/* Last: st_new() zeroes what comes before it (2.4 KiB less). */
	struct front_log	 log;
};

struct h2_conn {
	uint32_t		 magic;
	struct client		 cl;		/* socket, TLS, peer, watchers */
	nghttp2_session		*s;
	struct h2guard		 guard;		/* what nghttp2 lets through */
	int			 events;
	bool			 dead;
	bool			 closing;	/* GOAWAY out: flush, then close */
	bool			 draining;
	bool			 resume;	/* some exchange may go on */
	bool			 served;	/* a request came */
	bool			 lingering;	/* all sent: drop what comes */
	bool			 stops;		/* some stream's stop is due */

	struct buf		*out;		/* NULL when empty (idle) */
	const uint8_t		*pend;		/* from mem_send, not yet in out */
	size_t			 pendlen;

	TAILQ_HEAD(, h2_stream)	 streams;
	TAILQ_HEAD(, h2_stream)	 ready;
	unsigned		 nstreams;

	double			 budget;
	double			 budget_at;
	double			 idle_since;	/* no stream since */
	double			 progress;	/* stream bytes last moved */
};

static const struct proxy_ops h2_proxy_ops;
static nghttp2_session_callbacks *callbacks;
/* A worker is one thread: what is used within one call is shared. */
static char rbuf[H2_IN];
static struct buf *scratch;		/* the re-parse check */

static void	h2_update(struct h2_conn *);
static void	st_push_body(struct h2_stream *);

static struct h2_conn *
conn_of(void *data)
{
	struct h2_conn *c = data;

	if (c == NULL || c->magic != H2_MAGIC)
		fatalx("h2: corrupt connection");
	return c;
}

static struct h2_stream *
stream_of(void *data)
{
	struct h2_stream *st = data;

	if (st == NULL || st->magic != ST_MAGIC)
		fatalx("h2: corrupt stream");
	return st;
}

static struct ev_loop *
loop_of(const struct h2_conn *c)
{
	return worker_loop(c->cl.wk);
}

static double
now_of(const struct h2_conn *c)
{
	return ev_now(loop_of(c));
}

static const struct config_http *
http_cfg(const struct h2_conn *c)
{
	return &worker_gen(c->cl.wk)->cfg->http;
}

/* Carry on from the connection's own handler. */
static void
h2_defer(struct h2_conn *c)
{
	if (!c->dead)
		ev_feed_event(loop_of(c), &c->cl.io, EV_CUSTOM);
}

/* ---- the anomaly budget ---- */

static void
anomaly(struct h2_conn *c, const char *what)
{
	double now = now_of(c);

	c->budget = MINIMUM(BUDGET_BURST, c->budget + (now - c->budget_at) *
	    BUDGET_RATE);
	c->budget_at = now;
	c->budget -= 1.0;
	if (c->budget >= 0.0 || c->closing)
		return;
	log_warnx("%s: h2: anomaly budget spent (last: %s): GOAWAY",
	    c->cl.client_ip, what);
	nghttp2_session_terminate_session(c->s, NGHTTP2_ENHANCE_YOUR_CALM);
	c->closing = true;
}

/* ---- the connection timer ---- */

/* When the connection's clock runs out, as things stand. */
static double
deadline(const struct h2_conn *c)
{
	const struct config_http *h = http_cfg(c);
	const struct h2_stream *st;
	double d;

	if (c->closing)
		return c->progress + h->client_timeout;
	if (c->nstreams == 0)
		return c->idle_since + (c->served ? h->idle_timeout :
		    h->header_timeout);
	d = c->progress + h->client_timeout;
	TAILQ_FOREACH(st, &c->streams, entry)
		if (st->tunnel)
			d = MINIMUM(d, st->tunnel_at + h->tunnel_timeout);
	return d;
}

static void
h2_timer_arm(struct h2_conn *c)
{
	double left = deadline(c) - now_of(c);

	c->cl.timer.repeat = MAXIMUM(left, 0.001);
	ev_timer_again(loop_of(c), &c->cl.timer);
}

static void
progress(struct h2_conn *c)
{
	c->progress = now_of(c);
}

/* ---- streams ---- */

/*
 * Request translations (7 KiB each, with their storage) are reused: a few
 * are kept for the next streams instead of a malloc and free per stream.
 */
#define REQ_SPARES	8
static struct h2req *req_spare[REQ_SPARES];
static size_t nreq_spare;

static struct h2req *
req_get(size_t max_bytes, size_t max_fields)
{
	struct h2req *r;

	if (nreq_spare > 0) {
		r = req_spare[--nreq_spare];
		h2req_reuse(r, max_bytes, max_fields);
		return r;
	}
	if ((r = malloc(sizeof(*r))) == NULL)
		return NULL;
	h2req_init(r, max_bytes, max_fields);
	return r;
}

static void
req_put(struct h2req *r)
{
	if (r == NULL)
		return;
	if (nreq_spare < REQ_SPARES && r->cap <= 16384) {
		req_spare[nreq_spare++] = r;
		return;
	}
	h2req_free(r);
	free(r);
}

static void
st_log(struct h2_stream *st)
{
	struct h2_conn *c = st->c;

	if (!st->logging)
		return;
	st->logging = false;
	front_log_emit(&st->log, c->cl.client_ip, now_of(c));
	front_count(worker_counters(c->cl.wk), worker_stats(c->cl.wk),
	    &st->log, st->broken, true, now_of(c));
}

/* Freed streams, for the next request. */
static struct util_cache st_cache;

static void
st_free(struct h2_stream *st)
{
	struct h2_conn *c = st->c;

	if (st->ex != NULL) {
		proxy_abort(st->ex);
		st->ex = NULL;
		st->broken = st->broken || st->submitted;
	}
	st_log(st);
	if (st->ready)
		TAILQ_REMOVE(&c->ready, st, ready_entry);
	TAILQ_REMOVE(&c->streams, st, entry);
	c->nstreams--;
	if (c->nstreams == 0 && !c->dead) {
		c->idle_since = now_of(c);
		h2_timer_arm(c);
	}
	req_put(st->req);
	if (st->up.fd != -1 && tunnel_close(&st->up, loop_of(c)))
		worker_fd_del(c->cl.wk, 1);
	buf_free(st->body);
	buf_free(st->resp);
	gen_unref(st->gen);
	st->magic = 0;
	util_cache_put(&st_cache, st);
}

static struct h2_stream *
st_new(struct h2_conn *c, int32_t id)
{
	const struct config_http *h = http_cfg(c);
	struct h2_stream *st;

	/* A calloc() here cleared 2.6 KiB a request (6% of the scenario 2
	   instructions); front_log_begin() sets the log field by field. */
	if ((st = util_cache_take(&st_cache, sizeof(*st))) == NULL)
		return NULL;
	memset(st, 0, offsetof(struct h2_stream, log));
	if ((st->req = req_get(h->max_header_size, h->max_headers)) == NULL) {
		util_cache_put(&st_cache, st);
		return NULL;
	}
	st->magic = ST_MAGIC;
	st->c = c;
	st->id = id;
	st->up.fd = -1;
	front_log_begin(&st->log, now_of(c));
	st->log.proto = "h2";
	TAILQ_INSERT_TAIL(&c->streams, st, entry);
	c->served = true;
	if (c->nstreams++ == 0) {
		progress(c);
		h2_timer_arm(c);
	}
	return st;
}

static struct h2_stream *
st_get(struct h2_conn *c, int32_t id)
{
	void *p = nghttp2_session_get_stream_user_data(c->s, id);

	return p != NULL ? stream_of(p) : NULL;
}

/* ---- responses ---- */

static ssize_t
st_read_cb(nghttp2_session *s UNUSED, int32_t id UNUSED, uint8_t *dst,
    size_t len, uint32_t *flags, nghttp2_data_source *src, void *ud UNUSED)
{
	struct h2_stream *st = stream_of(src->ptr);
	size_t n = st->resp != NULL ? MINIMUM(len, buf_len(st->resp)) : 0;

	if (n == 0 && !st->resp_eof) {
		st->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n > 0) {
		memcpy(dst, buf_data(st->resp), n);
		buf_consume(st->resp, n);
		st->log.bytes_out += n;
		if ((st->resp_wait || st->tunnel) &&
		    buf_space(st->resp) > buf_cap(st->resp) / 4)
			st->c->resume = true;
	}
	if (st->resp_eof && (st->resp == NULL || buf_empty(st->resp)))
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static void
st_resume_data(struct h2_stream *st)
{
	if (st->deferred) {
		st->deferred = false;
		nghttp2_session_resume_data(st->c->s, st->id);
	}
}

static void
lower_copy(char *dst, const char *src, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? src[i] + 32 :
		    src[i];
}

/* One field of a response into nv[n], its name lower-cased into names. */
static bool
nv_add(nghttp2_nv *nv, size_t *n, char *names, size_t namesz, size_t *used,
    const struct http1_header *h)
{
	if (*used + h->name.len > namesz)
		return false;
	lower_copy(names + *used, h->name.p, h->name.len);
	nv[(*n)++] = (nghttp2_nv){ (uint8_t *)names + *used,
	    (uint8_t *)h->value.p, h->name.len, h->value.len,
	    NGHTTP2_NV_FLAG_NONE };
	*used += h->name.len;
	return true;
}

/*
 * The nv list of a response; names lower-cased into names[].  The fields
 * are those headers_response_passes() lets through, then edit's (the
 * same as headers_response_head() writes for HTTP/1.1).
 */
static size_t
response_nv(nghttp2_nv *nv, size_t max, char *names, size_t namesz,
    const char *status, const struct http1_header *f, size_t nf,
    bool keep_length, const struct headers_edit *edit)
{
	size_t i, n = 0, used = 0, k = headers_first_connection(f, nf);

	nv[n++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)status, 7,
	    3, NGHTTP2_NV_FLAG_NONE };
	for (i = 0; i < nf && n < max; i++)
		if (headers_response_passes(&f[i], f, nf, k, keep_length,
		    edit) && !nv_add(nv, &n, names, namesz, &used, &f[i]))
			break;
	for (i = 0; edit != NULL && i < edit->nadd && n < max; i++)
		if (!nv_add(nv, &n, names, namesz, &used, &edit->add[i]))
			break;
	return n;
}

static int
st_submit(struct h2_stream *st, int status, const struct http1_header *f,
    size_t nf, bool body, bool keep_length, const struct headers_edit *edit)
{
	nghttp2_nv nv[HTTP1_MAX_HEADERS + HEADERS_EDIT_MAX + 1];
	nghttp2_data_provider dp;
	char names[16384 + HEADERS_EDIT_MAX * 128], code[4];
	size_t n;

	if (status < 100 || status > 999)
		return -1;
	headers_status_digits(code, status);
	code[3] = '\0';
	n = response_nv(nv, nitems(nv), names, sizeof(names), code, f, nf,
	    keep_length, edit);
	dp.source.ptr = st;
	dp.read_callback = st_read_cb;
	if (nghttp2_submit_response(st->c->s, st->id, nv, n,
	    body ? &dp : NULL) != 0)
		return -1;
	st->submitted = true;
	st->log.status = status;
	if (!body)
		st->resp_eof = true;
	return 0;
}

/* A short plain-text response of our own, with one more field if any. */
static void
st_respond_with(struct h2_stream *st, int status, const char *name,
    const char *value)
{
	char len[24], text[64];
	struct http1_header f[3];
	size_t nf = 2;
	int n;

	n = snprintf(text, sizeof(text), "%d %s\n", status,
	    headers_reason(status));
	snprintf(len, sizeof(len), "%d", n);
	f[0] = (struct http1_header){ { "content-type", 12 },
	    { "text/plain; charset=utf-8", 25 } };
	f[1] = (struct http1_header){ { "content-length", 14 },
	    { len, strlen(len) } };
	if (name != NULL)
		f[nf++] = (struct http1_header){ { name, strlen(name) },
		    { value, strlen(value) } };
	if (st->method != HTTP1_METHOD_HEAD) {
		if (st->resp == NULL && (st->resp = buf_new(RESP_SMALL)) ==
		    NULL) {
			nghttp2_submit_rst_stream(st->c->s, NGHTTP2_FLAG_NONE,
			    st->id, NGHTTP2_INTERNAL_ERROR);
			return;
		}
		buf_reset(st->resp);
		buf_add(st->resp, text, (size_t)n);
	}
	st->resp_eof = true;
	if (st_submit(st, status, f, nf, st->method != HTTP1_METHOD_HEAD,
	    true, NULL) == -1)
		nghttp2_submit_rst_stream(st->c->s, NGHTTP2_FLAG_NONE, st->id,
		    NGHTTP2_INTERNAL_ERROR);
}

static void
st_respond(struct h2_stream *st, int status)
{
	st_respond_with(st, status, NULL, NULL);
}

/* The request is refused before any exchange: answer, drop its body. */
static void
st_refuse(struct h2_stream *st, int status)
{
	if (st->body != NULL && !buf_empty(st->body)) {
		nghttp2_session_consume(st->c->s, st->id, buf_len(st->body));
		buf_reset(st->body);
	}
	st_respond(st, status);
}

/* ---- WebSocket tunnels (RFC 8441) ---- */

static void
tunnel_update(struct h2_stream *st)
{
	tunnel_watch(&st->up, loop_of(st->c), st->body, st->resp,
	    !st->resp_eof);
}

/* Client bytes to the upstream; what went is consumed (window). */
static void
st_tunnel_push(struct h2_stream *st)
{
	struct h2_conn *c = st->c;
	ssize_t n = tunnel_push(&st->up, st->body, st->end_stream);

	if (n == -1) {
		nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id,
		    NGHTTP2_CANCEL);
		return;
	}
	if (n > 0) {
		nghttp2_session_consume(c->s, st->id, (size_t)n);
		st->tunnel_at = now_of(c);
		progress(c);
	}
}

/* Upstream bytes towards the client, as DATA. */
static void
st_tunnel_pull(struct h2_stream *st)
{
	ssize_t n;

	if (st->resp_eof || (n = tunnel_pull(&st->up, st->resp)) ==
	    TUNNEL_AGAIN)
		return;
	if (n > 0)
		st->tunnel_at = now_of(st->c);
	else
		st->resp_eof = true;	/* the upstream is done: END_STREAM */
	st_resume_data(st);
}

/*
 * The client ended the connection without ending its tunnels' streams:
 * the bytes it sent on them still go, before their upstreams see the end
 * (the connection closes right after, so that is as far as they go).
 */
static void
tunnels_end(struct h2_conn *c)
{
	struct h2_stream *st;

	TAILQ_FOREACH(st, &c->streams, entry)
		if (st->tunnel && st->up.fd != -1) {
			st->end_stream = true;
			st_tunnel_push(st);
		}
}

static void
st_up_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents)
{
	struct h2_stream *st = stream_of(w->data);
	struct h2_conn *c = st->c;

	if (revents & EV_WRITE)
		st_tunnel_push(st);
	if (revents & EV_READ)
		st_tunnel_pull(st);
	tunnel_update(st);
	h2_defer(c);
}

/* The 101 becomes 200 (RFC 8441 5); Sec-WebSocket-Accept has no place. */
static int
st_ex_head_tunnel(struct h2_stream *st, const struct proxy_response *r)
{
	struct http1_header f[HTTP1_MAX_HEADERS];
	size_t i, n = 0;

	for (i = 0; i < r->nfields && n < nitems(f); i++)
		if (!util_strcaseeq(r->fields[i].name.p, r->fields[i].name.len,
		    "sec-websocket-accept", 20))
			f[n++] = r->fields[i];
	if (st->resp == NULL && (st->resp = buf_new(PROXY_BUF)) == NULL)
		return -1;
	if (st_submit(st, 200, f, n, true, false, st->resp_edit) == -1)
		return -1;
	progress(st->c);
	h2_defer(st->c);
	return 0;
}

/* Said once per window (log.h): they come with memory pressure. */
static struct log_rate	 refused_rate, nomem_rate;

/* ---- the exchange's callbacks ---- */

static int
st_ex_head(void *fe, const struct proxy_response *r)
{
	struct h2_stream *st = stream_of(fe);
	bool body, keep;

	if (r->websocket)
		return st_ex_head_tunnel(st, r);
	/* HEAD and 304 keep the upstream's Content-Length, with no body. */
	body = st->method != HTTP1_METHOD_HEAD && r->status != 304 &&
	    r->status != 204 && r->body != HTTP1_BODY_NONE;
	keep = r->body == HTTP1_BODY_LENGTH || !body;
	/* A body known to be small gets a small buffer (most answers: 500
	   streams in flight no longer hold 16 KiB each). */
	if (body && st->resp == NULL && (st->resp = buf_new(r->body ==
	    HTTP1_BODY_LENGTH && r->content_length <= RESP_SMALL ?
	    RESP_SMALL : PROXY_BUF)) == NULL)
		return -1;
	if (st_submit(st, r->status, r->fields, r->nfields, body, keep,
	    st->resp_edit) == -1) {
		log_rate_warnx(&refused_rate, "%s: h2: response head from %s "
		    "refused by nghttp2", st->c->cl.client_ip, st->log.host);
		return -1;
	}
	progress(st->c);
	h2_defer(st->c);
	return 0;
}

static size_t
st_ex_body(void *fe, const char *data, size_t len)
{
	struct h2_stream *st = stream_of(fe);
	size_t n;

	if (st->resp == NULL)
		return len;	/* a body we do not send (HEAD ...) */
	n = MINIMUM(len, buf_space(st->resp));
	if (n > 0 && buf_add(st->resp, data, n) == -1)
		n = 0;
	if (n < len)
		st->resp_wait = true;
	st_resume_data(st);
	h2_defer(st->c);
	return n;
}

static void
st_ex_done(void *fe, enum proxy_result res)
{
	struct h2_stream *st = stream_of(fe);
	struct h2_conn *c = st->c;

	front_log_upstream(&st->log, proxy_upstream_name(st->ex),
	    proxy_upstream_error(st->ex));
	st->ex = NULL;
	st->resp_wait = false;
	/* Whatever of the body is left is read and dropped; but what a
	   client sent before the 101 is the tunnel's first bytes. */
	if (res != PROXY_UPGRADED && st->body != NULL &&
	    !buf_empty(st->body)) {
		nghttp2_session_consume(c->s, st->id, buf_len(st->body));
		buf_reset(st->body);
	}
	switch (res) {
	case PROXY_OK:
		st->resp_eof = true;
		st_resume_data(st);
		break;
	case PROXY_UPGRADED:
		break;		/* the tunnel goes on (st_ex_upgrade) */
	case PROXY_BAD_GATEWAY:
	case PROXY_TIMEOUT:
	case PROXY_UNAVAILABLE:
		if (!st->submitted) {
			st_respond(st, proxy_error_status(res));
			break;
		}
		/* FALLTHROUGH */
	default:
		st->broken = true;
		nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id,
		    NGHTTP2_INTERNAL_ERROR);
		break;
	}
	h2_defer(c);
}

static void
st_ex_want_body(void *fe)
{
	struct h2_stream *st = stream_of(fe);

	st->body_wait = false;
	st->c->resume = true;
	h2_defer(st->c);
}

static void
st_ex_upgrade(void *fe, int fd, struct uptls_conn *tls, const char *extra,
    size_t len)
{
	struct h2_stream *st = stream_of(fe);
	struct h2_conn *c = st->c;

	worker_fd_add(c->cl.wk, 1);
	tunnel_init(&st->up, st_up_cb, st);
	tunnel_open(&st->up, fd, tls);
	st->tunnel = true;
	st->tunnel_at = now_of(c);
	st->log.upgraded = now_of(c);
	h2_timer_arm(c);	/* tunnel-idle-timeout counts now */
	if (len > 0 && buf_add(st->resp, extra, len) == -1) {
		st->broken = true;
		nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id,
		    NGHTTP2_INTERNAL_ERROR);
	} else
		st_resume_data(st);
	c->resume = true;
	h2_defer(c);
}

static const struct proxy_ops h2_proxy_ops = {
	.head = st_ex_head,
	.body = st_ex_body,
	.done = st_ex_done,
	.want_body = st_ex_want_body,
	.upgrade = st_ex_upgrade,
};

/* ---- starting a request ---- */

/* A fresh Sec-WebSocket-Key (RFC 6455 4.1: 16 random bytes, base64). */
static void
websocket_key(struct h2req *r)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[18] = { 0 };
	char key[25];
	size_t i, k = 0;

	if (getrandom(raw, 16, GRND_NONBLOCK) != 16)
		return;		/* no key: the request is refused */
	for (i = 0; i < 18; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 |
		    raw[i + 2];

		key[k++] = b64[v >> 18 & 63];
		key[k++] = b64[v >> 12 & 63];
		key[k++] = b64[v >> 6 & 63];
		key[k++] = b64[v & 63];
	}
	key[22] = key[23] = '=';	/* 16 bytes: two pad characters */
	key[24] = '\0';
	h2req_set_key(r, key);
}

/* What admission said to answer; the body, if any, is dropped. */
static void
st_answer(struct h2_stream *st, const struct request_answer *a)
{
	char name[16];
	size_t n;

	if (a->why[0] != '\0')
		front_log_denied(&st->log, a->why);
	if (a->name == NULL) {
		st_refuse(st, a->status);
		return;
	}
	n = MINIMUM(strlen(a->name), sizeof(name) - 1);
	lower_copy(name, a->name, n);
	name[n] = '\0';
	if (st->body != NULL && !buf_empty(st->body)) {
		nghttp2_session_consume(st->c->s, st->id, buf_len(st->body));
		buf_reset(st->body);
	}
	st_respond_with(st, a->status, name, a->value);
}

static void
st_start(struct h2_stream *st)
{
	struct h2_conn *c = st->c;
	const struct config_site *site;
	struct request_answer ans;
	struct proxy_request pr;
	int rc;

	if (h2req_wants_key(st->req))
		websocket_key(st->req);
	rc = h2req_finish(st->req, st->end_stream && (st->body == NULL ||
	    buf_empty(st->body)) && st->body_seen == 0, &pr.h);
	st->method = pr.h.method_id;
	st->websocket = pr.h.websocket;
	/* The log says what the client sent: CONNECT for a WebSocket. */
	front_log_request(&st->log, pr.h.websocket ?
	    (struct http1_slice){ "CONNECT", 7 } : pr.h.method, pr.h.host,
	    pr.h.path);
	st->logging = true;
	if (rc != 0) {
		anomaly(c, "malformed request");
		st_refuse(st, rc);
		return;
	}
	st->gen = gen_ref(worker_gen(c->cl.wk));
	c->cl.rc.rl = worker_ratelimit(c->cl.wk);
	site = request_admit(&c->cl.rc, st->gen, &pr, pr.h.path,
	    st->body_seen, &ans);
	front_log_client(&st->log, pr.h.client_ip);
	st->log.site = ans.site_slot;
	st->resp_edit = pr.resp_edit;
	if (site == NULL) {
		request_release(&pr);
		st_answer(st, &ans);
		return;
	}
	if ((scratch == NULL && (scratch = buf_new(PROXY_HEAD_MAX)) == NULL) ||
	    h2req_check(&pr.h, scratch) == -1) {
		request_release(&pr);
		log_warnx("%s: h2: request for %s does not re-parse as "
		    "HTTP/1.1; refused", c->cl.client_ip, st->log.host);
		st_refuse(st, 400);
		return;
	}
	pr.head = scratch;	/* checked: no need to build it again */
	st->ex = request_start(worker_proxy_ctx(c->cl.wk), &pr, &h2_proxy_ops,
	    st, &ans);
	request_release(&pr);
	if (st->ex == NULL) {
		st_answer(st, &ans);
		return;
	}
	req_put(st->req);
	st->req = NULL;
	st_push_body(st);
}

/* Requests complete in the last read, unless reset meanwhile. */
static void
start_ready(struct h2_conn *c)
{
	struct h2_stream *st;

	while ((st = TAILQ_FIRST(&c->ready)) != NULL) {
		TAILQ_REMOVE(&c->ready, st, ready_entry);
		st->ready = false;
		if (c->draining || c->closing) {
			nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE,
			    st->id, NGHTTP2_REFUSED_STREAM);
			continue;
		}
		st_start(st);
	}
}

/* ---- request bodies ---- */

static void
st_push_body(struct h2_stream *st)
{
	struct h2_conn *c = st->c;
	size_t taken;

	if (st->tunnel) {
		st_tunnel_push(st);
		tunnel_update(st);
		return;
	}
	while (st->ex != NULL && !st->body_wait && st->body != NULL &&
	    !buf_empty(st->body)) {
		taken = proxy_body(st->ex, buf_data(st->body),
		    buf_len(st->body));
		if (taken == 0) {
			st->body_wait = true;
			break;
		}
		buf_consume(st->body, taken);
		nghttp2_session_consume(c->s, st->id, taken);
	}
	if (st->ex != NULL && st->end_stream && !st->body_ended &&
	    (st->body == NULL || buf_empty(st->body))) {
		st->body_ended = true;
		proxy_body_end(st->ex);
	}
}

static bool
body_over_limit(struct h2_stream *st)
{
	/* Early tunnel bytes are no body: the window bounds them. */
	if (st->websocket ||
	    !request_body_over(st->gen, st->body_seen, st->c->cl.client_ip))
		return false;
	if (st->ex != NULL) {
		proxy_abort(st->ex);
		st->ex = NULL;
	}
	if (!st->submitted)
		st_refuse(st, 413);
	else {
		st->broken = true;
		nghttp2_submit_rst_stream(st->c->s, NGHTTP2_FLAG_NONE, st->id,
		    NGHTTP2_CANCEL);
	}
	return true;
}

static int
on_data_chunk_recv(nghttp2_session *s, uint8_t flags UNUSED, int32_t id,
    const uint8_t *data, size_t len, void *ud)
{
	struct h2_conn *c = conn_of(ud);
	struct h2_stream *st = st_get(c, id);
	size_t taken = 0;

	if (st != NULL && st->tunnel && !st->up.shut) {
		/* Tunnel bytes: window given back as the upstream takes
		   them (tunnel_push). */
		st->log.bytes_in += len;
		if (st->body == NULL &&
		    (st->body = buf_new(STREAM_WINDOW)) == NULL)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		if (buf_add(st->body, data, len) == -1) {
			nghttp2_session_consume(s, id, len);
			nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id,
			    NGHTTP2_FLOW_CONTROL_ERROR);
			return 0;
		}
		c->resume = true;
		return 0;
	}
	if (st == NULL || (st->ex == NULL && !st->ready)) {
		/* Nobody wants it (answered, refused, gone). */
		nghttp2_session_consume(s, id, len);
		if (st != NULL)
			st->log.bytes_in += len;
		return 0;
	}
	st->log.bytes_in += len;
	st->body_seen += len;
	progress(c);
	if (st->ex != NULL && body_over_limit(st)) {
		nghttp2_session_consume(s, id, len);
		return 0;
	}
	if (st->ex != NULL && !st->body_wait && (st->body == NULL ||
	    buf_empty(st->body))) {
		taken = proxy_body(st->ex, (const char *)data, len);
		if (taken > 0)
			nghttp2_session_consume(s, id, taken);
		if (taken < len)
			st->body_wait = true;
	}
	if (taken == len)
		return 0;
	if (st->body == NULL && (st->body = buf_new(STREAM_WINDOW)) == NULL)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (buf_add(st->body, data + taken, len - taken) == -1) {
		/* More than the window we gave: nghttp2 should have said. */
		nghttp2_session_consume(s, id, len - taken);
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id,
		    NGHTTP2_FLOW_CONTROL_ERROR);
	}
	return 0;
}

/* ---- nghttp2's callbacks ---- */

static int
on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2_conn *c = conn_of(ud);
	struct h2_stream *st;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if ((st = st_new(c, f->hd.stream_id)) == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
	return 0;
}

static int
on_header(nghttp2_session *s UNUSED, const nghttp2_frame *f,
    const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen,
    uint8_t flags UNUSED, void *ud)
{
	struct h2_conn *c = conn_of(ud);
	struct h2_stream *st;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST ||
	    (st = st_get(c, f->hd.stream_id)) == NULL || st->req == NULL)
		return 0;	/* trailers are read and dropped */
	(void)h2req_field(st->req, (const char *)name, nlen,
	    (const char *)value, vlen);
	return 0;
}

static void
end_stream(struct h2_stream *st)
{
	st->end_stream = true;
	st_push_body(st);
}

static int
on_frame_recv(nghttp2_session *s UNUSED, const nghttp2_frame *f, void *ud)
{
	struct h2_conn *c = conn_of(ud);
	struct h2_stream *st = NULL;
	bool es = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if ((st = st_get(c, f->hd.stream_id)) == NULL)
			break;
		progress(c);
		if (f->headers.cat == NGHTTP2_HCAT_REQUEST && st->req != NULL &&
		    !st->ready && st->ex == NULL && !st->submitted) {
			st->end_stream = es;
			st->ready = true;
			TAILQ_INSERT_TAIL(&c->ready, st, ready_entry);
		} else if (es)
			end_stream(st);
		break;
	case NGHTTP2_DATA:
		if (f->hd.length == 0 && !es)
			anomaly(c, "empty DATA");
		if (es && (st = st_get(c, f->hd.stream_id)) != NULL)
			end_stream(st);
		break;
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
			anomaly(c, "SETTINGS");
		break;
	case NGHTTP2_PING:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
			anomaly(c, "PING");
		break;
	case NGHTTP2_PRIORITY:
		anomaly(c, "PRIORITY");
		break;
	case NGHTTP2_RST_STREAM:
		anomaly(c, "RST_STREAM");
		break;
	default:
		break;
	}
	return 0;
}

static int
on_invalid_frame_recv(nghttp2_session *s UNUSED, const nghttp2_frame *f UNUSED,
    int err, void *ud)
{
	struct h2_conn *c = conn_of(ud);

	anomaly(c, nghttp2_strerror(err));
	return 0;
}

static int
on_frame_send(nghttp2_session *s UNUSED, const nghttp2_frame *f, void *ud)
{
	struct h2_conn *c = conn_of(ud);
	struct h2_stream *st;

	if (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS)
		return 0;
	progress(c);
	if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
	    (st = st_get(c, f->hd.stream_id)) == NULL)
		return 0;
	st->sent = true;
	/* A complete response to a request still being sent: stop it
	   (stop_uploads). */
	if (!st->end_stream)
		st->stop = c->stops = true;
	return 0;
}

static int
on_stream_close(nghttp2_session *s UNUSED, int32_t id, uint32_t err,
    void *ud)
{
	struct h2_conn *c = conn_of(ud);
	struct h2_stream *st = st_get(c, id);

	if (st == NULL || c->dead)
		return 0;
	/* A stream that ends before its response did is cut. */
	if (!st->sent && st->logging) {
		st->broken = st->broken || st->submitted;
		if (err != NGHTTP2_NO_ERROR)
			log_debug("%s: h2: stream %d closed: %s", c->cl.client_ip,
			    id, nghttp2_http2_strerror(err));
	}
	if (st->body != NULL && !buf_empty(st->body))
		nghttp2_session_consume_connection(c->s, buf_len(st->body));
	nghttp2_session_set_stream_user_data(c->s, id, NULL);
	st_free(st);
	return 0;
}

static int
make_callbacks(void)
{
	nghttp2_session_callbacks *cb;

	if (callbacks != NULL)
		return 0;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		return -1;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
	    on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
	    on_frame_recv);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb,
	    on_invalid_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    on_data_chunk_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb,
	    on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    on_stream_close);
	callbacks = cb;
	return 0;
}

/* ---- connection I/O ---- */

static void
h2_close(struct h2_conn *c, const char *reason)
{
	struct h2_stream *st;

	if (c->dead)
		return;
	log_debug("%s: h2: connection closed: %s", c->cl.client_ip, reason);
	c->dead = true;
	while ((st = TAILQ_FIRST(&c->streams)) != NULL) {
		st->broken = st->broken || (st->submitted && !st->sent);
		st_free(st);
	}
	nghttp2_session_del(c->s);
	c->s = NULL;
	buf_free(c->out);
	c->out = NULL;
	client_close(&c->cl);
}

static void
h2_free(struct h2_conn *c)
{
	c->magic = 0;
	free(c);
}

static void
h2_leave(struct h2_conn *c)
{
	if (c->dead)
		h2_free(c);
	else
		h2_update(c);
}

/* Write `out` to the client: 0, or -1 if it is gone. */
static int
flush_out(struct h2_conn *c)
{
	ssize_t n;

	while (c->out != NULL && !buf_empty(c->out)) {
		n = tls_conn_write(c->cl.tls, buf_data(c->out), buf_len(c->out));
		if (n == TLS_AGAIN)
			return 0;
		if (n <= 0)
			return -1;
		buf_consume(c->out, (size_t)n);
	}
	/* Idle connections hold no buffer. */
	if (c->out != NULL && c->pendlen == 0 && c->nstreams == 0) {
		buf_free(c->out);
		c->out = NULL;
	}
	return 0;
}

static size_t
out_len(const struct h2_conn *c)
{
	return c->out != NULL ? buf_len(c->out) : 0;
}

/*
 * A complete response to a request still being sent: the rest of the
 * request is stopped without error (RFC 9113 8.1), but only once the
 * response has left, so that the RST_STREAM comes in a TLS record of its
 * own, after it.  curl 7.88 takes a record at a time and throws away a
 * response that arrives in the same record as its stream's reset: the
 * client got no answer at all.  (nginx, too, resets a stream only once
 * its frames are out.)
 */
static bool
stop_uploads(struct h2_conn *c)
{
	struct h2_stream *st;

	if (!c->stops || out_len(c) > 0 || c->pendlen > 0)
		return false;
	c->stops = false;
	TAILQ_FOREACH(st, &c->streams, entry)
		if (st->stop) {
			st->stop = false;
			nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE,
			    st->id, NGHTTP2_NO_ERROR);
		}
	return true;
}

/* Frames from nghttp2 into `out`, and out to the client. */
static int
h2_write(struct h2_conn *c)
{
	ssize_t n;

	for (;;) {
		if (c->pendlen > 0) {
			if (c->out == NULL &&
			    (c->out = buf_new(H2_OUT)) == NULL)
				return -1;
			if (buf_space(c->out) < c->pendlen) {
				if (flush_out(c) == -1)
					return -1;
				if (buf_space(c->out) < c->pendlen)
					return 0;	/* the client is slow */
			}
			buf_add(c->out, c->pend, c->pendlen);
			c->pendlen = 0;
		}
		n = nghttp2_session_mem_send(c->s, &c->pend);
		if (n < 0) {
			log_debug("%s: h2: %s", c->cl.client_ip,
			    nghttp2_strerror((int)n));
			return -1;
		}
		if (n == 0)
			break;
		c->pendlen = (size_t)n;
	}
	if (flush_out(c) == -1)
		return -1;
	/* Once: the resets themselves end no stream's response. */
	return stop_uploads(c) ? h2_write(c) : 0;
}

/* Exchanges that can go on: more body for them, or room for theirs. */
static void
h2_resume(struct h2_conn *c)
{
	struct h2_stream *st;

	if (!c->resume)
		return;
	c->resume = false;
	TAILQ_FOREACH(st, &c->streams, entry) {
		if (st->tunnel) {
			st_push_body(st);
			continue;
		}
		if (st->ex == NULL)
			continue;
		if (st->resp_wait && st->resp != NULL &&
		    buf_space(st->resp) > buf_cap(st->resp) / 4) {
			st->resp_wait = false;
			proxy_resume(st->ex);
		}
		if (!st->body_wait)
			st_push_body(st);
	}
}

static bool
waiting_on_client(struct h2_conn *c)
{
	struct h2_stream *st;

	if (out_len(c) > 0 || c->pendlen > 0)
		return true;
	TAILQ_FOREACH(st, &c->streams, entry) {
		if (st->submitted && !st->sent && st->resp != NULL &&
		    (!buf_empty(st->resp) || st->resp_eof))
			return true;	/* its window is shut */
		if (st->ex != NULL && !st->end_stream && !st->body_wait &&
		    !st->websocket)
			return true;	/* its body does not come */
	}
	return false;
}

/* Read and process what the client sent. */
static void
h2_read(struct h2_conn *c)
{
	enum h2guard_verdict verdict;
	ssize_t n, rv;
	size_t ok;
	int i;

	for (i = 0; i < READS_PER_EVENT && !c->dead; i++) {
		/* Frames the client does not read: read no more of it. */
		if (out_len(c) > H2_OUT / 2 || c->pendlen > 0)
			break;
		n = tls_conn_read(c->cl.tls, rbuf, sizeof(rbuf));
		if (n == TLS_AGAIN)
			break;
		if (n == 0)
			tunnels_end(c);
		if (n <= 0) {
			h2_close(c, n == 0 ? "client closed" :
			    tls_conn_error(c->cl.tls));
			return;
		}
		verdict = h2guard_scan(&c->guard, (const uint8_t *)rbuf,
		    (size_t)n, &ok);
		rv = nghttp2_session_mem_recv(c->s, (const uint8_t *)rbuf, ok);
		if (rv >= 0 && verdict != H2GUARD_OK) {
			log_warnx("%s: h2: %s (stream %u): GOAWAY", c->cl.client_ip,
			    c->guard.why, c->guard.why_id);
			nghttp2_session_terminate_session(c->s, verdict);
			c->closing = true;
			break;
		}
		if (rv < 0) {
			if (rv == NGHTTP2_ERR_NOMEM)
				log_rate_warnx(&nomem_rate, "%s: h2: %s: "
				    "GOAWAY", c->cl.client_ip,
				    nghttp2_strerror((int)rv));
			else
				log_warnx("%s: h2: %s: GOAWAY",
				    c->cl.client_ip,
				    nghttp2_strerror((int)rv));
			nghttp2_session_terminate_session(c->s,
			    rv == NGHTTP2_ERR_FLOODED ||
			    rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ?
			    NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
			c->closing = true;
			break;
		}
		start_ready(c);
		if (c->closing)
			break;
	}
}

/*
 * All is said: stop sending, then read and drop what the client still
 * sends for a moment, so that closing does not reset the connection
 * before the client has read our GOAWAY.
 */
static void
h2_linger(struct h2_conn *c)
{
	struct h2_stream *st;

	/* Streams GOAWAY left behind end here, with their exchanges. */
	while ((st = TAILQ_FIRST(&c->streams)) != NULL) {
		st->broken = st->broken || (st->submitted && !st->sent);
		nghttp2_session_set_stream_user_data(c->s, st->id, NULL);
		st_free(st);
	}
	client_linger(c->cl.fd, c->cl.tls);
	c->lingering = true;
	ev_timer_stop(loop_of(c), &c->cl.timer);
	c->cl.timer.repeat = LINGER_SECS;
	ev_timer_again(loop_of(c), &c->cl.timer);
}

/* Everything that can happen without the socket. */
static void
h2_run(struct h2_conn *c)
{
	int rounds;

	if (c->lingering)
		return;
	for (rounds = 0; rounds < 4 && !c->dead; rounds++) {
		h2_resume(c);
		if (h2_write(c) == -1) {
			h2_close(c, "client write failed");
			return;
		}
		if (!c->resume)
			break;
	}
	if (out_len(c) > 0 || c->pendlen > 0 ||
	    nghttp2_session_want_write(c->s))
		return;
	if (c->closing || !nghttp2_session_want_read(c->s))
		h2_linger(c);
}

static void
h2_update(struct h2_conn *c)
{
	int ev = 0;

	if (c->dead)
		return;
	if (c->lingering)
		ev = EV_READ;
	else if (out_len(c) > 0 || c->pendlen > 0)
		ev |= EV_WRITE;
	if (!c->closing && !c->lingering && out_len(c) <= H2_OUT / 2 &&
	    c->pendlen == 0)
		ev |= EV_READ;
	if (ev != c->events || ev_is_active(&c->cl.io) != (ev != 0)) {
		util_watch(loop_of(c), &c->cl.io, c->cl.fd, ev);
		c->events = ev;
	}
	if ((ev & EV_READ) && !c->lingering && tls_conn_pending(c->cl.tls))
		ev_feed_event(loop_of(c), &c->cl.io, EV_READ);
}

static void
h2_io_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents)
{
	struct h2_conn *c = conn_of(w->data);

	if (c->lingering) {
		if (client_drain(c->cl.fd))
			h2_close(c, "done");
		h2_leave(c);
		return;
	}
	if (revents & EV_READ)
		tls_conn_readable(c->cl.tls);
	if ((revents & EV_WRITE) && flush_out(c) == -1)
		h2_close(c, "client write failed");
	if (!c->dead && (revents & EV_READ) && !c->closing)
		h2_read(c);
	if (!c->dead)
		h2_run(c);
	h2_leave(c);
}

/* WebSocket streams with no byte either way for tunnel-idle-timeout. */
static void
expire_tunnels(struct h2_conn *c)
{
	double old = now_of(c) - http_cfg(c)->tunnel_timeout;
	struct h2_stream *st;

	TAILQ_FOREACH(st, &c->streams, entry)
		if (st->tunnel && st->tunnel_at <= old) {
			st->tunnel_at = now_of(c);	/* once */
			log_debug("%s: h2: tunnel idle, closed", c->cl.client_ip);
			nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE,
			    st->id, NGHTTP2_CANCEL);
		}
}

static void
h2_timer_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct h2_conn *c = conn_of(w->data);

	if (c->lingering) {
		h2_close(c, c->closing ? "GOAWAY sent" : "done");
		h2_leave(c);
		return;
	}
	expire_tunnels(c);
	if (now_of(c) < deadline(c)) {
		h2_timer_arm(c);
		h2_run(c);
		h2_leave(c);
		return;
	}
	if (c->closing)
		h2_close(c, "GOAWAY not read");
	else if (c->nstreams == 0) {
		nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE,
		    nghttp2_session_get_last_proc_stream_id(c->s),
		    NGHTTP2_NO_ERROR, NULL, 0);
		c->closing = true;
		progress(c);
		h2_timer_arm(c);
	} else if (waiting_on_client(c)) {
		log_debug("%s: h2: client too slow", c->cl.client_ip);
		nghttp2_session_terminate_session(c->s, NGHTTP2_NO_ERROR);
		c->closing = true;
		progress(c);
		h2_timer_arm(c);
	} else {
		/* Every stream waits on its upstream, which has its own
		   request timeout. */
		progress(c);
		h2_timer_arm(c);
	}
	if (!c->dead)
		h2_run(c);
	h2_leave(c);
}

/* ---- the worker's hooks ---- */

static void
h2_drain(struct worker_conn *wc)
{
	struct h2_conn *c = conn_of(CONTAINER_OF(wc, struct h2_conn, cl.wc));

	if (c->draining || c->dead)
		return;
	c->draining = true;
	/* In-flight streams finish; new ones are refused. */
	nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE,
	    nghttp2_session_get_last_proc_stream_id(c->s), NGHTTP2_NO_ERROR,
	    NULL, 0);
	if (c->nstreams == 0)
		c->closing = true;
	h2_defer(c);
}

static void
h2_abort(struct worker_conn *wc)
{
	struct h2_conn *c = conn_of(CONTAINER_OF(wc, struct h2_conn, cl.wc));

	h2_close(c, "shutdown");
	h2_free(c);
}

static int
h2_settings(struct h2_conn *c)
{
	const struct config *cfg = worker_gen(c->cl.wk)->cfg;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
		    cfg->http.h2_max_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
		    cfg->http.max_header_size },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		/* WebSocket over HTTP/2 (RFC 8441). */
		{ NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1 },
	};

	if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv,
	    nitems(iv)) != 0 || nghttp2_session_set_local_window_size(c->s,
	    NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
		return -1;
	return 0;
}

static nghttp2_session *
h2_session(struct h2_conn *c)
{
	nghttp2_session *s = NULL;
	nghttp2_option *opt;

	if (make_callbacks() == -1 || nghttp2_option_new(&opt) != 0)
		return NULL;
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_stream_reset_rate_limit(opt,
	    (uint64_t)BUDGET_BURST, (uint64_t)BUDGET_RATE);
	nghttp2_option_set_max_continuations(opt, 8);
	if (nghttp2_session_server_new2(&s, callbacks, c, opt) != 0)
		s = NULL;
	nghttp2_option_del(opt);
	return s;
}

static const struct client_ops h2_client_ops = {
	.io = h2_io_cb,
	.timer = h2_timer_cb,
	.drain = h2_drain,
	.abort = h2_abort,
};

void
h2_start(const struct client *from)
{
	struct worker *wk = from->wk;
	struct h2_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		client_drop(from);
		return;
	}
	c->magic = H2_MAGIC;
	TAILQ_INIT(&c->streams);
	TAILQ_INIT(&c->ready);
	client_take(&c->cl, &h2_client_ops, c, from);
	/* Last in each loop iteration: h2_defer() after an upstream's
	   answer then runs once the other upstreams ready in the same
	   iteration have answered too, and their responses leave in one
	   write instead of one each. */
	ev_set_priority(&c->cl.io, EV_MINPRI);
	h2guard_init(&c->guard);
	c->budget = BUDGET_BURST;
	c->budget_at = c->idle_since = c->progress = now_of(c);
	if ((c->s = h2_session(c)) == NULL || h2_settings(c) == -1) {
		h2_close(c, "out of memory");
		h2_free(c);
		return;
	}
	c->draining = worker_draining(wk);
	if (c->draining) {
		nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE, 0,
		    NGHTTP2_NO_ERROR, NULL, 0);
		c->closing = true;
	}
	h2_timer_arm(c);
	h2_run(c);
	h2_leave(c);
}
